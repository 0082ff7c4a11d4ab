"""The world model on its own (no HTTP, no real time): seeded, and healthy when left alone.

A healthy day must not trip any alert of the contract: the strategies' own intents are fed
straight to the broker for many simulated hours, and the figures the alert rules use are
checked against monitoring/config.yml."""

from __future__ import annotations

import random
from pathlib import Path
from types import SimpleNamespace

import pytest

from trademon.settings import thresholds
from trademon.sim.book import COMMISSION_PER_SHARE, Position
from trademon.sim.clock import SimClock
from trademon.sim.loadgen import INTENTS_PER_S, Strategies
from trademon.sim.world import Settings, World

ROOT = Path(__file__).resolve().parents[1]
T0 = 1_700_000_000.0  # a fixed start, so runs compare


def run(seed: int, hours: float, every: float = 60.0):
    """Run a world with its strategies' intents for ``hours``; sample the account every ``every`` s."""
    w = World(Settings(seed=seed), T0)
    strategies = Strategies(w, random.Random(f"{seed}:strategies"))
    arrivals = random.Random(f"{seed}:arrivals")
    next_intent, next_sample, samples = w.t, w.t, []
    end = w.t + hours * 3600
    while w.t < end:
        w.step()
        while next_intent <= w.t:
            b = strategies.next_intent()
            w.send(SimpleNamespace(account=w.account_of[b["strategy"]], limit_price=b.get("limit_price"), **{
                k: b[k] for k in ("strategy", "symbol", "side", "quantity", "order_type")}), w.t)
            next_intent += arrivals.expovariate(INTENTS_PER_S)
        if w.t >= next_sample:
            next_sample += every
            samples.append(w.account(w.s.accounts[0]))
    return w, samples


def test_same_seed_same_world_other_seed_other_world():
    a, sa = run(7, 0.5)
    b, sb = run(7, 0.5)
    c, _ = run(8, 0.5)
    assert a.market.mid == b.market.mid
    assert [s["daily_pnl"] for s in sa] == [s["daily_pnl"] for s in sb]
    assert a.broker.stats.filled == b.broker.stats.filled
    assert a.market.mid != c.market.mid


@pytest.mark.parametrize("seed", [1, 2])
def test_a_healthy_day_trips_no_alert(seed):
    limits = thresholds.load(ROOT)
    w, samples = run(seed, 12)
    st = w.broker.stats
    submitted = sum(st.submitted.values())
    assert submitted > 5000  # enough orders for the ratios to mean something
    assert min(s["daily_pnl"] for s in samples) > limits["daily_loss_limit"] * 0.5
    assert max(s["gross_exposure"] / s["exposure_limit"] for s in samples) < limits["exposure_ratio"] * 0.7
    assert sum(st.rejected.values()) / submitted < limits["rejection_ratio"] / 2
    assert sum(st.filled.values()) / submitted > max(limits["fill_ratio_min"], 0.85)
    for strategy in w.s.strategies:
        assert abs(w.broker.avg_slippage_pct(strategy, w.t)) < limits["slippage_pct"] / 10
    assert not w.breakers["daily_loss"].open and not w.breaker_trips


def test_default_loss_limit_is_the_thresholds_file_value():
    """The simulator's limit until Prometheus's threshold series answers (sim/limits.py)."""
    assert Settings().daily_loss_limit == thresholds.load(ROOT)["daily_loss_limit"]


def test_position_accounting():
    p = Position()
    p.fill(1, 10, 100.0)
    p.fill(1, 10, 110.0)
    assert (p.qty, p.avg_cost) == (20, 105.0)
    p.fill(-1, 25, 120.0)  # closes 20 at +15, opens 5 short at 120
    assert p.realized == pytest.approx(300.0)
    assert (p.qty, p.avg_cost) == (-5, 120.0)
    assert p.unrealized(118.0) == pytest.approx(10.0)
    assert p.commissions == pytest.approx(45 * COMMISSION_PER_SHARE)
    assert p.pnl(118.0) == pytest.approx(300.0 + 10.0 - 45 * COMMISSION_PER_SHARE)


def test_clock_runs_at_speed_and_ages_timestamps_at_speed():
    now = [1000.0]
    clock = SimClock(speed=30, start=5000.0, wall=lambda: 2000.0 + now[0], mono=lambda: now[0])
    now[0] += 2.0
    assert clock.now() == pytest.approx(5060.0)
    # An event 60 simulated seconds ago reads 60 seconds old to Prometheus's time().
    assert clock.to_wall(5000.0) == pytest.approx(2000.0 + 1002.0 - 60.0)


def test_intent_store_queues_lag_and_retention():
    from trademon.sim.intents import RETAIN_SENT_S, IntentStore

    store = IntentStore()
    fields = dict(strategy="meanrev", symbol="AAPL", side="buy", quantity=1, order_type="market", limit_price=None, account="A")
    a = store.create("k1", 100.0, **fields)
    b = store.create("k2", 105.0, **fields)
    assert store.existing("k1") is a and store.lag("pending", 110.0) == 10.0
    for state_now in (111.0, 112.0, 113.0):
        store.advance(a, state_now)
    assert a.state == "sent" and [s for s, _ in a.history] == ["pending", "planned", "ready", "sent"]
    assert store.counts() == {"pending": 1, "planned": 0, "ready": 0, "sent": 1}
    with pytest.raises(AssertionError):
        store.advance(store.create("k3", 106.0, **fields), 107.0)  # not the oldest pending: b is
    for state_now in (200.0, 201.0, 113.0 + RETAIN_SENT_S + 1):
        store.advance(b, state_now)
    # a was sent more than RETAIN_SENT_S before b: archived, its key free again.
    assert store.existing("k1") is None and a.id not in store.by_id and store.counts()["sent"] == 1


def test_broker_truth_in_the_healthy_world_and_the_kill_switch():
    """The simulated trading system's record meets IB's (orders, fills, positions); a tripped
    breaker cancels IB's working orders (a synthetic check's test breaker does not)."""
    w = World(Settings(seed=3), T0)
    for _ in range(6):
        w.send(SimpleNamespace(account=w.account_of["momentum"], strategy="momentum", symbol="AAPL", side="buy",
                               quantity=10, order_type="limit", limit_price=1.0), w.t)
    for _ in range(10):  # 5 s: acknowledged (within 2 s), none filled yet at a limit far below the market
        w.step()
    st = w.broker.stats
    assert st.sent["momentum"] == st.submitted["momentum"] == 6
    assert 0 < len(w.broker.working) <= 6
    assert st.executions == st.recorded
    for a in w.s.accounts:
        for sym in w.s.symbols:
            assert w.trading_position(a, sym) == w.account(a)["positions"][sym]
    working = len(w.broker.working)
    w.trip("synthetic_test", "synthetic")
    assert len(w.broker.working) == working
    w.trip("daily_loss", "manual")
    assert w.broker.working == {} and sum(st.cancelled.values()) >= working
    # the kill switch halts the sender too: an intent accepted before the trip never reaches IB
    w.send(SimpleNamespace(account=w.account_of["pairs"], strategy="pairs", symbol="AAPL", side="buy",
                           quantity=10, order_type="limit", limit_price=1.0), w.t)
    assert w.broker.working == {} and st.sent["pairs"] == 0


def test_the_kill_switch_cancels_orders_still_on_their_way_to_ib():
    """A breaker that trips between an order's placement and IB's acknowledgement: the cancel
    takes it too (reqGlobalCancel does), so it never turns up working after the kill switch.
    The leaking breaker switched off before its resting orders were acknowledged left them
    working for good (the kill-switch scenario test failed under load)."""
    w = World(Settings(seed=3), T0)
    w.leak_breaker(True)
    w.leak_breaker(False)  # before a step: IB has not acknowledged the resting orders yet
    w.send(SimpleNamespace(account=w.account_of["pairs"], strategy="pairs", symbol="AAPL", side="buy",
                           quantity=10, order_type="limit", limit_price=1.0), w.t)
    w.trip("daily_loss", "manual")
    for _ in range(10):  # past every acknowledgement (2 s at most)
        w.step()
    assert w.broker.working == {}


@pytest.mark.parametrize("answer", ["-Inf", "NaN", "+Inf"])
def test_a_non_finite_loss_limit_from_prometheus_is_not_taken(answer):
    """The simulator follows Prometheus's loss limit; a value that is no limit (-Inf would never
    trip the breaker, NaN never compares) leaves the one in use."""
    import asyncio

    from trademon.sim import limits

    class Answer:
        def raise_for_status(self):
            return None

        def json(self):
            return {"data": {"result": [{"metric": {}, "value": [T0, answer]}]}}

    class Client:
        async def get(self, url, params):
            return Answer()

    assert asyncio.run(limits.fetch(Client(), "http://prometheus")) is None
