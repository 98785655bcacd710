"""The lock files agree with pyproject.toml and with each other.

A dependency added to pyproject.toml without `make lock` would be missing from every install
(make, CI and the station installer install from the locks only): this says so by name.
"""
from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
LOCKS = REPO / "requirements"


def canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def declared(requirements: list[str]) -> set[str]:
    """Package names; a self-reference such as ``loyalty-agent[hub]`` stands for that extra's packages."""
    names: set[str] = set()
    for requirement in requirements:
        name = canonical(re.match(r"[A-Za-z0-9._-]+", requirement).group(0))  # type: ignore[union-attr]
        if name == canonical(PROJECT["name"]):
            extras = re.search(r"\[([^\]]+)\]", requirement)
            for extra in (extras.group(1).split(",") if extras else []):
                names |= declared(EXTRAS[extra.strip()])
        else:
            names.add(name)
    return names


def pins(lock: str) -> dict[str, set[str]]:
    found: dict[str, set[str]] = {}
    for name, version in re.findall(r"^([a-z0-9][a-z0-9._-]*)==([^\s;]+)", (LOCKS / lock).read_text(), re.M):
        found.setdefault(canonical(name), set()).add(version)
    return found


PROJECT = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
EXTRAS = PROJECT["optional-dependencies"]


@pytest.mark.parametrize(("lock", "groups"), [
    ("station.lock", ()), ("devices.lock", ("pcsc", "evdev")), ("dev.lock", ("dev", "bench")),
    ("all.lock", tuple(EXTRAS)),
])
def test_every_declared_dependency_is_locked(lock: str, groups: tuple[str, ...]) -> None:
    wanted = declared(PROJECT["dependencies"]).union(*(declared(EXTRAS[g]) for g in groups))
    missing = wanted - pins(lock).keys()
    assert not missing, f"{lock} lacks {sorted(missing)}: run `make lock` and commit requirements/"


# Dev tools that a station dependency also needs at run time (so the station lock rightly has them).
RUNTIME_TOO = {"pyyaml"}  # python-escpos (the receipt printer) reads its printer profiles with it


def test_the_station_lock_has_no_dev_or_compiled_packages() -> None:
    station = pins("station.lock").keys()
    dev_only = declared(EXTRAS["dev"]) - RUNTIME_TOO
    assert not station & (dev_only | declared(EXTRAS["pcsc"]) | declared(EXTRAS["evdev"]))
    assert "pytest" in dev_only  # the check above still has teeth


def test_all_locks_agree_on_every_version() -> None:
    everything = pins("all.lock")
    for lock in ("station.lock", "devices.lock", "dev.lock"):
        for name, versions in pins(lock).items():
            assert versions <= everything[name], f"{lock}: {name} {versions} vs all.lock {everything[name]}"


def test_build_lock_pins_what_pyproject_builds_with() -> None:
    build = tomllib.loads((REPO / "pyproject.toml").read_text())["build-system"]["requires"]
    assert declared(build) <= pins("build.lock").keys()
