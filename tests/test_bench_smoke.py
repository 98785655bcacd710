"""Every benchmark still runs: each ``python -m bench NAME`` at a tiny size exits 0 and prints the
line of the baseline it measures in the same run.

Benchmarks broke silently when branches merged (a lost import, a stand-in missing a method that
the agent started calling); nothing ran them, so nothing noticed. The sizes here are tiny on
purpose: this checks that each benchmark still works end to end, not how fast anything is (speed
targets stay in ``bench/``; a target reported as missed at this size is not a failure, only a crash
or a non-zero exit is). Benchmarks needing PostgreSQL or Mosquitto start their own on free
loopback ports.

Left out: ``install`` runs only ``--help`` (a real run clones the repo and downloads from PyPI,
which CI must not depend on).
"""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from bench.common import SMOKE_ENV

REPO = Path(__file__).resolve().parent.parent

# name -> (tiny options, a fragment of the line that reports the benchmark's baseline)
TINY_RUNS: dict[str, tuple[list[str], str]] = {
    "cards": ([], "baseline plain HMAC-SHA256 check"),
    "close": (["--accounts", "1000", "--movements", "5000", "--stations", "10"], "floor: GROUP BY, month's lines"),
    "concurrency": (["--seconds", "1", "--customers", "500", "--rate", "50"], "1 client p50/p99 ms"),
    "customers": (["--customers", "1000", "--requests", "50"], "bare uvicorn (floor)"),
    "fingerprint": ([], "floor"),
    "fleet": (
        ["--stations", "5", "--agents", "1", "--workers", "2", "--duration", "3", "--processes", "1",
         "--burst-stations", "2", "--burst-events", "10", "--ack-timeout", "3"],
        "COPY of the same rows (floor)",
    ),
    "hardening": (["--parallel", "4", "--streams", "5"], "max_parallel_checks=16 (baseline)"),
    "hub_ingest": (["--stations", "20", "--events", "20", "--group", "2"], "COPY"),
    "idcard": (
        ["--frames-a", "3", "--frames-b", "3", "--frames-c", "3", "--frames-mrz", "3", "--frames-mrz-spec", "3",
         "--tesseract-frames", "1",
         "--bursts", "1", "--bursts-c", "1"],
        "raw zxing-cpp",
    ),
    "install": (["--help"], "usage: bench_install"),
    "loyalty": (["--cards", "1000", "--rules", "50", "--sales", "50"], "baseline: bare durable insert"),
    "metrics": (["--cards", "1000", "--rules", "50", "--sales", "50"], "baseline: POST /v1/sales, metrics off"),
    "sale_document": (["--customers", "1000", "--rules", "50", "--sales", "50"], "baseline: GET /v1/health"),
    "station": (["--customers", "1000", "--skip-upgrade"], "cp -a of the quiesced files (baseline)"),
    "sync": (
        ["--events", "50", "--kill-events", "50", "--configs", "1", "--kills", "0", "--kill-every", "0.1"],
        "bridge -> same fake head office",
    ),
}

# Generous: each takes 2-30 s here; a hang must fail, not stall the suite.
TIMEOUT_S = 150


def test_every_benchmark_module_has_a_tiny_run() -> None:
    modules = {p.stem.removeprefix("bench_") for p in (REPO / "bench").glob("bench_*.py")}
    assert modules == set(TINY_RUNS), "a benchmark was added or removed: give it a tiny run here"


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(TINY_RUNS))
def test_benchmark_runs_at_a_tiny_size(name: str) -> None:
    options, baseline_line = TINY_RUNS[name]
    run = subprocess.run(
        [sys.executable, "-m", "bench", name, *options],
        cwd=REPO, capture_output=True, text=True, timeout=TIMEOUT_S,
        env={**os.environ, SMOKE_ENV: "1"},  # a missed speed target is not a crash here
    )
    output = run.stdout + run.stderr
    assert run.returncode == 0, f"bench {name} exited {run.returncode}:\n{output[-4000:]}"
    assert "Traceback" not in output, f"bench {name} printed a traceback:\n{output[-4000:]}"
    assert baseline_line in output, f"bench {name} did not print its baseline ({baseline_line!r}):\n{output[-4000:]}"
