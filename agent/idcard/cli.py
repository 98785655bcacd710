"""``loyalty-agent idcard decode --json FILE...``: one JSON object per line per file.

Only the parser lives here; the decoder (OpenCV, zxing-cpp) is imported when the command runs,
so building the agent's CLI never loads it.
"""
from __future__ import annotations

import argparse
import sys

from agent.idcard.config import STILL_BUDGET_MS


def _decode(args: argparse.Namespace) -> int:
    from agent.idcard.decode_files import run_decode

    return run_decode(args.files, args.json, args.budget_ms, sys.stdout)


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Register ``idcard`` on the agent's CLI; the handler is stored in ``func``."""
    idcard = subparsers.add_parser("idcard", help="herramientas de cédula (código de barras)")
    commands = idcard.add_subparsers(dest="idcard_command", required=True)
    decode = commands.add_parser("decode", help="leer códigos de documentos de identidad desde imágenes")
    decode.add_argument("files", nargs="+", metavar="FILE")
    decode.add_argument("--json", action="store_true", help="un objeto JSON por línea")
    decode.add_argument("--budget-ms", type=float, default=STILL_BUDGET_MS,
                        help="presupuesto de tiempo de CPU por imagen (ms)")
    decode.set_defaults(func=_decode)
    return idcard


def main(argv: list[str] | None = None) -> int:
    """Stand-alone entry: ``python -m agent.idcard.cli idcard decode ...``."""
    parser = argparse.ArgumentParser(prog="loyalty-agent")
    add_parser(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
