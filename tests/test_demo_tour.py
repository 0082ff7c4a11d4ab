"""The guided demo (`trademon demo`) against `trademon native --mode demo --speed 30`, started
from a .env as a user would: every scenario raises the alerts the catalogue promises, in time,
and resolves; an expected alert that is held back (silenced) fails the tour."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from datetime import datetime, timedelta, UTC
from pathlib import Path

import pytest
import requests

from support.native import NativeStack
from trademon.sim.catalogue import DEMO_SPEED, EXPECTED

pytestmark = pytest.mark.e2e  # the whole native stack on loopback
ROOT = Path(__file__).resolve().parents[1]


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


BROKER_TRUTH = ("silent-drop", "fill-lost", "position-drift", "breaker-leak", "oer-runup")


def recorded(record, since: int) -> list[tuple[str, str, str]]:
    """(receiver, status, alertname) of the notifications written after byte ``since``."""
    with open(record, "rb") as f:
        f.seek(since)
        lines = f.read().decode().splitlines()
    return [(doc["receiver"], a["status"], a["labels"]["alertname"])
            for doc in map(json.loads, lines) for a in doc["alerts"]]


@pytest.mark.parametrize("name", BROKER_TRUTH)
def test_each_broker_truth_scenario_pages_and_resolves(stack, name):
    """The real Prometheus (the shipped rules, compressed for speed 30) and Alertmanager: each
    scenario's alerts reach the record as a notification on their severity's route, within the
    catalogue's deadline, and resolve once it is switched off."""
    from trademon.sim.catalogue import Pipeline
    from trademon.stack.tour import Watch, run_scenario

    p = Pipeline.load(ROOT)
    stack.wait_ready()
    since = stack.record.stat().st_size if stack.record.exists() else 0
    lines: list[str] = []
    problems = run_scenario(name, stack.control_url, Watch(stack.am_url, stack.record), p, DEMO_SPEED, lines.append)
    assert problems == [], "\n".join(lines)
    got = recorded(stack.record, since)
    for e in EXPECTED[name]:
        assert (p.severity(e.alert), "firing", e.alert) in got, (e.alert, got)
    print("\n".join(lines))


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


def test_the_demo_waits_for_a_stack_started_just_after_it(tmp_path):
    """Pasted as the docs show it, `trademon demo` came right after `trademon native` and
    exited 2 after 0.65 s ("no demo stack answers"): it now waits, says for what, and runs."""
    from support.native import free_ports_env

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
    from support.native import free_ports_env

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
