"""``loyalty-agent status``: the station from its database, and from the running agent when one
answers (broker link, devices, health reasons). Readable Spanish, or JSON for scripts."""
from __future__ import annotations

from typing import Any

from agent import __version__
from agent.drivers.transitions import describe_duration
from agent.ops.local_api import api_address, fetch_health

_STATUS_ES = {"ok": "OK", "degraded": "DEGRADADO (funciona, revisar)", "failing": "FALLANDO (rechaza operaciones)"}
_DEVICE_ES = {"up": "conectado", "down": "NO DISPONIBLE", "unknown": "sin datos aún"}
_BROKER_ES = {"connected": "conectado", "connecting": "conectando", "disconnected": "DESCONECTADO",
              "disabled": "no configurada (la estación trabaja sin conexión y acumula eventos)"}


def _read_store(conn: Any) -> dict[str, Any]:
    from agent.store.outbox import stats

    return {"schema_version": conn.execute("SELECT name FROM schema_migrations ORDER BY rowid DESC LIMIT 1").fetchone()[0],
            "customers": conn.execute("SELECT count(*) FROM customers").fetchone()[0], "outbox": stats(conn)}


def gather(settings: Any, db: Any) -> dict[str, Any]:
    store = db.read(_read_store)
    outbox = store["outbox"]
    host, port = api_address(settings)
    health = fetch_health(settings)
    return {
        "version": __version__, "station_id": settings.station.id, "data_dir": str(settings.storage.data_dir),
        "schema_version": store["schema_version"], "customers": store["customers"],
        # The fields of the earlier JSON status, kept for scripts that read them.
        "outbox": {"pending": outbox["pending"], "delivered": outbox["delivered"], "confirmed": outbox["confirmed"],
                   "pending_bytes": outbox["unconfirmed_bytes"], "oldest_unconfirmed_at": outbox["oldest_pending_at"],
                   "oldest_unconfirmed_age_s": outbox["oldest_pending_age_s"], "refused": outbox["refused"],
                   "last_success_at": outbox["last_success_at"]},
        "agent": {"running": health is not None, "address": f"{host}:{port}", "health": health},
    }


def _size(n: int | None) -> str:
    if n is None:
        return "?"
    for unit in ("B", "kB", "MB", "GB"):
        if n < 1000 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000  # type: ignore[assignment]
    return str(n)


def render(report: dict[str, Any]) -> str:
    lines = [f"Estación {report['station_id']} · agente {report['version']}",
             f"Datos: {report['data_dir']} (esquema {report['schema_version']}), {report['customers']} clientes"]
    agent = report["agent"]
    health = agent["health"]
    if health is None:
        lines.append(f"Agente: NO RESPONDE en {agent['address']} (¿está detenido? systemctl status loyalty-agent)")
    else:
        lines.append(f"Agente: en ejecución en {agent['address']} · estado {_STATUS_ES.get(health['status'], health['status'])}")
        for reason in health.get("reasons", []):
            lines.append(f"  - {reason['message']} [{reason['code']}]")
        sync = health.get("components", {}).get("sync", {})
        broker = sync.get("broker", "disabled")
        lines.append(f"Oficina central: {_BROKER_ES.get(broker, broker)}")
        devices = health.get("devices", {})
        lines.append("Dispositivos:" if devices else "Dispositivos: ninguno configurado")
        for device in devices.values():
            state = _DEVICE_ES.get(device["state"], device["state"])
            extra = f" ({device['reason']})" if device.get("reason") else ""
            simulated = " [simulado]" if device.get("simulated") else ""
            lines.append(f"  {device['label']}: {state}{extra}{simulated}")
    box = report["outbox"]
    oldest = box["oldest_unconfirmed_age_s"]
    lines.append(f"Sincronización: {box['pending']} pendientes, {box['delivered']} entregados sin confirmar, "
                 f"{box['confirmed']} confirmados; {_size(box['pending_bytes'])} sin confirmar"
                 + (f"; el más antiguo hace {describe_duration(oldest)}" if oldest is not None else ""))
    if box["refused"]:
        lines.append(f"  {box['refused']} operaciones rechazadas por cola llena (507)")
    return "\n".join(lines)
