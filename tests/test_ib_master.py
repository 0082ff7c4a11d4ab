"""The exporter against the stand-in TWS: it sees other clients' orders only as TWS's Master API
client, says so in ib_master_client and on /status, and recovers fills missed while disconnected."""

from __future__ import annotations

import requests

from tests.support.procs import wait_for
from tests.support.ib import ACCOUNTS, CLIENT_ID, exporter, tws  # noqa: F401 (fixtures)
from trademon.testing.fake_tws import ORDER_CHANGING_REQUESTS, REQ_ALL_OPEN_ORDERS, REQ_EXECUTIONS, FakeTWS

OTHER = 7  # the trading system's client id


def test_not_the_master_client_says_so_on_metrics_and_status(exporter):  # noqa: F811
    with FakeTWS(accounts=ACCOUNTS, master_client_id=1) as other_master:
        ex = exporter(other_master)
        ex.wait_value(1, "ib_connected")
        other_master.place_order(1, "AAPL", "BUY", 10, client_id=OTHER, order_ref="momentum")
        ex.wait_value(0, "ib_master_client")
        status = requests.get(ex.url + "/status", timeout=5).json()
        assert status["master_client"] is False and str(CLIENT_ID) in status["hint"]
        assert ex.value("orders_submitted_total", strategy="momentum") is None  # it cannot see it


def test_master_client_sees_orders_and_recovers_a_fill_lost_in_a_disconnect(tws, exporter):  # noqa: F811
    ex = exporter(tws)
    ex.wait_value(1, "ib_connected")
    tws.place_order(1, "AAPL", "BUY", 10, client_id=OTHER, order_ref="momentum", status="Submitted")
    # (an order placed while a loaded machine made the exporter reconnect is only in the snapshot)
    more = iter(range(100, 200))
    wait_for(lambda: ex.value("ib_master_client") == 1 or tws.place_order(next(more), "MSFT", "BUY", 1, client_id=OTHER)
             and False, 10, interval=0.5, what="ib_master_client 1")
    ex.wait_value(1, "ib_active_orders", symbol="AAPL", side="BUY")
    assert ex.value("ib_strategy_working_orders", strategy="momentum") == 1  # what momentum's breaker must cancel
    assert requests.get(ex.url + "/status", timeout=5).json()["other_client_ids_seen"] == [OTHER]
    tws.go_down()
    ex.wait_value(0, "ib_connected")
    assert ex.value("ib_working_orders") is None  # unknown while down, not 0
    tws.fill(1, 10, 100.0, client_id=OTHER)  # nobody connected: TWS never replays it as an event
    tws.come_back()
    ex.wait_value(1, "ib_executions_total", strategy="momentum")  # recovered with reqExecutions
    ex.wait_value(0, "ib_working_orders")
    assert ex.value("ib_active_orders", symbol="AAPL", side="BUY") is None
    assert ex.value("ib_strategy_working_orders", strategy="momentum") is None
    # it read every client's orders and executions (at each connect) and never placed, changed,
    # cancelled or took over one
    assert tws.received[REQ_ALL_OPEN_ORDERS] >= 2 and tws.received[REQ_EXECUTIONS] >= 2
    assert not {m: n for m, n in tws.received.items() if m in ORDER_CHANGING_REQUESTS}
