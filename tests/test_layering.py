"""The agent's layering (docs/architecture.md), checked on the source so it stays true.

Imports are read with ``ast`` (nothing is imported or run); imports under ``if TYPE_CHECKING:``
are annotations only and do not count. Lazy imports inside functions do count: they still make
one module depend on another.
"""
from __future__ import annotations

import ast
from functools import cache
from pathlib import Path

AGENT = Path(__file__).resolve().parent.parent / "agent"

# The bottom layer: the package's own plumbing, used by everything, using nothing above it
# (agent._version is written by setuptools-scm when the wheel is built: the version from git).
CORE = {"agent", "agent._version", "agent.clock", "agent.errors", "agent.ids", "agent.keys", "agent.lifecycle", "agent.logmask", "agent.logsetup",
        "agent.secret_fields", "agent.settings_loader", "agent.systemd"}
FEATURES = ("customers", "cards", "biometric", "idcard", "loyalty", "queue", "simulators", "ops", "printing")
# Composition and delivery: who builds the station and who serves it. No feature may import these.
ABOVE_FEATURES = ("agent.config", "agent.station", "agent.api", "agent.cli", "agent.runner")
WEB_OR_MQTT = ("fastapi", "starlette", "uvicorn", "paho", "httpx")


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(AGENT.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


@cache
def modules() -> dict[str, Path]:
    return {_module_name(p): p for p in sorted(AGENT.rglob("*.py"))}


def _type_checking_nodes(tree: ast.AST) -> set[int]:
    skip: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            skip.update(id(n) for n in ast.walk(node))
    return skip


@cache
def imports(module: str) -> frozenset[str]:
    """Every module name ``module`` imports (agent modules resolved to the module, not the package)."""
    path = modules()[module]
    tree = ast.parse(path.read_text(encoding="utf-8"))
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    skip = _type_checking_nodes(tree)
    found: set[str] = set()
    for node in ast.walk(tree):
        if id(node) in skip:
            continue
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                base = ".".join([*anchor, *([node.module] if node.module else [])])
            for alias in node.names:
                full = f"{base}.{alias.name}"
                found.add(full if full in modules() else base)
    return frozenset(found)


def agent_imports(module: str) -> set[str]:
    out = set()
    for name in imports(module):
        while name and name not in modules():
            name = name.rpartition(".")[0]
        if name and name != module and name.startswith("agent"):
            out.add(name)
    return out


def _in(module: str, *prefixes: str) -> bool:
    return any(module == p or module.startswith(p + ".") for p in prefixes)


def test_the_import_reader_sees_known_edges() -> None:
    # Guards the checks below against a reader that silently finds nothing.
    assert "agent.store.db" in agent_imports("agent.station")
    assert "agent.loyalty.accounts" in agent_imports("agent.loyalty.service")  # "from . import accounts"
    assert "agent.cli.common" in agent_imports("agent.cli.run")
    assert "agent.biometric.service" not in agent_imports("agent.station")  # TYPE_CHECKING only


def test_drivers_import_nothing_of_the_agent_outside_drivers_and_no_web_or_mqtt() -> None:
    bad = {}
    for module in modules():
        if _in(module, "agent.drivers"):
            wrong = {m for m in agent_imports(module) if not _in(m, "agent.drivers")}
            wrong |= {m for m in imports(module) if m.split(".")[0] in WEB_OR_MQTT}
            if wrong:
                bad[module] = sorted(wrong)
    assert not bad, bad


def test_core_and_store_import_only_what_is_below_them() -> None:
    bad = {}
    for module in modules():
        if module in CORE:
            wrong = agent_imports(module) - CORE
        elif _in(module, "agent.store"):
            wrong = {m for m in agent_imports(module) if m not in CORE and not _in(m, "agent.store")}
        else:
            continue
        if wrong:
            bad[module] = sorted(wrong)
    assert not bad, bad


def test_features_never_import_the_layers_that_assemble_or_serve_them() -> None:
    bad = {}
    for module in modules():
        if _in(module, *(f"agent.{f}" for f in FEATURES)) or module == "agent.tokens":
            wrong = {m for m in agent_imports(module) if _in(m, *ABOVE_FEATURES)}
            if wrong:
                bad[module] = sorted(wrong)
    assert not bad, bad


def test_sync_imports_no_other_feature() -> None:
    # Head office's configuration kinds are wired to their features by agent/station.py.
    others = tuple(f"agent.{f}" for f in FEATURES if f != "queue")
    bad = {m: sorted(x for x in agent_imports(m) if _in(x, *others))
           for m in modules() if _in(m, "agent.queue")}
    assert not {m: x for m, x in bad.items() if x}, bad


def test_the_station_and_the_api_do_not_reach_up() -> None:
    assert not {m for m in agent_imports("agent.station") if _in(m, "agent.api", "agent.cli", "agent.runner")}
    for module in modules():
        if _in(module, "agent.api"):
            assert not {m for m in agent_imports(module) if _in(m, "agent.cli", "agent.runner")}, module


def find_cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Groups of modules that import each other, directly or around a loop."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    cycles: list[list[str]] = []

    def visit(v: str) -> None:  # Tarjan's strongly connected components
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in graph.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                cycles.append(sorted(component))

    for module in graph:
        if module not in index:
            visit(module)
    return cycles


def test_the_cycle_finder_finds_a_cycle() -> None:
    assert find_cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_no_import_cycles_among_agent_modules() -> None:
    cycles = find_cycles({m: agent_imports(m) for m in modules()})
    assert not cycles, cycles


# Small modules with one job: past these sizes a module or function needs a stated reason
# ("Long on purpose: ..." in its docstring or a comment inside it).
MAX_MODULE_LINES = 400
MAX_FUNCTION_LINES = 60
REASON = "Long on purpose"


def test_long_modules_and_functions_say_why() -> None:
    unexplained = []
    for module, path in modules().items():
        text = path.read_text(encoding="utf-8")
        lines = text.splitlines()
        if len(lines) > MAX_MODULE_LINES and REASON not in (ast.get_docstring(ast.parse(text)) or ""):
            unexplained.append(f"{module}: {len(lines)} lines")
        for node in ast.walk(ast.parse(text)):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                length = (node.end_lineno or node.lineno) - node.lineno + 1
                body = "\n".join(lines[node.lineno - 1: node.end_lineno])
                if length > MAX_FUNCTION_LINES and REASON not in body:
                    unexplained.append(f"{module}.{node.name}: {length} lines")
    assert not unexplained, unexplained


def test_the_readme_layout_table_names_every_package() -> None:
    readme = (AGENT.parent / "README.md").read_text(encoding="utf-8")
    packages = sorted(p.parent.name for p in AGENT.glob("*/__init__.py"))
    assert packages, "no packages found"
    missing = [name for name in packages if f"`agent/{name}/`" not in readme]
    assert not missing, f"README.md's layout table does not name {missing}"
