"""The technician console: ``GET /`` on the station's own browser, server-rendered Spanish HTML.

Station, version, health and its reasons, each device with a "Probar" button, sync counts
with "Sincronizar" and a progress bar, recent alerts and the configuration check. Everything
is served by the agent (script and style included): it works with the station offline.

Only from the station itself (loopback): the console needs no token, so it must not be
reachable from the LAN when ``api.host`` is opened for a POS elsewhere. Its actions are POSTs
that must carry an ``X-Console`` header, which a page from another site cannot add
(cross-site request forgery from the station's browser), and the page forbids framing.
"""
from __future__ import annotations

import html
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, JSONResponse, Response
from starlette.concurrency import run_in_threadpool

from agent import __version__
from agent.api.console_assets import CONSOLE_CSS, CONSOLE_JS
from agent.api.metrics import is_loopback
from agent.ops.health import assess

router = APIRouter(include_in_schema=False)

STATUS_ES = {"ok": "Estado: OK", "degraded": "Estado: DEGRADADO (funciona, revisar)",
             "failing": "Estado: FALLANDO (se rechazan operaciones)"}
STATE_ES = {"up": "conectado", "down": "no disponible", "unknown": "sin datos aún"}
SECURITY_HEADERS = {"Content-Security-Policy": "default-src 'self'; style-src 'self'; script-src 'self'; "
                                               "frame-ancestors 'none'; form-action 'none'",
                    "X-Frame-Options": "DENY", "Cache-Control": "no-store", "Referrer-Policy": "no-referrer"}


def _refuse(request: Request, *, action: bool = False) -> Response | None:
    """Why this request may not use the console, as a response; ``None`` when it may."""
    if not is_loopback(request):
        return HTMLResponse("<h1>Consola disponible solo en la propia estación (127.0.0.1)</h1>", status_code=403)
    if action and request.headers.get("x-console") != "1":
        return JSONResponse({"message": "falta la cabecera X-Console"}, status_code=403)
    return None


def _station(request: Request) -> Any:
    return request.app.state.station


def _sync_counts(station: Any) -> dict[str, Any]:
    status = station.sync.status()
    return {"pending": status["pending"], "delivered": status["delivered"], "confirmed": status["confirmed"],
            "broker": status["broker"]["state"]}


def _broker_es(state: str) -> str:
    return {"connected": "conectado", "connecting": "conectando", "disconnected": "desconectado",
            "disabled": "no configurada"}.get(state, state)


def state(station: Any) -> dict[str, Any]:
    report = assess(station)
    sync = _sync_counts(station)
    return {"status": report.status, "status_es": STATUS_ES[report.status], "sync": sync,
            "broker": _broker_es(sync["broker"]), "reasons": [r.as_dict() for r in report.reasons],
            "devices": report.devices_dict()}


def render_page(station: Any) -> str:
    from agent.logsetup import recent_alerts
    from agent.ops.doctor import run_checks

    report = assess(station)
    sync = _sync_counts(station)
    settings = station.settings
    e = html.escape
    reasons = "".join(f"<li>{e(r.message())} <code>{e(r.code)}</code></li>" for r in report.reasons) or "<li>Sin avisos.</li>"
    devices = "".join(
        f'<tr id="device-{e(d.id)}"><td>{e(d.label)}{" (simulado)" if d.simulated else ""}</td>'
        f'<td class="{e(d.state)}">{e(STATE_ES.get(d.state, d.state))}{f" ({e(d.reason)})" if d.reason else ""}</td>'
        f'<td><button class="test" data-device="{e(d.id)}">Probar</button></td>'
        f'<td><span class="result" id="result-{e(d.id)}"></span></td></tr>'
        for d in report.devices) or '<tr><td colspan="4">Ningún dispositivo configurado.</td></tr>'
    alerts = "".join(f"<li><code>{e(a['at'])}</code> {e(a['level'])}: {e(a['message'])}</li>"
                     for a in recent_alerts().items()[:20]) or "<li>Sin alertas desde el inicio.</li>"
    checks = "".join(f'<li class="check-{e(c.status)}">{e(c.title)}: {e(c.message)}'
                     f'{f"<div class=remedy>Qué hacer: {e(c.remedy)}</div>" if c.remedy else ""}</li>'
                     for c in run_checks(settings, network=False))
    return f"""<!doctype html>
<html lang="es"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width">
<title>Estación {e(settings.station.id)} · agente de fidelización</title>
<link rel="stylesheet" href="/console/console.css"><script src="/console/console.js" defer></script></head>
<body>
<header><h1>Estación {e(settings.station.id)}</h1>
<p>Agente de fidelización {e(__version__)} · país {e(settings.station.country)} · zona {e(settings.station.timezone)}
 · datos <code>{e(str(settings.storage.data_dir))}</code></p>
<p id="health" class="status-{e(report.status)}">{e(STATUS_ES[report.status])}</p></header>
<section id="reasons"><h2>Avisos</h2><ul>{reasons}</ul></section>
<section id="devices"><h2>Dispositivos</h2><table>
<tr><th>Dispositivo</th><th>Estado</th><th></th><th>Resultado de la prueba</th></tr>{devices}</table></section>
<section id="sync"><h2>Sincronización con la oficina central</h2>
<p>Oficina central: <span id="broker">{e(_broker_es(sync["broker"]))}</span></p>
<p>Pendientes <b id="sync-pending">{sync["pending"]}</b> · entregados sin confirmar <b id="sync-delivered">{sync["delivered"]}</b>
 · confirmados <b id="sync-confirmed">{sync["confirmed"]}</b></p>
<p><button id="sync-now">Sincronizar</button> <progress id="sync-progress" max="100" value="0"></progress>
 <span id="sync-text"></span></p></section>
<section id="alerts"><h2>Alertas recientes</h2><ul>{alerts}</ul></section>
<section id="config"><h2>Revisión de la configuración</h2><ul>{checks}</ul></section>
<footer><p><a href="/docs">Documentación de la API</a> · <a href="/metrics">Métricas</a> ·
<a href="/v1/health">Salud (JSON)</a></p></footer>
</body></html>"""


@router.get("/", response_class=HTMLResponse)
async def console(request: Request) -> Response:
    refused = _refuse(request)
    if refused is not None:
        return refused
    page = await run_in_threadpool(render_page, _station(request))
    return HTMLResponse(page, headers=SECURITY_HEADERS)


@router.get("/console/console.js")
async def console_js() -> Response:
    return Response(CONSOLE_JS, media_type="text/javascript; charset=utf-8", headers={"Cache-Control": "no-cache"})


@router.get("/console/console.css")
async def console_css() -> Response:
    return Response(CONSOLE_CSS, media_type="text/css; charset=utf-8", headers={"Cache-Control": "no-cache"})


@router.get("/console/api/state")
async def console_state(request: Request) -> Response:
    refused = _refuse(request, action=True)
    return refused or JSONResponse(await run_in_threadpool(state, _station(request)), headers={"Cache-Control": "no-store"})


@router.post("/console/api/sync")
async def console_sync(request: Request) -> Response:
    refused = _refuse(request, action=True)
    if refused is not None:
        return refused
    station = _station(request)
    counts = await run_in_threadpool(_sync_counts, station)
    requested = station.sync.request_sync()
    message = ("sincronizando…" if requested else
               "no hay oficina central configurada (mqtt.url): los eventos esperan en la estación")
    return JSONResponse({"requested": requested, "unconfirmed": counts["pending"] + counts["delivered"],
                         "message": message})


@router.post("/console/api/devices/{device}/test")
async def console_device_test(request: Request, device: str) -> Response:
    from agent.ops.device_tests import run_device_test

    refused = _refuse(request, action=True)
    if refused is not None:
        return refused
    result = await run_in_threadpool(run_device_test, _station(request), device)
    return JSONResponse(result.as_dict())
