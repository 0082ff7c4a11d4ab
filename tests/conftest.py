"""Suite-wide set-up: the tests always exercise the checkout they live in.

An editable install (or a second checkout, e.g. a git worktree) may point `import trademon`
at another tree; putting this checkout's package first, for this process and for every
subprocess the tests start (`python -m trademon ...`), makes a run test its own code.
"""

from __future__ import annotations

import os
import re
import sys
from pathlib import Path

import pytest

_PKG_ROOT = str(Path(__file__).resolve().parents[1] / "exporters")
if sys.path[:1] != [_PKG_ROOT]:
    sys.path.insert(0, _PKG_ROOT)
os.environ["PYTHONPATH"] = os.pathsep.join(p for p in (_PKG_ROOT, os.environ.get("PYTHONPATH", "")) if p)

# Shared fixtures: the stand-in TWS and an ib-exporter process against it.
from tests.support.ib import exporter, tws  # noqa: E402, F401


# Markers say what a test needs. `unit`: nothing beyond Python and the package, no binary and
# no process of the stack (the fast subset, `pytest -m unit`); every test not marked with a need
# below is unit. `e2e` (real Prometheus, Alertmanager or trademon services on loopback),
# `containers` (a real Docker engine), `slow` (installs into a fresh venv and the like), and one
# marker per binary a test runs: `promtool`, `amtool`, `compose` (docker-compose), `node` (the
# dashboards' query parsers). Modules that start processes are e2e as a whole; a test or module
# may also mark itself. scripts/test runs every marker.
E2E_MODULES = {
    "test_alertmanager_live", "test_alertsink", "test_dashboards_live", "test_e2e_alerting",
    "test_ib_exporter", "test_ib_fake_tws", "test_ib_insync_fallback", "test_ib_shutdown",
    "test_native", "test_sim_api", "test_sim_config", "test_sim_exposition", "test_sim_healthy",
    "test_sim_prometheus", "test_sim_scenarios", "test_synthetic",
    "test_ha_alerting", "test_store_live", "test_native_ha",
    "test_ib_bounds", "test_ib_unknown", "test_ib_down_reason", "test_ib_master",
    "test_security", "test_hardening", "test_demo_tour", "test_demo_tour_long", "test_markets_alertmanager", "test_bot_e2e",
}
NEEDS = ("e2e", "containers", "slow", "promtool", "amtool", "compose", "node")

# The program a unit test must not start, and the marker that says the test needs it.
PROGRAM_MARKER = {
    "promtool": "promtool", "amtool": "amtool", "docker-compose": "compose", "node": "node", "npm": "node",
    "prometheus": "e2e", "alertmanager": "e2e", "victoria-metrics": "e2e", "docker": "containers", "dockerd": "containers",
}
# `python -m trademon <command>`: a service of the stack (a one-shot command such as `gen` is not).
STACK_COMMANDS = {"sim", "ib-exporter", "synthetic", "alert-sink", "am-config", "bot", "native", "demo"}


def pytest_collection_modifyitems(config, items):
    for item in items:
        if item.module.__name__.rpartition(".")[2] in E2E_MODULES:
            item.add_marker(pytest.mark.e2e)
        names = {m.name for m in item.iter_markers()}
        if "unit" in names and set(NEEDS) & names:
            raise pytest.UsageError(f"{item.nodeid} is marked unit and {sorted(set(NEEDS) & names)}: "
                                    "drop its `unit` mark (every test that needs nothing is unit)")
        if not set(NEEDS) & names:
            item.add_marker(pytest.mark.unit)


def needed_marker(args, shell: bool = False) -> tuple[str, str] | None:
    """(program, marker) when the command line ``args`` starts a binary or a stack service."""
    one = isinstance(args, (str, bytes, os.PathLike))
    argv = [os.fsdecode(args)] if one else [os.fsdecode(a) for a in args]
    if not argv:
        return None
    name = os.path.basename(argv[0])
    script = argv[0] if shell else argv[argv.index("-c") + 1] if name in ("sh", "bash") and "-c" in argv[1:-1] else None
    if script is not None:  # a shell command line: each command's program
        for word in re.findall(r"(?:^|[;&|(\n]|\bexec\b|\$\()\s*([\w./-]+)", script):
            if os.path.basename(word) in PROGRAM_MARKER:
                return os.path.basename(word), PROGRAM_MARKER[os.path.basename(word)]
        return None
    if name in PROGRAM_MARKER:
        return name, PROGRAM_MARKER[name]
    if "-m" in argv[:-1] and argv[argv.index("-m") + 1] == "trademon":
        rest = [a for a in argv[argv.index("-m") + 2:] if not a.startswith("-")]
        if rest and rest[0] in STACK_COMMANDS:
            return f"trademon {rest[0]}", "e2e"
    return None


class UnitTestStartsAProgram(RuntimeError):
    pass


def _guarded(item):
    """While a unit test runs (its fixtures included), starting a binary or a stack service fails
    it, naming the marker to add. The error is kept too, so a test that catches it still fails."""
    import subprocess

    from trademon.stack import tools

    if item.get_closest_marker("unit") is None:
        return (yield)
    real, real_find = subprocess.Popen.__init__, tools.find
    escapes: list[str] = []

    def refuse(program: str, marker: str, verb: str):
        escapes.append(f"{item.nodeid} is in the unit subset but {verb} {program}: mark it "
                       f"@pytest.mark.{marker} (or its module: pytestmark = pytest.mark.{marker}); "
                       "unit tests need no binary and start no process of the stack")
        raise UnitTestStartsAProgram(escapes[-1])

    def init(self, args, *a, **kw):
        found = needed_marker(args, kw.get("shell", False))
        if found:
            refuse(*found, "starts")
        real(self, args, *a, **kw)

    def find(name: str) -> str:  # the stack's binaries are found here before they run
        refuse(name, PROGRAM_MARKER.get(name, "e2e"), "needs")
        return real_find(name)

    subprocess.Popen.__init__, tools.find = init, find
    try:
        result = yield
    finally:
        subprocess.Popen.__init__, tools.find = real, real_find
    if escapes:
        raise UnitTestStartsAProgram(escapes[0])
    return result


@pytest.hookimpl(wrapper=True)
def pytest_runtest_setup(item):
    return (yield from _guarded(item))


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item):
    return (yield from _guarded(item))


@pytest.hookimpl(wrapper=True)
def pytest_runtest_teardown(item):
    return (yield from _guarded(item))
