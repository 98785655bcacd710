"""``loyalty-agent``: the command a technician types. Messages to people are Spanish;
machine output (tokens, JSON) goes to stdout, everything else to stderr.

One module per command group; each adds its subcommands with ``add_parser(subparsers)`` and
imports what its commands need only when they run, so ``--help`` stays fast.
"""
from __future__ import annotations

import argparse
import sys

from agent import __version__
from agent.cli import backup, customers, diagnostics, pins, run, simulate, sync, tokens
from agent.idcard import cli as idcard

# In the order ``--help`` lists them.
COMMAND_GROUPS = (run, diagnostics, tokens, customers, pins, idcard, sync, simulate, backup)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="loyalty-agent", description="Agente de fidelización de la estación")
    parser.add_argument("--version", action="version", version=f"loyalty-agent {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMANDO")
    for group in COMMAND_GROUPS:
        group.add_parser(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    from agent.config import ConfigError
    from agent.errors import AgentError
    from agent.settings_loader import preferred_language
    from agent.station import NoStationData

    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command == "customers" and not (args.q or args.number):
        parser.error("indique --number o -q")
    english = preferred_language() == "en"  # LOYALTY_LANG=en; Spanish otherwise
    try:
        return int(args.func(args) or 0)
    except ConfigError as exc:
        print(f"{'configuration error' if english else 'error de configuración'}: {exc.text()}", file=sys.stderr)
        return 2
    except NoStationData as exc:  # 2 like a configuration error: 1 means "not found" for lookups
        print(f"error: {exc.en if english else exc.es} ({exc.code})", file=sys.stderr)
        return 2
    except AgentError as exc:
        print(f"error: {exc.en if english else exc.es} ({exc.code})", file=sys.stderr)
        for err in exc.errors:
            if (err.es, err.code) != (exc.es, exc.code):  # the detail, unless it repeats the headline
                print(f"  {err.field}: {err.en if english else err.es} ({err.code})", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
