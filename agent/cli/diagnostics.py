"""``loyalty-agent status``, ``devices`` and ``doctor``: what a technician asks first.

Readable Spanish by default; ``--json`` for scripts and tickets. ``doctor`` exits 1 when a
check fails.
"""
from __future__ import annotations

import argparse
import json

from agent.cli.common import add_common_options, load


def cmd_status(args: argparse.Namespace) -> int:
    from agent.ops.status_report import gather, render
    from agent.station import open_database

    settings = load(args)
    db = open_database(settings, create=False)
    try:
        report = gather(settings, db)
    finally:
        db.close()
    print(json.dumps(report, indent=2, ensure_ascii=False) if args.json else render(report))
    return 0


def cmd_devices(args: argparse.Namespace) -> int:
    from agent.ops.usb_scan import render, scan

    found, source = scan(load(args))
    if args.json:
        print(json.dumps({"usb_source": source, "devices": [f.as_dict() for f in found]}, indent=2, ensure_ascii=False))
    else:
        print(render(found, source))
    return 0


def cmd_doctor(args: argparse.Namespace) -> int:
    from agent.ops.doctor import FAIL, render, run_checks

    checks = run_checks(load(args))
    print(json.dumps([c.as_dict() for c in checks], indent=2, ensure_ascii=False) if args.json else render(checks))
    return 1 if any(c.status == FAIL for c in checks) else 0


def add_parser(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    for name, func, text in (
        ("status", cmd_status, "estado de la estación: agente, oficina central, dispositivos, sincronización"),
        ("devices", cmd_devices, "dispositivos conectados (USB, serie, cámaras), cuáles están configurados"),
        ("doctor", cmd_doctor, "revisar archivos, dispositivos, broker y TLS, reloj, disco y PIN; qué hacer"),
    ):
        p = sub.add_parser(name, help=text)
        add_common_options(p)
        p.add_argument("--json", action="store_true", help="salida JSON")
        p.set_defaults(func=func)
