"""Each configured device's state (up / down / unknown), for health, metrics, status and the console.

A device is listed only when it is configured (or simulated); its state comes from the link
state its driver keeps (``agent.drivers.transitions``). A camera is opened only for a capture,
so between captures its state is the last capture's, or whether its device node exists.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from agent.station import Station

# Reader class -> (stable device id, Spanish label).
_READERS: dict[str, tuple[str, str]] = {
    "PcscCardReader": ("card_reader_pcsc", "Lector de tarjetas sin contacto (PC/SC)"),
    "EvdevMagstripeReader": ("card_reader_magstripe", "Lector de banda magnética (teclado)"),
    "SerialCardReader": ("card_reader_serial", "Lector de tarjetas serie"),
}

# Hand-held ID scanner source -> (stable device id, Spanish label).
_SCANNERS: dict[str, tuple[str, str]] = {
    "mrz_reader": ("idcard_mrz_reader", "Lector MRZ de documentos (serie)"),
    "wedge_scanner": ("idcard_wedge_scanner", "Escáner de documentos PDF417/QR (teclado)"),
}


@dataclass(frozen=True)
class DeviceState:
    id: str  # stable: card_reader_pcsc, card_reader_magstripe, card_reader_serial, fingerprint, camera,
    # idcard_mrz_reader, idcard_wedge_scanner
    label: str  # Spanish, for people
    state: str  # up | down | unknown
    simulated: bool = False
    since: str | None = None
    reason: str | None = None  # a stable code while down
    for_s: float | None = None

    def as_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out.pop("id")
        return out


def _from_link(device_id: str, label: str, link: Any, *, simulated: bool = False) -> DeviceState:
    snap = link.snapshot()
    return DeviceState(device_id, label, snap.state, simulated, snap.since, snap.reason, snap.for_s)


def device_states(station: Station) -> list[DeviceState]:
    out: list[DeviceState] = []
    cards = station.cards
    if cards is not None:
        for reader in getattr(cards, "readers", []):
            name = type(reader).__name__
            device_id, label = _READERS.get(name, (name, name))
            failed = getattr(cards, "failed", {}).get(name)
            if failed is not None:
                out.append(DeviceState(device_id, label, "down", reason=failed))
            elif hasattr(reader, "link"):
                out.append(_from_link(device_id, label, reader.link))
    fingerprint = station.fingerprint
    sensor = getattr(fingerprint, "sensor", None) if fingerprint is not None else None
    if sensor is not None and hasattr(sensor, "link"):
        simulated = bool(getattr(type(fingerprint), "simulated", False))
        out.append(_from_link("fingerprint", "Lector de huellas", sensor.link, simulated=simulated))
    idcard = station.idcard
    if idcard is not None:
        out.append(_camera_state(idcard))
    scanners = getattr(station, "idcard_scanners", None)
    if scanners is not None:
        for source, reader in scanners.readers.items():
            device_id, label = _SCANNERS[source]
            failed = scanners.failed.get(source)
            out.append(DeviceState(device_id, label, "down", reason=failed) if failed
                       else _from_link(device_id, label, reader.link))
    return out


def _camera_state(idcard: Any) -> DeviceState:
    label = "Cámara de documentos"
    simulated = bool(getattr(idcard, "simulated", False))
    if simulated:
        return DeviceState("camera", label, "up", simulated=True)
    loaded = getattr(idcard, "loaded_service", None)
    service = loaded() if callable(loaded) else None
    if service is not None and service.camera_link.snapshot().state != "unknown":
        return _from_link("camera", label, service.camera_link)
    source = str(getattr(idcard, "camera_source", ""))
    if camera_node_missing(source):
        return DeviceState("camera", label, "down", reason="device_missing")
    return DeviceState("camera", label, "unknown")


def camera_node_missing(source: str) -> bool:
    """Whether the configured camera (``/dev/video0``, ``0``, or a replay file) is absent.

    >>> camera_node_missing("/dev/video-that-does-not-exist"), camera_node_missing("frames/%04d.jpg")
    (True, False)
    """
    if source.isdigit():
        return not Path(f"/dev/video{source}").exists()
    if "%" in source:  # an image-sequence pattern: OpenCV checks it when opening
        return False
    return not Path(source).exists()
