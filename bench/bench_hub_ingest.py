"""The hub's ingest transaction alone (``hub.ingest.ingest``, no broker), against a plain COPY
of the same rows into a copy of ``events`` in the same PostgreSQL, in the same run.

Two shapes, the fleet benchmark's ``points.earned`` messages from light stations:
- ``burst``: stations draining a backlog (``--stations`` x 2 messages of ``--events`` events,
  ``--group`` messages per transaction);
- ``steady``: one-event messages, 200 per transaction (what a fleet at 1 event/s sends).

Wall time is what the target is about, but on a shared machine both it and the floor move
with other work: each phase also reports CPU seconds, this process's plus its PostgreSQL
backend's (``/proc/<pid>/stat``; the server is local), a ratio other load disturbs far less.

``python -m bench hub_ingest [--stations 200 --events 125 --group 20]``
"""
from __future__ import annotations

import argparse
import io
import json
import time
from typing import Any

from bench.common import pid_cpu


def _messages(stations: list[Any], rounds: int, per_message: int) -> list[tuple[str, bytes]]:
    out = []
    for _ in range(rounds):
        for st in stations:
            events = [st.new_event() for _ in range(per_message)]
            out.append((st.topic("events"), json.dumps({"station_id": st.station_id, "events": events}).encode()))
    return out


def _cpu(backend_pid: int) -> float:
    """CPU seconds used so far by this process and by the PostgreSQL backend serving it."""
    return time.process_time() + pid_cpu(backend_pid)


def _run(url: str, shape: str, messages: list[tuple[str, bytes]], group: int) -> tuple[int, float, float]:
    import psycopg

    from hub.config import DEFAULT_SCHEMAS
    from hub.ingest import ingest
    from hub.schemas import EventSchemas

    schemas = EventSchemas(DEFAULT_SCHEMAS)
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("TRUNCATE events, stations, point_movements, sale_lines, accounts, account_station_seq,"
                     " directory_changes CASCADE")
        backend = conn.info.backend_pid
        t0, c0 = time.perf_counter(), _cpu(backend)
        for start in range(0, len(messages), group):
            ingest(conn, messages[start:start + group], schemas)
        ingest_s, ingest_cpu = time.perf_counter() - t0, _cpu(backend) - c0
        rows = conn.execute("SELECT count(*) FROM events").fetchone()[0]
        buffer = io.BytesIO()
        with conn.cursor().copy("COPY events TO STDOUT") as copy:
            for chunk in copy:
                buffer.write(chunk)
        conn.execute("DROP TABLE IF EXISTS events_copy")
        conn.execute("CREATE TABLE events_copy (LIKE events INCLUDING ALL)")
        t0, c0 = time.perf_counter(), _cpu(backend)
        with conn.transaction(), conn.cursor().copy("COPY events_copy FROM STDIN") as copy:
            copy.write(buffer.getvalue())
        copy_s, copy_cpu = time.perf_counter() - t0, _cpu(backend) - c0
    print(f"  {shape:6s} {rows:6d} events in groups of {group:3d} messages: ingest {rows / ingest_s:8,.0f} events/s,"
          f" COPY {rows / copy_s:8,.0f} rows/s -> ingest is {ingest_s / copy_s:.1f}x the floor;"
          f" CPU (this process + its PostgreSQL backend) {ingest_cpu:.2f} s vs {copy_cpu:.2f} s"
          f" ({ingest_cpu / copy_cpu:.1f}x)", flush=True)
    return rows, ingest_s, copy_s


def main(argv: list[str]) -> int:
    import psycopg

    from bench.fleet_station import LightStation
    from hub.db.migrate import migrate
    from tests.hub.postgres import Postgres

    parser = argparse.ArgumentParser(prog="python -m bench hub_ingest")
    parser.add_argument("--stations", type=int, default=200)
    parser.add_argument("--events", type=int, default=125, help="events per burst message")
    parser.add_argument("--group", type=int, default=20, help="burst messages per transaction")
    opts = parser.parse_args(argv)
    pg = Postgres().start()
    try:
        with psycopg.connect(pg.url, autocommit=True) as conn:
            migrate(conn)
        burst = _messages([LightStation(f"burst-{i:05d}", None) for i in range(opts.stations)], 2, opts.events)
        steady = _messages([LightStation(f"steady-{i:05d}", None) for i in range(1000)], 5, 1)
        _run(pg.url, "burst", burst, opts.group)
        _run(pg.url, "steady", steady, 200)
    finally:
        pg.destroy()
    return 0
