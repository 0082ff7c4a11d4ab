"""The automatictrader-api contract as the simulator serves it: idempotency, validation
errors counted by reason, circuit breakers (423), the synthetic-only test hooks, and an
intent's history through the workers to ``sent``."""

from __future__ import annotations

import uuid

import pytest
import requests

from tests.support.procs import wait_for
from tests.support.sim import SimProcess

API, PM, IB = "automatictrader-api", "position-manager", "ib-exporter"
GOOD = {"strategy": "meanrev", "symbol": "MSFT", "side": "sell", "quantity": 3, "order_type": "limit", "limit_price": 409.5}


@pytest.fixture(scope="module")
def sim(tmp_path_factory):
    s = SimProcess.start(tmp_path_factory.mktemp("sim-api"), speed=60)
    yield s
    s.close()


def post(sim, body, key: str | None = "fresh"):
    headers = {} if key is None else {"Idempotency-Key": str(uuid.uuid4()) if key == "fresh" else key}
    return requests.post(sim.url(API) + "/intents", json=body, headers=headers, timeout=5)


def hook(sim, method, breaker, action=""):
    return requests.request(method, f"{sim.url(API)}/test/circuit-breaker/{breaker}{action}", timeout=5)


def test_create_then_same_key_is_a_counted_duplicate(sim):
    key = f"test-{uuid.uuid4()}"
    r = post(sim, GOOD, key)
    assert r.status_code == 201, r.text
    created = r.json()
    assert created["state"] == "pending" and created["strategy"] == "meanrev" and created["id"]
    dup0 = sim.total(API, "order_intents_duplicate_total", strategy="meanrev")
    again = post(sim, {**GOOD, "quantity": 99}, key)
    assert again.status_code == 409 and again.json()["id"] == created["id"]
    assert sim.total(API, "order_intents_duplicate_total", strategy="meanrev") == dup0 + 1


@pytest.mark.parametrize(
    "body, key, reason",
    [
        (GOOD, None, "missing_idempotency_key"),
        ({**GOOD, "quantity": 0}, "fresh", "invalid_quantity"),
        ({**GOOD, "side": "hold"}, "fresh", "invalid_side"),
        ({k: v for k, v in GOOD.items() if k != "symbol"}, "fresh", "missing_symbol"),
        ({**GOOD, "limit_price": None}, "fresh", "missing_limit_price"),
        ({**GOOD, "symbol": "XYZ"}, "fresh", "unknown_symbol"),
    ],
)
def test_invalid_intents_get_422_counted_by_reason(sim, body, key, reason):
    before = sim.total(API, "order_intents_error_total", strategy="meanrev", reason=reason)
    r = post(sim, body, key)
    assert r.status_code == 422 and r.json()["reason"] == reason, r.text
    assert sim.total(API, "order_intents_error_total", strategy="meanrev", reason=reason) == before + 1


def test_unknown_strategy_is_labelled_unknown(sim):
    before = sim.total(API, "order_intents_error_total", strategy="unknown", reason="unknown_strategy")
    r = post(sim, {**GOOD, "strategy": "made-up-strategy"})
    assert r.status_code == 422
    assert sim.total(API, "order_intents_error_total", strategy="unknown", reason="unknown_strategy") == before + 1
    assert sim.total(API, "order_intents_error_total", strategy="made-up-strategy") == 0


def test_synthetic_breaker_refuses_its_strategy_with_423_and_shows_on_position_manager(sim):
    name = "synthetic-api-test"
    trips0 = sim.total(PM, "circuit_breaker_trips_total", breaker=name)
    assert hook(sim, "POST", name, "/trip").json()["open"] is True
    assert hook(sim, "GET", name).json() == {"breaker": name, "open": True}
    assert sim.total(PM, "circuit_breaker_open", breaker=name) == 1
    assert sim.total(PM, "circuit_breaker_trips_total", breaker=name) == trips0 + 1
    refused0 = sim.total(API, "order_intents_error_total", strategy=name, reason="circuit_breaker_open")
    r = post(sim, {**GOOD, "strategy": name})
    assert r.status_code == 423 and r.json()["breaker"] == name
    assert sim.total(API, "order_intents_error_total", strategy=name, reason="circuit_breaker_open") == refused0 + 1
    assert post(sim, GOOD).status_code == 201  # other strategies trade on
    assert hook(sim, "POST", name, "/reset").json()["open"] is False
    assert hook(sim, "GET", name).json()["open"] is False
    assert sim.total(PM, "circuit_breaker_open", breaker=name) == 0
    assert post(sim, {**GOOD, "strategy": name}).status_code == 201


@pytest.mark.parametrize("breaker", ["daily_loss", "meanrev", "Synthetic-caps"])
def test_hooks_only_touch_synthetic_breakers(sim, breaker):
    for method, action in (("POST", "/trip"), ("POST", "/reset"), ("GET", "")):
        assert hook(sim, method, breaker, action).status_code == 403
    assert sim.state()["breakers"].get(breaker, False) is False


def test_intent_history_reaches_sent(sim):
    r = post(sim, {**GOOD, "order_type": "market", "limit_price": None})
    assert r.status_code == 201
    intent_id = r.json()["id"]
    doc = wait_for(lambda: (d := requests.get(f"{sim.url(API)}/intents/{intent_id}", timeout=5).json())["state"] == "sent" and d,
                   timeout=20, what="intent sent")
    assert [h["state"] for h in doc["history"]] == ["pending", "planned", "ready", "sent"]
    assert doc["id"] == intent_id and doc["strategy"] == "meanrev" and doc["symbol"] == "MSFT"
    assert all(h["at"].endswith("Z") for h in doc["history"])
    assert requests.get(f"{sim.url(API)}/intents/int-9999999", timeout=5).status_code == 404


def test_synthetic_intents_flow_through_workers_but_never_reach_the_broker(sim):
    r = post(sim, {**GOOD, "strategy": "synthetic-pipeline", "symbol": "ANY"})
    assert r.status_code == 201
    intent_id = r.json()["id"]
    wait_for(lambda: requests.get(f"{sim.url(API)}/intents/{intent_id}", timeout=5).json()["state"] == "sent",
             timeout=20, what="synthetic intent sent")
    assert sim.total(IB, "orders_submitted_total", strategy="synthetic-pipeline") == 0
    assert sim.total(API, "order_intents_created_total", strategy="synthetic-pipeline") >= 1
