"""Duties the leader worker runs on a schedule (hub.leader): renew PIN bundles before they
expire (an expired bundle stops every PIN at the station) and make the weekly reward order on
its day. Each is idempotent, so running them more often than needed changes nothing."""
from __future__ import annotations

import logging
import time
from datetime import datetime, timedelta, timezone

import paho.mqtt.client as mqtt
import psycopg
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from hub.central import attendants, rewards
from hub.central.config import CentralSettings
from hub.mqtt import topic

log = logging.getLogger(__name__)
ACTOR = "hub:scheduler"
RENEW_WITHIN = timedelta(days=7)


def renew_pin_bundles(conn: psycopg.Connection, client: mqtt.Client, key: Ed25519PrivateKey,
                      settings: CentralSettings, now: datetime | None = None) -> int:
    """Re-issue every station's bundle whose newest version expires within a week."""
    now = now or datetime.now(timezone.utc)
    due = [r[0] for r in conn.execute(
        "SELECT station_id FROM pin_bundles GROUP BY station_id HAVING max(expires_at) < %s ORDER BY 1",
        (now + RENEW_WITHIN,))]
    for station_id in due:
        bundle = attendants.build_bundle(conn, key, station_id, days=settings.pin_bundle_days, now=now)
        client.publish(topic(station_id, "config/pin_bundle"), bundle.body, qos=1, retain=True).wait_for_publish(30)
        attendants.mark_published(conn, ACTOR, bundle)
        log.info("paquete de PIN de %s renovado (versión %d) [pin_bundle_renewed]", station_id, bundle.version)
    return len(due)


def weekly_order(conn: psycopg.Connection, settings: CentralSettings, now: datetime | None = None) -> str | None:
    today = (now or datetime.now(timezone.utc)).date()
    if today.weekday() != settings.order_weekday:
        return None
    order_id, created = rewards.make_order(conn, ACTOR, weekday=settings.order_weekday, today=today)
    if created:
        log.info("pedido semanal de premios %s generado [reward_order_made]", order_id)
    return order_id


class Scheduler:
    """Throttle: the leader loop runs every second; these run every ``interval_s``."""

    def __init__(self, settings: CentralSettings, interval_s: float = 600) -> None:
        self.settings, self.interval_s, self._next = settings, interval_s, 0.0

    def run_due(self, conn: psycopg.Connection, client: mqtt.Client, key: Ed25519PrivateKey | None) -> None:
        if time.monotonic() < self._next:
            return
        self._next = time.monotonic() + self.interval_s
        if key is not None:
            renew_pin_bundles(conn, client, key, self.settings)
        weekly_order(conn, self.settings)
        # Rate-limit counters only matter for minutes; expired back-office sessions not at all.
        conn.execute("DELETE FROM web_attempts WHERE at < now() - interval '1 day'")
        conn.execute("DELETE FROM web_sessions WHERE expires_at < now()")
