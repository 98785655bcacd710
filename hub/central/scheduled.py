"""Duties the leader worker runs on a schedule (hub.leader): renew PIN bundles before they
expire (an expired bundle stops every PIN at the station), make the weekly reward order on its
day, and close the previous month on ``central.close_day`` at ``central.close_hour`` (both in
the chain's time zone, ``chain.timezone``; moved off a weekend to Monday when
``central.close_business_day``). Each is idempotent, so running them more often than needed
changes nothing: the close runs only while the month has no close at all (a re-run is a
person's decision, from the CLI or the web). Every duty takes ``now`` so tests drive the clock."""
from __future__ import annotations

import logging
import time
from datetime import date, datetime, timedelta, timezone, tzinfo

import paho.mqtt.client as mqtt
import psycopg
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from hub.central import attendants, close, rewards
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


def weekly_order(conn: psycopg.Connection, settings: CentralSettings, now: datetime | None = None,
                 zone: tzinfo = timezone.utc) -> str | None:
    today = (now or datetime.now(timezone.utc)).astimezone(zone).date()
    if today.weekday() != settings.order_weekday:
        return None
    order_id, created = rewards.make_order(conn, ACTOR, weekday=settings.order_weekday, today=today)
    if created:
        log.info("pedido semanal de premios %s generado [reward_order_made]", order_id)
    return order_id


def close_due(settings: CentralSettings, month_start: date) -> date:
    """The day (chain calendar) on which the month before ``month_start`` is closed."""
    day = month_start.replace(day=settings.close_day)
    while settings.close_business_day and day.weekday() >= 5:
        day += timedelta(days=1)
    return day


def monthly_close(conn: psycopg.Connection, settings: CentralSettings, now: datetime | None = None,
                  zone: tzinfo = timezone.utc) -> str | None:
    """Close the previous month once its day and hour have come; the month closed, or None."""
    local = (now or datetime.now(timezone.utc)).astimezone(zone)
    this_month = local.date().replace(day=1)
    due = datetime.combine(close_due(settings, this_month), datetime.min.time(), zone).replace(hour=settings.close_hour)
    if local < due:
        return None
    previous = close.add_months(this_month, -1)
    if conn.execute("SELECT 1 FROM monthly_closes WHERE month = %s", (previous,)).fetchone():
        return None
    result = close.close_month(conn, ACTOR, f"{previous:%Y-%m}", expiry_months=settings.expiry_months,
                               now=local, zone=zone)
    log.info("mes %s cerrado por el programador: %d puntos vencidos, %d estaciones incompletas [month_closed_by_scheduler]",
             f"{previous:%Y-%m}", result.expired_points, len(result.incomplete))
    return f"{previous:%Y-%m}"


class Scheduler:
    """Throttle: the leader loop runs every second; these run every ``interval_s``."""

    def __init__(self, settings: CentralSettings, zone: tzinfo = timezone.utc, interval_s: float = 600) -> None:
        self.settings, self.zone, self.interval_s, self._next = settings, zone, interval_s, 0.0

    def run_due(self, conn: psycopg.Connection, client: mqtt.Client, pin_key: Ed25519PrivateKey | None) -> None:
        if time.monotonic() < self._next:
            return
        self._next = time.monotonic() + self.interval_s
        if pin_key is not None:  # central.pin_signing_key_file, or the configuration key
            renew_pin_bundles(conn, client, pin_key, self.settings)
        weekly_order(conn, self.settings, zone=self.zone)
        monthly_close(conn, self.settings, zone=self.zone)
        # Rate-limit counters only matter for minutes; expired back-office sessions not at all.
        conn.execute("DELETE FROM web_attempts WHERE at < now() - interval '1 day'")
        conn.execute("DELETE FROM web_sessions WHERE expires_at < now()")
