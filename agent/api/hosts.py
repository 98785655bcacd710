"""Answer only requests addressed to this agent: the Host header must be a loopback name, the
configured listen address or one of ``api.allowed_hosts``; anything else is 421.

Why: a web page on attacker.example can point its own name at 127.0.0.1 (DNS rebinding) and
then read the agent as "same origin". The browser still sends ``Host: attacker.example``, which
is what this refuses. A request without a Host header (HTTP/1.0 tools) is not a browser's.
"""
from __future__ import annotations

import json

from starlette.types import ASGIApp, Receive, Scope, Send

from agent.errors import prefers_english

LOOPBACK_NAMES = frozenset({"localhost", "127.0.0.1", "::1", "localhost.localdomain", "ip6-localhost"})


def host_name(header: str) -> str:
    """'127.0.0.1:8787' -> '127.0.0.1', '[::1]:8787' -> '::1', 'LocalHost.' -> 'localhost'."""
    value = header.strip().lower()
    if value.startswith("["):
        return value[1:value.find("]")] if "]" in value else value
    if value.count(":") == 1:
        value = value.split(":", 1)[0]
    return value.rstrip(".")


class HostCheck:
    def __init__(self, app: ASGIApp, allowed: list[str]) -> None:
        self.app = app
        self.allowed = LOOPBACK_NAMES | {host_name(h) for h in allowed if h and h not in ("0.0.0.0", "::")}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            headers = dict(scope.get("headers") or [])
            host = headers.get(b"host")
            if host is not None and host_name(host.decode("latin-1")) not in self.allowed:
                await self._refuse(scope, send, headers)
                return
        await self.app(scope, receive, send)

    async def _refuse(self, scope: Scope, send: Send, headers: dict[bytes, bytes]) -> None:
        english = prefers_english(headers.get(b"accept-language", b"").decode("latin-1"))
        message = ("This agent does not answer to that host name." if english
                   else "Este agente no responde a ese nombre de host.")
        body = json.dumps({"type": "urn:loyalty-agent:problem:misdirected_request", "title": message,
                           "status": 421, "detail": message, "code": "misdirected_request",
                           "instance": scope.get("path"), "errors": []}, ensure_ascii=False).encode()
        await send({"type": "http.response.start", "status": 421,
                    "headers": [(b"content-type", b"application/problem+json"),
                                (b"content-length", str(len(body)).encode())]})
        await send({"type": "http.response.body", "body": body})
