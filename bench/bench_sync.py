"""Store and forward to head office: our outbox agent against a bridged Mosquitto, one run.

What is measured (issue 3, "Measured"), all on loopback against real brokers started here on
free ports (never the machine's own Mosquitto on 1883):

1. **Ours**: 100,000 events (~300-byte payloads) sit in the station outbox while head office
   is down; the agent process (``python -m agent.cli run --mqtt-url ...``) is running and
   retrying. Then the central Mosquitto and the fake head office (``tests/fakes/head_office``:
   consumes, dedupes by id, acks) come back. Time until head office has all 100,000 *and*
   every row is ``confirmed`` in the station database (polled read-only).
2. **Bridge**: a station-local Mosquitto (persistence on, default autosave) bridged to the
   central Mosquitto (``cleansession false``, QoS 1, ``max_queued_messages 0`` as a careful
   user sets it). A station client publishes the same 100,000 events (one QoS 1 message per
   event, the same JSON envelope) while central is down; then central and the same fake head
   office come back. Time until head office has all 100,000 unique events. The bridge cannot
   carry acknowledgements back to the station, so head office does not ack here (it would be
   wasted work; this only makes the bridge faster).
   The bridge with Mosquitto's *default* ``max_queued_messages`` (1000) is run on 20,000
   events to show what the default does.
3. **SIGKILL** of each side's station process before the drain: 20,000 events queued (ours:
   committed in the outbox; bridge: PUBACKed by the station broker), the station process is
   SIGKILLed and restarted, head office comes back: lost = 20,000 - unique received.

Both sides get the same central broker configuration and the same reconnect cadence
(agent ``reconnect_min_s 0.5`` / ``reconnect_max_s 1``, bridge ``restart_timeout 1``), and the
central broker already holds head office's persistent session (head office subscribed before
the outage), so neither side loses messages published before head office reconnects.

``python -m bench sync`` (or ``python -m bench.bench_sync --events 20000`` for a quick look).
"""
from __future__ import annotations

import argparse
import collections
import json
import math
import os
import pwd
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.common import free_port, outbox_count, wait_http

STATION = "st-bench"
EVENT_TYPE = "points.earned"
PAYLOAD_BYTES = 300
KILL_EVENTS = 20_000
# Agent configurations tried: name -> MQTT env overrides (defaults first, it is the headline).
CONFIGS: dict[str, dict[str, str]] = {
    "defaults (batch 200, 128 KiB, inflight 16)": {},
    "batch 500, 256 KiB, inflight 32": {"BATCH_MAX_EVENTS": "500", "BATCH_MAX_BYTES": str(256 * 1024),
                                        "MAX_INFLIGHT": "32"},
    "batch 50, inflight 8": {"BATCH_MAX_EVENTS": "50", "MAX_INFLIGHT": "8"},
}
DRAIN_TIMEOUT_S = 120.0


# ---- the events ------------------------------------------------------------------------------

def payload(i: int) -> dict[str, Any]:
    """A points event whose JSON is exactly PAYLOAD_BYTES long (like the notes' ~300-byte events).

    >>> len(json.dumps(payload(7), separators=(",", ":")))
    300
    """
    body = {"card": f"60379900{i:08d}", "sku": f"SKU{i % 99999:05d}", "amount": "1234.50", "points": 12,
            "attendant": "att-07", "pump": 3, "i": i, "note": ""}
    base = len(json.dumps(body, separators=(",", ":")))
    body["note"] = "x" * (PAYLOAD_BYTES - base)
    return body


def bridge_message(seq: int) -> bytes:
    """One event in the contract's envelope: what a bridge user's station client publishes."""
    from agent.clock import now_iso
    from agent.ids import new_id

    event = {"id": new_id(), "seq": seq, "type": EVENT_TYPE, "schema_version": 1, "created_at": now_iso(),
             "clock_synced": True, "payload": payload(seq)}
    return json.dumps({"station_id": STATION, "events": [event]}, separators=(",", ":")).encode()


# ---- processes that die with us --------------------------------------------------------------

def _dies_with_us() -> list[str]:
    """Command prefix so brokers and agents get SIGKILL if the bench itself is killed.

    (``setpriv`` from util-linux execs the command; a ``preexec_fn`` would be unsafe here because
    paho threads are running while we spawn.)
    """
    setpriv = shutil.which("setpriv")
    return [setpriv, "--pdeathsig", "KILL"] if setpriv else []


def _broker_class() -> type:
    from tests.fakes.mosquitto import Mosquitto, mosquitto_binary

    class BenchMosquitto(Mosquitto):
        """The test fake, plus: a raw config for the station broker, and death with the bench."""

        def __init__(self, workdir: Path, *, port: int | None = None, raw_config: str | None = None) -> None:
            super().__init__(workdir, port=port)
            self.raw_config = raw_config

        def config_text(self) -> str:
            text = (super().config_text() if self.raw_config is None
                    else self.raw_config.format(port=self.port, dir=self.workdir, log=self.log_path))
            # Started as root, Mosquitto drops to user "mosquitto", which cannot write a root-owned
            # temp dir: persistence and the log would then silently be off. Stay the current user.
            if any(line.startswith("user ") for line in text.splitlines()):
                return text  # the test fake already keeps the invoking user
            return text + f"user {pwd.getpwuid(os.geteuid()).pw_name}\n"

        def start(self, timeout: float = 10.0) -> BenchMosquitto:
            binary = mosquitto_binary()
            if binary is None:
                raise RuntimeError("mosquitto is not installed (apt-get install mosquitto)")
            conf = self.workdir / "mosquitto.conf"
            conf.write_text(self.config_text())
            self.proc = subprocess.Popen([*_dies_with_us(), binary, "-c", str(conf)], stdout=subprocess.DEVNULL,
                                         stderr=subprocess.DEVNULL)
            deadline = time.monotonic() + timeout
            while time.monotonic() < deadline:
                if self.proc.poll() is not None:
                    raise RuntimeError(f"mosquitto exited: {self.log_path.read_text() if self.log_path.exists() else ''}")
                try:
                    with socket.create_connection(("127.0.0.1", self.port), timeout=0.2):
                        return self
                except OSError:
                    time.sleep(0.02)
            raise RuntimeError("mosquitto did not start")

    return BenchMosquitto


STATION_BROKER_CONFIG = """\
listener {port} 127.0.0.1
allow_anonymous true
persistence true
persistence_location {dir}/
{queue_limit}
log_type error
log_type warning
log_dest file {log}

connection central
address 127.0.0.1:{central_port}
topic loyalty/v1/stations/# out 1
cleansession false
clientid bridge-{station}
restart_timeout 1
"""


def station_broker_config(central_port: int, max_queued: int | None) -> str:
    limit = "" if max_queued is None else f"max_queued_messages {max_queued}"
    return (STATION_BROKER_CONFIG.replace("{queue_limit}", limit).replace("{central_port}", str(central_port))
            .replace("{station}", STATION))


class Cleanup:
    """Everything started by the bench, stopped in reverse order whatever happens."""

    def __init__(self) -> None:
        self.items: list[tuple[str, Callable[[], None]]] = []

    def add(self, name: str, fn: Callable[[], None]) -> None:
        self.items.append((name, fn))

    def run(self) -> None:
        while self.items:
            name, fn = self.items.pop()
            try:
                fn()
            except Exception as exc:  # noqa: BLE001 - keep cleaning
                print(f"  cleanup of {name} failed: {exc}", file=sys.stderr)


def _stop_proc(proc: subprocess.Popen[bytes], sig: int = signal.SIGTERM) -> None:
    if proc.poll() is None:
        proc.send_signal(sig)
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)


# ---- head office -----------------------------------------------------------------------------

def _head_office_class() -> type:
    from tests.fakes.head_office import FakeHeadOffice

    class TimedHeadOffice(FakeHeadOffice):
        """The fake head office, plus when the first and the last new event arrived."""

        def __init__(self, port: int, **kw: Any) -> None:
            self.first_at: float | None = None
            self.last_new_at: float | None = None
            super().__init__(port, **kw)

        def _on_message(self, client: Any, userdata: Any, message: Any) -> None:
            before = len(self.events)
            super()._on_message(client, userdata, message)
            if len(self.events) != before:
                now = time.monotonic()
                if self.first_at is None:
                    self.first_at = now
                self.last_new_at = now

    return TimedHeadOffice


def _slow_ack_head_office_class() -> type:
    """Head office that acks each batch ``ack_delay_s`` after it arrived (a busy consumer, a
    database commit far away): at any SIGKILL many events are delivered but unconfirmed, which
    is what tells "resend only what was in flight" from "resend everything unconfirmed"."""
    Base = _head_office_class()

    class SlowAckHeadOffice(Base):  # type: ignore[misc, valid-type]
        def __init__(self, port: int, *, ack_delay_s: float, **kw: Any) -> None:
            self.ack_delay_s = ack_delay_s
            self.due: collections.deque[tuple[float, str, list[str]]] = collections.deque()
            self.stopping = threading.Event()
            super().__init__(port, acking=False, **kw)
            self.acker = threading.Thread(target=self._ack_loop, name="slow-acks", daemon=True)
            self.acker.start()

        def _on_message(self, client: Any, userdata: Any, message: Any) -> None:
            super()._on_message(client, userdata, message)
            parts = message.topic.split("/")
            if parts[4] == "events":
                ids = [event["id"] for event in json.loads(message.payload)["events"]]
                with self.lock:
                    self.due.append((time.monotonic() + self.ack_delay_s, parts[3], ids))

        def awaiting_ack(self) -> int:
            """Events head office holds but has not acked yet (delivered, unconfirmed at the station)."""
            with self.lock:
                return sum(len(ids) for _, _, ids in self.due)

        def _ack_loop(self) -> None:
            while not self.stopping.wait(0.02):
                now = time.monotonic()
                while True:
                    with self.lock:
                        if not self.due or self.due[0][0] > now:
                            break
                        _, station, ids = self.due.popleft()
                    self.client.publish(f"loyalty/v1/stations/{station}/acks", json.dumps({"event_ids": ids}), qos=1)

        def close(self) -> None:
            self.stopping.set()
            self.acker.join(2)
            super().close()

    return SlowAckHeadOffice


def prime_central(central: Any) -> None:
    """Head office subscribed before the outage: its persistent session survives a clean broker stop,
    so whatever stations send before head office reconnects is kept for it."""
    ho = _head_office_class()(central.port)
    try:
        probe = json.dumps({"station_id": "probe", "events": [{"id": "probe", "seq": 1}]})
        deadline = time.monotonic() + 10
        while ho.unique() == 0:  # proves the subscription is in place
            if time.monotonic() > deadline:
                raise RuntimeError("head office did not subscribe")
            ho.publish("loyalty/v1/stations/probe/events", probe)
            time.sleep(0.1)
    finally:
        ho.close()
    central.stop()  # SIGTERM: Mosquitto saves the session


def wait_until(predicate: Callable[[], bool], timeout: float, poll: float = 0.02) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(poll)
    return predicate()


# ---- our agent -------------------------------------------------------------------------------

def queue_outbox(data_dir: Path, n: int, per_txn: int = 1000) -> float:
    """Commit ``n`` events with the agent's own ``append_event`` (durable, synchronous=FULL)."""
    from agent.config import load_settings
    from agent.store.outbox import append_event
    from agent.station import open_database

    settings = load_settings(None, {"storage": {"data_dir": str(data_dir)}, "devices": {"simulated": False},
                                    "station": {"id": STATION}})
    db = open_database(settings)
    try:
        t0 = time.perf_counter()
        for start in range(0, n, per_txn):
            def write(conn: sqlite3.Connection, start: int = start) -> None:
                for i in range(start, min(n, start + per_txn)):
                    append_event(conn, EVENT_TYPE, payload(i + 1))
            db.write(write)
        return time.perf_counter() - t0
    finally:
        db.close()


def agent_env(mqtt: dict[str, str]) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LOYALTY_AGENT_")}
    env.update({"LOYALTY_AGENT_DEVICES__SIMULATED": "false", "LOYALTY_AGENT_LOG_LEVEL": "WARNING",
                "LOYALTY_AGENT_MQTT__RECONNECT_MIN_S": "0.5", "LOYALTY_AGENT_MQTT__RECONNECT_MAX_S": "1"})
    env.update({f"LOYALTY_AGENT_MQTT__{k}": v for k, v in mqtt.items()})
    return env


def start_agent(data_dir: Path, central_url: str, env: dict[str, str], log: Path) -> tuple[subprocess.Popen[bytes], int]:
    port = free_port()
    cmd = [*_dies_with_us(), sys.executable, "-m", "agent.cli", "run", "--data-dir", str(data_dir), "--port", str(port),
           "--mqtt-url", central_url, "--station-id", STATION]
    with log.open("ab") as out:
        proc = subprocess.Popen(cmd, env=env, stdout=out, stderr=out, cwd=Path(__file__).resolve().parent.parent)
    try:
        wait_http(port, "/v1/health", timeout=60)
    except RuntimeError:
        _stop_proc(proc, signal.SIGKILL)
        raise RuntimeError(f"agent did not start: {log.read_text()[-2000:]}") from None
    return proc, port


def confirmed_count(db_path: Path) -> int:
    return outbox_count(db_path, "state = 'confirmed'")


@dataclass
class Drain:
    name: str
    events: int
    enqueue_s: float | None = None
    total_s: float = float("nan")  # head office back -> all received (and confirmed, ours)
    first_s: float = float("nan")  # head office back -> first event at head office
    drain_s: float = float("nan")  # first event at head office -> done
    unique: int = 0
    received: int = 0
    gaps: int = 0
    notes: list[str] = field(default_factory=list)

    @property
    def rate(self) -> float:
        return self.unique / self.total_s if self.total_s > 0 else float("nan")

    @property
    def drain_rate(self) -> float:
        return self.unique / self.drain_s if self.drain_s > 0 else float("nan")


def run_ours(work: Path, template: Path, n: int, name: str, mqtt: dict[str, str], cleanup: Cleanup) -> Drain:
    Broker, HeadOffice = _broker_class(), _head_office_class()
    data = work / "data"
    shutil.copytree(template, data)
    central = Broker(work / "central")
    cleanup.add("central", central.kill)
    central.start()
    prime_central(central)
    agent, _ = start_agent(data, central.url, agent_env(mqtt), work / "agent.log")
    cleanup.add("agent", lambda: _stop_proc(agent))
    time.sleep(1.0)  # it is retrying the (down) broker
    result = Drain(name, n)
    t0 = time.monotonic()
    central.start()
    ho = HeadOffice(central.port)
    cleanup.add("head office", ho.close)
    db_path = data / "agent.db"
    all_received = wait_until(lambda: ho.unique() >= n, DRAIN_TIMEOUT_S)
    done = all_received and wait_until(lambda: confirmed_count(db_path) >= n, DRAIN_TIMEOUT_S, poll=0.01)
    t_end = time.monotonic()
    result.unique, result.received, result.gaps = ho.unique(), ho.received, len(ho.gaps(STATION))
    if not done:
        result.notes.append(f"TIMEOUT: {ho.unique()} received, {confirmed_count(db_path)} confirmed")
    result.total_s = t_end - t0
    if ho.first_at is not None:
        result.first_s = ho.first_at - t0
        result.drain_s = t_end - ho.first_at
    cleanup.run()
    return result


def run_ours_kill(work: Path, n: int, cleanup: Cleanup) -> Drain:
    """Queue n in the outbox, run the agent against the down broker, SIGKILL it, restart, drain."""
    Broker, HeadOffice = _broker_class(), _head_office_class()
    data = work / "data"
    result = Drain("ours, SIGKILL before drain", n, enqueue_s=queue_outbox(data, n))
    central = Broker(work / "central")
    cleanup.add("central", central.kill)
    central.start()
    prime_central(central)
    env = agent_env({})
    agent, _ = start_agent(data, central.url, env, work / "agent.log")
    cleanup.add("agent 1", lambda: _stop_proc(agent))
    time.sleep(1.0)
    agent.send_signal(signal.SIGKILL)
    agent.wait(10)
    agent2, _ = start_agent(data, central.url, env, work / "agent.log")
    cleanup.add("agent 2", lambda: _stop_proc(agent2))
    t0 = time.monotonic()
    central.start()
    ho = HeadOffice(central.port)
    cleanup.add("head office", ho.close)
    wait_until(lambda: ho.unique() >= n, 60)
    wait_until(lambda: confirmed_count(data / "agent.db") >= n, 30)
    result.total_s = time.monotonic() - t0
    result.unique, result.received, result.gaps = ho.unique(), ho.received, len(ho.gaps(STATION))
    result.notes.append(f"{confirmed_count(data / 'agent.db')} confirmed in the station DB")
    cleanup.run()
    return result


@dataclass
class KillRun:
    """``run_ours_kills_during_drain``: the drain, the in-flight window, and per kill how many
    events head office held unacked at the kill and how many duplicates the next run sent."""

    drain: Drain
    window: int
    awaiting_ack: list[int] = field(default_factory=list)
    duplicates: list[int] = field(default_factory=list)


def run_ours_kills_during_drain(work: Path, n: int, kills: int, cleanup: Cleanup,
                                every_s: float = 1.5, ack_delay_s: float = 0.0) -> KillRun:
    """Head office up and acking (after ``ack_delay_s``); the agent is SIGKILLed ``kills`` times
    while it drains, and restarted each time. Duplicates per kill, against the in-flight window
    (max_inflight x batch_max_events events may be on the wire, not yet PUBACKed, at any moment)
    and against what head office held unacked at the kill (delivered, unconfirmed: resending
    those after a restart is what multiplied duplicates before)."""
    Broker = _broker_class()
    data = work / "data"
    result = Drain(f"ours, {kills} SIGKILLs during the drain", n, enqueue_s=queue_outbox(data, n))
    central = Broker(work / "central")
    cleanup.add("central", central.kill)
    central.start()
    if ack_delay_s > 0:
        ho = _slow_ack_head_office_class()(central.port, ack_delay_s=ack_delay_s)
    else:
        ho = _head_office_class()(central.port)
    cleanup.add("head office", ho.close)
    env = agent_env({})
    from agent.queue.config import MqttSettings

    defaults = MqttSettings()
    run = KillRun(result, defaults.max_inflight * defaults.batch_max_events)
    t0 = time.monotonic()
    dups_at_kill: list[int] = []
    for i in range(kills):
        agent, _ = start_agent(data, central.url, env, work / "agent.log")
        time.sleep(every_s)
        run.awaiting_ack.append(ho.awaiting_ack() if ack_delay_s > 0 else 0)
        agent.send_signal(signal.SIGKILL)
        agent.wait(10)
        dups_at_kill.append(ho.received - ho.unique())
    agent, _ = start_agent(data, central.url, env, work / "agent.log")
    cleanup.add("agent", lambda: _stop_proc(agent))
    done = wait_until(lambda: ho.unique() >= n, DRAIN_TIMEOUT_S)
    done = done and wait_until(lambda: confirmed_count(data / "agent.db") >= n, DRAIN_TIMEOUT_S, poll=0.05)
    result.total_s = time.monotonic() - t0
    result.unique, result.received, result.gaps = ho.unique(), ho.received, len(ho.gaps(STATION))
    # Duplicates sent by the run after each kill (the last one: until the drain was done).
    marks = [*dups_at_kill, result.received - result.unique]
    run.duplicates = [after - before for before, after in zip(marks, marks[1:])]
    if not done:
        result.notes.append(f"TIMEOUT: {ho.unique()} received, {confirmed_count(data / 'agent.db')} confirmed")
    cleanup.run()
    return run


# ---- the bridge ------------------------------------------------------------------------------

def publish_to_station(port: int, n: int, max_inflight: int = 20) -> float:
    """A station client publishing n QoS 1 events to its local broker; returns when all are PUBACKed.

    One thread drives paho (publishing from another thread than paho's loop stalled here at
    ~67,000 of 100,000 messages with paho 2.2).
    """
    import paho.mqtt.client as mqtt
    from paho.mqtt.enums import CallbackAPIVersion

    messages = [bridge_message(seq) for seq in range(1, n + 1)]  # built first: time the broker, not json
    acked = 0

    def on_publish(client: Any, userdata: Any, mid: int, reason: Any, properties: Any) -> None:
        nonlocal acked
        acked += 1

    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="station-pos", protocol=mqtt.MQTTv311)
    client.max_inflight_messages_set(max_inflight)  # ~20 is near best from Python (notes)
    client.max_queued_messages_set(0)
    client.on_publish = on_publish
    client.connect("127.0.0.1", port)
    try:
        t0 = time.perf_counter()
        topic = f"loyalty/v1/stations/{STATION}/events"
        for i, message in enumerate(messages):
            client.publish(topic, message, qos=1)
            if i % 20 == 0:
                client.loop(timeout=0)
        deadline = time.monotonic() + 120
        while acked < n:
            if time.monotonic() > deadline:
                raise RuntimeError(f"station broker acknowledged only {acked} of {n}")
            client.loop(timeout=0.01)
        return time.perf_counter() - t0
    finally:
        client.disconnect()


class BridgeWatch:
    """When the bridge is connected to central: Mosquitto's retained bridge notification
    (``$SYS/broker/connection/<clientid>/state`` = 1) on the central broker."""

    def __init__(self, port: int) -> None:
        import paho.mqtt.client as mqtt
        from paho.mqtt.enums import CallbackAPIVersion

        self.connected_at: float | None = None
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="bench-bridge-watch")
        self.client.on_connect = lambda c, *a: c.subscribe("$SYS/broker/connection/+/state", 1)
        self.client.on_message = self._on_message
        self.client.connect("127.0.0.1", port)
        self.client.loop_start()

    def _on_message(self, client: Any, userdata: Any, message: Any) -> None:
        if message.payload == b"1" and self.connected_at is None:
            self.connected_at = time.monotonic()

    def close(self) -> None:
        self.client.loop_stop()
        self.client.disconnect()


class SubConsumer:
    """Head office as a C client (``mosquitto_sub``, persistent session, QoS 1) writing each
    event message to a file: shows what the bridge itself can do when the consumer is not
    Python paho handling one message per event. Same counters as the fake head office."""

    CLIENT_ID = "fast-head-office"

    def __init__(self, port: int, out: Path) -> None:
        self.out = out
        self.first_at: float | None = None
        self.last_new_at: float | None = None
        self._lines = 0
        self._offset = 0
        self.proc = subprocess.Popen(
            [*_dies_with_us(), "mosquitto_sub", "-h", "127.0.0.1", "-p", str(port), "-i", self.CLIENT_ID, "-c", "-q", "1",
             "-t", "loyalty/v1/stations/+/events"],
            stdout=out.open("wb"), stderr=subprocess.DEVNULL)

    def lines(self) -> int:
        # Count complete messages as they land; read only what is new.
        with self.out.open("rb") as f:
            f.seek(self._offset)
            chunk = f.read()
        complete = chunk.rfind(b"\n") + 1
        self._offset += complete
        new = chunk[:complete].count(b"\n")
        if new:
            now = time.monotonic()
            self.first_at = self.first_at or now
            self.last_new_at = now
            self._lines += new
        return self._lines

    def unique(self) -> int:
        return self.lines()  # polled; exact dedupe in summary()

    def summary(self) -> tuple[int, int, int]:
        ids, seqs, received = set(), set(), 0
        for line in self.out.read_bytes().splitlines():
            batch = json.loads(line)
            if batch.get("station_id") != STATION:
                continue
            for event in batch["events"]:
                received += 1
                ids.add(event["id"])
                seqs.add(event["seq"])
        gaps = len(set(range(1, max(seqs) + 1)) - seqs) if seqs else 0
        return len(ids), received, gaps

    def close(self) -> None:
        _stop_proc(self.proc)


def prime_central_sub(central: Any, out: Path) -> None:
    sub = SubConsumer(central.port, out)
    try:
        deadline = time.monotonic() + 10
        while sub.lines() == 0:
            if time.monotonic() > deadline:
                raise RuntimeError("mosquitto_sub did not subscribe")
            subprocess.run(["mosquitto_pub", "-h", "127.0.0.1", "-p", str(central.port), "-q", "1",
                            "-t", "loyalty/v1/stations/probe/events", "-m", '{"station_id":"probe","events":[]}'],
                           check=True, timeout=10)
            time.sleep(0.1)
    finally:
        sub.close()
    central.stop()


def run_bridge(work: Path, n: int, name: str, cleanup: Cleanup, *, max_queued: int | None = 0,
               kill: bool = False, consumer: str = "head_office") -> Drain:
    Broker, HeadOffice = _broker_class(), _head_office_class()
    central = Broker(work / "central")
    cleanup.add("central", central.kill)
    central.start()
    if consumer == "mosquitto_sub":
        prime_central_sub(central, work / "probe.out")
    else:
        prime_central(central)
    station = Broker(work / "station", raw_config=station_broker_config(central.port, max_queued))
    cleanup.add("station broker", station.kill)
    station.start()
    result = Drain(name, n, enqueue_s=publish_to_station(station.port, n))
    if kill:
        station.kill()  # SIGKILL: what a power cut or an OOM kill does
        station.start()
    t0 = time.monotonic()
    central.start()
    if consumer == "mosquitto_sub":
        ho: Any = SubConsumer(central.port, work / "events.out")
    else:
        ho = HeadOffice(central.port, acking=False)  # the bridge cannot carry acks back to the station
    cleanup.add("head office", ho.close)
    watch = BridgeWatch(central.port)
    cleanup.add("bridge watch", watch.close)
    deadline = t0 + DRAIN_TIMEOUT_S
    # Until all arrived, or the bridge is connected and nothing new came for 3 s (a loss).
    while time.monotonic() < deadline and ho.unique() < n:
        quiet_since = max(watch.connected_at or float("inf"), ho.last_new_at or 0.0)
        if time.monotonic() - quiet_since > 3.0:
            break
        time.sleep(0.02)
    if watch.connected_at is None:
        result.notes.append("the bridge never reconnected")
    else:
        result.notes.append(f"bridge reconnected {watch.connected_at - t0:.2f} s after head office came back")
    if consumer == "mosquitto_sub":
        result.unique, result.received, result.gaps = ho.summary()
    else:
        result.unique, result.received, result.gaps = ho.unique(), ho.received, len(ho.gaps(STATION))
    end = ho.last_new_at if ho.last_new_at else time.monotonic()
    result.total_s = end - t0
    if ho.first_at is not None:
        result.first_s = ho.first_at - t0
        result.drain_s = end - ho.first_at
    cleanup.run()
    return result


# ---- report ----------------------------------------------------------------------------------

def _fmt_s(x: float | None) -> str:
    return "-" if x is None or math.isnan(x) else f"{x:.2f} s"


def _fmt_rate(x: float) -> str:
    return "-" if math.isnan(x) else f"{x:,.0f}/s"


def print_table(columns: list[Drain]) -> None:
    rows: list[tuple[str, Callable[[Drain], str]]] = [
        ("events queued", lambda d: f"{d.events:,}"),
        ("queue time (station side)", lambda d: _fmt_s(d.enqueue_s)),
        ("queue rate", lambda d: _fmt_rate(d.events / d.enqueue_s) if d.enqueue_s else "-"),
        ("HO back -> first event at HO", lambda d: _fmt_s(d.first_s)),
        ("HO back -> all done", lambda d: _fmt_s(d.total_s)),
        ("events/s (HO back -> done)", lambda d: _fmt_rate(d.rate)),
        ("events/s (first event -> done)", lambda d: _fmt_rate(d.drain_rate)),
        ("unique at head office", lambda d: f"{d.unique:,}"),
        ("lost", lambda d: f"{d.events - d.unique:,}"),
        ("duplicates (at least once)", lambda d: f"{d.received - d.unique:,}"),
        ("seq gaps", lambda d: f"{d.gaps:,}"),
    ]
    width = max(26, *(len(d.name) for d in columns))
    label = max(len(r[0]) for r in rows)
    print(" " * label + " | " + " | ".join(d.name.ljust(width) for d in columns))
    print("-" * label + "-+-" + "-+-".join("-" * width for _ in columns))
    for title, fn in rows:
        print(title.ljust(label) + " | " + " | ".join(fn(d).ljust(width) for d in columns))
    for d in columns:
        for note in d.notes:
            print(f"  note ({d.name}): {note}")


def print_kills(run: KillRun, kills: int, ack_delay_s: float) -> None:
    d = run.drain
    duplicates = d.received - d.unique
    per_kill = duplicates / max(1, kills)
    print(f"{kills} SIGKILLs during a drain of {d.events:,}, head office acking {ack_delay_s:g} s late: "
          f"{d.unique:,} unique at head office, lost {d.events - d.unique:,}, {duplicates:,} duplicates = "
          f"{per_kill:,.0f} per kill; in-flight window {run.window:,} events (ratio {per_kill / run.window:.2f}); "
          f"{_fmt_s(d.total_s)} {' '.join(d.notes)}", flush=True)
    for i, (held, dups) in enumerate(zip(run.awaiting_ack, run.duplicates), 1):
        print(f"  kill {i:2d}: head office held {held:6,} events unacked; the next run sent {dups:6,} duplicates",
              flush=True)
    held = sum(run.awaiting_ack) / max(1, len(run.awaiting_ack))
    print(f"  mean unacked at a kill {held:,.0f}, mean duplicates per kill {per_kill:,.0f}"
          f" ({_ratio(per_kill, held)} of the unacked, {_ratio(per_kill, run.window)} of the window)", flush=True)


def _ratio(a: float, b: float) -> str:
    """a/b for the report, "-" when undefined (nothing measured, a timed-out drain): never "nan"."""
    return "-" if not b or math.isnan(a) or math.isnan(b) else f"{a / b:.2f}x"


@contextmanager
def _sigterm_as_interrupt() -> Iterator[None]:
    # `timeout` or a CI runner sends SIGTERM: turn it into an exception so cleanup runs.
    def handler(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt("SIGTERM")

    previous = signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="bench sync", description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--kill-events", type=int, default=KILL_EVENTS)
    parser.add_argument("--configs", type=int, default=len(CONFIGS), help="how many agent configurations to try")
    parser.add_argument("--keep", action="store_true", help="keep the work directory (logs) for inspection")
    parser.add_argument("--kills", type=int, default=10, help="SIGKILLs of the agent during one drain")
    parser.add_argument("--only-kills", action="store_true", help="only the SIGKILLs-during-drain measurement")
    parser.add_argument("--kill-every", type=float, default=3.0, help="seconds each agent runs before its SIGKILL")
    parser.add_argument("--ack-delay", type=float, default=2.0,
                        help="head office acks each batch this many seconds after it arrived (SIGKILL phase)")
    args = parser.parse_args(argv)
    from tests.fakes.mosquitto import mosquitto_binary

    if mosquitto_binary() is None:
        print("mosquitto is not installed: skipped")
        return 0
    n = args.events
    root = Path(tempfile.mkdtemp(prefix="bench-sync-"))
    cleanup = Cleanup()
    status = 0
    started = time.monotonic()
    try:
        with _sigterm_as_interrupt():
            print(f"{n:,} events of {PAYLOAD_BYTES}-byte payload; work dir {root}", flush=True)
            kill_run = run_ours_kills_during_drain(root / "ours-kills", n, args.kills, cleanup,
                                                   every_s=args.kill_every, ack_delay_s=args.ack_delay)
            kill_drain = kill_run.drain
            print_kills(kill_run, args.kills, args.ack_delay)
            if kill_drain.unique < n:
                status = 1
            if args.only_kills:
                return status
            template = root / "template"
            enqueue_s = queue_outbox(template, n)
            print(f"ours: queued {n:,} in the outbox in {enqueue_s:.2f} s (append_event, 1000 per transaction)",
                  flush=True)
            ours: list[Drain] = []
            for i, (name, mqtt) in enumerate(list(CONFIGS.items())[: args.configs]):
                d = run_ours(root / f"ours-{i}", template, n, f"ours: {name}", mqtt, cleanup)
                d.enqueue_s = enqueue_s
                ours.append(d)
                print(f"  {d.name}: {_fmt_s(d.total_s)}, {_fmt_rate(d.rate)}", flush=True)
            bridge = run_bridge(root / "bridge", n, "bridge -> same fake head office", cleanup)
            print(f"  {bridge.name}: {_fmt_s(bridge.total_s)}, {_fmt_rate(bridge.rate)}", flush=True)
            bridge_fast: Drain | None = None
            if shutil.which("mosquitto_sub") and shutil.which("mosquitto_pub"):
                bridge_fast = run_bridge(root / "bridge-sub", n, "bridge -> mosquitto_sub (C)", cleanup,
                                         consumer="mosquitto_sub")
                print(f"  {bridge_fast.name}: {_fmt_s(bridge_fast.total_s)}, {_fmt_rate(bridge_fast.rate)}",
                      flush=True)
            k = args.kill_events
            bridge_default = run_bridge(root / "bridge-default", k, "bridge: default max_queued", cleanup,
                                        max_queued=None)
            ours_kill = run_ours_kill(root / "ours-kill", k, cleanup)
            bridge_kill = run_bridge(root / "bridge-kill", k, "bridge, SIGKILL before drain", cleanup, kill=True)

            print()
            print_table([ours[0], bridge] + ([bridge_fast] if bridge_fast else []))
            if len(ours) > 1:
                print()
                print_table(ours[1:])
            print()
            print_table([bridge_default, ours_kill, bridge_kill])
            print("'all done' = ours: every event received by head office AND confirmed in the station DB;"
                  " bridge: every event received by head office (it has no confirmation).")
            print("reconnect: agent reconnect_min_s 0.5 / reconnect_max_s 1 (its default max is 60 s); bridge"
                  " restart_timeout 1, yet Mosquitto 2.0.11 retried a refused bridge only every ~6-7 s here.")
            print()
            for base in [bridge] + ([bridge_fast] if bridge_fast else []):
                for d in ours:
                    print(f"ratio {d.name} / {base.name}: {_ratio(d.rate, base.rate)} HO back -> done,"
                          f" {_ratio(d.drain_rate, base.drain_rate)} first event -> done")
            headline = ours[0].rate / bridge.rate if bridge.rate > 0 else float("nan")
            print(f"target >= 2x (ours defaults / bridge to the same head office, HO back -> done): {_ratio(ours[0].rate, bridge.rate)} "
                  f"{'met' if headline >= 2 else 'NOT met'}")
            lost_ours = ours_kill.events - ours_kill.unique
            lost_bridge = bridge_kill.events - bridge_kill.unique
            print(f"lost after SIGKILL before drain: ours {lost_ours:,} of {k:,} (target 0), "
                  f"bridge {lost_bridge:,} of {k:,}")
            print(f"bridge with default max_queued_messages (1000): {bridge_default.unique:,} of {k:,} reached "
                  f"head office ({k - bridge_default.unique:,} dropped while central was down)")
            print(f"bench runtime {time.monotonic() - started:.0f} s")
            if lost_ours or any(d.unique < d.events for d in ours):
                status = 1
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        status = 130
    finally:
        cleanup.run()
        if args.keep:
            print(f"kept {root}")
        else:
            shutil.rmtree(root, ignore_errors=True)
    return status


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
