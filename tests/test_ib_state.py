"""BrokerState's rules, fed ib_async's own objects, with a clock the test moves."""

from __future__ import annotations

import pytest
from ib_async import IB, Contract, Fill, Order, OrderState, PnL, Position, Ticker
from ib_async.objects import CommissionReport, Execution

from trademon.ib.config import load
from trademon.ib.connection import JITTER
from trademon.runtime.backoff import delay
from trademon.ib.state import BrokerState, position_label


class Clock:
    def __init__(self):
        self.t = 1000.0

    def __call__(self):
        return self.t


def sample(state: BrokerState, name: str, **labels):
    return state.registry.get_sample_value(name, labels)


def wired(cfg=None, client_id=1):
    """An ib_async IB object that never connects: its wrapper is fed directly, as the decoder would."""
    clock = Clock()
    state = BrokerState(cfg or load({}), clock=clock)
    ib = IB()
    ib.wrapper.clientId = client_id
    for event, handler in ((ib.openOrderEvent, state.on_open_order), (ib.orderStatusEvent, state.on_order_status),
                           (ib.execDetailsEvent, state.on_exec_details), (ib.errorEvent, state.on_error),
                           (ib.pendingTickersEvent, state.on_pending_tickers)):
        event += handler
    state.on_connected(["DU1"])
    return ib, state, clock


def open_order(ib, order_id, client_id, ref, symbol="AAPL", status="PreSubmitted"):
    order = Order(orderId=order_id, clientId=client_id, permId=5000 + order_id, action="BUY", totalQuantity=10,
                  orderType="MKT", orderRef=ref)
    ib.wrapper.openOrder(order_id, Contract(conId=265598, symbol=symbol, secType="STK", exchange="SMART"), order,
                         OrderState(status=status))


def quote(state, symbol, bid, ask):
    t = Ticker(contract=Contract(conId=1, symbol=symbol, secType="STK"))
    t.bid, t.ask = bid, ask
    state.on_pending_tickers({t})


def test_rejection_of_own_order_is_read_from_the_trade_log():
    ib, state, _ = wired(client_id=1)
    open_order(ib, 21, 1, "momentum")
    ib.wrapper.error(21, 201, "Order rejected - reason: margin", "")  # ib_async: status Cancelled, code in log
    [trade] = ib.wrapper.trades.values()
    assert trade.orderStatus.status == "Cancelled" and trade.log[-1].errorCode == 201
    assert sample(state, "orders_rejected_total", strategy="momentum", code="201") == 1
    assert sample(state, "orders_cancelled_total", strategy="momentum") is None
    ib.wrapper.orderStatus(21, "Cancelled", 0, 10, 0, 5021, 0, 0, 1, "")  # TWS's own status after it
    assert sample(state, "orders_rejected_total", strategy="momentum", code="201") == 1  # counted once


def test_cancel_confirmation_202_is_a_cancel_not_a_rejection():
    ib, state, _ = wired(client_id=1)
    open_order(ib, 22, 1, "pairs")
    ib.wrapper.error(22, 202, "Order Canceled - reason:", "")
    assert sample(state, "orders_cancelled_total", strategy="pairs") == 1
    assert sample(state, "orders_rejected_total", strategy="pairs", code="202") is None


def test_inactive_without_a_code_counts_as_rejected_inactive():
    ib, state, _ = wired()
    open_order(ib, 23, 8, "")
    ib.wrapper.orderStatus(23, "Inactive", 0, 10, 0, 5023, 0, 0, 8, "")
    assert sample(state, "orders_rejected_total", strategy="unknown", code="inactive") == 1


def test_slippage_window_keeps_15_minutes_and_then_drops_the_series():
    ib, state, clock = wired()
    quote(state, "AAPL", 99.0, 101.0)  # mid 100
    open_order(ib, 31, 8, "momentum")
    [trade] = ib.wrapper.trades.values()
    for price in (100.2, 100.4):  # 20 and 40 bps
        fill = Fill(trade.contract, Execution(execId=f"e{price}", side="BOT", shares=5, price=price, permId=5031),
                    CommissionReport(), None)
        state.on_exec_details(trade, fill)
        clock.t += 60
    assert sample(state, "avg_slippage_pct", strategy="momentum") == pytest.approx(0.30)
    clock.t += 15 * 60 - 90  # the first fill is now 15.5 minutes old, the second 14.5
    state.before_scrape()
    assert sample(state, "avg_slippage_pct", strategy="momentum") == pytest.approx(0.40)
    clock.t += 60
    state.before_scrape()
    assert sample(state, "avg_slippage_pct", strategy="momentum") is None  # no fills: no mean
    assert sample(state, "order_slippage_bps_count", strategy="momentum") == 2  # the histogram keeps them


def test_orders_seen_in_the_connect_snapshot_count_once_without_latency_or_slippage():
    ib, state, _ = wired()
    quote(state, "AAPL", 99.0, 101.0)
    open_order(ib, 41, 8, "momentum")  # live
    [trade] = ib.wrapper.trades.values()
    state.on_open_orders_snapshot([trade])  # the same order again in a later snapshot
    assert sample(state, "orders_submitted_total", strategy="momentum") == 1


def test_exposure_and_positions_follow_updates_and_drop_on_disconnect():
    state = BrokerState(load({"TRADEMON_IB_EXPOSURE_LIMIT": "1000000"}))
    state.on_connected(["DU1"])
    aapl = Contract(conId=1, symbol="AAPL", secType="STK")
    es = Contract(conId=2, symbol="ES", secType="FUT", localSymbol="ESZ6")
    state.on_position(Position("DU1", aapl, 100, 150))
    state.on_position(Position("DU1", es, -2, 5000))
    single = type("PnLSingle", (), {})
    for con_id, value in ((1, 15_000.0), (2, -600_000.0), (1, 16_000.0)):
        p = single()
        p.account, p.conId, p.value = "DU1", con_id, value
        state.on_pnl_single(p)
    assert sample(state, "ib_position_quantity", account="DU1", symbol="ESZ6") == -2
    assert sample(state, "risk_gross_exposure", account="DU1") == 616_000
    assert sample(state, "risk_net_exposure", account="DU1") == -584_000
    state.on_position(Position("DU1", es, 0, 0))
    assert sample(state, "ib_position_quantity", account="DU1", symbol="ESZ6") is None
    assert sample(state, "risk_gross_exposure", account="DU1") == 16_000
    state.on_position(Position("DU1", aapl, 0, 0))
    assert sample(state, "risk_gross_exposure", account="DU1") == 0  # exactly, flat is flat
    pnl = PnL("DU1", "", -10.0, 1.0, -11.0)
    state.on_pnl(pnl)
    assert sample(state, "daily_pnl", account="DU1") == -10.0
    state.on_disconnected()
    assert sample(state, "daily_pnl", account="DU1") is None
    assert sample(state, "risk_gross_exposure", account="DU1") is None
    assert sample(state, "risk_gross_exposure_limit", account="DU1") == 1_000_000  # configuration, not broker state
    assert sample(state, "ib_connected") == 0 and sample(state, "ib_disconnects_total") == 1
    state.on_pnl(pnl)
    state.on_disconnected()
    assert sample(state, "ib_disconnects_total") == 1  # a loss counts once


def test_unset_values_from_ib_are_not_exported():
    state = BrokerState(load({}))
    state.on_connected(["DU1"])
    state.on_pnl(PnL("DU1", "", 1.7976931348623157e308, float("nan"), 5.0))
    assert sample(state, "daily_pnl", account="DU1") is None
    assert sample(state, "unrealized_pnl", account="DU1") is None
    assert sample(state, "realized_pnl", account="DU1") == 5.0


def test_position_label():
    assert position_label(Contract(symbol="AAPL", secType="STK", localSymbol="AAPL")) == "AAPL"
    assert position_label(Contract(symbol="EUR", secType="CASH", localSymbol="EUR.USD")) == "EUR.USD"
    assert position_label(Contract(symbol="ES", secType="FUT", localSymbol="ESZ6")) == "ESZ6"


def test_backoff_is_exponential_capped_and_jittered():
    delays = [delay(n, 1.0, 60.0, JITTER) for n in range(1, 12)]
    assert 0.8 <= delays[0] <= 1.0 and 1.6 <= delays[1] <= 2.0 and 3.2 <= delays[2] <= 4.0
    assert all(48.0 <= d <= 60.0 for d in delays[6:])
    assert delay(10_000, 1.0, 60.0, JITTER) <= 60.0


def test_error_for_the_exporters_own_request_id_is_not_an_order_rejection():
    ib, state, _ = wired()
    open_order(ib, 51, 8, "momentum")  # another client's order 51 ...
    state.own_request = lambda req_id: req_id == 51  # ... and the exporter's market data request 51
    state.on_error(51, 354, "Requested market data is not subscribed.")
    ib.wrapper.orderStatus(51, "Cancelled", 0, 10, 0, 5051, 0, 0, 8, "")
    assert sample(state, "orders_cancelled_total", strategy="momentum") == 1
    assert sample(state, "orders_rejected_total", strategy="momentum", code="354") is None
    assert sample(state, "ib_errors_total", code="354") == 1


def test_an_order_first_seen_done_has_no_latency():
    ib, state, clock = wired()
    open_order(ib, 61, 8, "momentum", status="Filled")
    ib.wrapper.orderStatus(61, "Filled", 10, 0, 100.0, 5061, 0, 100.0, 8, "")
    assert sample(state, "orders_filled_total", strategy="momentum") == 1
    assert sample(state, "order_fill_latency_seconds_count", strategy="momentum") is None
    open_order(ib, 62, 8, "momentum", status="PendingSubmit")
    clock.t += 0.2
    ib.wrapper.orderStatus(62, "Submitted", 0, 10, 0, 5062, 0, 0, 8, "")
    clock.t += 1.3
    ib.wrapper.orderStatus(62, "Filled", 10, 0, 100.0, 5062, 0, 100.0, 8, "")
    assert sample(state, "order_ack_latency_seconds_sum", strategy="momentum") == pytest.approx(0.2)
    assert sample(state, "order_fill_latency_seconds_sum", strategy="momentum") == pytest.approx(1.5)
