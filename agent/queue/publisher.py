"""Store-and-forward publisher: outbox rows -> MQTT 5 (QoS 1) -> head office confirmation.

One thread owns the paho client (paho is not meant to be driven from several threads) and
does everything in a loop: connect with backoff and jitter, run paho's network I/O, publish
batches while fewer than ``max_inflight`` messages await PUBACK, and group-commit the state
changes (PUBACK -> delivered, head-office ack -> confirmed) every few milliseconds, so a
drain of 100,000 events costs a few dozen fsyncs instead of 200,000.

Nothing here decides that an event is safe except head office's ack: rows are only ever
marked confirmed by an ack naming their id, deleted only after that plus the retention
period, and every unconfirmed row (but one set aside as too large for the broker) is sent again
after a restart and after ``ack_timeout_s``.

Long on purpose: the loop and the paho callbacks share the connection's state (in-flight
messages, pending progress, the link) on one thread; the pure rules are in ``scheduler``.
"""
from __future__ import annotations

import json
import logging
import random
import sqlite3
import ssl
import threading
import time
from collections.abc import Callable
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from agent import __version__
from agent.clock import now_iso
from agent.drivers.transitions import LinkState
from agent.queue.broker_status import BrokerStatus
from agent.queue.config import MqttSettings
from agent.queue.downlink import DOWNLINK_FEATURES, Downlink
from agent.queue.messages import batch_room, encode_batch, event_size, parse_ack, parse_replay, parse_url, too_large_alert
from agent.queue.progress import ProgressRecorder, prune_confirmed
from agent.queue.scheduler import BATCH_OVERHEAD_BYTES, ResendScheduler
from agent.queue.topics import HUB_CONSUMERS, StationTopics
from agent.store import outbox
from agent.store.db import Database
from agent.store.guard import StorageFull

log = logging.getLogger(__name__)

_FLUSH_EVERY_S = 0.02
_STATUS_EVERY_S = 30.0
_PRUNE_EVERY_S = 600.0
_SESSION_EXPIRY_S = 7 * 86400


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
        self._lock = threading.Lock()  # guards the request flags and alerts set by API threads
        self.broker = BrokerStatus(f"{'mqtts' if self._tls else 'mqtt'}://{self._host}:{self._port}")
        self._force = False
        self._thread: threading.Thread | None = None
        # Sync-thread-only state.
        self._client: mqtt.Client | None = None
        self._connected = False
        self._schedule = ResendScheduler(ack_timeout_s=settings.ack_timeout_s,
                                         batch_max_events=settings.batch_max_events,
                                         batch_max_bytes=settings.batch_max_bytes,
                                         resend_interval_s=settings.resend_interval_s)
        self._progress = ProgressRecorder(db)
        self._last_flush = 0.0
        self._next_status = 0.0
        self._next_prune = 0.0
        self._next_connect = 0.0
        self._connect_started = 0.0
        self._connected_at = 0.0
        self._backoff = settings.reconnect_min_s
        self._alerts: list[dict[str, Any]] = []
        # Lost / back (with the outage's length) are logged once; each reconnect attempt is DEBUG.
        self.link = LinkState(log, "oficina central (broker MQTT)", ("head_office_lost", "head_office_back"))
        # Extra members of the retained status message (health reasons, devices, disk), set by
        # whoever assembles the station; called on the sync thread every _STATUS_EVERY_S.
        self.status_extra: Callable[[], dict[str, Any]] | None = None

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
        return self.broker.snapshot()

    def health(self) -> dict[str, Any]:
        return self.broker.health()

    # ---- the sync thread -----------------------------------------------------------------

    def _run(self) -> None:
        try:
            # Set aside by an earlier run: not retried, not alerted again (the alert went out then).
            self._schedule.quarantined.update(self._db.read(outbox.set_aside_seqs))
            while not self._stop.is_set():
                try:
                    self._step()
                except Exception:  # noqa: BLE001 - keep syncing whatever one step did
                    log.exception("falló un paso de la sincronización [sync_failed]")
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
            self._schedule.resend_all_now()
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
        busy = bool(self._schedule.inflight or self._progress.pending)
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
            prune_confirmed(self._db, self._settings.retention_days, self._stop)

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
        self.broker.set("connecting")
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
        self.broker.set("disconnected", error)
        if not self._stop.is_set():
            self.link.down(error)
            log.debug("head office broker unreachable (%s); retrying in %.1f s", error, delay)

    def _drop_connection(self, error: str) -> None:
        client, self._client = self._client, None
        self._connected = False
        self._schedule.disconnected()
        if client is not None:
            try:
                client.disconnect()
                client.loop(timeout=0.01)
            except Exception:  # noqa: BLE001
                pass
        self._flush()
        self._schedule_reconnect(error)

    # ---- paho callbacks (run inside client.loop on the sync thread) ---------------------------

    def _on_connect(self, client: mqtt.Client, userdata: Any, flags: Any, reason: Any, properties: Any) -> None:
        if reason.is_failure:
            self.link.down(f"connection refused: {reason}")
            self._connected = False
            self.broker.set("disconnected", str(reason))
            return
        self._connected = True
        self._connected_at = time.monotonic()
        # The broker's Maximum Packet Size bounds every batch; no session kept: all is due now.
        limit = getattr(properties, "MaximumPacketSize", None) if properties is not None else None
        room = batch_room(limit, self.topics.events, self.station_id) + BATCH_OVERHEAD_BYTES if limit else None
        self._schedule.connected(session_present=bool(getattr(flags, "session_present", False)), max_packet=room)
        # The backoff is reset by the first accepted batch, not by CONNACK: a broker that
        # accepts the connection and then drops it (e.g. an ACL refusal) must not be hammered.
        self.broker.set("connected")
        client.subscribe([(self.topics.acks, 1), (self.topics.replay, 1), (self.topics.config("+"), 1),
                          (HUB_CONSUMERS, 0)])
        client.publish(self.topics.availability,
                       json.dumps({"state": "online", "station_id": self.station_id, "version": __version__,
                                   "features": list(DOWNLINK_FEATURES), "at": now_iso()}), qos=1, retain=True)
        self._next_status = 0.0
        self.link.up()

    def _on_disconnect(self, client: mqtt.Client, userdata: Any, flags: Any, reason: Any, properties: Any) -> None:
        self._connected = False
        if self._stop.is_set():
            self._client = None
            return  # our own clean stop: nothing lost, nothing to retry, nothing to warn about
        self.link.down(str(reason))
        self._client = None
        self._schedule.disconnected()
        self._flush()  # acks already received are made durable now, not at the next connection
        self._schedule_reconnect(str(reason))

    def _on_publish(self, client: mqtt.Client, userdata: Any, mid: int, reason: Any, properties: Any) -> None:
        seqs = self._schedule.puback(mid)
        if seqs is None:
            return
        if getattr(reason, "is_failure", False):
            # Not delivered. Resend on the normal timeout/backoff (not at once: a broker that
            # refuses by ACL or quota would refuse again) and tell head office.
            log.error("el broker de la oficina central rechazó un lote de eventos: %s [publish_refused]", reason)
            self.alert("publish_refused", {"reason": str(reason)})
            return
        self._progress.marks.delivered.extend(seqs)
        self._backoff = self._settings.reconnect_min_s  # the link really works: reset the backoff

    def _on_message(self, client: mqtt.Client, userdata: Any, message: mqtt.MQTTMessage) -> None:
        try:
            if message.topic == self.topics.acks:
                self._on_ack(message.payload)
            elif message.topic == self.topics.replay:
                self._on_replay(client, message.payload)
            elif message.topic == HUB_CONSUMERS:
                if not message.retain:  # a retained copy (head office should not retain it) is old news
                    self._schedule.consumers_changed(time.monotonic())
            else:
                kind = self.topics.config_kind(message.topic)
                if kind is not None:
                    result = self._downlink.handle(kind, message.payload)
                    if result.status == "rejected":
                        client.publish(self.topics.config_errors, json.dumps(result.report()), qos=1)
        except Exception:  # noqa: BLE001 - one bad message must not stop the sync loop
            log.exception("no se pudo procesar un mensaje en %s [downlink_failed]", message.topic)

    def _on_ack(self, payload: bytes) -> None:
        try:
            ids = parse_ack(payload)
        except ValueError as exc:
            log.warning("confirmación mal formada ignorada: %s [ack_malformed]", exc)
            return
        seqs, earlier = self._schedule.acked(ids, time.monotonic())
        self._progress.marks.confirmed.extend(seqs)  # confirm by primary key: the cheap path
        # Sent by a previous run (its ack waited at the broker): still confirmed, by id.
        self._progress.marks.confirmed_ids.extend(earlier)

    def _on_replay(self, client: mqtt.Client, payload: bytes) -> None:
        try:
            first, last, request_id = parse_replay(payload)
        except ValueError as exc:
            message, request_id = exc.args
            client.publish(self.topics.replay_result, json.dumps({"status": "rejected", "message": message,
                                                                  "request_id": request_id}), qos=1)
            return
        self._flush()
        result = self._db.write(lambda c: outbox.reopen_range(c, first, last))
        self._schedule.replay(first, last)  # rows still unconfirmed are sent again now too
        oldest = self._db.read(lambda c: c.execute("SELECT min(seq) FROM outbox").fetchone()[0]) or 0
        status = "ok" if result["stored"] == result["expected"] else "partial"
        client.publish(self.topics.replay_result, json.dumps({
            "request_id": request_id, "status": status, "from_seq": first, "to_seq": last,
            "reopened": result["reopened"], "missing": result["expected"] - result["stored"],
            "oldest_available_seq": oldest}), qos=1)
        log.info("la oficina central pidió reenviar seq %s-%s: %s reabiertos, %s ya no guardados [replay]", first, last,
                 result["reopened"], result["expected"] - result["stored"])

    # ---- sending -------------------------------------------------------------------------

    def _pump(self, client: mqtt.Client) -> None:
        while len(self._schedule.inflight) < self._settings.max_inflight:
            rows = self._next_rows()
            if not rows:
                return
            info = client.publish(self.topics.events, encode_batch(self.station_id, rows), qos=1)
            if info.rc != mqtt.MQTT_ERR_SUCCESS:
                return  # not connected any more; the rows stay due
            self._schedule.published(info.mid, rows, time.monotonic())

    def _next_rows(self) -> list[Any]:
        """Rows due for resending first, then the next rows never sent, as one batch."""
        schedule = self._schedule
        due = schedule.due(time.monotonic())
        if due:
            rows = self._db.read(lambda c: outbox.events_by_seq(c, due))
            for seq in set(due) - {r["seq"] for r in rows}:
                schedule.forget(seq)  # confirmed meanwhile
            fitted = self._fit(rows)
            if fitted:
                return fitted
        after = schedule.cursor
        while True:
            rows = self._db.read(lambda c: outbox.unconfirmed_after(c, after, schedule.batch_max_events))
            if not rows:
                return []
            fitted = self._fit(schedule.fresh(rows, time.monotonic()))
            if fitted:
                return fitted
            after = rows[-1]["seq"]  # a window of rows in flight, held or set aside: look past it

    def _fit(self, rows: list[Any]) -> list[Any]:
        """One message's worth by exact size; an event larger than the broker accepts is set
        aside with an alert (it would make the broker drop the connection, forever)."""
        fitted, too_large = self._schedule.fit_packet(rows, event_size)
        for row in too_large:
            try:
                first_time = self._db.write(lambda c, seq=row["seq"]: outbox.set_aside(c, seq, now_iso()))
            except (StorageFull, sqlite3.Error):
                first_time = True  # not recorded (disk full): alert now rather than never
            if not first_time:
                continue
            alert = too_large_alert(self.station_id, row, self._schedule.max_packet)
            log.error("evento seq %d (%d bytes) mayor que lo que acepta el broker: apartado [event_too_large]",
                      row["seq"], alert["bytes"])
            self.alert("event_too_large", alert)
        return fitted

    def _flush(self) -> None:
        """Make the PUBACKs and acks received since the last flush durable (kept until they are)."""
        self._last_flush = max(time.monotonic(), self._progress.next_try)
        self._progress.flush()

    def _publish_alerts(self, client: mqtt.Client) -> None:
        with self._lock:
            alerts, self._alerts = self._alerts, []
        for alert in alerts:
            client.publish(self.topics.alerts, json.dumps(alert), qos=1)

    def _publish_status(self, client: mqtt.Client) -> None:
        status = self._db.read(outbox.stats)
        status.update(station_id=self.station_id, at=now_iso(), version=__version__,
                      downlink=self._downlink.state())
        if self.status_extra is not None:
            try:
                status.update(self.status_extra())
            except Exception:  # noqa: BLE001 - the counters still go out if a health probe fails
                log.exception("no se pudo evaluar la salud para el mensaje de estado [status_failed]")
        client.publish(self.topics.status, json.dumps(status), qos=1, retain=True)

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
