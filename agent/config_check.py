"""What ``check-config`` verifies beyond the settings' syntax: the files and devices they name.

A configuration can be valid TOML and still fail at run time on every retry (a CA file that
does not exist, a key the service user cannot read, a device path that was typed wrong). Each
finding names the setting, never its value when the setting is a secret, and says what to do.

Errors stop ``check-config`` with exit code 2; warnings (a USB device that is unplugged right now,
which is normal for hot-pluggable devices) do not.
"""
from __future__ import annotations

import grp
import os
import pwd
import re
import stat
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlparse

from agent.config import Settings
from agent.drivers.extras import available

SERVICE_USER = "loyalty-agent"
# Device paths that exist only while a USB device is plugged in: missing is a warning.
_HOT_PLUGGABLE = re.compile(r"^/dev/(serial/by-(id|path)/|input/by-(id|path)/|v4l/by-(id|path)/|ttyUSB|ttyACM|"
                            r"video|input/event)")


@dataclass(frozen=True)
class Finding:
    level: str  # "error" or "aviso"
    setting: str
    message: str

    def line(self) -> str:
        return f"{self.level}: {self.setting}: {self.message}"


def check(settings: Settings) -> list[Finding]:
    findings: list[Finding] = []
    findings += _tls(settings)
    files = {"mqtt.ca_file": settings.mqtt.ca_file, "mqtt.cert_file": settings.mqtt.cert_file,
             "mqtt.key_file": settings.mqtt.key_file, "loyalty.rules_file": settings.loyalty.rules_file}
    for setting, path in files.items():
        if path is not None:
            findings += _readable_file(setting, Path(path))
    findings += _devices(settings)
    return findings


def _tls(settings: Settings) -> list[Finding]:
    mqtt = settings.mqtt
    if not mqtt.url:
        return []
    scheme = urlparse(mqtt.url).scheme
    tls_files = [name for name in ("ca_file", "cert_file", "key_file") if getattr(mqtt, name) is not None]
    found: list[Finding] = []
    if scheme == "mqtt" and tls_files:
        found.append(Finding("error", "mqtt.url", f"es mqtt:// (sin TLS) pero hay archivos TLS configurados "
                             f"({', '.join('mqtt.' + n for n in tls_files)}): use mqtts:// o quítelos"))
    if (mqtt.cert_file is None) != (mqtt.key_file is None):
        found.append(Finding("error", "mqtt.cert_file", "el certificado de la estación y su clave (mqtt.key_file) "
                             "van juntos: configure los dos o ninguno"))
    return found


def _readable_file(setting: str, path: Path) -> list[Finding]:
    try:
        info = path.stat()
    except FileNotFoundError:
        return [Finding("error", setting, f"el archivo {path} no existe")]
    except PermissionError:
        return [Finding("error", setting, f"no se puede llegar a {path} (permiso denegado en una carpeta)")]
    if not stat.S_ISREG(info.st_mode):
        return [Finding("error", setting, f"{path} no es un archivo")]
    who, readable = _readable_by_service(path, info)
    if not readable:
        return [Finding("error", setting, f"{who} no puede leer {path}: sudo chgrp {SERVICE_USER} {path} && "
                        f"sudo chmod g+r {path}")]
    return []


def _readable_by_service(path: Path, info: os.stat_result) -> tuple[str, bool]:
    """Whether the service user (when it exists and we are root) or we can read ``path``."""
    try:
        user = pwd.getpwnam(SERVICE_USER)
    except KeyError:
        return "este usuario", os.access(path, os.R_OK)
    if os.geteuid() != 0 and os.geteuid() != user.pw_uid:
        return "este usuario", os.access(path, os.R_OK)
    groups = {g.gr_gid for g in grp.getgrall() if SERVICE_USER in g.gr_mem} | {user.pw_gid}
    mode = info.st_mode
    if info.st_uid == user.pw_uid:
        ok = bool(mode & stat.S_IRUSR)
    elif info.st_gid in groups:
        ok = bool(mode & stat.S_IRGRP)
    else:
        ok = bool(mode & stat.S_IROTH)
    folders_ok = all(_traversable(folder, user.pw_uid, groups) for folder in path.parents)
    return f"el usuario {SERVICE_USER}", ok and folders_ok


def _traversable(folder: Path, uid: int, groups: set[int]) -> bool:
    info = folder.stat()
    if info.st_uid == uid:
        return bool(info.st_mode & stat.S_IXUSR)
    if info.st_gid in groups:
        return bool(info.st_mode & stat.S_IXGRP)
    return bool(info.st_mode & stat.S_IXOTH)


def _devices(settings: Settings) -> list[Finding]:
    if settings.devices.simulated:
        return []
    devices: dict[str, str] = {}
    if settings.fingerprint.enabled:
        devices["fingerprint.port"] = settings.fingerprint.port
    if settings.cards.magstripe.evdev_device:
        devices["cards.magstripe.evdev_device"] = settings.cards.magstripe.evdev_device
    if settings.cards.magstripe.serial_port:
        devices["cards.magstripe.serial_port"] = settings.cards.magstripe.serial_port
    if settings.idcard.enabled and settings.idcard.camera.startswith("/dev/"):
        devices["idcard.camera"] = settings.idcard.camera
    found = [_device(setting, path) for setting, path in devices.items()]
    if settings.cards.pcsc.enabled and not available("smartcard.scard"):
        found.append(Finding("error", "cards.pcsc.enabled", "falta pyscard (extra [pcsc]): sudo loyalty-station extras"))
    if settings.cards.magstripe.evdev_device and not available("evdev"):
        found.append(Finding("error", "cards.magstripe.evdev_device",
                             "falta evdev (extra [evdev]): sudo loyalty-station extras"))
    return [f for f in found if f is not None]


def _device(setting: str, path: str) -> Finding | None:
    if os.path.exists(path):
        return None
    if _HOT_PLUGGABLE.match(path):
        return Finding("aviso", setting, f"{path} no existe ahora (¿desconectado?); el agente lo espera y lo abre "
                       f"al conectarlo")
    return Finding("error", setting, f"{path} no existe (un puerto fijo: revise el nombre, o en una Raspberry Pi "
                   f"active el puerto serie con raspi-config)")
