"""``loyalty-agent simulate swipe CARD [--reader R]``: pass a card on the running agent's
simulated reader (``devices.simulated = true``, as with ``make run``).

Prints the swipe session as JSON (its ``session_id`` is what ``POST /v1/swipes/{id}/pin`` and
the sale need). Talks to the local API with the token the agent writes for local tools at
start-up (``<data_dir>/keys/local-cli.token``).
"""
from __future__ import annotations

import argparse
import http.client
import json
import sys

from agent.cli.common import add_common_options, running_agent


def cmd_swipe(args: argparse.Namespace) -> int:
    agent = running_agent(args)
    if agent is None:
        return 2
    host, port, token = agent
    conn = http.client.HTTPConnection(host, port, timeout=10)
    try:
        conn.request("POST", "/v1/simulated/swipes", body=json.dumps({"card": args.card, "reader": args.reader}),
                     headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"})
        response = conn.getresponse()
        body = json.loads(response.read() or b"{}")
    except OSError as exc:
        print(f"el agente no responde en {host}:{port}: {exc}", file=sys.stderr)
        return 2
    finally:
        conn.close()
    if response.status == 404:
        print("el agente no está en modo simulado (devices.simulated = false): pase una tarjeta real",
              file=sys.stderr)
        return 2
    if response.status != 201:
        print(f"error: {body.get('detail')} ({body.get('code')})", file=sys.stderr)
        return 1
    print(json.dumps(body, ensure_ascii=False))
    return 0


def add_parser(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = subparsers.add_parser("simulate", help="dispositivos simulados (modo simulado, make run)")
    sub = p.add_subparsers(dest="device", required=True, metavar="DISPOSITIVO")
    swipe = sub.add_parser("swipe", help="pasar una tarjeta por el lector simulado del agente en ejecución")
    swipe.add_argument("card", metavar="CARD", help="número de tarjeta, UID hex o pista ISO 7813")
    swipe.add_argument("--reader", default="simulated", help="nombre del lector (ver cards.pos_for_reader)")
    add_common_options(swipe)
    swipe.set_defaults(func=cmd_swipe)
