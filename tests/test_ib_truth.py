"""Broker truth in the exporter's state: working orders per contract and side, quantity in flight,
today's Order Efficiency Ratio, executions once each, whether other clients' orders are seen."""

from __future__ import annotations

import datetime as dt

import pytest
from ib_async import IB, Contract, Fill, Order, OrderState
from ib_async.objects import CommissionReport, Execution

from trademon.ib.config import load
from trademon.ib.state import BrokerState

AAPL = Contract(conId=265598, symbol="AAPL", secType="STK", exchange="SMART")


class Wall:
    def __init__(self, t):
        self.t = t

    def __call__(self):
        return self.t


def sample(state, name, **labels):
    return state.registry.get_sample_value(name, labels)


def wired(env=None, client_id=4242, wall=None, clock=None):
    wall = wall or Wall(dt.datetime(2026, 12, 7, 15, 0, tzinfo=dt.UTC).timestamp())
    state = BrokerState(load({"TRADEMON_IB_CLIENT_ID": str(client_id), **(env or {})}), wall=wall,
                        **({"clock": clock} if clock else {}))
    ib = IB()
    ib.wrapper.clientId = client_id
    for event, handler in ((ib.openOrderEvent, state.on_open_order), (ib.orderStatusEvent, state.on_order_status),
                           (ib.execDetailsEvent, state.on_exec_details)):
        event += handler
    state.on_connected(["DU1"])
    return ib, state, wall


def place(ib, order_id, client_id=7, action="BUY", qty=10, lmt=100.0, symbol="AAPL", status="Submitted",
          ref="momentum"):
    order = Order(orderId=order_id, clientId=client_id, permId=5000 + order_id, action=action, totalQuantity=qty,
                  orderType="LMT", lmtPrice=lmt, orderRef=ref, account="DU1")
    contract = Contract(conId=265598 if symbol == "AAPL" else 1, symbol=symbol, secType="STK", exchange="SMART")
    ib.wrapper.openOrder(order_id, contract, order, OrderState(status=status))
    ib.wrapper.orderStatus(order_id, status, 0, qty, 0, 5000 + order_id, 0, 0, client_id, "")


def execution(ib, order_id, exec_id, shares, client_id=7, when=None):
    ex = Execution(execId=exec_id, orderId=order_id, clientId=client_id, permId=5000 + order_id, shares=shares,
                   price=100.0, side="BOT", acctNumber="DU1", orderRef="momentum",
                   time=when or dt.datetime(2026, 12, 7, 15, 1, tzinfo=dt.UTC))
    ib.wrapper.execDetails(-1, AAPL, ex)
    return Fill(AAPL, ex, CommissionReport(), ex.time)


def test_active_orders_per_contract_and_side_and_quantity_in_flight():
    ib, state, _ = wired()
    for i in range(3):
        place(ib, 10 + i)
    place(ib, 20, action="SELL", qty=5)
    assert sample(state, "ib_active_orders", symbol="AAPL", side="BUY") == 3
    assert sample(state, "ib_active_orders", symbol="AAPL", side="SELL") == 1
    assert sample(state, "ib_working_order_quantity", account="DU1", symbol="AAPL") == 35
    assert sample(state, "ib_working_orders") == 4
    ib.wrapper.orderStatus(10, "Cancelled", 0, 10, 0, 5010, 0, 0, 7, "")
    ib.wrapper.orderStatus(20, "Filled", 5, 0, 100.0, 5020, 0, 100.0, 7, "")
    assert sample(state, "ib_active_orders", symbol="AAPL", side="BUY") == 2
    assert sample(state, "ib_active_orders", symbol="AAPL", side="SELL") is None  # no working order: no series
    assert sample(state, "ib_working_order_quantity", account="DU1", symbol="AAPL") == 20
    ib.wrapper.orderStatus(11, "Submitted", 4, 6, 100.0, 5011, 0, 100.0, 7, "")  # partly filled
    assert sample(state, "ib_working_order_quantity", account="DU1", symbol="AAPL") == 16


def test_working_orders_per_strategy_for_a_breaker_that_halts_one_strategy():
    ib, state, _ = wired()
    place(ib, 10)
    place(ib, 11)
    place(ib, 12, ref="pairs")
    assert sample(state, "ib_strategy_working_orders", strategy="momentum") == 2
    assert sample(state, "ib_strategy_working_orders", strategy="pairs") == 1
    ib.wrapper.orderStatus(12, "Cancelled", 0, 1, 0, 5012, 0, 0, 7, "")
    assert sample(state, "ib_strategy_working_orders", strategy="pairs") is None  # none working: no series
    assert sample(state, "ib_strategy_working_orders", strategy="momentum") == 2
    state.on_disconnected()
    assert sample(state, "ib_strategy_working_orders", strategy="momentum") is None  # unknown while down


def test_a_strategy_with_orders_working_is_not_idle():
    clock = Wall(0.0)
    ib, state, _ = wired({"TRADEMON_IB_STRATEGY_IDLE_SECONDS": "10"}, clock=clock)
    place(ib, 10)  # resting for hours, no event: its label stays (its breaker must see it)
    place(ib, 11, ref="pairs", status="Filled")
    clock.t = 3600.0
    state.before_scrape()
    assert sample(state, "ib_strategy_working_orders", strategy="momentum") == 1
    assert sample(state, "orders_submitted_total", strategy="momentum") == 1
    assert sample(state, "orders_submitted_total", strategy="pairs") is None  # idle: gone


def test_working_orders_are_absent_while_the_session_is_down():
    ib, state, _ = wired()
    place(ib, 10)
    state.on_disconnected()
    assert sample(state, "ib_working_orders") is None
    assert sample(state, "ib_master_client") is None
    assert sample(state, "ib_active_orders", symbol="AAPL", side="BUY") is None
    state.on_connected(["DU1"])
    assert sample(state, "ib_working_orders") == 0  # until the snapshot of open orders comes


def test_master_client_is_1_only_after_another_clients_order_is_seen_live():
    ib, state, _ = wired(client_id=4242)
    assert sample(state, "ib_master_client") == 0
    assert state.status()["master_client"] is False and "Master API client ID" in state.status()["hint"]
    place(ib, 10, client_id=4242)  # its own (it places none, but such an event proves nothing)
    assert sample(state, "ib_master_client") == 0
    place(ib, 11, client_id=7)
    assert sample(state, "ib_master_client") == 1
    assert state.status()["other_client_ids_seen"] == [7]
    state.on_disconnected()
    state.on_connected(["DU1"])
    assert sample(state, "ib_master_client") == 0  # proven again in each session


def test_snapshot_orders_are_no_proof_of_seeing_other_clients():
    ib, state, _ = wired()
    order = Order(orderId=3, clientId=7, permId=5003, action="BUY", totalQuantity=1, orderType="MKT", account="DU1")
    from ib_async import Trade, OrderStatus
    state.on_open_orders_snapshot([Trade(AAPL, order, OrderStatus(orderId=3, status="Submitted", remaining=1))])
    assert sample(state, "ib_master_client") == 0
    assert sample(state, "ib_working_orders") == 1


def test_order_efficiency_ratio_counts_submissions_revisions_cancellations_executions():
    ib, state, wall = wired()
    for i in range(4):
        place(ib, 10 + i)
    place(ib, 10, lmt=101.0)  # a revision (price)
    place(ib, 10, lmt=101.0)  # the same terms again: no revision
    ib.wrapper.orderStatus(11, "Cancelled", 0, 10, 0, 5011, 0, 0, 7, "")
    execution(ib, 12, "e1", 5)
    execution(ib, 12, "e2", 5)  # a second fill of the same order: one executed order
    assert [sample(state, "ib_order_actions_today", kind=k) for k in
            ("submission", "revision", "cancellation", "execution")] == [4, 1, 1, 1]
    assert sample(state, "ib_order_efficiency_ratio") == pytest.approx((4 + 1 + 1) / (1 + 1))
    wall.t += 86_400  # the next day (New York midnight passed)
    state.before_scrape()
    assert sample(state, "ib_order_efficiency_ratio") == 0
    assert sample(state, "ib_order_actions_today", kind="submission") == 0


def test_executions_counted_once_live_or_recovered_and_not_before_the_exporter():
    ib, state, _ = wired()
    place(ib, 12)
    f1 = execution(ib, 12, "e1", 5)
    assert sample(state, "ib_executions_total", strategy="momentum") == 1
    # after a reconnect reqExecutions returns the day's executions: e1 again, e2 missed while down
    ex2 = Execution(execId="e2", orderId=12, clientId=7, permId=5012, shares=5, price=100.0, side="BOT",
                    acctNumber="DU1", orderRef="momentum", time=dt.datetime(2026, 12, 7, 15, 2, tzinfo=dt.UTC))
    old = Execution(execId="e0", orderId=9, clientId=7, permId=5009, shares=5, price=100.0, side="BOT",
                    acctNumber="DU1", orderRef="momentum", time=dt.datetime(2026, 12, 7, 14, 0, tzinfo=dt.UTC))
    state.on_executions_snapshot([f1, Fill(AAPL, ex2, CommissionReport(), ex2.time),
                                  Fill(AAPL, old, CommissionReport(), old.time)])
    assert sample(state, "ib_executions_total", strategy="momentum") == 2  # e0 was before the exporter started
    assert sample(state, "ib_filled_quantity_total", account="DU1", symbol="AAPL") == 10  # e1 and e2, 5 each


def test_contracts_are_bounded():
    ib, state, _ = wired({"TRADEMON_IB_MAX_ORDER_CONTRACTS": "2"})
    for i, symbol in enumerate(("AAA", "BBB", "CCC", "DDD")):
        place(ib, 10 + i, symbol=symbol)
    assert sample(state, "ib_active_orders", symbol="__overflow__", side="BUY") == 2
    assert sample(state, "ib_label_overflow_total", label="symbol") == 2


def test_bad_day_timezone_is_a_clear_error():
    from trademon.settings.env import ConfigError
    with pytest.raises(ConfigError, match="TRADEMON_IB_DAY_TIMEZONE.*time zone"):
        load({"TRADEMON_IB_DAY_TIMEZONE": "Mars/Olympus"})
