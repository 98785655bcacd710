"""Clean install to a healthy agent: the README's ``make run`` in a fresh clone, from PyPI.

A fresh ``git clone`` of the committed HEAD, an empty pip cache and no local package mirrors
(pip's configuration files are switched off), then ``make run``: the time until ``/v1/health``
answers, and the bytes pip downloaded (the size of its emptied HTTP cache afterwards). The
baseline in the same run is ``pip download`` of the same hashed lock into another empty cache:
the network floor that any install has to pay. The bytes are what pip itself reports downloading
("Downloading NAME (SIZE)", printed because PIP_VERBOSE raises its verbosity past make's -q).

``python -m bench install`` (needs access to PyPI; downloads about 100 MB twice).
"""
from __future__ import annotations

import argparse
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

from bench.common import free_port

REPO = Path(__file__).resolve().parent.parent


def clean_env(cache: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PIP_", "LOYALTY_AGENT_"))}
    env.update(PIP_CONFIG_FILE=os.devnull, PIP_CACHE_DIR=str(cache), PIP_DISABLE_PIP_VERSION_CHECK="1",
               PIP_VERBOSE="2")
    if "PIP_CERT" in os.environ:
        env["PIP_CERT"] = os.environ["PIP_CERT"]
    return env


_UNITS = {"bytes": 1, "kB": 1e3, "MB": 1e6, "GB": 1e9}


def downloaded_bytes(log: str) -> int:
    """Sum of pip's "Downloading NAME (12.3 MB)" lines."""
    sizes = re.findall(r"Downloading \S+ \(([\d.]+) (bytes|kB|MB|GB)\)", log)
    return int(sum(float(n) * _UNITS[u] for n, u in sizes))


def folder_bytes(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())


def install_to_healthy(work: Path) -> tuple[float, int, int, str]:
    clone = work / "clone"
    subprocess.run(["git", "clone", "--quiet", "--no-hardlinks", str(REPO), str(clone)], check=True)
    cache = work / "cache-install"
    port = free_port()
    env = clean_env(cache) | {"LOYALTY_AGENT_API__PORT": str(port), "LOYALTY_AGENT_STORAGE__DATA_DIR": str(work / "data")}
    started = time.perf_counter()
    log = open(work / "make-run.log", "wb")
    proc = subprocess.Popen(["make", "run"], cwd=clone, env=env, stdout=log, stderr=log, start_new_session=True)
    try:
        while True:
            if proc.poll() is not None:
                raise SystemExit(f"make run exited {proc.returncode}: see {work / 'make-run.log'}")
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/v1/health", timeout=2) as answer:
                    version = json.load(answer)["version"]
                break
            except OSError:
                time.sleep(0.5)
        seconds = time.perf_counter() - started
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(60)
    log.close()
    return seconds, downloaded_bytes((work / "make-run.log").read_text(errors="replace")), \
        folder_bytes(clone / ".venv"), version


def download_floor(work: Path) -> tuple[float, int]:
    cache = work / "cache-download"
    started = time.perf_counter()
    subprocess.run([sys.executable, "-m", "pip", "download", "-q", "--no-deps", "--only-binary", ":all:",
                    "--require-hashes", "-r", str(REPO / "requirements/station.lock"), "-d", str(work / "wheels")],
                   env=clean_env(cache), check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - started, folder_bytes(work / "wheels")


def main(argv: list[str]) -> int:
    argparse.ArgumentParser(prog="bench_install").parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="bench-install-") as tmp:
        work = Path(tmp)
        seconds, downloaded, venv, version = install_to_healthy(work)
        floor_s, floor_bytes = download_floor(work)
    print(f"{'what':52} {'seconds':>8} {'MB':>8}")
    print(f"{'fresh clone: make run until /v1/health (' + version + ')':52} {seconds:8.1f} {downloaded / 1e6:8.1f}")
    print(f"{'  the venv it built':52} {'':8} {venv / 1e6:8.1f}")
    print(f"{'pip download of the station lock (baseline)':52} {floor_s:8.1f} {floor_bytes / 1e6:8.1f}")
    print(f"clean install = {seconds / floor_s:.2f} x the download time, {downloaded / floor_bytes:.2f} x its bytes")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
