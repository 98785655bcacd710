"""Health that tells the truth: ``ok`` / ``degraded`` / ``failing`` and the reasons why.

``failing``: the station cannot record new work (storage broken, sync queue full, disk almost
full). ``degraded``: it works, but something needs a technician (head office unreachable for
too long, an old backlog, attendant PINs unusable, a configured device missing). Thresholds
are ``[monitoring]`` settings. The same assessment feeds ``GET /v1/health``, the retained MQTT
status message, ``/metrics``, ``loyalty-agent status`` and the console.
"""
from __future__ import annotations

import shutil
import sqlite3
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any, Literal

from agent.ops.device_states import DeviceState, device_states
from agent.ops.parts import publisher

if TYPE_CHECKING:
    from agent.station import Station

Severity = Literal["degraded", "failing"]

# code -> (severity, Spanish, English); the messages take the reason's detail as format fields.
REASONS: dict[str, tuple[Severity, str, str]] = {
    "storage_error": ("failing", "La base de datos de la estación no responde.",
                      "The station database does not answer."),
    "disk_full": ("failing", "El disco está lleno: una escritura falló y se rechazan operaciones nuevas (507).",
                  "The disk is full: a write failed and new operations are refused (507)."),
    "disk_low": ("failing", "Queda poco espacio en disco ({free_mb} MB libres).",
                 "Little disk space left ({free_mb} MB free)."),
    "outbox_full": ("failing", "La cola de sincronización está llena: se rechazan operaciones nuevas (507).",
                    "The sync queue is full: new operations are refused (507)."),
    "disk_budget_high": ("degraded", "La cola de sincronización usa el {percent}% de su espacio.",
                         "The sync queue uses {percent}% of its disk budget."),
    "head_office_unreachable": ("degraded", "Sin conexión con la oficina central desde hace {duration}.",
                                "Head office unreachable for {duration}."),
    "sync_backlog_old": ("degraded", "Hay eventos sin confirmar desde hace {duration}.",
                         "Events have been waiting for confirmation for {duration}."),
    "pin_bundle_missing": ("degraded", "No hay paquete de PIN de playeros: se rechaza todo PIN.",
                           "No attendant PIN bundle: every PIN is refused."),
    "pin_bundle_expired": ("degraded", "El paquete de PIN de playeros venció el {expires_at}: se rechaza todo PIN.",
                           "The attendant PIN bundle expired on {expires_at}: every PIN is refused."),
    "pin_key_missing": ("degraded", "Falta la clave de PIN de la estación: se rechaza todo PIN.",
                        "The station PIN key is missing: every PIN is refused."),
    "device_missing": ("degraded", "{label}: no disponible ({reason}).", "{label}: not available ({reason})."),
}


@dataclass(frozen=True)
class Reason:
    code: str
    detail: dict[str, Any] = field(default_factory=dict)

    @property
    def severity(self) -> Severity:
        return REASONS[self.code][0]

    def message(self, lang: str = "es") -> str:
        _, es, en = REASONS[self.code]
        return (en if lang == "en" else es).format(**self.detail)

    def as_dict(self, lang: str = "es") -> dict[str, Any]:
        return {"code": self.code, "severity": self.severity, "message": self.message(lang), "detail": self.detail}


@dataclass
class Assessment:
    status: Literal["ok", "degraded", "failing"]
    reasons: list[Reason]
    devices: list[DeviceState]
    disk: dict[str, Any]
    sync: dict[str, Any]
    pin_bundle: dict[str, Any] | None
    storage_ok: bool
    schema_version: str | None

    def devices_dict(self) -> dict[str, dict[str, Any]]:
        return {d.id: d.as_dict() for d in self.devices}

    def status_message_extra(self) -> dict[str, Any]:
        """What the retained MQTT status message carries besides the outbox counters."""
        return {"health": {"status": self.status, "reasons": [r.as_dict() for r in self.reasons]},
                "devices": self.devices_dict(), "disk": self.disk, "pin_bundle": self.pin_bundle}


def _duration(seconds: float) -> str:
    from agent.drivers.transitions import describe_duration

    return describe_duration(seconds)


def assess(station: Station) -> Assessment:
    settings = station.settings
    limits = settings.monitoring
    reasons: list[Reason] = []
    storage = _read_storage(station)
    if storage is None:
        reasons.append(Reason("storage_error"))
        stats: dict[str, Any] = {}
        bundle = None
        schema = None
    else:
        schema, stats, bundle = storage
    disk = _disk(settings, stats)
    if getattr(station.db, "storage_problem", None) == "disk_full":  # set by the store, cleared by a commit
        reasons.append(Reason("disk_full"))
    if disk.get("free_bytes") is not None and disk["free_bytes"] < limits.disk_free_min_bytes:
        reasons.append(Reason("disk_low", {"free_mb": disk["free_bytes"] // (1024 * 1024)}))
    reasons += _outbox_reasons(stats, disk, limits)
    reasons += _head_office_reasons(station, limits)
    reasons += _pin_reasons(station, bundle)
    devices = device_states(station)
    for device in devices:
        if device.state == "down":
            reasons.append(Reason("device_missing", {"device": device.id, "label": device.label,
                                                     "reason": device.reason or "unknown"}))
    worst = {r.severity for r in reasons}
    status: Literal["ok", "degraded", "failing"] = (
        "failing" if "failing" in worst else "degraded" if reasons else "ok")
    return Assessment(status, reasons, devices, disk, stats, bundle, storage is not None, schema)


def _read_storage(station: Station) -> tuple[str, dict[str, Any], dict[str, Any] | None] | None:
    from agent.store import outbox

    def read(conn: sqlite3.Connection) -> tuple[str, dict[str, Any], dict[str, Any] | None]:
        schema = conn.execute("SELECT name FROM schema_migrations ORDER BY rowid DESC LIMIT 1").fetchone()[0]
        try:
            row = conn.execute("SELECT version, expires_at FROM cards_pin_bundle WHERE one = 1").fetchone()
        except sqlite3.OperationalError:  # the cards feature's table is not there
            row = None
        bundle = {"version": row[0], "expires_at": row[1]} if row is not None else None
        return schema, outbox.stats(conn), bundle

    try:
        return station.db.read(read)
    except Exception:  # noqa: BLE001 - health must answer whatever broke
        return None


def _disk(settings: Any, stats: dict[str, Any]) -> dict[str, Any]:
    try:
        usage = shutil.disk_usage(settings.storage.data_dir)
        free, total = usage.free, usage.total
    except OSError:
        free = total = None
    budget = stats.get("budget_bytes")
    used = stats.get("unconfirmed_bytes")
    return {"free_bytes": free, "total_bytes": total, "outbox_bytes": used, "outbox_budget_bytes": budget,
            "outbox_budget_used": round(used / budget, 4) if budget and used is not None else None}


def _outbox_reasons(stats: dict[str, Any], disk: dict[str, Any], limits: Any) -> list[Reason]:
    out: list[Reason] = []
    used = disk.get("outbox_budget_used")
    age = stats.get("oldest_pending_age_s")
    budget_age = stats.get("budget_age_s")
    if (used is not None and used >= 1.0) or (age is not None and budget_age is not None and age > budget_age):
        out.append(Reason("outbox_full"))
    elif used is not None and used >= limits.disk_budget_warn_fraction:
        out.append(Reason("disk_budget_high", {"percent": int(used * 100)}))
    if age is not None and age > limits.backlog_max_age_s:
        out.append(Reason("sync_backlog_old", {"duration": _duration(age), "age_s": age}))
    return out


def _head_office_reasons(station: Station, limits: Any) -> list[Reason]:
    pub = publisher(station)
    if pub is None:
        return []  # no head office configured: an offline station by choice (the backlog age still counts)
    snap = pub.link.snapshot()
    if snap.state != "up" and snap.for_s > limits.head_office_unreachable_after_s:
        return [Reason("head_office_unreachable", {"duration": _duration(snap.for_s), "for_s": snap.for_s,
                                                   "last_error": snap.reason})]
    return []


def pins_in_use(station: Station) -> bool:
    """Attendant PINs matter on a station that reads loyalty cards or expects PIN bundles."""
    cards = station.settings.cards
    return bool(cards.pcsc.enabled or cards.magstripe.evdev_device or cards.magstripe.serial_port
                or cards.pins.bundle_public_key)


def _pin_reasons(station: Station, bundle: dict[str, Any] | None) -> list[Reason]:
    if not pins_in_use(station):
        return []
    out: list[Reason] = []
    pins = station.cards.pins
    if pins is not None and not pins.pepper_installed:
        out.append(Reason("pin_key_missing"))
    if bundle is None:
        out.append(Reason("pin_bundle_missing"))
    elif datetime.fromisoformat(bundle["expires_at"]) <= datetime.now(timezone.utc):
        out.append(Reason("pin_bundle_expired", {"expires_at": bundle["expires_at"][:10]}))
    return out
