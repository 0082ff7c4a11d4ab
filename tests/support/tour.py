"""The guided demo (`trademon demo`) against `trademon native --mode demo --speed 30`, started
from a .env as a user would. The scenarios are walked in two parts, one per test module
(tests/test_demo_tour.py, tests/test_demo_tour_long.py), each with its own stack, so that two
pytest-xdist workers walk them at once: one walk of all thirteen took ~3 min on one worker,
the floor of the whole suite's run."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

from trademon.sim.catalogue import DEMO_SPEED, EXPECTED, MARKET_HOURS_ROUTE_ALERTS, Pipeline
from trademon.sim.scenarios import SCENARIOS

from .native import NativeStack

ROOT = Path(__file__).resolve().parents[2]
# The scenarios whose alerts take longest to page and resolve (15-minute windows, long `for`s):
# about as long to walk as the ten others together.
LONG = ("slippage-spike", "rejection-burst", "intent-backlog")
QUICK = tuple(n for n in SCENARIOS if n not in LONG)


def demo_stack(workdir: Path):
    """A started and ready demo stack at the guided demo's speed (a generator: a fixture's body)."""
    s = NativeStack(workdir, {}, "--speed", f"{DEMO_SPEED:g}")
    try:
        s.wait_ready()
        yield s
    finally:
        s.close()


def tour(stack, *args: str, timeout: float = 600) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "trademon", "demo", "--alertmanager", stack.am_url,
                           "--control", stack.control_url, "--record", str(stack.record), *args],
                          capture_output=True, text=True, timeout=timeout)


def recorded(record: Path, since: int) -> list[tuple[str, str, str]]:
    """(receiver, status, alertname) of the notifications written after byte ``since``."""
    with open(record, "rb") as f:
        f.seek(since)
        lines = f.read().decode().splitlines()
    return [(doc["receiver"], a["status"], a["labels"]["alertname"])
            for doc in map(json.loads, lines) for a in doc["alerts"]]


def walk(stack, names: tuple[str, ...]) -> None:
    """`trademon demo --scenarios <names>` passes: each scenario's alerts are in Alertmanager
    within the catalogue's deadline and resolve once it is switched off, and each reaches the
    record as a notification on its severity's route (the real Prometheus with the shipped
    rules compressed for speed 30, and the real Alertmanager); an alert the market-hours route
    mutes is not delivered outside US market hours, by design."""
    p = Pipeline.load(ROOT)
    since = stack.record.stat().st_size if stack.record.exists() else 0
    t0 = time.monotonic()
    r = tour(stack, "--scenarios", ",".join(names))
    print(r.stdout)
    print(f"guided demo: {time.monotonic() - t0:.0f} s for {len(names)} scenarios")
    assert r.returncode == 0, r.stdout + r.stderr + stack.proc.tail()
    got = recorded(stack.record, since)
    for name in names:
        assert f"== {name}:" in r.stdout
        for e in EXPECTED[name]:
            assert f"{e.alert} in Alertmanager" in r.stdout, (e.alert, r.stdout)
            assert f"{e.alert} resolved" in r.stdout, (e.alert, r.stdout)
            if e.alert not in MARKET_HOURS_ROUTE_ALERTS:
                assert (p.severity(e.alert), "firing", e.alert) in got, (e.alert, got)
