"""Every health reason code the agent can give is documented in docs/operations.md."""
from __future__ import annotations

import re
from pathlib import Path

from agent.ops.health import REASONS

DOC = Path(__file__).resolve().parents[2] / "docs" / "operations.md"


def test_every_reason_code_is_in_the_operations_table() -> None:
    documented = set(re.findall(r"^\| `([a-z_]+)` \| (?:degraded|failing) \|", DOC.read_text(encoding="utf-8"), re.M))
    assert documented == set(REASONS)
    for code, (severity, _, _) in REASONS.items():
        assert f"| `{code}` | {severity} |" in DOC.read_text(encoding="utf-8"), code
