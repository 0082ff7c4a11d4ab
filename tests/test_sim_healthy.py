"""Left alone, the running simulator is healthy: every figure an alert rule looks at stays
on the right side of its threshold (monitoring/config.yml), read from the scrapes."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.procs import wait_for
from tests.support.sim import SimProcess, samples, total
from trademon.settings import thresholds

ROOT = Path(__file__).resolve().parents[1]
API, MD, PM, IB = "automatictrader-api", "marketdata-stream", "position-manager", "ib-exporter"


@pytest.fixture(scope="module")
def healthy(tmp_path_factory):
    sim = SimProcess.start(tmp_path_factory.mktemp("sim-healthy"), speed=200)
    try:
        # Fifteen simulated minutes of trading: the longest alert window but one (30 min, fills).
        t0 = sim.state()["sim_time"]
        wait_for(lambda: sim.state()["sim_time"] - t0 >= 900, timeout=30, what="15 simulated minutes")
        yield {job: sim.scrape(job) for job in (API, MD, PM, IB)}, sim.state()
    finally:
        sim.close()


def test_healthy_figures_stay_under_every_threshold(healthy):
    f, state = healthy
    limits = thresholds.load(ROOT)
    api, ib, pm, md = f[API], f[IB], f[PM], f[MD]
    created = total(api, "order_intents_created_total")
    assert created > 50
    # The load generator sends duplicates and bad requests too, and asks about intents.
    assert total(api, "order_intents_duplicate_total") > 0 and total(api, "order_intents_error_total") > 0
    assert total(api, "api_request_duration_seconds_count", endpoint="/intents/{id}", method="GET") > 0
    assert total(api, "order_intents_error_total") / created < limits["intent_error_ratio"]
    assert total(api, "order_intents_pending") < limits["intents_pending_max"]
    assert max(s.value for s in samples(api, "worker_lag_seconds")) < limits["worker_lag_seconds"]
    requests_all = total(api, "api_request_duration_seconds_count")
    fast = total(api, "api_request_duration_seconds_bucket", le=str(float(limits["api_p99_seconds"])))
    assert fast / requests_all >= 0.99
    submitted = total(ib, "orders_submitted_total")
    assert submitted > 50
    assert total(ib, "orders_rejected_total") / submitted < limits["rejection_ratio"]
    assert total(ib, "orders_filled_total") / submitted > limits["fill_ratio_min"]
    assert max(s.value for s in samples(ib, "avg_slippage_pct")) < limits["slippage_pct"]
    assert min(s.value for s in samples(ib, "daily_pnl")) > limits["daily_loss_limit"]
    for s in samples(ib, "risk_gross_exposure"):
        limit = total(ib, "risk_gross_exposure_limit", account=s.labels["account"])
        assert s.value < limits["exposure_ratio"] * limit
    assert total(ib, "ib_connected") == 1
    assert all(s.value == 1 for s in samples(ib, "ib_farm_connected"))
    assert all(s.value == 0 for s in samples(pm, "circuit_breaker_open"))
    assert all(s.value == 0 for s in samples(pm, "position_reconciliation_discrepancy"))
    assert total(md, "marketdata_connected") == 1
    assert state["scenarios"] == [] and not any(state["breakers"].values())
