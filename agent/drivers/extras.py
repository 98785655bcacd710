"""Compiled device bindings that are optional extras (no Linux wheels on PyPI: they compile).

The default install has none of them, so the agent starts on a machine without a compiler. A
configured device whose binding is missing fails with ``MissingExtra``, a message saying what
to install, instead of an ``ImportError`` traceback. Nothing here imports a binding at import time.
"""
from __future__ import annotations

import importlib
from types import ModuleType

# What each extra needs to compile (Debian package names), for the message.
_BUILD_DEPS = {
    "pcsc": "gcc python3-dev swig libpcsclite-dev",
    "evdev": "gcc python3-dev",
}


class MissingExtra(ImportError):
    """A configured device needs an optional binding that is not installed."""

    def __init__(self, module: str, extra: str, device: str) -> None:
        self.module, self.extra, self.device = module, extra, device
        super().__init__(
            f"{device} necesita el módulo {module} (extra [{extra}] de loyalty-agent), que no está instalado. "
            f"En la estación: sudo loyalty-station extras (instala {_BUILD_DEPS[extra]} y compila); "
            f"en una copia de desarrollo: sudo apt-get install {_BUILD_DEPS[extra]} && make devices. "
            f"O quite el dispositivo de la configuración.")


def require(module: str, *, extra: str, device: str) -> ModuleType:
    """Import ``module`` or raise ``MissingExtra`` naming the extra and how to install it."""
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise MissingExtra(module, extra, device) from exc


def available(module: str) -> bool:
    """Whether ``module`` imports (check-config and tests ask without raising)."""
    try:
        importlib.import_module(module)
    except ImportError:
        return False
    return True


class UnavailableReader:
    """Stands in for a reader whose binding is missing: ``start`` raises the ``MissingExtra``,
    so the agent keeps running and reports the reader as failed with the reason."""

    def __init__(self, name: str, error: MissingExtra) -> None:
        self.name, self.error = name, error

    def start(self) -> None:
        raise self.error

    def stop(self) -> None:
        pass
