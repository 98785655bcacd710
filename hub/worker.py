"""One hub worker: consumes its share of the station messages, commits, acks, then PUBACKs.

Threads: paho's network loop puts each message on the inbox of one *lane*, chosen by its
station (``ingest.connections`` lanes); each lane's ingest loop (the caller's thread for the
first, a thread each for the others) takes a small group, commits it in one transaction on its
own PostgreSQL connection, publishes the acks, and only then PUBACKs the messages to the
broker; the leader thread (hub.leader) runs chain-wide duties in whichever worker holds the
advisory lock.

Why lanes: one loop alternates between its Python (parsing, formatting rows) and its
PostgreSQL backend (storing them, committing), so a worker used about one core where it could
use two; with two lanes one parses while the other's transaction runs on the server (psycopg
waits with the GIL released). A station always goes to the same lane: the lanes' groups never
wait for each other's station locks, and a station's messages keep their order. Any number of workers may run on any number of
hosts; they share nothing but PostgreSQL and the broker.
"""
from __future__ import annotations

import json
import logging
import queue
import threading
import time
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

import paho.mqtt.client as mqtt
import psycopg
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.reasoncodes import ReasonCode

from hub import station_meta
from hub.alerts import raise_alert
from hub.config import Settings
from hub.ingest import Outcome, ingest
from hub.leader import Leader
from hub.mqtt import (CONSUMERS, DIRECT_META, EVENTS, SHARED_META, broker_address, connect_properties, make_client,
                      presence, topic)
from hub.schemas import EventSchemas

log = logging.getLogger(__name__)
# MQTT 5 reason code 4, "Disconnect with Will Message": the broker publishes the Last Will
# ("offline" on loyalty/v1/hub/consumers) once this session is gone, as after a crash. An
# explicit "offline" published before DISCONNECT would leave a moment in which the broker still
# routes events to this worker after the stations have resent.
_WITH_WILL = ReasonCode(PacketTypes.DISCONNECT, identifier=4)
T = TypeVar("T")
ACK_CHUNK = 1000  # ids per ack message ("keep a message under a few thousand ids")


@dataclass
class Lane:
    """One ingest loop's share of the worker: its inbox and its database connection."""

    inbox: queue.Queue["Inbound"] = field(default_factory=queue.Queue)
    db: psycopg.Connection | None = None


@dataclass(frozen=True)
class Inbound:
    generation: int  # the connection it came on: a PUBACK is only valid on that connection
    mid: int
    qos: int
    topic: str
    payload: bytes


def whole_numbers(raw: bytes) -> bytes | None:
    """The message with every number written with a fraction or exponent but whole in value
    (``1.0``, ``2e3``) written as an integer, or ``None`` when it has none (or is not JSON).
    JSON Schema counts ``1.0`` as an integer, so such an event passes its schema and then fails
    a PostgreSQL integer column: that message would be quarantined and never acknowledged, and
    the station would send it again for ever. The same numbers, written the way the columns read
    them; only tried on a message the database refused."""
    rewritten = False

    def whole(text: str) -> int | float:
        nonlocal rewritten
        number = float(text)
        if not number.is_integer():
            return number
        rewritten = True
        return int(number)

    try:
        changed = json.loads(raw, parse_float=whole)
        return json.dumps(changed, ensure_ascii=False, separators=(",", ":")).encode() if rewritten else None
    except (ValueError, RecursionError):  # not JSON, or a lone surrogate UTF-8 cannot carry
        return None


class Worker:
    def __init__(self, settings: Settings, name: str) -> None:
        assert settings.mqtt.url and settings.database.url
        self.settings = settings
        self.name = name
        self.schemas = EventSchemas(settings.ingest.schemas_dir)
        self.lanes = [Lane() for _ in range(settings.ingest.connections)]
        self.stopping = threading.Event()
        self.failure: BaseException | None = None
        self.generation = 0
        self.client_id = f"{settings.mqtt.client_id_prefix}-{name}"
        self.client = make_client(settings.mqtt, self.client_id, manual_ack=True)
        self.client.will_set(CONSUMERS, presence(self.client_id, "offline"), qos=1)
        self.client.on_connect = self._on_connect
        self.client.on_message = self._on_message
        self.client.on_subscribe = self._on_subscribe
        self.leader = Leader(settings, name, self.stopping)

    # ---- MQTT callbacks (paho's thread) -----------------------------------------------------

    def _on_connect(self, client: mqtt.Client, userdata: Any, flags: Any, reason: Any, properties: Any) -> None:
        if reason.is_failure:
            log.warning("el broker rechazó la conexión: %s [broker_refused]", reason)
            return
        self.generation += 1
        group = self.settings.mqtt.share_group
        client.subscribe([(f"$share/{group}/{EVENTS}", 1)]
                         + [(f"$share/{group}-meta/{t}", 1) for t in SHARED_META] + [(t, 1) for t in DIRECT_META])
        log.info("conectado al broker (conexión %d) [broker_connected]", self.generation)

    def _on_subscribe(self, client: mqtt.Client, userdata: Any, mid: int, reasons: Any, properties: Any) -> None:
        refused = [r for r in reasons if r.is_failure]
        if refused:
            log.error("el broker rechazó %d suscripción(es): %s [subscription_refused]", len(refused), refused[0])
        else:
            client.publish(CONSUMERS, presence(self.client_id, "online"), qos=1)
            log.info("suscrito (conexión %d) [subscribed]", self.generation)  # tests and benchmarks wait for this line

    def _on_message(self, client: mqtt.Client, userdata: Any, message: mqtt.MQTTMessage) -> None:
        self.lane_of(message.topic).inbox.put(
            Inbound(self.generation, message.mid, message.qos, message.topic, bytes(message.payload)))

    def lane_of(self, topic_name: str) -> Lane:
        """The lane of the topic's station (``loyalty/v1/stations/{id}/...``); crc32, not hash():
        stable, and no per-process salt."""
        parts = topic_name.split("/", 4)
        station = parts[3] if len(parts) > 3 else ""
        return self.lanes[zlib.crc32(station.encode()) % len(self.lanes)]

    # ---- main loop ----------------------------------------------------------------------------

    def run(self) -> None:
        host, port = broker_address(self.settings.mqtt.url or "")
        self.client.connect_async(host, port, keepalive=self.settings.mqtt.keepalive_s, clean_start=True,
                                  properties=connect_properties(self.settings.mqtt))
        self.client.loop_start()
        self.leader.start()
        others = [threading.Thread(target=self._loop, args=(lane,), name=f"lane-{i}", daemon=True)
                  for i, lane in enumerate(self.lanes[1:], 1)]
        for thread in others:
            thread.start()
        try:
            self._loop(self.lanes[0])
        finally:
            self.stopping.set()
            # No new events for this worker while its lanes finish their groups; what it holds
            # unread is dropped with its clean session, and its Last Will tells the stations.
            self.client.unsubscribe(f"$share/{self.settings.mqtt.share_group}/{EVENTS}")
            for thread in others:
                thread.join(30)
            self.client.disconnect(reasoncode=_WITH_WILL)
            self.client.loop_stop()
            self.leader.join(5)
        if self.failure is not None:  # another lane's: the process exits with an error, and is started again
            raise self.failure

    def _loop(self, lane: Lane) -> None:
        try:
            while not self.stopping.is_set():
                group = self._next_group(lane)
                if group:
                    self._handle(group, lane)
        except BaseException as exc:
            self.failure = self.failure or exc
            self.stopping.set()  # one lane down stops the worker: the supervisor starts it again
            raise
        finally:
            if lane.db is not None:
                lane.db.close()

    def stop(self) -> None:
        self.stopping.set()

    def _next_group(self, lane: Lane) -> list[Inbound]:
        try:
            first = lane.inbox.get(timeout=0.5)
        except queue.Empty:
            return []
        group, size = [first], len(first.payload)
        deadline = time.monotonic() + self.settings.ingest.group_wait_ms / 1000
        while len(group) < self._group_limit(lane) and size < self.settings.ingest.group_max_bytes:
            try:
                group.append(lane.inbox.get(timeout=max(0.0, deadline - time.monotonic())))
            except queue.Empty:
                break
            size += len(group[-1].payload)
        return group

    def _group_limit(self, lane: Lane) -> int:
        """Adaptive: a worker that is behind takes what is waiting, up to ``group_backlog_messages``,
        in one transaction: fewer commits, PUBACK batches and statements per event exactly when
        they matter, while a worker keeping up commits small groups for a short ack latency.
        ``group_max_bytes`` bounds it too: a backlog's 200-event batches would otherwise make a
        transaction of a whole burst (100,000 events), committed and acknowledged only at its
        end, while the lane's other half (Python or PostgreSQL) idles at each end of it."""
        ingest = self.settings.ingest
        return max(ingest.group_max_messages, min(lane.inbox.qsize(), ingest.group_backlog_messages))

    def _handle(self, group: list[Inbound], lane: Lane) -> None:
        events = [m for m in group if m.topic.endswith("/events")]
        if events:
            outcome = self._ingest(events, lane)
            self._publish_acks(outcome)
        meta = [(m.topic, m.payload) for m in group if not m.topic.endswith("/events")]
        if meta:
            self._station_meta(meta, lane)
        for message in group:
            # A PUBACK on a later connection would confirm another message with the same id.
            if message.qos > 0 and message.generation == self.generation:
                self.client.ack(message.mid, message.qos)

    def _station_meta(self, meta: list[tuple[str, bytes]], lane: Lane) -> None:
        try:
            self._with_db(lane, lambda conn: station_meta.handle(conn, meta))
        except psycopg.Error:
            if len(meta) > 1:
                for one in meta:  # find the one the database refuses; record the others
                    self._station_meta([one], lane)
            else:
                log.exception("un mensaje de estación en %s no se pudo guardar; se omite [station_message_failed]", meta[0][0])

    def _ingest(self, events: list[Inbound], lane: Lane | None = None) -> Outcome:
        lane = lane or self.lanes[0]
        pairs = [(m.topic, m.payload) for m in events]
        try:
            return self._with_db(lane, lambda conn: ingest(conn, pairs, self.schemas))
        except Exception as exc:  # noqa: BLE001 - a bug or a refused value must not stop the worker
            self._drop_failed_transaction(lane)
            if len(pairs) == 1:
                whole = whole_numbers(pairs[0][1]) if isinstance(exc, psycopg.DataError) else None
                if whole is not None:  # "seq": 5.0 is the integer 5 to JSON Schema, not to PostgreSQL
                    try:
                        return self._with_db(lane, lambda conn: ingest(conn, [(pairs[0][0], whole)], self.schemas))
                    except Exception as again:  # noqa: BLE001 - as above: quarantined, as it came
                        self._drop_failed_transaction(lane)
                        exc = again
                return self._with_db(lane, lambda conn: self._quarantine_unprocessable(conn, pairs[0], exc))
            log.warning("falló un grupo de %d mensajes (%s); se reintenta uno por uno [group_split]", len(pairs), type(exc).__name__)
            total = Outcome()
            for message in events:
                one = self._ingest([message], lane)
                for station, ids in one.acks.items():
                    total.acks[station].extend(ids)
            return total

    @staticmethod
    def _drop_failed_transaction(lane: Lane) -> None:
        if lane.db is not None and lane.db.info.transaction_status != psycopg.pq.TransactionStatus.IDLE:
            lane.db.close()
            lane.db = None

    def _quarantine_unprocessable(self, conn: psycopg.Connection, pair: tuple[str, bytes], exc: BaseException) -> Outcome:
        """A message the database refuses (a projection bug, a value out of range) is kept whole and
        alerted instead of blocking the worker; its events are not acknowledged: the station keeps them."""
        station = pair[0].split("/")[3] if pair[0].count("/") == 4 else None
        # The error text may quote a value from the payload: it goes to the quarantine row, not the log.
        log.error("un mensaje de la estación %s no se pudo procesar (%s); en cuarentena [quarantined]", station, type(exc).__name__)
        with conn.transaction(), conn.cursor() as cur:
            cur.execute("INSERT INTO quarantine(station_id, reason, detail, raw) VALUES (%s, 'processing_error', %s, %s)",
                        (station, f"{type(exc).__name__}: {str(exc)[:500]}", pair[1].decode("utf-8", errors="replace")))
            raise_alert(cur, station, "hub", "message_unprocessable", {"error": type(exc).__name__})
        return Outcome()

    def _publish_acks(self, outcome: Outcome) -> None:
        for station, ids in outcome.acks.items():
            for start in range(0, len(ids), ACK_CHUNK):
                body = json.dumps({"event_ids": ids[start:start + ACK_CHUNK]})
                self.client.publish(topic(station, "acks"), body, qos=1)

    # ---- database -------------------------------------------------------------------------------

    def _with_db(self, lane: Lane, work: Callable[[psycopg.Connection], T]) -> T:
        """Run ``work`` on the lane's connection until the database answers: a restart or failover
        only delays the group (its messages stay un-PUBACKed meanwhile). Other database errors are raised."""
        delay = 0.2
        while True:
            try:
                if lane.db is None or lane.db.closed:
                    lane.db = psycopg.connect(self.settings.database.url or "", autocommit=True,
                                              application_name="loyalty-hub ingest",
                                              connect_timeout=self.settings.database.connect_timeout_s)
                return work(lane.db)
            except (psycopg.OperationalError, psycopg.InterfaceError) as exc:
                if isinstance(exc, (psycopg.errors.DeadlockDetected, psycopg.errors.SerializationFailure)):
                    continue
                log.warning("base de datos no disponible (%s); se reintenta en %.1f s [database_unavailable]", type(exc).__name__, delay)
                if lane.db is not None:
                    lane.db.close()
                lane.db = None
                if self.stopping.wait(delay):
                    raise
                delay = min(delay * 2, 5.0)
