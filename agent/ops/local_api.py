"""Asking the running agent (its local API) what only it knows: broker link, devices, reasons."""
from __future__ import annotations

import http.client
import json
from typing import Any


def api_address(settings: Any) -> tuple[str, int]:
    """Where a tool on the station reaches the API (a wildcard listen address means loopback)."""
    host = settings.api.host
    return ("127.0.0.1" if host in ("0.0.0.0", "::", "") else host), settings.api.port


def fetch_health(settings: Any, timeout: float = 3.0) -> dict[str, Any] | None:
    """``GET /v1/health`` of the running agent, or ``None`` when nothing answers there."""
    host, port = api_address(settings)
    conn = http.client.HTTPConnection(host, port, timeout=timeout)
    try:
        conn.request("GET", "/v1/health", headers={"Accept-Language": "es"})
        response = conn.getresponse()
        body = response.read()
        if response.status != 200:
            return None
        data = json.loads(body)
        return data if isinstance(data, dict) and "status" in data else None
    except (OSError, ValueError, http.client.HTTPException):
        return None
    finally:
        conn.close()
