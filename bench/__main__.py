"""Run every benchmark module (``bench/bench_*.py``) in turn: ``make bench``.

Each module has a ``main(argv) -> int``; pass a name to run only that one:
``python -m bench customers``.
"""
from __future__ import annotations

import importlib
import pkgutil
import sys
from pathlib import Path


def main(argv: list[str]) -> int:
    wanted = set(argv)
    names = sorted(
        m.name for m in pkgutil.iter_modules([str(Path(__file__).parent)]) if m.name.startswith("bench_")
    )
    status = 0
    for name in names:
        short = name.removeprefix("bench_")
        if wanted and short not in wanted:
            continue
        print(f"\n=== bench {short} ===", flush=True)
        module = importlib.import_module(f"bench.{name}")
        status |= module.main([])
    return status


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
