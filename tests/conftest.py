"""Suite-wide set-up: the tests always exercise the checkout they live in.

An editable install (or a second checkout, e.g. a git worktree) may point `import trademon`
at another tree; putting this checkout's package first, for this process and for every
subprocess the tests start (`python -m trademon ...`), makes a run test its own code.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

_PKG_ROOT = str(Path(__file__).resolve().parents[1] / "exporters")
if sys.path[:1] != [_PKG_ROOT]:
    sys.path.insert(0, _PKG_ROOT)
os.environ["PYTHONPATH"] = os.pathsep.join(p for p in (_PKG_ROOT, os.environ.get("PYTHONPATH", "")) if p)

# Shared fixtures: the stand-in TWS and an ib-exporter process against it.
from tests.support.ib import exporter, tws  # noqa: E402, F401


# Markers: `unit` (no real process of the stack: the fast subset, `pytest -m unit`, seconds),
# `e2e` (real Prometheus, Alertmanager or trademon services on loopback), `containers` (a real
# Docker engine), `slow` (installs into a fresh venv and the like). Modules that start
# processes are e2e as a whole; a test or module may also mark itself.
E2E_MODULES = {
    "test_alertmanager_live", "test_alertsink", "test_dashboards_live", "test_e2e_alerting",
    "test_ib_exporter", "test_ib_fake_tws", "test_ib_insync_fallback", "test_ib_shutdown",
    "test_native", "test_sim_api", "test_sim_config", "test_sim_exposition", "test_sim_healthy",
    "test_sim_prometheus", "test_sim_scenarios", "test_synthetic",
    "test_ha_alerting", "test_store_live", "test_native_ha",
    "test_ib_bounds", "test_ib_unknown", "test_ib_down_reason",
    "test_security", "test_hardening", "test_demo_tour", "test_markets_alertmanager", "test_bot_e2e",
}
_NOT_UNIT = {"e2e", "containers", "slow", "promtool"}


def pytest_collection_modifyitems(config, items):
    import pytest

    for item in items:
        if item.module.__name__.rpartition(".")[2] in E2E_MODULES:
            item.add_marker(pytest.mark.e2e)
        if not _NOT_UNIT & {m.name for m in item.iter_markers()}:
            item.add_marker(pytest.mark.unit)
