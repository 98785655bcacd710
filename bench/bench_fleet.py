"""Fleet: >= 1,000 stations into the hub through one broker, with a worker killed and the
broker restarted mid-run (issue 15, "Measured").

Everything runs here on loopback, started by this benchmark on free ports: a PostgreSQL
(tests/hub/postgres.py, fsync on), a Mosquitto (tests/fakes/mosquitto.py), ``--workers`` hub
workers (each a ``loyalty-hub run`` process), ``--agents`` real station agents
(``loyalty-agent run``, enrolling customers over HTTP) and ``--stations`` lightweight stations
(bench/fleet_station.py: the station contract without SQLite, 1 event/s each).

Timeline: a warm-up (one event per light station, until each has its ack and the complete
directory delta the hub sends a new station; not counted as steady), then steady load for ``--duration`` s; at 1/3
the first worker is SIGKILLed (started again 2 s later); at 2/3 the broker is stopped and
started again. Then the steady load stops,
and a burst (``--burst-stations`` stations x ``--burst-events`` events in batches of 200, what
stations send after an outage, made before it starts) measures ingest throughput, from the
first burst message published to the last commit (bench/fleet_burst.py); a plain COPY of as
many rows of the same shape into a copy of the events table of the same PostgreSQL is the
floor, taken once before the burst and twice after it (median). Finally everything drains.

Reported: events lost (generated at the stations, not stored at the hub), stations with gaps,
unconfirmed at the end, ingest events/s beside COPY rows/s, ack latency p50/p99 at 1 event/s
per station (steady: outside the 15 s after each disruption; and over the whole run), and
what the SIGKILL cost (resends, worst ack latency of events sent in the 5 s after it).

``python -m bench fleet`` (defaults: 1,000 stations, 3 agents, 2 workers, 60 s) or smaller:
``python -m bench fleet --stations 100 --agents 1 --duration 15``.
"""
from __future__ import annotations

import argparse
import multiprocessing
import os
import queue
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from bench import fleet_burst as burst
from bench.common import cpu_by_group, percentile, process_cpu

DISRUPTION_WINDOW_S = 15.0
DRAIN_S = 120.0  # after the run, how long the light stations may take to get every event acknowledged


def light_main(ids: list[str], port: int, ack_timeout_s: float, burst_ids: list[str], burst_events: int,
               control: dict[str, Any], results: Any) -> None:
    from bench.fleet_station import Fleet

    fleet = Fleet(ids, "127.0.0.1", port, ack_timeout_s)
    fleet.connect_all()
    start = time.monotonic()
    deadline = start + 60
    while time.monotonic() < deadline and not all(s.connected for s in fleet.stations):
        fleet.pump(0.05)
        fleet.housekeeping()
    results.put(("ready", len(ids), sum(s.connected for s in fleet.stations)))
    period = 1.0
    offsets = {s.station_id: i * period / max(1, len(ids)) for i, s in enumerate(fleet.stations)}
    next_emit = {s.station_id: time.monotonic() + offsets[s.station_id] for s in fleet.stations}
    last_housekeeping = 0.0
    burst_done = warmed = warm_reported = False
    backlog: dict[str, list[dict[str, Any]]] | None = None
    by_id = {s.station_id: s for s in fleet.stations}
    while not control["finish"].is_set():
        fleet.pump(0.01)
        now = time.monotonic()
        if control["warmup"].is_set() and not warmed:
            warmed = True
            for station in fleet.stations:
                station.emit(fleet.ack_timeout_s)
        if warmed and not warm_reported and now - last_housekeeping >= 0.5 and all(
                s.directory_messages and not s.unconfirmed for s in fleet.stations):
            warm_reported = True
            results.put(("warm", len(ids)))
        if control["generate"].is_set():
            for station in fleet.stations:
                if now >= next_emit[station.station_id]:
                    station.emit(fleet.ack_timeout_s)
                    next_emit[station.station_id] += period
        else:
            next_emit = {sid: now + off for sid, off in offsets.items()}
        if control["backlog"].is_set() and backlog is None:
            # The outage's backlog exists before the burst: the stations made these events while
            # cut off. Made here, outside the measured window, so that the window holds their
            # sending and the hub's ingest, not this benchmark's event generator.
            backlog = {sid: [by_id[sid].new_event() for _ in range(burst_events)] for sid in burst_ids}
            results.put(("backlog", sum(map(len, backlog.values()))))
        if control["burst"].is_set() and not burst_done:
            burst_done = True
            first_sent = time.time()
            for sid in burst_ids:
                by_id[sid].release((backlog or {}).get(sid, []), fleet.ack_timeout_s)
                fleet.pump(0)  # on the wire now, as a station would: not after the whole process's share
            results.put(("burst_sent", first_sent))
        if now - last_housekeeping >= 0.5:
            last_housekeeping = now
            fleet.housekeeping()
    drain_until = time.monotonic() + DRAIN_S
    while time.monotonic() < drain_until and any(s.unconfirmed for s in fleet.stations):
        fleet.pump(0.05)
        fleet.housekeeping()
    stats = fleet.stats()
    stats["latencies"] = [lat for s in fleet.stations for lat in s.latencies]
    results.put(("done", stats))
    fleet.close()


def _options(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench fleet")
    parser.add_argument("--stations", type=int, default=1000)
    parser.add_argument("--agents", type=int, default=3)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--duration", type=float, default=60.0)
    parser.add_argument("--processes", type=int, default=4, help="processes for the light stations")
    parser.add_argument("--ack-timeout", type=float, default=10.0, help="light stations' resend timer (s)")
    parser.add_argument("--burst-stations", type=int, default=200)
    parser.add_argument("--burst-events", type=int, default=250)
    opts = parser.parse_args(argv)
    # A burst can only come from stations that exist: more asked for than there are waited for
    # events nobody made (the run sat out wait_stored's 300 s, then reported on the rest).
    opts.burst_stations = min(opts.burst_stations, opts.stations)
    return opts


class AgentLoad(threading.Thread):
    """Each real agent enrolls a (synthetic) customer about twice a second."""

    def __init__(self, stations: list[Any]) -> None:
        super().__init__(daemon=True)
        self.stations, self.stop = stations, threading.Event()
        self.enrolled = 0

    def run(self) -> None:
        from tests.hub.test_hub_e2e import _rut

        n = 0
        while not self.stop.is_set():
            for station in self.stations:
                n += 1
                body = {"document": {"country": "CL", "type": "RUT", "number": _rut(20_000_000 + n)},
                        "kind": "natural", "first_name": "Cliente", "first_surname": f"Flota{n}"}
                try:
                    if station.call("POST", "/v1/customers", body)[0] == 201:
                        self.enrolled += 1
                except OSError:
                    pass
            self.stop.wait(0.5)


def main(argv: list[str]) -> int:
    import psycopg

    from hub.db.migrate import migrate
    from tests.fakes.mosquitto import Mosquitto
    from tests.hub.conftest import HubProcess
    from tests.hub.postgres import Postgres
    from tests.hub.stations import Station

    opts = _options(argv)
    tmp = Path(tempfile.mkdtemp(prefix="bench-fleet-"))
    pg = Postgres()
    burst.enable_commit_timestamps(pg.data)
    pg.start()
    broker = Mosquitto(tmp / "broker", extra_config="max_connections -1\n").start()
    ctx = multiprocessing.get_context("spawn")
    control = {name: ctx.Event() for name in ("warmup", "generate", "backlog", "burst", "finish")}
    results: Any = ctx.Queue()
    hubs: list[HubProcess] = []
    agents: list[Station] = []
    procs: list[Any] = []
    try:
        with psycopg.connect(pg.url, autocommit=True) as conn:
            migrate(conn)
        env = {"LOYALTY_HUB_INGEST__GAP_GRACE_S": str(2 * opts.ack_timeout), "LOYALTY_HUB_DOWNLINK__INTERVAL_S": "1",
               "LOYALTY_HUB_INGEST__REPLAY_TIMEOUT_S": "60"}
        hubs = [HubProcess(tmp, f"w{i + 1}", broker.url, pg.url, **env).start() for i in range(opts.workers)]
        for hub in hubs:
            hub.wait_subscribed()
        for i in range(opts.agents):
            station = Station(tmp / f"agent{i}", f"agent-{i}", broker.port, ack_timeout_s=opts.ack_timeout)
            station.configure_downlink()
            agents.append(station.start())
        ids = [f"light-{i:05d}" for i in range(opts.stations)]
        # Spread over the light-station processes: the first N ids all sat in one process, which
        # then made the whole burst alone (measured: it gated the burst, not the hub).
        burst_ids = ids[::max(1, len(ids) // max(1, opts.burst_stations))][:opts.burst_stations]
        per = -(-len(ids) // opts.processes)
        for k in range(opts.processes):
            chunk = ids[k * per:(k + 1) * per]
            procs.append(ctx.Process(target=light_main, args=(chunk, broker.port, opts.ack_timeout,
                                                               [b for b in burst_ids if b in chunk], opts.burst_events,
                                                               control, results)))
            procs[-1].start()
        connected = sum(_take(results, "ready", 120)[2] for _ in procs)
        print(f"{connected} light stations connected, {len(agents)} agents, {len(hubs)} hub workers", flush=True)
        report = _run(opts, control, results, procs, pg, broker, hubs, agents)
        _print(opts, report)
        return 0 if report["lost"] == 0 and report["gaps"] == 0 and report["unconfirmed"] == 0 else 1
    finally:
        control["finish"].set()
        for p in procs:
            p.join(5)
            if p.is_alive():
                p.kill()
        for station in agents:
            station.stop()
        for hub in hubs:
            hub.stop()
        broker.stop()
        pg.destroy()


def _take(results: Any, kind: str, timeout: float) -> tuple[Any, ...]:
    item = results.get(timeout=timeout)
    assert item[0] == kind, item
    return item


def _count(url: str, sql: str = "SELECT count(*) FROM events") -> int:
    import psycopg

    for _ in range(50):
        try:
            with psycopg.connect(url, autocommit=True, connect_timeout=3) as conn:
                return int(conn.execute(sql).fetchone()[0])
        except psycopg.OperationalError:
            time.sleep(0.2)
    raise RuntimeError("database unreachable")


def _run(opts: argparse.Namespace, control: dict[str, Any], results: Any, procs: list[Any], pg: Any, broker: Any,
         hubs: list[Any], agents: list[Any]) -> dict[str, Any]:
    warmup_s = _warm_up(control, results, procs)
    print(f"warm-up: every light station acknowledged and holding its complete directory delta ({warmup_s:.0f} s)",
          flush=True)
    load = AgentLoad(agents)
    load.start()
    control["generate"].set()
    started = time.time()
    disruptions: list[float] = []
    time.sleep(opts.duration / 3)
    disruptions.append(time.time())
    hubs[0].kill()
    print(f"t+{time.time() - started:.0f}s: worker {hubs[0].name} SIGKILLed", flush=True)
    time.sleep(2)
    hubs[0].start()
    time.sleep(max(0.0, started + 2 * opts.duration / 3 - time.time()))
    disruptions.append(time.time())
    broker.stop()
    print(f"t+{time.time() - started:.0f}s: broker stopped", flush=True)
    time.sleep(1)
    broker.start()
    print(f"t+{time.time() - started:.0f}s: broker started again", flush=True)
    time.sleep(max(0.0, started + opts.duration - time.time()))
    control["generate"].clear()
    load.stop.set()
    steady_end = time.time()
    # Let the steady phase drain (resends after the disruptions) before measuring the burst.
    previous, stable_since = -1, time.monotonic()
    while time.monotonic() - stable_since < 3 * opts.ack_timeout / 2 and time.time() - steady_end < 120:
        now_count = _count(pg.url)
        if now_count != previous:
            previous, stable_since = now_count, time.monotonic()
        time.sleep(0.5)
    # Where the machine's CPU goes during the burst: on this one host the light stations and the
    # broker share the cores with the hub and PostgreSQL, which a real chain's hub host does not.
    roots = {hub.proc.pid: "hub workers" for hub in hubs if hub.proc}
    roots.update({p.pid: "light stations" for p in procs if p.pid})
    roots.update({a.proc.pid: "agents" for a in agents if a.proc})
    roots[os.getpid()] = "this benchmark"
    # By ancestry, not by command name: the other sessions on a shared machine run PostgreSQL
    # servers and brokers of their own, which must count as "other".
    postmaster = int((pg.data / "postmaster.pid").read_text().split()[0])
    roots[postmaster] = "PostgreSQL"
    if broker.proc is not None:
        roots[broker.proc.pid] = "broker"
    by_name: dict[str, str] = {}
    burst_total = opts.burst_stations * opts.burst_events
    floors = [burst.copy_floor(pg.url, burst.STEADY_ROWS.format(n=burst_total), "events_floor_0", roots, by_name)]
    control["backlog"].set()
    for _ in procs:
        _take(results, "backlog", 120)
    before = _count(pg.url)
    pg_roles = burst.postgres_roots(postmaster, pg.url)
    cpu_before = process_cpu()
    control["burst"].set()
    t0 = time.monotonic()
    seen = burst.wait_stored(pg.url, burst.watermark_sum(pg.url) + burst_total, 300)
    burst_after = process_cpu()
    burst_cpu = cpu_by_group(cpu_before, burst_after, roots, by_name)
    burst_cpu_pg = {k: v for k, v in cpu_by_group(cpu_before, burst_after, {**roots, **pg_roles}, by_name).items()
                    if k.startswith("PostgreSQL")}
    first_sent = min(_take(results, "burst_sent", 60)[1] for _ in procs)
    txns = burst.burst_transactions(pg.url, first_sent)
    last_commit = max((c for _, c, _ in txns), default=first_sent)
    ingested, ingest_s = sum(n for _, _, n in txns), last_commit - first_sent
    window = {**burst.transactions_summary(txns, first_sent, last_commit), "polled_s": seen - t0,
              "polled": _count(pg.url) - before}
    for k in (1, 2):
        floors.append(burst.copy_floor(pg.url, burst.BURST_ROWS.format(t=first_sent), f"events_floor_{k}", roots,
                                       by_name))
    control["finish"].set()
    stats = [_take(results, "done", 180)[1] for _ in procs]
    report = _verify(opts, pg.url, stats, agents, disruptions, (started, steady_end), ingested, ingest_s, load)
    return {**report, "burst_cpu": burst_cpu, "burst_cpu_pg": burst_cpu_pg, "floor": burst.floor_summary(floors), "window": window}


def _warm_up(control: dict[str, Any], results: Any, procs: list[Any]) -> float:
    """One event per light station, until every light station has its event acknowledged and
    its complete directory delta received. Not measured as steady: a thousand stations appearing
    in the same second get a thousand complete deltas of every account at once (hundreds of MB
    through the broker), which a running chain never does."""
    t0 = time.monotonic()
    control["warmup"].set()
    for _ in procs:
        _take(results, "warm", 300)
    return time.monotonic() - t0


def _verify(opts: argparse.Namespace, url: str, stats: list[dict[str, Any]], agents: list[Any],
            disruptions: list[float], steady: tuple[float, float], ingested: int, ingest_s: float,
            load: AgentLoad) -> dict[str, Any]:
    import psycopg

    generated = {sid: seq for s in stats for sid, seq in s["per_station"].items()}
    deadline = time.time() + 120
    while time.time() < deadline and any(a.sync()["pending"] + a.sync()["delivered"] for a in agents):
        time.sleep(1)
    for agent in agents:
        generated[agent.id] = agent.sync()["confirmed"] + agent.sync()["pending"] + agent.sync()["delivered"]
    with psycopg.connect(url, autocommit=True) as conn:
        rows = {sid: (c, m, n) for sid, c, m, n in conn.execute(
            "SELECT s.station_id, s.contiguous_seq, s.max_seq_seen, (SELECT count(*) FROM events e"
            " WHERE e.station_id = s.station_id) FROM stations s")}
        alerts = dict(conn.execute("SELECT type, count(*) FROM alerts GROUP BY type").fetchall())
        replays = conn.execute("SELECT count(*) FROM replay_requests").fetchone()[0]
        # Hub side of the latency: the storing transaction's start minus the event's creation (one
        # clock: same machine); what the stations measure adds their own delay in reading the ack.
        stored = conn.execute(
            "SELECT extract(epoch FROM created_at::timestamptz)::float8,"
            " extract(epoch FROM received_at - created_at::timestamptz)::float8 FROM events"
            " WHERE station_id LIKE 'light-%%' AND created_at::timestamptz >= to_timestamp(%s)"
            " AND created_at::timestamptz < to_timestamp(%s)", steady).fetchall()
    lost = sum(max(0, n - rows.get(sid, (0, 0, 0))[2]) for sid, n in generated.items())
    gaps = sum(1 for sid, n in generated.items() if rows.get(sid, (0, 0, 0))[0] != n)
    latencies = [lat for s in stats for lat in s["latencies"]]
    steady_start, steady_end = steady
    steady_latencies = [w for t, w in latencies if steady_start <= t < steady_end
                        and not any(d <= t < d + DISRUPTION_WINDOW_S for d in disruptions)]
    after_kill = [w for t, w in latencies if disruptions[0] <= t < disruptions[0] + 5]
    hub_side = [w for t, w in stored if not any(d <= t < d + DISRUPTION_WINDOW_S for d in disruptions)]
    timeline: dict[int, list[float]] = {}
    for t, w in latencies:
        if t >= steady_start:
            timeline.setdefault(int((t - steady_start) // 5) * 5, []).append(w)
    return {"generated": sum(generated.values()), "lost": lost, "gaps": gaps,
            "unconfirmed": sum(s["unconfirmed"] for s in stats) + sum(a.sync()["pending"] + a.sync()["delivered"] for a in agents),
            "resent": sum(s["resent"] for s in stats), "downlink": sum(s["downlink_messages"] for s in stats),
            "ingested": ingested, "ingest_s": ingest_s,
            "steady": steady_latencies, "all": [w for _, w in latencies], "after_kill": after_kill, "alerts": alerts,
            "replays": replays, "agent_enrolled": load.enrolled, "hub_side": hub_side, "timeline": timeline}


def _print(opts: argparse.Namespace, r: dict[str, Any]) -> None:
    ingest_rate = r["ingested"] / r["ingest_s"] if r["ingest_s"] else float("nan")
    floor, window = r["floor"], r["window"]
    copy_rate = floor["median"]
    ms = lambda values, p: percentile(values, p) * 1000  # noqa: E731
    cpu = lambda groups: "  ".join(f"{k} {v:.2f}" for k, v in sorted(groups.items(), key=lambda kv: -kv[1]))  # noqa: E731
    hub_cpu = r["burst_cpu"].get("hub workers", 0.0) + r["burst_cpu"].get("PostgreSQL", 0.0)
    # The floor's CPU: PostgreSQL storing the rows and this benchmark sending them.
    copy_cpu = floor["cpu"].get("PostgreSQL", 0.0) + floor["cpu"].get("this benchmark", 0.0)
    print(f"""
fleet: {opts.stations} light stations + {opts.agents} agents, {opts.workers} hub workers, {opts.duration:.0f} s at 1 event/s per station
  events generated at the stations        {r['generated']}
  events lost (target 0)                  {r['lost']}
  stations with gaps at the end (0)       {r['gaps']}
  unconfirmed at the end (0)              {r['unconfirmed']}
  resends by light stations               {r['resent']}  (replay requests {r['replays']}, alerts {r['alerts']})
  directory deltas received               {r['downlink']}
  ingest, burst of {r['ingested']} events      {ingest_rate:,.0f} events/s  ({r['ingest_s']:.2f} s: first message published to last commit)
  burst transactions                      {window['count']}, events per transaction median {window['median']:.0f} max {window['max']}; no transaction open {window['idle']:.2f} s of the window
  transactions (start+seconds:events)     {window['timeline']}
  (polled as before: {window['polled']} events in {window['polled_s']:.2f} s from the burst signal, {window['polled'] / window['polled_s'] if window['polled_s'] else 0:,.0f} events/s)
  COPY of the same rows (floor)           {copy_rate:,.0f} rows/s median of {len(floor['rates'])} ({' / '.join(f'{x:,.0f}' for x in floor['rates'])}: before, after, after)   -> ingest is {copy_rate / ingest_rate:.1f}x the floor (target <= 3x)
  CPU s during the burst                  {cpu(r['burst_cpu'])}
  PostgreSQL's CPU s during the burst     {cpu(r['burst_cpu_pg'])}
  CPU s during the COPY (median run)      {cpu(floor['cpu'])}
  hub workers + PostgreSQL vs the COPY    {hub_cpu:.2f} s vs {copy_cpu:.2f} s of CPU ({hub_cpu / copy_cpu if copy_cpu else float('nan'):.1f}x)
  ack latency, steady (n={len(r['steady'])})        p50 {ms(r['steady'], 50):.0f} ms  p99 {ms(r['steady'], 99):.0f} ms  (target p99 <= 1000 ms)
  ack latency, whole run (n={len(r['all'])})    p50 {ms(r['all'], 50):.0f} ms  p99 {ms(r['all'], 99):.0f} ms  max {max(r['all'] or [0]) * 1000:.0f} ms
  stored by the hub, steady (n={len(r['hub_side'])})   p50 {ms(r['hub_side'], 50):.0f} ms  p99 {ms(r['hub_side'], 99):.0f} ms  (creation to the storing transaction)
  ack latency p99 by send time (s)        {'  '.join(f"{k}: {ms(v, 99):.0f}" for k, v in sorted(r['timeline'].items()))}
  events sent <= 5 s after the SIGKILL    n={len(r['after_kill'])}  p99 {ms(r['after_kill'], 99):.0f} ms  max {max(r['after_kill'] or [0]) * 1000:.0f} ms
  (ack timeout of the light stations: {opts.ack_timeout:.0f} s; an event lost with the killed worker waits at most that long)
""", flush=True)
