"""The compiled device bindings (pyscard, evdev) are optional extras: their tests skip, saying
why, where they are not installed (a machine without gcc and headers), and fail instead when
LOYALTY_REQUIRE_DEVICE_EXTRAS=1 (CI installs the build tools, so there they must run)."""
from __future__ import annotations

import importlib
import os
from types import ModuleType

import pytest

REQUIRED = os.environ.get("LOYALTY_REQUIRE_DEVICE_EXTRAS") == "1"


def _reason(module: str, extra: str) -> str:
    return (f"{module} (extra [{extra}]) no está instalado: compila con gcc y python3-dev "
            f"(pyscard también swig y libpcsclite-dev); `make devices` lo instala cuando están")


def optional(module: str, extra: str) -> ModuleType | None:
    """The module, or None where the extra is missing (an ImportError where it is required)."""
    try:
        return importlib.import_module(module)
    except ImportError:
        if REQUIRED:
            raise
        return None


def needs(module: str, extra: str) -> pytest.MarkDecorator:
    """Skip the test where the extra is missing, unless it is required."""
    return pytest.mark.skipif(optional(module, extra) is None, reason=_reason(module, extra))


def require_module_level(module: str, extra: str) -> ModuleType:
    """For a test module that is all about the binding: skip the whole module where it is missing."""
    found = optional(module, extra)
    if found is None:
        pytest.skip(_reason(module, extra), allow_module_level=True)
    return found
