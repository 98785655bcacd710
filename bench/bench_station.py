"""Station operations with 1,000,000 customers: backup, pre-migration snapshot, upgrade, rollback.

- ``loyalty-agent backup`` (online backup API + keys + manifest) on the station's database,
  beside a plain ``cp`` of the quiesced files (agent stopped, WAL checkpointed) in the same run.
- ``loyalty-station upgrade`` and ``rollback`` in a folder root (``--root``: the agent of each
  release really runs and answers /v1/health; systemd and useradd are recorded, not run). The
  upgrade is reported in its phases: preparing the new release's venv (the agent keeps serving)
  and the switch (stop, data snapshot, link, start, healthy), which is the downtime.

``python -m bench station --customers 1000000``.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench.bench_customers import fill
from bench.common import free_port

REPO = Path(__file__).resolve().parent.parent


def timed(command: list[str], **kwargs: object) -> tuple[float, subprocess.CompletedProcess[str]]:
    started = time.perf_counter()
    result = subprocess.run(command, capture_output=True, text=True, check=False, **kwargs)  # type: ignore[call-overload]
    if result.returncode != 0:
        raise SystemExit(f"{command[:4]} failed:\n{result.stdout}\n{result.stderr}")
    return time.perf_counter() - started, result


def size(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file()) if path.is_dir() else path.stat().st_size


def bench_backup(data: Path, work: Path) -> None:
    agent = [sys.executable, "-m", "agent.cli"]
    seconds, result = timed([*agent, "backup", str(work / "backup.tar"), "--data-dir", str(data)], cwd=REPO)
    summary = json.loads(result.stdout)
    cp_dest = work / "cp-copy"
    cp_dest.mkdir()
    files = [str(p) for p in data.iterdir() if p.name.startswith("agent.db") or p.name == "keys"]
    cp_seconds, _ = timed(["cp", "-a", *files, str(cp_dest)])
    snap_seconds, _ = timed([sys.executable, "-c", "import sys; from pathlib import Path; from agent.store.backup "
                             "import snapshot; snapshot(Path(sys.argv[1]), Path(sys.argv[2]))",
                             str(data / "agent.db"), str(work / "snapshot.db")], cwd=REPO)
    print(f"database: {size(data / 'agent.db') / 1e6:.0f} MB, {summary['customers']} customers")
    print(f"{'what':44} {'seconds':>8} {'MB':>8}")
    print(f"{'loyalty-agent backup (tar: db + keys + sha256)':44} {seconds:8.2f} {summary['bytes'] / 1e6:8.0f}")
    print(f"{'  its snapshot alone (pre-migration backup)':44} {snap_seconds:8.2f} {size(work / 'snapshot.db') / 1e6:8.0f}")
    print(f"{'cp -a of the quiesced files (baseline)':44} {cp_seconds:8.2f} {size(cp_dest) / 1e6:8.0f}")
    print(f"backup = {seconds / cp_seconds:.2f} x cp time, {summary['bytes'] / size(cp_dest):.2f} x cp size (same run)")


def bench_upgrade(data_template: Path, work: Path, customers: int) -> None:
    out = work / "releases"
    releases = {}
    for version in ("1.0.0", "2.0.0"):
        _, result = timed([str(REPO / "packaging/build-release"), str(out)], cwd=REPO,
                          env={**os.environ, "SETUPTOOLS_SCM_PRETEND_VERSION": version})
        releases[version] = result.stdout.strip().splitlines()[-1]
    root = work / "root"
    data = root / "var/lib/loyalty-agent"
    config = root / "etc/loyalty-agent/agent.toml"
    config.parent.mkdir(parents=True)
    config.write_text(f'[api]\nport = {free_port()}\n[storage]\ndata_dir = "{data}"\n')
    data.parent.mkdir(parents=True)
    shutil.copytree(data_template, data)  # the 1,000,000 customers, before the first release starts
    station = ["/usr/bin/python3", str(REPO / "packaging/loyalty-station"), "--root", str(root)]
    try:
        install_s, _ = timed([*station, "install", releases["1.0.0"]])
        upgrade_s, result = timed([*station, "upgrade", releases["2.0.0"]])
        rollback_s, _ = timed([*station, "rollback"])
        again_s, _ = timed([*station, "upgrade", releases["2.0.0"]])  # release already prepared: switch only
        restart_s = _restart(root, station)
    finally:
        _stop(root)
    print(f"{f'what ({customers:,} customers)':52} {'seconds':>8}")
    print(f"{'install 1.0.0 (venv from the lock + start + healthy)':52} {install_s:8.1f}")
    print(f"{'upgrade 1.0.0 -> 2.0.0 (new venv + switch)':52} {upgrade_s:8.1f}")
    print(f"{'rollback 2.0.0 -> 1.0.0 (switch back, healthy)':52} {rollback_s:8.1f}")
    print(f"{'upgrade again (release already there: switch only)':52} {again_s:8.1f}")
    print(f"{'plain restart of the agent, stop + start + healthy (baseline)':52} {restart_s:8.1f}")
    print(f"rollback = {rollback_s / restart_s:.2f} x restart; switch-only upgrade = {again_s / restart_s:.2f} x restart "
          f"(snapshot of {size(data / 'agent.db') / 1e6:.0f} MB included)")


def _restart(root: Path, station: list[str]) -> float:
    code = ("import sys; sys.argv[0] = 'loyalty-station'; import importlib.machinery as m; "
            "mod = m.SourceFileLoader('ls', sys.argv[1]).load_module(); from pathlib import Path; "
            "s = mod.Station(Path(sys.argv[2])); v = s.current_version(); s.stop(); s.start(); "
            "p = s.wait_healthy(v); sys.exit(1 if p else 0)")
    seconds, _ = timed(["/usr/bin/python3", "-c", code, station[1], str(root)])
    return seconds


def _stop(root: Path) -> None:
    pidfile = root / "run/loyalty-agent.pid"
    if pidfile.exists():
        try:
            os.kill(int(pidfile.read_text()), 15)
        except ProcessLookupError:
            pass


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="bench_station")
    parser.add_argument("--customers", type=int, default=1_000_000)
    parser.add_argument("--skip-upgrade", action="store_true")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="bench-station-") as tmp:
        work = Path(tmp)
        data = work / "data"
        started = time.perf_counter()
        fill(data, args.customers)
        (data / "keys").mkdir(mode=0o700, exist_ok=True)
        (data / "keys" / "biometric.key").write_bytes(os.urandom(32))
        print(f"filled {args.customers} customers in {time.perf_counter() - started:.0f} s")
        bench_backup(data, work)
        if not args.skip_upgrade:
            bench_upgrade(data, work, args.customers)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
