"""``GET /docs``: the API reference rendered on the server from the agent's own OpenAPI document.

FastAPI's Swagger UI loads its script from a CDN, which a station offline (or behind a strict
firewall) cannot reach; this page needs nothing but the agent. The raw document stays at
``/openapi.json``.
"""
from __future__ import annotations

import html
import json
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

router = APIRouter(include_in_schema=False)

_STYLE = """body{font-family:system-ui,sans-serif;max-width:64rem;margin:0 auto;padding:1rem;color:#222}
h2{border-bottom:2px solid #ddd;margin-top:2rem}.op{border:1px solid #e3e3e3;border-radius:4px;margin:.8rem 0;padding:.5rem .8rem}
.method{display:inline-block;min-width:4.5rem;font-weight:bold}.get{color:#1f6feb}.post{color:#17692b}.patch{color:#9a6700}
.delete{color:#b42318}table{border-collapse:collapse}td,th{padding:.2rem .5rem;border-bottom:1px solid #eee;text-align:left}
code,pre{background:#f6f6f6}pre{padding:.5rem;overflow:auto;max-height:20rem}"""


def _ref(schema: dict[str, Any] | None) -> str:
    if not schema:
        return ""
    if "$ref" in schema:
        name = schema["$ref"].rsplit("/", 1)[-1]
        return f'<a href="#schema-{html.escape(name)}">{html.escape(name)}</a>'
    if schema.get("type") == "array":
        return f"lista de {_ref(schema.get('items'))}"
    if "anyOf" in schema:
        return " o ".join(_ref(s) for s in schema["anyOf"])
    return html.escape(str(schema.get("type", "objeto")))


def _operation(path: str, method: str, op: dict[str, Any]) -> str:
    e = html.escape
    params = "".join(
        f"<tr><td><code>{e(p['name'])}</code></td><td>{e(p['in'])}</td><td>{'sí' if p.get('required') else 'no'}</td>"
        f"<td>{_ref(p.get('schema'))}</td><td>{e(p.get('description', ''))}</td></tr>" for p in op.get("parameters", []))
    body = op.get("requestBody", {}).get("content", {})
    body_html = "".join(f"<p>Cuerpo <code>{e(kind)}</code>: {_ref(spec.get('schema'))}</p>" for kind, spec in body.items())
    responses = "".join(f"<tr><td><code>{e(code)}</code></td><td>{e(r.get('description', ''))}</td></tr>"
                        for code, r in op.get("responses", {}).items())
    secured = "requiere token" if op.get("security") else "sin token"
    return (f'<div class="op" id="{e(method)}-{e(path)}"><span class="method {e(method)}">{e(method.upper())}</span>'
            f"<code>{e(path)}</code> · {e(op.get('summary', ''))} <small>({secured})</small>"
            f"<p>{e(op.get('description', ''))}</p>"
            + (f"<table><tr><th>parámetro</th><th>en</th><th>obligatorio</th><th>tipo</th><th></th></tr>{params}</table>"
               if params else "")
            + body_html + f"<table><tr><th>respuesta</th><th></th></tr>{responses}</table></div>")


def render_docs(spec: dict[str, Any]) -> str:
    e = html.escape
    by_tag: dict[str, list[str]] = {}
    for path, ops in spec.get("paths", {}).items():
        for method, op in ops.items():
            tag = (op.get("tags") or ["otros"])[0]
            by_tag.setdefault(tag, []).append(_operation(path, method, op))
    sections = "".join(f"<h2>{e(tag)}</h2>{''.join(ops)}" for tag, ops in by_tag.items())
    schemas = "".join(f'<h3 id="schema-{e(name)}">{e(name)}</h3><pre>{e(json.dumps(schema, indent=1, ensure_ascii=False))}</pre>'
                      for name, schema in spec.get("components", {}).get("schemas", {}).items())
    info = spec.get("info", {})
    return (f'<!doctype html><html lang="es"><head><meta charset="utf-8"><title>{e(info.get("title", "API"))}</title>'
            f"<style>{_STYLE}</style></head><body><h1>{e(info.get('title', 'API'))} {e(info.get('version', ''))}</h1>"
            f"<p>{e(info.get('description', ''))}</p><p>Documento OpenAPI: <a href=\"/openapi.json\">/openapi.json</a> · "
            f'<a href="/">consola</a></p>{sections}<h2>Esquemas</h2>{schemas}</body></html>')


@router.get("/docs", response_class=HTMLResponse)
async def docs(request: Request) -> HTMLResponse:
    return HTMLResponse(render_docs(request.app.openapi()),
                        headers={"Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'"})
