"""The fleet benchmark's burst measurement: when the burst's ingest started and ended, what its
transactions looked like, and the COPY floor it is compared with.

- The window starts when the light stations publish the burst's first message (their wall
  clock; same machine) and ends at the commit of the last transaction that stored a burst
  event (``track_commit_timestamp``), not when a poll happened to notice it: the poll only
  says when to look, and is a cheap one (the stations' watermarks, not ``count(*)`` over a
  table of 100,000+ rows, which cost PostgreSQL CPU ten times a second during the burst).
- The floor is a plain ``COPY`` of as many rows of the same shape into a table like ``events``.
  One COPY of about a second measured anywhere from 33,000 to 59,000 rows/s between runs
  (a checkpoint or autovacuum in its second), so it is taken three times, interleaved: once
  before the burst (the steady phase's newest rows: the same ``points.earned`` from the same
  light stations) and twice after it (the burst's own rows); the ratio is against the median.
"""
from __future__ import annotations

import io
import statistics
import time
from typing import Any

from bench.common import cpu_by_group, process_cpu

WATERMARKS = "SELECT coalesce(sum(contiguous_seq), 0) FROM stations"  # grows by one per event stored in order
STEADY_ROWS = "SELECT * FROM events ORDER BY received_at DESC LIMIT {n}"
BURST_ROWS = "SELECT * FROM events WHERE received_at >= to_timestamp({t}) ORDER BY received_at"


def enable_commit_timestamps(data_dir: Any) -> None:
    """Before the server starts: record each transaction's commit time (the burst's end)."""
    with (data_dir / "postgresql.conf").open("a") as conf:
        conf.write("track_commit_timestamp = on\n")


def watermark_sum(url: str) -> int:
    """Sum of every station's ``contiguous_seq``: grows by one per event stored in order."""
    import psycopg

    for _ in range(50):
        try:
            with psycopg.connect(url, autocommit=True, connect_timeout=3) as conn:
                return int(conn.execute(WATERMARKS).fetchone()[0])
        except psycopg.OperationalError:
            time.sleep(0.2)
    raise RuntimeError("database unreachable")


def burst_transactions(url: str, since: float) -> list[tuple[float, float, int]]:
    """(start, commit, events) of every transaction that stored events since ``since`` (epoch s)."""
    import psycopg

    with psycopg.connect(url, autocommit=True) as conn:
        return [(float(s), float(c), int(n)) for s, c, n in conn.execute(
            "SELECT extract(epoch FROM received_at)::float8, extract(epoch FROM pg_xact_commit_timestamp(xmin))::float8,"
            " count(*) FROM events WHERE received_at >= to_timestamp(%s) GROUP BY 1, 2 ORDER BY 1", (since,))]


def copy_floor(url: str, source: str, table: str, roots: dict[int, str], by_name: dict[str, str]
               ) -> tuple[int, float, dict[str, float]]:
    """COPY the rows ``source`` selects into a new table shaped like ``events`` (same keys and
    indexes) in one transaction: rows, seconds, CPU by process group. The table is dropped after."""
    import psycopg

    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(f"CREATE TABLE {table} (LIKE events INCLUDING ALL)")
        buffer = io.BytesIO()
        with conn.cursor().copy(f"COPY ({source}) TO STDOUT") as copy:
            for chunk in copy:
                buffer.write(chunk)
        data = buffer.getvalue()
        cpu_before = process_cpu()
        t0 = time.monotonic()
        with conn.transaction():
            with conn.cursor().copy(f"COPY {table} FROM STDIN") as copy:
                copy.write(data)
        elapsed = time.monotonic() - t0
        cpu = cpu_by_group(cpu_before, process_cpu(), roots, by_name)
        rows = conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0]
        conn.execute(f"DROP TABLE {table}")
    return int(rows), elapsed, cpu


def floor_summary(floors: list[tuple[int, float, dict[str, float]]]) -> dict[str, Any]:
    """Median and spread of the floor's rows/s; the CPU of the median run."""
    rates = [rows / seconds for rows, seconds, _ in floors if seconds > 0]
    median = statistics.median(rates) if rates else float("nan")
    by_rate = sorted(floors, key=lambda f: f[0] / f[1] if f[1] else 0.0)
    return {"rates": rates, "median": median, "cpu": by_rate[len(by_rate) // 2][2] if by_rate else {}}


def wait_stored(url: str, expected: int, timeout: float) -> float:
    """Poll (one connection, ten times a second) until the watermarks reach ``expected``; the
    monotonic time it was seen."""
    import psycopg

    deadline = time.monotonic() + timeout
    with psycopg.connect(url, autocommit=True) as conn:
        while time.monotonic() < deadline:
            if conn.execute(WATERMARKS).fetchone()[0] >= expected:
                break
            time.sleep(0.1)
    return time.monotonic()


def transactions_summary(txns: list[tuple[float, float, int]], start: float, end: float) -> dict[str, Any]:
    """How the burst was cut into transactions, and how much of the window had none open (the
    workers waiting for messages, publishing acks, or between groups)."""
    sizes = sorted(n for _, _, n in txns)
    covered, reach = 0.0, start
    for s, c, _ in sorted(txns):
        s, c = max(s, reach), min(c, end)
        if c > s:
            covered, reach = covered + c - s, c
    return {"count": len(txns), "median": statistics.median(sizes) if sizes else 0, "max": sizes[-1] if sizes else 0,
            "idle": max(0.0, (end - start) - covered),
            "timeline": " ".join(f"{s - start:.2f}+{c - s:.2f}:{n}" for s, c, n in sorted(txns))}


def postgres_roots(postmaster: int, url: str) -> dict[int, str]:
    """This run's PostgreSQL processes by role (the hub's ingest and leader connections by their
    ``application_name``, WAL writer, checkpointer...), for the CPU split; a process started
    later (an autovacuum worker, a new connection) counts under "PostgreSQL (started during)"."""
    from pathlib import Path

    import psycopg

    with psycopg.connect(url, autocommit=True) as conn:
        names = dict(conn.execute("SELECT pid, application_name FROM pg_stat_activity WHERE application_name <> ''"))
    roots = {postmaster: "PostgreSQL (started during)"}
    for pid, (parent, _, _) in process_cpu().items():
        if parent != postmaster:
            continue
        try:
            title = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace").strip()
        except OSError:  # gone since the snapshot
            continue
        role = title.removeprefix("postgres: ")
        roots[pid] = f"PostgreSQL {names[pid]}" if pid in names else "PostgreSQL backends" if role.startswith("hub ") else f"PostgreSQL {(role.split() or ['(exited)'])[0]}"
    return roots
