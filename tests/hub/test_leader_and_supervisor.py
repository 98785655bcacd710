"""Leader takeover and the ``--workers N`` supervisor, with real processes: two workers and a
SIGKILLed leader; ``loyalty-hub run --workers 2`` with a SIGKILLed child and a SIGTERM."""
from __future__ import annotations

import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import wait_until
from tests.fakes.mosquitto import Mosquitto
from tests.hub.conftest import HubProcess, needs_services
from tests.hub.test_hub_mqtt import ScriptedStation, _hubs, _rows

pytestmark = needs_services
LEADING = "[leader]"  # "este proceso asume las tareas de toda la cadena [leader]"


@pytest.fixture
def station(broker: Mosquitto) -> Iterator[ScriptedStation]:
    made = ScriptedStation(broker.port, answer_replay={"status": "ok", "reopened": 0, "missing": 0,
                                                       "oldest_available_seq": 1})
    yield made
    made.close()


def _log(hub: HubProcess) -> str:
    return hub.log.read_text() if hub.log.exists() else ""


def test_another_worker_takes_over_the_leader_duties(tmp_path: Path, broker: Mosquitto, database: str,
                                                     hubs: list[HubProcess], station: ScriptedStation) -> None:
    _hubs(tmp_path, broker, database, hubs, "w1", "w2")
    assert wait_until(lambda: any(LEADING in _log(h) for h in hubs), 15)
    leader = next(h for h in hubs if LEADING in _log(h))
    other = next(h for h in hubs if h is not leader)
    assert LEADING not in _log(other)  # one leader at a time
    leader.kill()
    # A hole (seq 2 never sent): only the leader asks for replays, so a request proves the takeover.
    events = station.events(3)
    station.publish([events[0], events[2]])
    # Failed once in a full suite run at load 5-10 (not reproduced in 9 runs alone or under a
    # CPU load): the message says where the acks stopped next time.
    assert wait_until(lambda: {events[0]["id"], events[2]["id"]} <= station.acked, 10), (
        sorted(station.acked), _log(other)[-3000:], _log(leader)[-1500:])
    assert wait_until(lambda: LEADING in _log(other), 15), _log(other)[-2000:]
    assert wait_until(lambda: station.replays, 20), _log(other)[-2000:]
    request = station.replays[0]
    assert (request["from_seq"], request["to_seq"]) == (2, 2)
    assert _rows(database, "SELECT from_seq, to_seq FROM replay_requests") == [(2, 2)]


def _worker_pids(supervisor: int) -> set[int]:
    """The supervisor's worker processes (multiprocessing's resource tracker is a child too)."""
    try:
        children = Path(f"/proc/{supervisor}/task/{supervisor}/children").read_text().split()
    except FileNotFoundError:
        return set()
    pids = set()
    for pid in map(int, children):
        try:
            if b"spawn_main" in Path(f"/proc/{pid}/cmdline").read_bytes():
                pids.add(pid)
        except FileNotFoundError:
            continue
    return pids


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        return False
    return state != "Z"


def test_the_supervisor_runs_n_workers_restarts_a_dead_one_and_stops_them_all(
        tmp_path: Path, broker: Mosquitto, database: str, station: ScriptedStation) -> None:
    sup = HubProcess(tmp_path, "sup", broker.url, database)
    sup.args += ["--workers", "2"]
    sup.start()
    assert sup.proc is not None
    try:
        sup.wait_subscribed(connections=2)
        workers = _worker_pids(sup.proc.pid)
        assert len(workers) == 2, workers
        victim = sorted(workers)[0]
        os.kill(victim, signal.SIGKILL)
        assert wait_until(lambda: len(_worker_pids(sup.proc.pid) - {victim}) == 2, 30), _log(sup)[-2000:]
        assert "[worker_restarted]" in _log(sup)
        sup.wait_subscribed(connections=3)
        events = station.events(20)
        for event in events:
            station.publish([event])  # one message each: both workers of the shared group get some
        assert wait_until(lambda: station.acked >= {e["id"] for e in events}, 15), len(station.acked)
        workers = _worker_pids(sup.proc.pid)
        sup.proc.send_signal(signal.SIGTERM)
        assert sup.proc.wait(30) == 0
        assert wait_until(lambda: not any(_alive(pid) for pid in workers), 5)
        assert "Traceback" not in _log(sup), _log(sup)[-3000:]
    finally:
        for pid in _worker_pids(sup.proc.pid):
            os.kill(pid, signal.SIGKILL)
        sup.kill()
