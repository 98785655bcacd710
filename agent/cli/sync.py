"""``loyalty-agent sync``: ask the running agent to sync now and show progress until done.

It talks to the local API with the token the agent writes for local tools at start-up
(``<data_dir>/keys/local-cli.token``, readable only by the service user).
"""
from __future__ import annotations

import argparse
import http.client
import json
import sys
import time
from typing import Any

from agent.cli.common import add_common_options, running_agent


def _request(host: str, port: int, token: str, method: str, path: str) -> dict[str, Any]:
    conn = http.client.HTTPConnection(host, port, timeout=10)
    try:
        conn.request(method, path, headers={"Authorization": f"Bearer {token}"})
        response = conn.getresponse()
        body = json.loads(response.read() or b"{}")
    finally:
        conn.close()
    if response.status >= 400:
        raise RuntimeError(body.get("detail") or f"HTTP {response.status}")
    return body


def _bar(done: int, total: int, width: int = 30) -> str:
    """
    >>> _bar(5, 10, 10)
    '[#####.....]  50%'
    """
    share = 1.0 if total == 0 else done / total
    filled = int(share * width)
    return f"[{'#' * filled}{'.' * (width - filled)}] {share * 100:3.0f}%"


def cmd_sync(args: argparse.Namespace) -> int:
    agent = running_agent(args)
    if agent is None:
        return 2
    host, port, token = agent
    try:
        first = _request(host, port, token, "POST", "/v1/sync")
    except (OSError, RuntimeError) as exc:
        print(f"el agente no responde en {host}:{port}: {exc}", file=sys.stderr)
        return 2
    if not first["requested"]:
        print("no hay oficina central configurada (mqtt.url): los eventos quedan en cola local", file=sys.stderr)
        return 1
    start_unconfirmed = first["status"]["pending"] + first["status"]["delivered"]
    deadline = time.monotonic() + args.timeout
    status = first["status"]
    while True:
        left = status["pending"] + status["delivered"]
        total = max(start_unconfirmed, left)
        print(f"\r{_bar(total - left, total)} {left} por confirmar, broker {status['broker']['state']}   ",
              end="", file=sys.stderr, flush=True)
        if left == 0:
            print("\nsincronizado", file=sys.stderr)
            return 0
        if time.monotonic() > deadline:
            print(f"\nquedan {left} eventos sin confirmar (último éxito: {status['last_success_at']})", file=sys.stderr)
            return 1
        time.sleep(0.5)
        status = _request(host, port, token, "GET", "/v1/sync")


def add_parser(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = subparsers.add_parser("sync", help="sincronizar ahora con la oficina central y mostrar el avance")
    add_common_options(p)
    p.add_argument("--timeout", type=float, default=120.0, help="segundos a esperar la confirmación")
    p.set_defaults(func=cmd_sync)
