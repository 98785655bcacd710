"""The latency floor: a bare uvicorn ASGI endpoint answering a small JSON, no framework."""
from __future__ import annotations

import sys

import uvicorn

BODY = b'{"id":"00000000-0000-7000-8000-000000000000","document":{"country":"CL","type":"RUT","number":"123456785"}}'


async def app(scope, receive, send):  # type: ignore[no-untyped-def]
    if scope["type"] != "http":
        return
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(BODY)).encode())]})
    await send({"type": "http.response.body", "body": BODY})


if __name__ == "__main__":
    uvicorn.run(app, host="127.0.0.1", port=int(sys.argv[1]), log_level="warning", access_log=False)
