"""The package in wings: the library core imports with only the core dependencies, each
service takes what it shares from a wing rather than from another service, no import circles,
one error type for "fix your configuration"."""

from __future__ import annotations

import ast
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

pytestmark = pytest.mark.unit

PACKAGE = Path(__file__).resolve().parents[1] / "exporters" / "trademon"

# The services' dependencies (pyproject.toml's extras): none of them may be needed by the core.
SERVICE_DEPENDENCIES = ("fastapi", "uvicorn", "yaml", "requests", "httpx", "h11", "bcrypt", "pydantic",
                        "pydantic_settings", "ib_async", "ib_insync", "matplotlib", "exchange_calendars")


def imports_without(blocked: tuple[str, ...], code: str) -> subprocess.CompletedProcess:
    """Runs ``code`` in a fresh interpreter in which importing any of ``blocked`` fails, as it
    would where they are not installed."""
    prelude = textwrap.dedent(f"""
        import sys
        class Blocker:
            def find_spec(self, name, path=None, target=None):
                if name.split(".")[0] in {blocked!r}:
                    raise ModuleNotFoundError(f"No module named {{name!r}} (blocked)", name=name)
        sys.meta_path.insert(0, Blocker())
    """)
    return subprocess.run([sys.executable, "-c", prelude + textwrap.dedent(code)], capture_output=True, text=True, timeout=60)


def test_the_library_core_imports_with_only_the_core_dependencies():
    out = imports_without(SERVICE_DEPENDENCIES, """
        import trademon.contract, trademon.metrics, trademon.bounded, trademon.grafana_uids, trademon.instrument
        from trademon.instrument import instrument
        leaked = sorted(m for m in sys.modules if m.startswith("trademon.") and m.split(".")[1] not in
                        {"contract", "metrics", "bounded", "grafana_uids", "instrument"})
        assert not leaked, leaked
    """)
    assert out.returncode == 0, out.stderr


def test_the_blocker_does_block():
    """The test above could pass by blocking nothing: importing a blocked module must fail."""
    out = imports_without(("yaml",), "import yaml")
    assert out.returncode != 0 and "blocked" in out.stderr


def test_the_simulator_imports_without_the_ib_client_library():
    out = imports_without(("ib_async", "ib_insync"), """
        import trademon.sim.exporters, trademon.sim.broker, trademon.sim.simulator
        from trademon.contract import BROKER_GAUGES
        assert "daily_pnl" in BROKER_GAUGES
    """)
    assert out.returncode == 0, out.stderr


def test_the_ib_exporter_drops_the_contracts_broker_gauges():
    from trademon import contract
    from trademon.ib import state

    assert set(state.ACCOUNT_TAGS.values()) <= set(contract.BROKER_GAUGES)
    assert all(contract.metric(name).job == contract.IB for name in contract.BROKER_GAUGES)


def module_imports() -> dict[str, set[str]]:
    """Each trademon module -> the trademon modules it imports when it is imported (imports
    inside functions run later and cannot make a circle at import time)."""
    modules = {".".join(p.relative_to(PACKAGE.parent).with_suffix("").parts).removesuffix(".__init__"): p
               for p in PACKAGE.rglob("*.py")}
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        deps: set[str] = set()
        for node in ast.parse(path.read_text(encoding="utf-8")).body:
            if isinstance(node, ast.If):  # `if TYPE_CHECKING:` imports never run
                continue
            if isinstance(node, ast.Import):
                deps |= {a.name for a in node.names}
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                deps |= {f"{node.module}.{a.name}" if f"{node.module}.{a.name}" in modules else node.module for a in node.names}
        graph[name] = {d for d in deps if d in modules and d != name}
    return graph


def circles(graph: dict[str, set[str]]) -> list[set[str]]:
    """The strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    out: list[set[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = set()
            while True:
                w = stack.pop()
                comp.add(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(comp)

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


def test_no_import_circles():
    found = circles(module_imports())
    assert not found, f"import circles: {[sorted(c) for c in found]}"


def test_the_circle_finder_finds_a_circle():
    assert circles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [{"a", "b", "c"}]


def test_the_bot_takes_its_keyboards_from_their_own_module_not_from_the_webhook():
    assert "trademon.bot.webhook" not in module_imports()["trademon.bot.handlers"]


def test_the_generators_live_in_gen_and_the_runtime_has_no_generator():
    from trademon import gen
    from trademon.stack import scaleout

    assert all(m.startswith("trademon.gen.") for m in gen.GENERATOR_MODULES)
    assert not hasattr(scaleout, "GENERATED")


def test_a_refused_monitoring_config_is_the_one_config_error(tmp_path):
    from trademon.settings import thresholds
    from trademon.settings.env import ConfigError

    (tmp_path / "monitoring").mkdir()
    (tmp_path / "monitoring" / "config.yml").write_text("runbook_url_pattern: https://example.org/runbooks.md#{alert}\ncurrency: usd\n")
    with pytest.raises(ConfigError, match=r"config\.yml: currency 'usd' is not a currency code"):
        thresholds.load_config(tmp_path)



def test_one_http_client_library():
    """httpx (trademon.runtime.http) is the package's HTTP client; requests is the tests' own."""
    users = set()
    for path in PACKAGE.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else \
                [node.module or ""] if isinstance(node, ast.ImportFrom) else []
            if any(n.split(".")[0] == "requests" for n in names):
                users.add(str(path.relative_to(PACKAGE)))
    assert not users, f"modules importing requests: {sorted(users)}"


def test_the_tests_import_their_support_under_one_name():
    """`support.procs` and `tests.support.procs` are two modules with two port counters: a
    test that mixed them handed the same ports to two services of one stack (native --ha's
    gossip port on alertmanager-config's)."""
    import re

    tests = Path(__file__).resolve().parent
    mixed = [f"{p.relative_to(tests.parent)}:{n}" for p in sorted(tests.rglob("*.py")) if p.name != "test_wings.py"
             for n, line in enumerate(p.read_text(encoding="utf-8").splitlines(), 1)
             if re.match(r"\s*(from|import) support\b", line)]
    assert not mixed, f"import tests.support..., not support...: {mixed}"
