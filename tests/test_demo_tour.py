"""The guided demo (`trademon demo`) against `trademon native --mode demo --speed 30`, started
from a .env as a user would: every scenario raises the alerts the catalogue promises, in time,
and resolves; an expected alert that is held back (silenced) fails the tour."""

from __future__ import annotations

import subprocess
import sys
import time
from datetime import datetime, timedelta, timezone

import pytest
import requests

from support.native import NativeStack
from trademon.sim.catalogue import DEMO_SPEED, EXPECTED

pytestmark = pytest.mark.e2e  # the whole native stack on loopback


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    s = NativeStack(tmp_path_factory.mktemp("tour"), {}, "--speed", f"{DEMO_SPEED:g}")
    try:
        s.wait_ready()
        yield s
    finally:
        s.close()


def tour(stack, *args: str, timeout: float = 600) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "trademon", "demo", "--alertmanager", stack.am_url,
                           "--control", stack.control_url, "--record", str(stack.record), *args],
                          capture_output=True, text=True, timeout=timeout)


def test_a_silenced_expected_alert_fails_the_tour(stack):
    now = datetime.now(timezone.utc)
    silence = {"matchers": [{"name": "alertname", "value": "TWSConnectionLost", "isRegex": False}],
               "startsAt": now.isoformat(), "endsAt": (now + timedelta(minutes=10)).isoformat(),
               "createdBy": "test", "comment": "the tour must notice"}
    sid = requests.post(f"{stack.am_url}/api/v2/silences", json=silence, timeout=5).json()["silenceID"]
    try:
        r = tour(stack, "--scenarios", "ib-disconnect")
    finally:
        requests.delete(f"{stack.am_url}/api/v2/silence/{sid}", timeout=5)
    assert r.returncode == 1, r.stdout + r.stderr
    assert "MISSING ib-disconnect: TWSConnectionLost fired but was silenced" in r.stdout, r.stdout


def test_the_guided_demo_shows_every_scenario_s_alerts(stack):
    t0 = time.monotonic()
    r = tour(stack)
    took = time.monotonic() - t0
    print(r.stdout)
    print(f"guided demo: {took:.0f} s for {len(EXPECTED)} scenarios")
    assert r.returncode == 0, r.stdout + r.stderr + stack.proc.tail()
    for name, expects in EXPECTED.items():
        assert f"== {name}:" in r.stdout
        for e in expects:
            assert f"{e.alert} in Alertmanager" in r.stdout, (e.alert, r.stdout)
            assert f"{e.alert} resolved" in r.stdout, (e.alert, r.stdout)
