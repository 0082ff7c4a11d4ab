"""The guided demo (`trademon demo`) against `trademon native --mode demo --speed 30`, started
from a .env as a user would (tests/support/tour.py): every scenario but the long three
(tests/test_demo_tour_long.py) raises the alerts the catalogue promises, in time, on their
severity's route, and resolves; an expected alert that is held back (silenced) fails the tour;
`trademon demo` waits for a stack started just after it, and gives up on none."""

from __future__ import annotations

import subprocess
import sys
import time
from datetime import datetime, timedelta, UTC

import pytest
import requests

from tests.support.native import NativeStack
from tests.support.tour import QUICK, demo_stack, tour, walk
from trademon.sim.catalogue import DEMO_SPEED
from trademon.stack import timescale

pytestmark = pytest.mark.e2e  # the whole native stack on loopback


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    yield from demo_stack(tmp_path_factory.mktemp("tour"))


def test_prometheus_resends_firing_alerts_at_the_demo_speed(stack):
    """Prometheus' resend delay is compressed with the rest of the alert path: at its default
    minute, the first evaluations' alerts (sent before Prometheus had its Alertmanager list, so
    lost) reached Alertmanager a minute late, and `trademon demo` waited that minute for the
    Watchdog."""
    flags = requests.get(f"{stack.prom_url}/api/v1/status/flags", timeout=5).json()["data"]
    assert flags["rules.alert.resend-delay"] == timescale.scaled(timescale.RESEND_DELAY, DEMO_SPEED, timescale.FLOOR_S) == "2s"


def test_a_silenced_expected_alert_fails_the_tour(stack):
    now = datetime.now(UTC)
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


def test_the_guided_demo_shows_every_quick_scenario_s_alerts(stack):
    walk(stack, QUICK)


def test_the_demo_waits_for_a_stack_started_just_after_it(tmp_path):
    """Pasted as the docs show it, `trademon demo` came right after `trademon native` and
    exited 2 after 0.65 s ("no demo stack answers"): it now waits, says for what, and runs."""
    from tests.support.native import free_ports_env

    values = free_ports_env()
    am, control = (f"http://127.0.0.1:{values[v]}" for v in ("TRADEMON_ALERTMANAGER_PORT", "TRADEMON_SIM_CONTROL_PORT"))
    demo = subprocess.Popen([sys.executable, "-m", "trademon", "demo", "--alertmanager", am, "--control", control,
                             "--record", str(tmp_path / "native" / "alerts.jsonl"), "--scenarios", "loss-breach"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    stack = None
    try:
        time.sleep(2)
        assert demo.poll() is None, demo.communicate()
        stack = NativeStack(tmp_path, values, "--speed", f"{DEMO_SPEED:g}")
        out, err = demo.communicate(timeout=400)
    finally:
        if demo.poll() is None:
            demo.kill()
        if stack is not None:
            stack.close()
    assert demo.returncode == 0, out + err
    assert "waiting up to 120 s for the demo stack: the simulator" in err, err
    assert "DailyLossLimitBreach in Alertmanager" in out, out


def test_the_demo_without_a_stack_gives_up_after_its_wait_saying_what_it_waited_for(tmp_path):
    from tests.support.native import free_ports_env

    values = free_ports_env()
    t0 = time.monotonic()
    r = subprocess.run([sys.executable, "-m", "trademon", "demo", "--wait", "2",
                        "--alertmanager", f"http://127.0.0.1:{values['TRADEMON_ALERTMANAGER_PORT']}",
                        "--control", f"http://127.0.0.1:{values['TRADEMON_SIM_CONTROL_PORT']}"],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 2, r.stderr
    assert time.monotonic() - t0 >= 2
    assert "no demo stack answers after 2 s: waited for the simulator" in r.stderr and "Alertmanager at" in r.stderr, r.stderr
    assert "start one first: trademon native" in r.stderr
