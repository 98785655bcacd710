"""``loyalty-agent doctor``: every check a technician would do by hand, each with what to do.

Files (data folder, database, keys, certificates), devices (configured nodes present), the
broker (name resolution, TCP, TLS handshake with the configured CA and client certificate,
certificate expiry), the clock (kernel NTP sync flag), disk space and the PIN bundle. Nothing is
changed: the database is opened read-only.
"""
from __future__ import annotations

import socket
import sqlite3
import ssl
import shutil
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from agent.ops.device_states import camera_node_missing

OK, WARN, FAIL = "ok", "warning", "failing"


@dataclass(frozen=True)
class Check:
    code: str
    title: str
    status: str  # ok | warning | failing
    message: str
    remedy: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def run_checks(settings: Any, *, timeout: float = 5.0, network: bool = True) -> list[Check]:
    """Every check; ``network=False`` skips the broker (the console shows the live link instead)."""
    return [_data_dir(settings), *_database(settings), *_keys(settings), *_devices(settings),
            *(_broker(settings, timeout) if network else []), _clock(), _disk(settings)]


def _data_dir(settings: Any) -> Check:
    folder = settings.storage.data_dir
    if not folder.is_dir():
        return Check("data_dir", "Carpeta de datos", FAIL, f"{folder} no existe",
                     "Revise --data-dir / storage.data_dir; el agente la crea al iniciar (loyalty-agent run).")
    probe = folder / ".doctor-write-test"
    try:
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as exc:
        return Check("data_dir", "Carpeta de datos", FAIL, f"{folder} no se puede escribir ({exc.strerror})",
                     "Dueño de la carpeta: el usuario del servicio (chown -R loyalty-agent /var/lib/loyalty-agent).")
    return Check("data_dir", "Carpeta de datos", OK, f"{folder} existe y se puede escribir")


def _database(settings: Any) -> list[Check]:
    path = settings.storage.database_path
    if not path.is_file():
        return [Check("database", "Base de datos", FAIL, f"{path} no existe",
                      "Inicie el agente una vez o cree un token (loyalty-agent token create) para crearla.")]
    try:
        conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=5)
        try:
            result = conn.execute("PRAGMA quick_check").fetchone()[0]
            bundle = _bundle_row(conn)
        finally:
            conn.close()
    except sqlite3.Error as exc:
        return [Check("database", "Base de datos", FAIL, f"no se puede abrir: {exc}",
                      "Revise permisos y espacio en disco; restaure la copia de seguridad si está dañada.")]
    checks = [Check("database", "Base de datos", OK if result == "ok" else FAIL,
                    "íntegra (quick_check)" if result == "ok" else f"dañada: {result}",
                    None if result == "ok" else "Detenga el agente y restaure la última copia de seguridad.")]
    checks.append(_bundle(settings, bundle))
    return checks


def _bundle_row(conn: sqlite3.Connection) -> tuple[int, str] | None:
    try:
        return conn.execute("SELECT version, expires_at FROM cards_pin_bundle WHERE one = 1").fetchone()
    except sqlite3.OperationalError:
        return None


def _pins_in_use(settings: Any) -> bool:
    cards = settings.cards
    return bool(cards.pcsc.enabled or cards.magstripe.evdev_device or cards.magstripe.serial_port
                or cards.pins.bundle_public_key)


def _bundle(settings: Any, row: tuple[int, str] | None) -> Check:
    title = "Paquete de PIN de playeros"
    if row is None:
        status = FAIL if _pins_in_use(settings) else OK
        return Check("pin_bundle", title, status, "no hay paquete instalado" + ("" if status == FAIL else
                     " (no hace falta: no hay lectores de tarjetas configurados)"),
                     "loyalty-agent pins import ARCHIVO, o espere el envío de la oficina central." if status == FAIL else None)
    version, expires_at = row
    left = (datetime.fromisoformat(expires_at) - datetime.now(timezone.utc)).total_seconds()
    if left <= 0:
        return Check("pin_bundle", title, FAIL, f"versión {version} venció el {expires_at[:10]}",
                     "Pida un paquete nuevo a la oficina central; mientras tanto se rechaza todo PIN.")
    if left < 3 * 86400:
        return Check("pin_bundle", title, WARN, f"versión {version} vence el {expires_at[:10]}",
                     "Pida el paquete siguiente a la oficina central antes de que venza.")
    return Check("pin_bundle", title, OK, f"versión {version}, vence el {expires_at[:10]}")


def _keys(settings: Any) -> list[Check]:
    checks = []
    if _pins_in_use(settings):
        pepper = settings.storage.key_dir / "pin_pepper.key"
        checks.append(Check("pin_key", "Clave de PIN de la estación", OK if pepper.is_file() else FAIL,
                            str(pepper) + (" presente" if pepper.is_file() else " no existe"),
                            None if pepper.is_file() else "Instale la clave que entrega la oficina central."))
    mqtt = settings.mqtt
    for name, path in (("ca_file", mqtt.ca_file), ("cert_file", mqtt.cert_file), ("key_file", mqtt.key_file)):
        if path is None:
            continue
        readable = Path(path).is_file()
        checks.append(Check(f"mqtt_{name}", f"mqtt.{name}", OK if readable else FAIL,
                            f"{path} " + ("presente" if readable else "no existe o no se puede leer"),
                            None if readable else "Copie el archivo de la oficina central (permisos 0640, grupo del servicio)."))
    return checks


def _devices(settings: Any) -> list[Check]:
    wanted: list[tuple[str, str, bool]] = []
    if settings.fingerprint.enabled and not settings.fingerprint.simulated:
        wanted.append(("fingerprint", settings.fingerprint.port, Path(settings.fingerprint.port).exists()))
    if settings.cards.magstripe.serial_port:
        wanted.append(("card_reader_serial", settings.cards.magstripe.serial_port,
                       Path(settings.cards.magstripe.serial_port).exists()))
    if settings.cards.magstripe.evdev_device:
        wanted.append(("card_reader_magstripe", settings.cards.magstripe.evdev_device,
                       Path(settings.cards.magstripe.evdev_device).exists()))
    if settings.idcard.enabled:
        wanted.append(("camera", settings.idcard.camera, not camera_node_missing(settings.idcard.camera)))
    scanners = settings.idcard.scanners
    for name, node in (("idcard_mrz_reader", scanners.mrz_serial_port), ("idcard_wedge_scanner", scanners.wedge_device)):
        if node:
            wanted.append((name, node, Path(node).exists()))
    checks = [Check(f"device_{name}", f"Dispositivo {name}", OK if present else FAIL,
                    f"{node} " + ("presente" if present else "no existe"),
                    None if present else "Conecte el equipo; `loyalty-agent devices` muestra lo enchufado y su nombre estable.")
              for name, node, present in wanted]
    if settings.cards.pcsc.enabled:
        checks.append(_pcscd())
    return checks


def _pcscd() -> Check:
    try:
        from smartcard import scard

        rc, ctx = scard.SCardEstablishContext(scard.SCARD_SCOPE_USER)
        if rc != scard.SCARD_S_SUCCESS:
            raise OSError(scard.SCardGetErrorMessage(rc))
        rc, readers = scard.SCardListReaders(ctx, [])
        scard.SCardReleaseContext(ctx)
    except Exception as exc:  # noqa: BLE001 - pyscard raises many kinds
        return Check("pcscd", "Servicio pcscd", FAIL, f"no responde ({exc})",
                     "sudo systemctl enable --now pcscd; instale pcscd y libccid.")
    names = ", ".join(readers) if rc == scard.SCARD_S_SUCCESS and readers else "ningún lector"
    return Check("pcscd", "Servicio pcscd", OK if readers else WARN, f"responde; lectores: {names}",
                 None if readers else "Conecte el lector; si es un ACR122U, desactive el módulo pn533 (firmware-notes).")


def _broker(settings: Any, timeout: float) -> list[Check]:
    from agent.queue.publisher import parse_url

    if not settings.mqtt.url:
        return [Check("broker", "Oficina central (MQTT)", WARN, "mqtt.url no configurado: la estación acumula eventos",
                      "Configure [mqtt] url con el broker de la oficina central.")]
    host, port, tls = parse_url(settings.mqtt.url)
    try:
        sock = socket.create_connection((host, port), timeout=timeout)
    except socket.gaierror:
        return [Check("broker", "Oficina central (MQTT)", FAIL, f"no se resuelve el nombre {host}",
                      "Revise DNS (/etc/resolv.conf) o use la IP del broker.")]
    except OSError as exc:
        return [Check("broker", "Oficina central (MQTT)", FAIL, f"{host}:{port} no responde ({exc.strerror or exc})",
                      "Revise la red, el firewall (puerto saliente) y que el broker esté en servicio.")]
    with sock:
        checks = [Check("broker", "Oficina central (MQTT)", OK, f"{host}:{port} acepta conexiones TCP")]
        if tls:
            checks.append(_tls(settings.mqtt, sock, host))
    return checks


def _tls(mqtt: Any, sock: socket.socket, host: str) -> Check:
    context = ssl.create_default_context(cafile=str(mqtt.ca_file) if mqtt.ca_file else None)
    try:
        if mqtt.cert_file:
            context.load_cert_chain(str(mqtt.cert_file), str(mqtt.key_file) if mqtt.key_file else None)
        with context.wrap_socket(sock, server_hostname=host) as tls:
            peer = tls.getpeercert()
    except ssl.SSLCertVerificationError as exc:
        return Check("broker_tls", "TLS con la oficina central", FAIL, f"certificado del broker rechazado: {exc.verify_message}",
                     "Revise mqtt.ca_file (la CA de la oficina central), el nombre del host y la hora de la estación.")
    except (ssl.SSLError, OSError) as exc:
        return Check("broker_tls", "TLS con la oficina central", FAIL, f"falló el saludo TLS: {exc}",
                     "Revise mqtt.cert_file / mqtt.key_file (certificado de esta estación) y su vigencia.")
    expires = datetime.fromtimestamp(ssl.cert_time_to_seconds(peer["notAfter"]), timezone.utc)
    days = (expires - datetime.now(timezone.utc)).days
    status = OK if days >= 14 else WARN
    return Check("broker_tls", "TLS con la oficina central", status,
                 f"saludo TLS correcto; el certificado del broker vence en {days} días",
                 None if status == OK else "Avise a la oficina central: su certificado vence pronto.")


def _clock() -> Check:
    from agent.clock import kernel_clock_synchronized

    if kernel_clock_synchronized():
        return Check("clock", "Reloj", OK, "sincronizado (NTP)")
    return Check("clock", "Reloj", WARN, "el núcleo no lo da por sincronizado",
                 "Active NTP (timedatectl set-ntp true) o systemd-timesyncd; con la hora mal fallan TLS y los vencimientos.")


def _disk(settings: Any) -> Check:
    folder = settings.storage.data_dir if settings.storage.data_dir.exists() else Path(".")
    free = shutil.disk_usage(folder).free
    limit = settings.monitoring.disk_free_min_bytes
    status = OK if free >= limit else FAIL
    return Check("disk", "Espacio en disco", status, f"{free // (1024 * 1024)} MB libres",
                 None if status == OK else "Libere espacio: la base de datos y la cola de sincronización lo necesitan.")


def render(checks: list[Check]) -> str:
    marks = {OK: "✔", WARN: "⚠", FAIL: "✘"}
    lines = []
    for check in checks:
        lines.append(f"{marks[check.status]} {check.title}: {check.message}")
        if check.remedy:
            lines.append(f"    qué hacer: {check.remedy}")
    failing = sum(c.status == FAIL for c in checks)
    warnings = sum(c.status == WARN for c in checks)
    lines.append(f"\n{len(checks)} comprobaciones: {failing} con falla, {warnings} advertencias")
    return "\n".join(lines)
