"""Run every benchmark module (``bench/bench_*.py``) in turn: ``make bench``.

Each module has a ``main(argv) -> int``; pass a name to run only that one, and options after
it go to that module: ``python -m bench customers --customers 100000``.
"""
from __future__ import annotations

import importlib
import pkgutil
import sys
from pathlib import Path


def main(argv: list[str]) -> int:
    first_option = next((i for i, arg in enumerate(argv) if arg.startswith("-")), len(argv))
    wanted, options = set(argv[:first_option]), argv[first_option:]
    if options and len(wanted) != 1:
        print("options need exactly one benchmark name: python -m bench NAME --option ...", file=sys.stderr)
        return 2
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
        status |= module.main(options)
    return status


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
