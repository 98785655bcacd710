"""Prometheus metrics of a station (``GET /metrics``), read at scrape time.

Gauges come from the same sources as ``/v1/health`` (outbox table, publisher link, device link
states); counters of things that happen (PIN checks, fingerprint operations, ID-card reads) from
``agent.telemetry``; request latency from the API's timing middleware. Every name starts with
``loyalty_``; docs/metrics.md lists them with their labels.
"""
from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from datetime import datetime, timezone
from typing import Any

from prometheus_client import CollectorRegistry, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.registry import Collector

from agent import __version__
from agent.ops.health import assess
from agent.ops.parts import publisher
from agent.telemetry import BUCKETS, TELEMETRY, Telemetry

STATES = ("pending", "delivered", "confirmed")
# Request latency buckets (seconds): a POS lookup is a few ms, an ID-card read several seconds.
HTTP_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


def _outbox_by_state(conn: sqlite3.Connection) -> tuple[dict[str, tuple[int, str | None]], int, int]:
    """Counts and oldest creation time by state, unconfirmed bytes, refusals: index reads and the
    running totals only, so a scrape stays cheap with a backlog of 100,000 events."""
    # "state != 'confirmed'" in each query lets SQLite use the partial index of unconfirmed rows
    # (a plain "state = 'pending'" does not, and scans the table).
    counts = dict(conn.execute("SELECT state, count(*) FROM outbox WHERE state != 'confirmed' GROUP BY state").fetchall())
    counts["confirmed"] = conn.execute("SELECT count(*) FROM outbox WHERE state = 'confirmed'").fetchone()[0]
    out: dict[str, tuple[int, str | None]] = {}
    for state in STATES:
        oldest = None
        if state != "confirmed":
            row = conn.execute("SELECT created_at FROM outbox WHERE state != 'confirmed' AND state = ?"
                               " ORDER BY seq LIMIT 1", (state,)).fetchone()
            oldest = row[0] if row else None
        out[state] = (counts.get(state, 0), oldest)
    totals = conn.execute("SELECT pending_bytes, refused_count FROM outbox_totals WHERE one = 1").fetchone()
    return out, totals[0], totals[1]


def _age_s(created_at: str | None, now: datetime) -> float:
    if created_at is None:
        return 0.0
    return max(0.0, (now - datetime.fromisoformat(created_at.replace("Z", "+00:00"))).total_seconds())


class StationCollector(Collector):
    """Reads the station when Prometheus scrapes; nothing is polled in between."""

    def __init__(self, station: Any, telemetry: Telemetry = TELEMETRY) -> None:
        self.station = station
        self.telemetry = telemetry

    def collect(self) -> Iterator[Metric]:
        station = self.station
        info = GaugeMetricFamily("loyalty_agent_info", "Agent version and station id", labels=["version", "station_id"])
        info.add_metric([__version__, station.settings.station.id], 1)
        yield info
        yield from self._outbox()
        yield from self._health()
        yield from self._broker()
        yield from self._telemetry()

    def _outbox(self) -> Iterator[Metric]:
        by_state, unconfirmed_bytes, refused = self.station.db.read(_outbox_by_state)
        now = datetime.now(timezone.utc)
        count = GaugeMetricFamily("loyalty_outbox_events", "Events in the outbox by state", labels=["state"])
        age = GaugeMetricFamily("loyalty_outbox_oldest_age_seconds", "Age of the oldest pending or delivered event "
                                "(0: none)", labels=["state"])
        for state in STATES:
            n, oldest = by_state[state]
            count.add_metric([state], n)
            if state != "confirmed":
                age.add_metric([state], _age_s(oldest, now))
        yield count
        yield age
        yield GaugeMetricFamily("loyalty_outbox_unconfirmed_bytes", "Payload bytes of events not yet confirmed "
                                "(pending and delivered): what the disk budget counts", value=unconfirmed_bytes)
        yield CounterMetricFamily("loyalty_outbox_refusals", "Operations refused with 507 because the sync queue was full "
                                  "(kept in the database: survives restarts)", value=refused)

    def _health(self) -> Iterator[Metric]:
        report = assess(self.station)
        status = GaugeMetricFamily("loyalty_health_status", "1 for the current health status", labels=["status"])
        for name in ("ok", "degraded", "failing"):
            status.add_metric([name], 1 if report.status == name else 0)
        yield status
        reasons = GaugeMetricFamily("loyalty_health_reason", "1 for each reason health is not ok",
                                    labels=["code", "severity"])
        for reason in report.reasons:
            reasons.add_metric([reason.code, reason.severity], 1)
        yield reasons
        up = GaugeMetricFamily("loyalty_device_up", "1 if a configured device answers, 0 if it is missing "
                               "(absent while unknown, e.g. a camera before its first capture)", labels=["device"])
        for device in report.devices:
            if device.state != "unknown":
                up.add_metric([device.id], 1 if device.state == "up" else 0)
        yield up
        if report.disk.get("free_bytes") is not None:
            yield GaugeMetricFamily("loyalty_disk_free_bytes", "Free space on the data folder's disk",
                                    value=report.disk["free_bytes"])

    def _broker(self) -> Iterator[Metric]:
        pub = publisher(self.station)
        if pub is None:
            return  # no head office configured: no broker series at all
        yield GaugeMetricFamily("loyalty_broker_connected", "1 while connected to head office's broker",
                                value=1 if pub.link.is_up else 0)
        yield CounterMetricFamily("loyalty_broker_reconnects", "Connections to the broker re-established after a loss "
                                  "(or after failing at start) since the agent started", value=pub.link.recoveries)

    def _telemetry(self) -> Iterator[Metric]:
        t = self.telemetry
        yield _counter("loyalty_pin_checks", "Attendant PIN checks by outcome (ok, attendant_pin_invalid, "
                       "attendant_locked_out, pin_bundle_missing, pin_bundle_expired)", t.counts("pin_checks"), ["outcome"])
        yield _counter("loyalty_pin_lockouts", "Attendants locked out after repeated PIN failures",
                       t.counts("pin_lockouts"), [])
        yield _counter("loyalty_fingerprint_operations", "Fingerprint operations by kind and outcome",
                       t.counts("fingerprint_operations"), ["kind", "outcome"])
        yield _counter("loyalty_idcard_reads", "ID-card barcode reads by outcome (read, no_barcode, camera_unavailable)",
                       t.counts("idcard_reads"), ["outcome"])
        timing = HistogramMetricFamily("loyalty_idcard_read_seconds", "Time to read an ID card (camera open to parsed)")
        for _labels, value in t.timings("idcard_read_seconds").items():
            cumulative = [(str(bound), float(n)) for bound, n in zip(BUCKETS, value.buckets)]
            timing.add_metric([], [*cumulative, ("+Inf", float(value.count))], value.total)
        yield timing


def _counter(name: str, doc: str, counts: dict[Any, float], labels: list[str]) -> CounterMetricFamily:
    family = CounterMetricFamily(name, doc, labels=labels)
    if not labels and not counts:
        family.add_metric([], 0)
    for key, value in counts.items():
        values = dict(key)
        family.add_metric([values.get(label, "") for label in labels], value)
    return family


def build_registry(station: Any) -> tuple[CollectorRegistry, Histogram]:
    """A registry of this app's own (not the process-global default) and its request histogram."""
    from prometheus_client import disable_created_metrics

    disable_created_metrics()  # no *_created series: noise for a station's dashboards
    registry = CollectorRegistry(auto_describe=False)
    registry.register(StationCollector(station))
    latency = Histogram("loyalty_http_request_duration_seconds", "HTTP request latency by route template",
                        ["method", "route", "status"], buckets=HTTP_BUCKETS, registry=registry)
    return registry, latency
