"""``loyalty-agent devices``: what is plugged in, which of it is configured, and the config lines
for the rest.

USB devices are listed by VID:PID with pyusb (libusb); where libusb is missing or not allowed
the same ids are read from sysfs. Serial ports, cameras and keyboard-wedge readers are found by
their stable ``/dev/.../by-id`` names (what the configuration should use) and the plain nodes.
"""
from __future__ import annotations

import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

# VID:PID -> (what it is, role). The serial adapters may carry a fingerprint sensor or a card reader.
KNOWN_USB: dict[str, tuple[str, str]] = {
    "072f:2200": ("ACS ACR122U (lector sin contacto)", "card_reader_pcsc"),
    "072f:223b": ("ACS ACR1252U (lector sin contacto)", "card_reader_pcsc"),
    "072f:2224": ("ACS ACR1281U (lector sin contacto)", "card_reader_pcsc"),
    "1a86:7523": ("adaptador serie CH340 (lector de huellas R30x o lector serie)", "serial"),
    "10c4:ea60": ("adaptador serie CP2102 (lector de huellas R30x o lector serie)", "serial"),
    "0403:6001": ("adaptador serie FTDI (lector de huellas R30x o lector serie)", "serial"),
    "067b:2303": ("adaptador serie PL2303 (lector de huellas R30x o lector serie)", "serial"),
    "0801:0001": ("MagTek (banda magnética, teclado)", "card_reader_magstripe"),
    "0801:0002": ("MagTek (banda magnética, teclado)", "card_reader_magstripe"),
    "0acd:0500": ("ID TECH (banda magnética, teclado)", "card_reader_magstripe"),
    "046d:0825": ("Logitech C270 (cámara UVC)", "camera"),
    "046d:082d": ("Logitech C920 (cámara UVC)", "camera"),
    "046d:085b": ("Logitech C925e (cámara UVC)", "camera"),
}


@dataclass(frozen=True)
class Found:
    kind: str  # usb | serial | video | input
    name: str  # VID:PID for usb, the /dev path otherwise
    label: str
    role: str | None  # card_reader_pcsc, serial, card_reader_magstripe, camera, or None (unknown USB)
    configured: bool
    suggestion: str | None  # TOML lines for the agent's configuration

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def usb_ids(sysfs: Path = Path("/sys/bus/usb/devices")) -> tuple[list[str], str]:
    """VID:PID of every USB device, and where they were read from (``pyusb`` or ``sysfs``)."""
    try:
        import usb.core

        found = [f"{d.idVendor:04x}:{d.idProduct:04x}" for d in usb.core.find(find_all=True)]
        if found or not sysfs.is_dir():
            return found, "pyusb"
    except Exception:  # noqa: BLE001 - no libusb backend, no permission: fall back to sysfs
        pass
    ids = []
    if sysfs.is_dir():
        for entry in sorted(sysfs.iterdir()):
            vendor, product = entry / "idVendor", entry / "idProduct"
            if vendor.is_file() and product.is_file():
                ids.append(f"{vendor.read_text().strip()}:{product.read_text().strip()}".lower())
    return ids, "sysfs"


def _nodes(dev: Path, by_id: str, patterns: tuple[str, ...]) -> list[Path]:
    """Stable by-id names first; plain nodes only when no by-id name points at them."""
    stable = sorted((dev / by_id).glob("*")) if (dev / by_id).is_dir() else []
    targets = {os.path.realpath(p) for p in stable}
    plain = [p for pattern in patterns for p in sorted(dev.glob(pattern)) if os.path.realpath(p) not in targets]
    return stable + plain


def _same(path: str | None, node: Path) -> bool:
    return bool(path) and os.path.realpath(str(path)) == os.path.realpath(node)


def scan(settings: Any, *, dev: Path = Path("/dev"), sysfs: Path = Path("/sys/bus/usb/devices")) -> tuple[list[Found], str]:
    out: list[Found] = []
    cards, fp, idcard = settings.cards, settings.fingerprint, settings.idcard
    ids, source = usb_ids(sysfs)
    for vid_pid in ids:
        label, role = KNOWN_USB.get(vid_pid, (None, None))
        if label is None or role is None:
            continue
        if role == "card_reader_pcsc":
            out.append(Found("usb", vid_pid, label, role, cards.pcsc.enabled,
                             None if cards.pcsc.enabled else "[cards.pcsc]\nenabled = true"))
        else:  # described by its node below (serial port, camera, input device)
            out.append(Found("usb", vid_pid, label, role, False, None))
    for node in _nodes(dev, "serial/by-id", ("ttyUSB*", "ttyACM*")):
        configured = _same(fp.port, node) or _same(cards.magstripe.serial_port, node)
        hint = (f'[fingerprint]\nenabled = true\nport = "{node}"\n'
                f'# o, si es un lector de tarjetas serie:\n# [cards.magstripe]\n# serial_port = "{node}"')
        out.append(Found("serial", str(node), "puerto serie", "serial", configured, None if configured else hint))
    for node in _nodes(dev, "v4l/by-id", ("video*",)):
        if node.name.endswith(("index1", "index2", "index3")):
            continue  # UVC metadata nodes: not a camera of their own
        camera = idcard.camera if not idcard.camera.isdigit() else f"/dev/video{idcard.camera}"
        configured = idcard.enabled and _same(camera, node)
        out.append(Found("video", str(node), "cámara (V4L2)", "camera", configured,
                         None if configured else f'[idcard]\nenabled = true\ncamera = "{node}"'))
    inputs = sorted((dev / "input" / "by-id").glob("*-event-kbd")) if (dev / "input" / "by-id").is_dir() else []
    for node in inputs:
        configured = _same(cards.magstripe.evdev_device, node)
        out.append(Found("input", str(node), "teclado USB (¿lector de banda magnética?)", "card_reader_magstripe",
                         configured, None if configured else f'[cards.magstripe]\nevdev_device = "{node}"'))
    return out, source


def render(found: list[Found], source: str) -> str:
    if not found:
        return ("No se encontró ningún dispositivo conocido (lectores, adaptadores serie, cámaras). "
                "Revise el cable y `lsusb`; los permisos (grupos dialout, video, input) y firmware-notes/.")
    lines = [f"Dispositivos encontrados (USB leído con {source}):"]
    for item in found:
        mark = "configurado" if item.configured else "sin configurar"
        lines.append(f"  [{item.kind}] {item.name}: {item.label} · {mark}")
    suggestions = [item.suggestion for item in found if item.suggestion]
    if suggestions:
        lines.append("\nLíneas sugeridas para el archivo de configuración (agent.toml):")
        for text in suggestions:
            lines.append("")
            lines.extend(f"    {line}" for line in text.splitlines())
    return "\n".join(lines)
