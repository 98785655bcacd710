"""Chain-wide duties, run by exactly one worker at a time: the one holding a PostgreSQL
advisory lock on its own connection. When that worker dies, its connection closes, the lock is
released, and another worker's leader thread takes over within a couple of seconds.
"""
from __future__ import annotations

import logging
import threading
import time

import paho.mqtt.client as mqtt
import psycopg

from hub import directory, gaps
from hub.central import enrollment
from hub.central.errors import CentralError
from hub.central.keys import load_pin_key, load_signing_key
from hub.central.scheduled import Scheduler
from hub.config import Settings
from hub.mqtt import broker_address, connect_properties, make_client

log = logging.getLogger(__name__)
LEADER_LOCK = 0x6875622D6C656164  # "hub-lead"


class Leader(threading.Thread):
    def __init__(self, settings: Settings, name: str, stopping: threading.Event) -> None:
        super().__init__(name="hub-leader", daemon=True)
        self.settings = settings
        # Its own connection: a burst of directory deltas must not queue behind, or in front of,
        # the ingest's acks and PUBACKs.
        self.client: mqtt.Client = make_client(settings.mqtt, f"{settings.mqtt.client_id_prefix}-{name}-leader",
                                               manual_ack=False)
        self.stopping = stopping
        self.is_leader = False

    def run(self) -> None:
        host, port = broker_address(self.settings.mqtt.url or "")
        self.client.connect_async(host, port, keepalive=self.settings.mqtt.keepalive_s, clean_start=True,
                                  properties=connect_properties(self.settings.mqtt))
        self.client.loop_start()
        try:
            self._run()
        finally:
            self.client.disconnect()
            self.client.loop_stop()

    def _run(self) -> None:
        while not self.stopping.is_set():
            try:
                with psycopg.connect(self.settings.database.url or "", autocommit=True,
                                     application_name="loyalty-hub leader",
                                     connect_timeout=self.settings.database.connect_timeout_s) as conn:
                    self._lead(conn)
            except psycopg.OperationalError as exc:
                log.info("líder: base de datos no disponible (%s) [database_unavailable]", type(exc).__name__)
            except Exception:  # noqa: BLE001 - a failed duty must not end leadership for good
                log.exception("líder: falló una tarea [leader_duty_failed]")
            self.is_leader = False
            self.stopping.wait(1.0)

    def _signing_key(self):  # type: ignore[no-untyped-def]
        try:
            return load_signing_key(self.settings.central.signing_key_file)
        except CentralError as exc:
            log.error("no se publican los deltas del directorio: %s [directory_unpublished]", exc.es)
            return None

    def _pin_key(self):  # type: ignore[no-untyped-def]
        central = self.settings.central
        try:
            return load_pin_key(central.signing_key_file, central.pin_signing_key_file)
        except CentralError as exc:
            log.error("no se renuevan los paquetes de PIN: %s [pin_bundles_unrenewed]", exc.es)
            return None

    def _lead(self, conn: psycopg.Connection) -> None:
        while not self.stopping.is_set():
            if conn.execute("SELECT pg_try_advisory_lock(%s)", (LEADER_LOCK,)).fetchone()[0]:
                break
            self.stopping.wait(1.0)
        else:
            return
        self.is_leader = True
        log.info("este proceso asume las tareas de toda la cadena [leader]")
        downlink, ingest = self.settings.downlink, self.settings.ingest
        deferred: dict[str, set[str]] = {}
        confirmed_until = time.monotonic()
        key, months, zone = self._signing_key(), self.settings.central.expiry_months, self.settings.chain.zone
        pin_key = self._pin_key()
        scheduler = Scheduler(self.settings.central, zone)
        while not self.stopping.is_set():
            started = time.monotonic()
            if self.client.is_connected():
                if key is not None:  # stations refuse unsigned deltas: without the key, none are sent
                    directory.publish_full_to_new_stations(conn, self.client, key, downlink.max_movements, months, zone)
                    directory.publish_changes(conn, self.client, key, downlink.max_movements, deferred, months, zone)
                    due = directory.confirmation_turns(deferred, confirmed_until, started, downlink.confirm_interval_s)
                    directory.publish_deferred(conn, self.client, key, downlink.max_movements, due, months, zone)
                    confirmed_until = started
                    enrollment.run(conn, self.client, key, self.settings.central.enrollment_request_days)
                gaps.request_replays(conn, self.client, ingest.gap_grace_s, ingest.replay_timeout_s)
                scheduler.run_due(conn, self.client, pin_key)
            gaps.expire_replays(conn, ingest.replay_timeout_s)
            self.stopping.wait(max(0.05, downlink.interval_s - (time.monotonic() - started)))
