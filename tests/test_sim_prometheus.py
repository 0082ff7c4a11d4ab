"""The healthy simulator seen by the real Prometheus with the project's prometheus.yml and
rules: no alert but Watchdog, ever, while the rules do evaluate on its series; and a
scenario does fire its alert (so the check can fail).

Shortened as the end-to-end tests do (tests/support/e2estack.py): the simulator runs 60x,
scrape and evaluation every second, every rule's ``for`` divided by 60."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
import requests
import yaml

from tests.support.e2estack import scaled_rule_files
from tests.support.procs import free_port, start, wait_for, wait_http
from tests.support.sim import SIM_JOBS, SimProcess
from trademon.stack import native

ROOT = Path(__file__).resolve().parents[1]
SPEED = 60
HEALTHY_REAL_S = 15  # 15 simulated minutes: longer than every scaled `for` and the 5-15 minute windows


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    d = tmp_path_factory.mktemp("sim-prom")
    sim = SimProcess.start(d / "logs", speed=SPEED)
    prom = None
    try:
        port = free_port()
        cfg = native.render_prometheus_config(ROOT, {job: f"127.0.0.1:{sim.ports[job]}" for job in SIM_JOBS}, None, "1s", "1s")
        (d / "rules").mkdir()
        cfg["rule_files"] = scaled_rule_files(d / "rules", SPEED)
        (d / "prometheus.yml").write_text(yaml.safe_dump(cfg, sort_keys=False))
        prom = start("prometheus", native.prometheus_cmd(d / "prometheus.yml", d / "data", port), {}, d / "logs" / "prometheus.log")
        url = f"http://127.0.0.1:{port}"
        wait_http(f"{url}/-/ready", 30, prom)
        yield sim, url
    finally:
        if prom is not None:
            prom.close()
        sim.close()


def query(url: str, q: str) -> list[dict]:
    r = requests.get(f"{url}/api/v1/query", params={"query": q}, timeout=5).json()
    assert r["status"] == "success", r
    return r["data"]["result"]


def names(result: list[dict]) -> set[str]:
    return {s["metric"].get("alertname", "?") for s in result}


# Alerts due by the calendar, not by a fault: IBWeeklyReauthSoon warns every Saturday from 01:00
# New York time (the simulated gateway has IB's week too).
CALENDAR = "Watchdog|IBWeeklyReauthSoon"


def test_healthy_simulator_fires_no_alert(stack):
    sim, url = stack
    wait_for(lambda: len(query(url, "up == 1")) == len(SIM_JOBS), 20, what="every simulator job scraped")
    wait_for(lambda: query(url, "job:order_intents_error:ratio_rate5m"), 20, what="recording rules evaluated on the simulator's series")
    end = time.monotonic() + HEALTHY_REAL_S
    while time.monotonic() < end:
        firing = query(url, f'ALERTS{{alertname!~"{CALENDAR}", alertstate="firing"}}')
        assert not firing, names(firing)
        time.sleep(1)
    ever = query(url, f'max_over_time(ALERTS{{alertname!~"{CALENDAR}", alertstate="firing"}}[{HEALTHY_REAL_S + 30}s])')
    assert not ever, names(ever)
    # Pending is allowed only in the first minutes, when a ratio rests on a handful of orders.
    pending = query(url, f'ALERTS{{alertname!~"{CALENDAR}"}}')
    assert not pending, names(pending)
    assert names(query(url, 'ALERTS{alertstate="firing"}')) - {"IBWeeklyReauthSoon"} == {"Watchdog"}
    for rule in ("strategy:orders_rejected:ratio_rate15m", "strategy:orders_filled:ratio_rate30m",
                 "endpoint:api_request_duration_seconds:p99_5m", "account:risk_gross_exposure:ratio_limit"):
        assert query(url, rule), f"{rule} has no value: the check would prove nothing"


def test_a_scenario_does_fire_its_alert(stack):
    sim, url = stack
    sim.on("marketdata-stall")
    try:
        wait_for(lambda: "MarketDataStale" in names(query(url, 'ALERTS{alertstate="firing"}')), 20, what="MarketDataStale firing")
    finally:
        sim.off("marketdata-stall")
