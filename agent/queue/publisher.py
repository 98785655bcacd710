"""Store-and-forward publisher: outbox rows -> MQTT 5 (QoS 1) -> head office confirmation.

One thread owns the paho client (paho is not meant to be driven from several threads) and
does everything in a loop: connect with backoff and jitter, run paho's network I/O, publish
batches while fewer than ``max_inflight`` messages await PUBACK, and group-commit the state
changes (PUBACK -> delivered, head-office ack -> confirmed) every few milliseconds, so a
drain of 100,000 events costs a few dozen fsyncs instead of 200,000.

Nothing here decides that an event is safe except head office's ack: rows are only ever
marked confirmed by an ack naming their id, deleted only after that plus the retention
period, and every unconfirmed row is sent again after a restart and after ``ack_timeout_s``.
"""
from __future__ import annotations

import json
import logging
import random
import ssl
import threading
import time
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any
from urllib.parse import urlparse

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from agent import __version__
from agent.clock import iso, now_iso, utcnow
from agent.queue.config import MqttSettings
from agent.store import outbox
from agent.queue.downlink import Downlink
from agent.queue.topics import StationTopics
from agent.store.db import Database

log = logging.getLogger(__name__)

_FLUSH_EVERY_S = 0.02
_STATUS_EVERY_S = 30.0
_PRUNE_EVERY_S = 600.0
_SESSION_EXPIRY_S = 7 * 86400
_MAX_RESEND_BACKOFF_S = 3600.0
_DUE_NOW = float("-inf")  # a "sent at" that makes a row due for sending whatever the timeout


@dataclass
class _Sent:
    event_id: str
    at: float
    attempts: int = 1


@dataclass
class BrokerState:
    state: str = "disabled"  # disabled | connecting | connected | disconnected
    since: str | None = None
    last_error: str | None = None
    reconnects: int = 0


@dataclass
class _Pending:
    delivered: list[int] = field(default_factory=list)  # seqs PUBACKed
    confirmed: list[int] = field(default_factory=list)  # seqs acked by head office (sent in this run)
    confirmed_ids: list[str] = field(default_factory=list)  # acked ids we did not send in this run


def parse_url(url: str) -> tuple[str, int, bool]:
    """``mqtt://host:1883`` or ``mqtts://host:8883`` -> (host, port, tls).

    >>> parse_url("mqtts://ho.example.com")
    ('ho.example.com', 8883, True)
    """
    parsed = urlparse(url)
    if parsed.scheme not in ("mqtt", "mqtts") or not parsed.hostname:
        raise ValueError(f"MQTT URL must be mqtt://host:port or mqtts://host:port, not {url!r}")
    tls = parsed.scheme == "mqtts"
    return parsed.hostname, parsed.port or (8883 if tls else 1883), tls


class SyncPublisher:
    def __init__(self, db: Database, settings: MqttSettings, station_id: str, downlink: Downlink) -> None:
        if not settings.url:
            raise ValueError("no MQTT URL configured")
        self._db = db
        self._settings = settings
        self._host, self._port, self._tls = parse_url(settings.url)
        self.topics = StationTopics(station_id)
        self.station_id = station_id
        self._downlink = downlink
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._lock = threading.Lock()  # guards broker state and the request flags read by the API
        self.broker = BrokerState(state="connecting")
        self._force = False
        self._thread: threading.Thread | None = None
        # Sync-thread-only state.
        self._client: mqtt.Client | None = None
        self._connected = False
        self._cursor = 0  # highest seq handed to the broker since start (forward pass)
        self._sent: dict[int, _Sent] = {}  # unconfirmed rows sent since start
        self._by_id: dict[str, int] = {}
        self._inflight: dict[int, list[int]] = {}  # mid -> seqs awaiting PUBACK
        self._marks = _Pending()
        self._last_flush = 0.0
        self._next_status = 0.0
        self._next_prune = 0.0
        self._next_connect = 0.0
        self._connect_started = 0.0
        self._connected_at = 0.0
        self._next_due_scan = float("inf")
        self._backoff = settings.reconnect_min_s
        self._alerts: list[dict[str, Any]] = []

    # ---- public (any thread) -------------------------------------------------------------

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="sync-publisher", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout)

    def request_sync(self) -> None:
        """"Sync now": reconnect without waiting for the backoff and resend everything unconfirmed."""
        with self._lock:
            self._force = True
        self._wake.set()

    def alert(self, kind: str, detail: dict[str, Any]) -> None:
        with self._lock:
            self._alerts.append({"type": kind, "at": now_iso(), "station_id": self.station_id, **detail})
        self._wake.set()

    def broker_state(self) -> dict[str, Any]:
        with self._lock:
            return {"state": self.broker.state, "since": self.broker.since, "last_error": self.broker.last_error,
                    "url": f"{'mqtts' if self._tls else 'mqtt'}://{self._host}:{self._port}",
                    "reconnects": self.broker.reconnects}

    def health(self) -> dict[str, Any]:
        state = self.broker_state()
        return {"state": "ok" if state["state"] == "connected" else "degraded", "broker": state["state"]}

    # ---- the sync thread -----------------------------------------------------------------

    def _run(self) -> None:
        try:
            while not self._stop.is_set():
                try:
                    self._step()
                except Exception:  # noqa: BLE001 - keep syncing whatever one step did
                    log.exception("sync step failed")
                    self._drop_connection("internal error")
                    time.sleep(1.0)
        finally:
            self._shutdown()

    def _step(self) -> None:
        now = time.monotonic()
        with self._lock:
            force, self._force = self._force, False
        if force:
            self._next_connect = 0.0
            self._backoff = self._settings.reconnect_min_s
            for sent in self._sent.values():
                sent.at = _DUE_NOW  # due now
            self._next_due_scan = 0.0
        if self._client is None or not self._connected:
            if self._client is None and now >= self._next_connect:
                self._connect()
            if self._client is None:
                self._wake.wait(min(0.5, max(0.01, self._next_connect - now)))
                self._wake.clear()
                return
        client = self._client
        assert client is not None
        # Short waits while draining; when idle, wake 10 times a second (a Pi's CPU is not free).
        busy = bool(self._inflight or self._marks.delivered or self._marks.confirmed or self._marks.confirmed_ids)
        rc = client.loop(timeout=0.01 if busy else 0.1)
        if self._client is None:
            return  # paho reported the disconnect; a reconnect is scheduled
        if not self._connected:
            if rc != mqtt.MQTT_ERR_SUCCESS:
                self._drop_connection(mqtt.error_string(rc))
            elif now - self._connect_started > 15.0:
                self._drop_connection("no CONNACK from the broker")
            return
        if now - self._connected_at > 60.0:
            self._backoff = self._settings.reconnect_min_s  # a connection that held a minute is healthy
        self._pump(client)
        self._publish_alerts(client)
        if now - self._last_flush >= _FLUSH_EVERY_S:
            self._flush()
        if now >= self._next_status:
            self._next_status = now + _STATUS_EVERY_S
            self._publish_status(client)
        if now >= self._next_prune:
            self._next_prune = now + _PRUNE_EVERY_S
            self._prune()

    def _connect(self) -> None:
        s = self._settings
        client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"loyalty-agent-{self.station_id}",
                             protocol=mqtt.MQTTv5)
        client.max_inflight_messages_set(s.max_inflight)
        client.max_queued_messages_set(0)
        client.connect_timeout = 10.0
        if s.username:
            client.username_pw_set(s.username, s.password)
        if self._tls:
            client.tls_set(ca_certs=str(s.ca_file) if s.ca_file else None,
                           certfile=str(s.cert_file) if s.cert_file else None,
                           keyfile=str(s.key_file) if s.key_file else None,
                           cert_reqs=ssl.CERT_REQUIRED, tls_version=ssl.PROTOCOL_TLS_CLIENT)
        client.will_set(self.topics.availability, json.dumps({"state": "offline", "station_id": self.station_id}),
                        qos=1, retain=True)
        client.on_connect = self._on_connect
        client.on_disconnect = self._on_disconnect
        client.on_publish = self._on_publish
        client.on_message = self._on_message
        props = Properties(PacketTypes.CONNECT)
        props.SessionExpiryInterval = _SESSION_EXPIRY_S  # acks queue at the broker while we are away
        self._set_broker("connecting")
        self._connect_started = time.monotonic()
        try:
            client.connect(self._host, self._port, keepalive=s.keepalive_s, clean_start=False, properties=props)
        except (OSError, ssl.SSLError, ValueError) as exc:
            self._schedule_reconnect(f"{type(exc).__name__}: {exc}")
            return
        self._client = client

    def _schedule_reconnect(self, error: str) -> None:
        # Exponential backoff with jitter so a chain's stations do not reconnect in lockstep
        # after a head-office outage.
        delay = self._backoff * random.uniform(0.5, 1.0)
        self._backoff = min(self._settings.reconnect_max_s, self._backoff * 2)
        self._next_connect = time.monotonic() + delay
        with self._lock:
            self.broker.state = "disconnected"
            self.broker.last_error = error
            self.broker.since = now_iso()
        log.warning("head office broker unreachable (%s); retrying in %.1f s", error, delay)

    def _drop_connection(self, error: str) -> None:
        client, self._client = self._client, None
        self._connected = False
        self._requeue_inflight()
        if client is not None:
            try:
                client.disconnect()
                client.loop(timeout=0.01)
            except Exception:  # noqa: BLE001
                pass
        self._flush()
        self._schedule_reconnect(error)

    def _requeue_inflight(self) -> None:
        # Messages without PUBACK may or may not have arrived: send them again (head office dedupes).
        for seqs in self._inflight.values():
            for seq in seqs:
                sent = self._sent.get(seq)
                if sent is not None:
                    sent.at = _DUE_NOW
        self._inflight.clear()
        self._next_due_scan = 0.0

    def _set_broker(self, state: str, error: str | None = None) -> None:
        with self._lock:
            if state == "connected" and self.broker.state != "connected" and self.broker.since is not None:
                self.broker.reconnects += 1
            self.broker.state = state
            self.broker.since = now_iso()
            if error is not None:
                self.broker.last_error = error

    # ---- paho callbacks (run inside client.loop on the sync thread) ---------------------------

    def _on_connect(self, client: mqtt.Client, userdata: Any, flags: Any, reason: Any, properties: Any) -> None:
        if reason.is_failure:
            log.error("head office broker refused the connection: %s", reason)
            self._connected = False
            self._set_broker("disconnected", str(reason))
            return
        self._connected = True
        self._connected_at = time.monotonic()
        # The backoff is reset by the first accepted batch, not by CONNACK: a broker that
        # accepts the connection and then drops it (e.g. an ACL refusal) must not be hammered.
        self._set_broker("connected")
        client.subscribe([(self.topics.acks, 1), (self.topics.replay, 1), (self.topics.config("+"), 1)])
        client.publish(self.topics.availability,
                       json.dumps({"state": "online", "station_id": self.station_id, "version": __version__,
                                   "at": now_iso()}), qos=1, retain=True)
        self._next_status = 0.0
        log.info("connected to head office broker %s:%s", self._host, self._port)

    def _on_disconnect(self, client: mqtt.Client, userdata: Any, flags: Any, reason: Any, properties: Any) -> None:
        was = self._connected
        self._connected = False
        if was:
            log.warning("disconnected from head office broker: %s", reason)
        self._client = None
        self._requeue_inflight()
        self._flush()  # acks already received are made durable now, not at the next connection
        self._schedule_reconnect(str(reason))

    def _on_publish(self, client: mqtt.Client, userdata: Any, mid: int, reason: Any, properties: Any) -> None:
        seqs = self._inflight.pop(mid, None)
        if seqs is None:
            return
        if getattr(reason, "is_failure", False):
            # Not delivered. Resend on the normal timeout/backoff (not at once: a broker that
            # refuses by ACL or quota would refuse again) and tell head office.
            log.error("head office broker refused an event batch: %s", reason)
            self.alert("publish_refused", {"reason": str(reason)})
            return
        self._marks.delivered.extend(seqs)
        self._backoff = self._settings.reconnect_min_s  # the link really works: reset the backoff

    def _on_message(self, client: mqtt.Client, userdata: Any, message: mqtt.MQTTMessage) -> None:
        try:
            if message.topic == self.topics.acks:
                self._on_ack(message.payload)
            elif message.topic == self.topics.replay:
                self._on_replay(client, message.payload)
            else:
                kind = self.topics.config_kind(message.topic)
                if kind is not None:
                    result = self._downlink.handle(kind, message.payload)
                    if result.status == "rejected":
                        client.publish(self.topics.config_errors, json.dumps(result.report()), qos=1)
        except Exception:  # noqa: BLE001 - one bad message must not stop the sync loop
            log.exception("could not handle a message on %s", message.topic)

    def _on_ack(self, payload: bytes) -> None:
        try:
            body = json.loads(payload)
            ids = body["event_ids"]
            if not isinstance(ids, list) or not all(isinstance(i, str) and len(i) <= 64 for i in ids):
                raise ValueError("event_ids must be a list of ids")
        except (ValueError, KeyError, TypeError) as exc:
            log.warning("ignored a malformed ack: %s", exc)
            return
        for event_id in ids:
            seq = self._by_id.pop(event_id, None)
            if seq is not None:
                self._sent.pop(seq, None)
                self._marks.confirmed.append(seq)  # confirm by primary key: the cheap path
            else:
                # Sent by a previous run (its ack waited at the broker): still confirmed, by id.
                self._marks.confirmed_ids.append(event_id)

    def _on_replay(self, client: mqtt.Client, payload: bytes) -> None:
        body: Any = None
        try:
            body = json.loads(payload)
            first, last = int(body["from_seq"]), int(body["to_seq"])
            if first < 1 or last < first:
                raise ValueError("need 1 <= from_seq <= to_seq")
        except (ValueError, KeyError, TypeError) as exc:
            request_id = body.get("request_id") if isinstance(body, dict) else None
            client.publish(self.topics.replay_result, json.dumps({"status": "rejected", "message": str(exc),
                                                                  "request_id": request_id}), qos=1)
            return
        self._flush()
        result = self._db.write(lambda c: outbox.reopen_range(c, first, last))
        for seq in range(first, min(last, self._cursor) + 1):
            sent = self._sent.get(seq)
            if sent is not None:
                sent.at = _DUE_NOW  # still unconfirmed: send it again now too
                self._next_due_scan = 0.0
        self._cursor = min(self._cursor, first - 1)
        oldest = self._db.read(lambda c: c.execute("SELECT min(seq) FROM outbox").fetchone()[0]) or 0
        status = "ok" if result["stored"] == result["expected"] else "partial"
        client.publish(self.topics.replay_result, json.dumps({
            "request_id": body.get("request_id"), "status": status, "from_seq": first, "to_seq": last,
            "reopened": result["reopened"], "missing": result["expected"] - result["stored"],
            "oldest_available_seq": oldest}), qos=1)
        log.info("head office asked for a replay of seq %s-%s: %s reopened, %s no longer stored", first, last,
                 result["reopened"], result["expected"] - result["stored"])

    # ---- sending -------------------------------------------------------------------------

    def _pump(self, client: mqtt.Client) -> None:
        s = self._settings
        while len(self._inflight) < s.max_inflight:
            rows = self._next_rows()
            if not rows:
                return
            payload = self._encode(rows)
            info = client.publish(self.topics.events, payload, qos=1)
            if info.rc != mqtt.MQTT_ERR_SUCCESS:
                return  # not connected any more; the rows stay due
            now = time.monotonic()
            seqs = []
            for row in rows:
                seq = row["seq"]
                seqs.append(seq)
                sent = self._sent.get(seq)
                if sent is None:
                    sent = self._sent[seq] = _Sent(row["id"], now)
                    self._by_id[row["id"]] = seq
                else:
                    sent.at, sent.attempts = now, sent.attempts + 1
                self._next_due_scan = min(self._next_due_scan, self._due_at(sent))
                self._cursor = max(self._cursor, seq)
            self._inflight[info.mid] = seqs

    def _next_rows(self) -> list[Any]:
        s = self._settings
        now = time.monotonic()
        due: list[int] = []
        if now >= self._next_due_scan:
            # Scanning every sent-but-unconfirmed row is O(backlog): do it only when something
            # can be due, and remember when the next one will be.
            inflight = {seq for seqs in self._inflight.values() for seq in seqs} if self._inflight else set()
            soonest = float("inf")
            for seq, sent in self._sent.items():
                due_at = self._due_at(sent)
                if due_at <= now and seq not in inflight:
                    due.append(seq)
                elif due_at < soonest:
                    soonest = max(due_at, now + 0.05)  # in flight and overdue: look again shortly
            self._next_due_scan = now if due else soonest
        if due:
            due.sort()
            rows = self._db.read(lambda c: outbox.events_by_seq(c, due[: s.batch_max_events]))
            for seq in set(due[: s.batch_max_events]) - {r["seq"] for r in rows}:
                self._forget(seq)  # confirmed meanwhile
            if rows:
                return self._fit(rows)
        after = self._cursor
        while True:
            rows = self._db.read(lambda c: outbox.unconfirmed_after(c, after, s.batch_max_events))
            if not rows:
                return []
            fresh = [r for r in rows if r["seq"] not in self._sent]
            if fresh:
                return self._fit(fresh)
            after = rows[-1]["seq"]  # a window of rows already in flight (e.g. after a replay): look past it

    def _due_at(self, sent: _Sent) -> float:
        """When an unconfirmed row is sent again: the ack timeout, doubling per attempt."""
        return sent.at + min(_MAX_RESEND_BACKOFF_S, self._settings.ack_timeout_s * 2 ** (sent.attempts - 1))

    def _fit(self, rows: list[Any]) -> list[Any]:
        budget = self._settings.batch_max_bytes - 64
        out = []
        for row in rows:
            cost = row["size"] + 200
            if out and budget - cost < 0:
                break
            budget -= cost
            out.append(row)
        return out

    def _forget(self, seq: int) -> None:
        sent = self._sent.pop(seq, None)
        if sent is not None:
            self._by_id.pop(sent.event_id, None)

    def _encode(self, rows: list[Any]) -> bytes:
        # Payloads are stored as JSON text: splice them in rather than parse and re-serialize.
        parts = [
            '{"id":"%s","seq":%d,"type":%s,"schema_version":%d,"created_at":"%s","clock_synced":%s,"payload":%s}'
            % (r["id"], r["seq"], json.dumps(r["type"]), r["schema_version"], r["created_at"],
               "true" if r["clock_synced"] else "false", r["payload"])
            for r in rows
        ]
        return ('{"station_id":%s,"events":[%s]}' % (json.dumps(self.station_id), ",".join(parts))).encode()

    def _flush(self) -> None:
        self._last_flush = time.monotonic()
        marks, self._marks = self._marks, _Pending()
        if not marks.delivered and not marks.confirmed and not marks.confirmed_ids:
            return
        at = now_iso()
        confirmed = set(marks.confirmed)
        # A row acked in the same flush skips the "delivered" step: one UPDATE per row, not two.
        delivered = [seq for seq in marks.delivered if seq not in confirmed]

        def write(conn: Any) -> int:
            if delivered:
                outbox.mark_delivered(conn, delivered, at)
            done = outbox.mark_confirmed_seqs(conn, marks.confirmed, at) if marks.confirmed else 0
            return done + (outbox.mark_confirmed(conn, marks.confirmed_ids, at) if marks.confirmed_ids else 0)

        self._db.write(write)

    def _publish_alerts(self, client: mqtt.Client) -> None:
        with self._lock:
            alerts, self._alerts = self._alerts, []
        for alert in alerts:
            client.publish(self.topics.alerts, json.dumps(alert), qos=1)

    def _publish_status(self, client: mqtt.Client) -> None:
        status = self._db.read(outbox.stats)
        status.update(station_id=self.station_id, at=now_iso(), version=__version__,
                      downlink=self._downlink.state())
        client.publish(self.topics.status, json.dumps(status), qos=1, retain=True)

    def _prune(self) -> None:
        cutoff = iso(utcnow() - timedelta(days=self._settings.retention_days))
        while True:
            removed = self._db.write(lambda c: outbox.prune_confirmed(c, cutoff))
            if removed < 5000 or self._stop.is_set():
                break

    def _shutdown(self) -> None:
        client = self._client
        try:
            if client is not None and self._connected:
                info = client.publish(self.topics.availability,
                                      json.dumps({"state": "offline", "station_id": self.station_id, "at": now_iso()}),
                                      qos=1, retain=True)
                deadline = time.monotonic() + 2.0
                while not info.is_published() and time.monotonic() < deadline:
                    client.loop(timeout=0.05)
                client.disconnect()
        except Exception:  # noqa: BLE001 - best effort on the way out
            pass
        self._flush()
