"""End to end, issue 10.5: a cold start of a healthy stack sends no warning or critical
notification during its first 15 minutes.

As `docker compose up` or `trademon native` may start them: Alertmanager and Prometheus
(the project's rules and rendered config, real binaries) first, then the synthetic checks,
then the trading services (the simulator stands in for them and the broker), which are not
listening yet when the checks first run. Stand-ins of Telegram, Slack and SMTP record what
arrives. Shortened like the other e2e tests, though 10x rather than 30x so that the few
seconds processes take to start stay small against the shortened `for`s: the simulator runs
10x, scrape and evaluation every 1 s, each rule's `for` and each synthetic check's interval
and timeout divided by 10, so the first 15 minutes of the stack are 90 s here.
"""

from __future__ import annotations

import sys
import time

import pytest
import requests

from tests.support.e2estack import E2EStack
from tests.support.procs import free_port, start, wait_for
from tests.support.sim import SIM_JOBS, SimProcess
from tests.support.standins import visible_text
from trademon.synthetic import config as syn_config

pytestmark = pytest.mark.e2e  # real Prometheus, Alertmanager and trademon processes

SPEED = 10
QUIET_FOR = 15 * 60 / SPEED  # the first 15 minutes, in real seconds


def synthetic_env(ports: dict[str, int], syn_port: int) -> dict[str, str]:
    env = {"TRADEMON_SYNTHETIC_HOST": "127.0.0.1", "TRADEMON_SYNTHETIC_PORT": str(syn_port),
           "TRADEMON_SYNTHETIC_API_URL": f"http://127.0.0.1:{ports['automatictrader-api']}",
           "TRADEMON_SYNTHETIC_POSITION_MANAGER_URL": f"http://127.0.0.1:{ports['position-manager']}",
           "TRADEMON_SYNTHETIC_PROMETHEUS_URL": f"http://127.0.0.1:{ports['prometheus']}",
           "TRADEMON_SYNTHETIC_ALERTMANAGER_URL": f"http://127.0.0.1:{ports['alertmanager']}",
           "TRADEMON_SYNTHETIC_HEALTH_TARGETS": ",".join(
               [f"{j}=http://127.0.0.1:{ports[j]}/healthz" for j in SIM_JOBS]
               + [f"prometheus=http://127.0.0.1:{ports['prometheus']}/-/healthy",
                  f"alertmanager=http://127.0.0.1:{ports['alertmanager']}/-/healthy"]),
           "TRADEMON_SYNTHETIC_POLL_INTERVAL": "0.05"}
    for check, (interval, timeout) in syn_config.TIMING_DEFAULTS.items():
        var = f"TRADEMON_SYNTHETIC_{check.upper()}"
        env[var + "_INTERVAL"] = f"{max(interval / SPEED, 1):g}"
        env[var + "_TIMEOUT"] = f"{max(timeout / SPEED, 1):g}"
    return env


@pytest.fixture
def cold_start(tmp_path):
    ports = {**SimProcess.pick_ports(), "prometheus": free_port(), "alertmanager": free_port()}
    syn_port = free_port()
    procs = []

    def synthetic_first():
        procs.append(start("synthetic", [sys.executable, "-m", "trademon", "synthetic"], synthetic_env(ports, syn_port),
                           tmp_path / "synthetic.log"))
        time.sleep(1)  # its first runs happen before the trading services listen

    t0 = time.time()
    try:
        stack = E2EStack(tmp_path / "stack", speed=SPEED, scrape="1s", evaluation="1s",
                         am_intervals={"group_wait": "1s", "group_interval": "2s"}, for_scale=SPEED, resend_delay="2s",
                         targets={"synthetic": f"127.0.0.1:{syn_port}"}, ports=ports, before_sim=synthetic_first)
    except BaseException:
        for p in procs:
            p.close()
        raise
    try:
        yield stack, procs[0], t0
    finally:
        stack.close()
        procs[0].close()


def prom_query(stack, q: str) -> list:
    return requests.get(f"{stack.prom_url}/api/v1/query", params={"query": q}, timeout=5).json()["data"]["result"]


def test_a_healthy_cold_start_sends_no_warning_or_critical(cold_start):
    stack, syn, t0 = cold_start
    end = t0 + QUIET_FOR
    while time.time() < end:
        time.sleep(1)
    window = f"{int(time.time() - t0) + 5}s"
    loud = [visible_text(m["text"]) for m in stack.telegram.sent()]
    records = [(r["receiver"], a["labels"]["alertname"]) for r in stack.alerting.records() for a in r["alerts"]]
    firing = [a["labels"] for a in stack.prom_alerts() if a["state"] == "firing" and a["labels"]["alertname"] != "Watchdog"
              and not a["labels"].get("breaker", "").startswith("synthetic")]  # the breaker check's own trip
    assert loud == [], f"Telegram got {loud}\nsynthetic log:\n{syn.tail(30)}"
    assert stack.alerting.standins.slack.sent() == []
    assert [r for r in records if r[0] in ("critical", "warning")] == [], records
    assert firing == [], firing
    # No check reported a failure at any time: a service still starting is not a failed check.
    failed = prom_query(stack, f"min_over_time(synthetic_check_success[{window}]) == 0")
    assert failed == [], [(r["metric"]["check"], r["value"]) for r in failed]
    # The checks did run, and pass: the quiet is not theirs being switched off.
    assert ("record", "Watchdog") in records

    def breaker_check_passed():
        r = prom_query(stack, 'synthetic_check_success{check="circuit_breaker"}')
        return r and r[0]["value"][1] == "1"
    wait_for(breaker_check_passed, 60, 0.5, "the circuit-breaker check passing, as Prometheus sees it")
    assert "target not reachable yet: run not counted" in syn.log_text()
