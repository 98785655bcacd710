"""Every log line a technician or head office reads (INFO and above) is Spanish and ends in a stable code in
brackets, like the state changes (``[device_lost]``): journald filters and support scripts key on
the code, the text is for people. Read from the source, so a new English or uncoded line fails
here before it reaches a station."""
from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
LEVELS = {"info", "warning", "error", "exception", "critical"}
CODE = re.compile(r"\[[a-z][a-z0-9_]*\]$|\[%s\]$")
# Words that only an English sentence has; a Spanish message uses none of them.
ENGLISH = re.compile(r"\b(the|failed|could not|cannot|is|are|was|after|retrying|ignored|refused|"
                     r"unavailable|missing|reached|accepted)\b")


def log_calls(root: Path) -> list[tuple[str, str]]:
    """(where, format string) of every ``log*.info/warning/...("literal", ...)`` under ``root``."""
    found = []
    for path in sorted(root.rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
                    and node.func.attr in LEVELS and "log" in ast.unparse(node.func.value).lower()):
                continue
            first = node.args[0] if node.args else None
            if isinstance(first, ast.Constant) and isinstance(first.value, str):
                found.append((f"{path.relative_to(REPO)}:{node.lineno}", first.value))
            elif isinstance(first, ast.Attribute) and first.attr == "message":
                continue  # connections._Episode: its messages are checked where they are written
            else:
                found.append((f"{path.relative_to(REPO)}:{node.lineno}", "<not a literal>"))
    return found


def episode_messages() -> list[tuple[str, str]]:
    path = REPO / "agent/api/connections.py"
    tree = ast.parse(path.read_text(encoding="utf-8"))
    return [(f"{path.relative_to(REPO)}:{n.lineno}", n.args[0].value) for n in ast.walk(tree)
            if isinstance(n, ast.Call) and isinstance(n.func, ast.Name) and n.func.id == "_Episode"
            and n.args and isinstance(n.args[0], ast.Constant)]


AGENT_LINES = log_calls(REPO / "agent") + episode_messages()
HUB_LINES = log_calls(REPO / "hub")


def test_the_reader_finds_the_log_lines() -> None:
    # Guards the checks below against a reader that silently finds nothing.
    assert len(AGENT_LINES) > 40
    assert any(text.startswith("agente %s listo en") for _, text in AGENT_LINES)
    assert any(text.endswith("[subscribed]") for _, text in HUB_LINES)


@pytest.mark.parametrize(("where", "text"), AGENT_LINES + HUB_LINES, ids=[w for w, _ in AGENT_LINES + HUB_LINES])
def test_log_lines_are_spanish_and_coded(where: str, text: str) -> None:
    assert CODE.search(text), f"{where}: ends without a [code]: {text!r}"
    assert not ENGLISH.search(text.rsplit("[", 1)[0]), f"{where}: reads as English: {text!r}"
