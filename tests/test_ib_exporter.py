"""The IB exporter, as a process, with the real ib_async client against the stand-in TWS."""

from __future__ import annotations

import subprocess
import sys

import pytest
import requests

from tests.support.ib import CLIENT_ID, seed_broker
from tests.support.procs import wait_for

BROKER_SERIES = ("daily_pnl", "ib_position_quantity", "ib_position_market_value", "account_net_liquidation",
                 "risk_gross_exposure", "risk_net_exposure", "risk_leverage")


def test_metrics_match_what_tws_sent(tws, exporter):
    seed_broker(tws)
    ex = exporter(tws, TRADEMON_IB_EXPOSURE_LIMIT="DU111111=50000,DU222222=20000")
    ex.wait_value(1, "ib_connected")
    assert tws.client_ids() == [CLIENT_ID]
    wait_for(lambda: ex.value("ib_position_market_value", account="DU222222", symbol="SPY") == 5_010.0, 10,
             what="market values from reqPnLSingle")
    s = ex.samples()

    def v(name, **labels):
        return s.get((name, tuple(sorted(labels.items()))))

    assert v("ib_position_quantity", account="DU111111", symbol="AAPL") == 100
    assert v("ib_position_quantity", account="DU111111", symbol="MSFT") == -50
    assert v("ib_position_market_value", account="DU111111", symbol="MSFT") == -15_000
    assert (v("daily_pnl", account="DU111111"), v("unrealized_pnl", account="DU111111"),
            v("realized_pnl", account="DU111111")) == (-123.5, 40.25, -163.75)
    assert v("daily_pnl", account="DU222222") == 12.0
    assert v("account_net_liquidation", account="DU111111") == 100_000
    assert v("account_gross_position_value", account="DU111111") == 30_500
    assert v("account_maint_margin_req", account="DU111111") == 9_000
    assert v("account_excess_liquidity", account="DU111111") == 91_000
    assert v("account_buying_power", account="DU111111") == 364_000
    assert v("account_cushion", account="DU111111") == 0.91
    # exposure: |15500| + |-15000| and 15500 - 15000; leverage against net liquidation
    assert v("risk_gross_exposure", account="DU111111") == 30_500
    assert v("risk_net_exposure", account="DU111111") == 500
    assert v("risk_leverage", account="DU111111") == pytest.approx(0.305)
    assert v("risk_gross_exposure_limit", account="DU111111") == 50_000
    assert v("risk_gross_exposure_limit", account="DU222222") == 20_000
    # TWS's farm messages at connect
    assert v("ib_farm_connected", farm="usfarm", kind="market") == 1
    assert v("ib_farm_connected", farm="secdefnj", kind="secdef") == 1
    assert v("ib_errors_total", code="2104") == 1
    assert v("ib_disconnects_total") == 0
    # one subscription of each kind, one reqPnLSingle per position
    assert tws.subscriptions() == [{"mkt_data": 0, "pnl": 2, "pnl_single": 3, "account_summary": 1, "positions": 1}]

    # live updates, and a closed position leaves the exposition
    tws.set_pnl("DU111111", -612.0, -400.0, -212.0)
    ex.wait_value(-612.0, "daily_pnl", account="DU111111")
    tws.set_position("DU111111", "MSFT", 0, 0.0, market_value=0.0)
    wait_for(lambda: ex.value("ib_position_quantity", account="DU111111", symbol="MSFT") is None, 10,
             what="closed position dropped")
    ex.wait_value(15_500, "risk_gross_exposure", account="DU111111")
    assert tws.subscriptions()[0]["pnl_single"] == 2


def test_accounts_filter_limits_what_is_exported(tws, exporter):
    seed_broker(tws)
    ex = exporter(tws, TRADEMON_IB_ACCOUNTS="DU222222")
    ex.wait_value(12.0, "daily_pnl", account="DU222222")
    assert ex.value("daily_pnl", account="DU111111") is None
    assert ex.value("ib_position_quantity", account="DU111111", symbol="AAPL") is None
    assert tws.subscriptions()[0]["pnl"] == 1


def test_drop_shows_disconnected_and_reconnects(tws, exporter):
    seed_broker(tws)
    ex = exporter(tws)
    ex.wait_value(-123.5, "daily_pnl", account="DU111111")
    tws.error(2103, "Market data farm connection is broken:usfarm")
    ex.wait_value(0, "ib_farm_connected", farm="usfarm", kind="market")

    tws.go_down()
    ex.wait_value(0, "ib_connected", timeout=5)
    names = ex.names()
    assert not names & set(BROKER_SERIES), "broker state must be dropped while disconnected"
    assert "ib_farm_connected" not in names
    assert ex.value("ib_disconnects_total") == 1
    assert ex.value("ib_errors_total", code="2103") == 1  # counters keep their values
    assert requests.get(ex.url + "/readyz", timeout=5).status_code == 503

    tws.come_back()
    ex.wait_value(1, "ib_connected", timeout=15)
    ex.wait_value(-123.5, "daily_pnl", account="DU111111")
    ex.wait_value(1, "ib_farm_connected", farm="usfarm", kind="market")
    expected = [{"mkt_data": 0, "pnl": 2, "pnl_single": 3, "account_summary": 1, "positions": 1}]
    wait_for(lambda: tws.subscriptions() == expected, 10, what=f"subscriptions {expected}")
    assert ex.value("ib_disconnects_total") == 1
    assert requests.get(ex.url + "/readyz", timeout=5).status_code == 200


def test_metrics_answer_while_tws_is_down_and_connect_when_it_comes(tws, exporter):
    tws.go_down()
    seed_broker(tws)
    ex = exporter(tws)
    assert ex.value("ib_connected") == 0  # /metrics answers from memory, TWS or not
    tws.come_back()
    ex.wait_value(1, "ib_connected", timeout=15)
    ex.wait_value(100, "ib_position_quantity", account="DU111111", symbol="AAPL")


def test_half_open_socket_is_noticed_by_the_heartbeat(tws, exporter):
    seed_broker(tws)
    ex = exporter(tws)
    ex.wait_value(1, "ib_connected")
    first = tws.connections_total
    tws.freeze()  # socket stays open, nothing answers
    ex.wait_value(0, "ib_connected", timeout=10)
    assert "daily_pnl" not in ex.names()
    ex.wait_value(1, "ib_connected", timeout=15)  # the new session is not frozen
    assert tws.connections_total > first
    ex.wait_value(-123.5, "daily_pnl", account="DU111111")


def test_connectivity_codes_and_farms(tws, exporter):
    seed_broker(tws)
    ex = exporter(tws, TRADEMON_IB_SYMBOLS="AAPL")
    ex.wait_value(1, "ib_connected")
    before = [{"mkt_data": 1, "pnl": 2, "pnl_single": 3, "account_summary": 1, "positions": 1}]
    wait_for(lambda: tws.subscriptions() == before, 10, what=f"subscriptions {before}")

    tws.error(1100, "Connectivity between IB and Trader Workstation has been lost.")
    ex.wait_value(0, "ib_connected")
    assert not ex.names() & set(BROKER_SERIES)
    assert ex.value("ib_errors_total", code="1100") == 1
    assert ex.value("ib_disconnects_total") == 1
    tws.error(1102, "Connectivity between IB and Trader Workstation has been restored - data maintained.")
    ex.wait_value(1, "ib_connected")
    assert ex.value("ib_errors_total", code="1102") == 1
    # the dropped series come back without waiting for TWS to send changes
    ex.wait_value(-123.5, "daily_pnl", account="DU111111")
    ex.wait_value(100, "ib_position_quantity", account="DU111111", symbol="AAPL")
    ex.wait_value(5_010, "risk_gross_exposure", account="DU222222")
    wait_for(lambda: tws.subscriptions() == before, 10, what=f"subscriptions back to {before} after 1102")

    tws.error(1100, "Connectivity between IB and Trader Workstation has been lost.")
    ex.wait_value(0, "ib_connected")
    tws.error(1101, "Connectivity between IB and Trader Workstation has been restored - data lost.")
    ex.wait_value(1, "ib_connected")
    # resubscribed: broker state back, and the same number of subscriptions as before
    ex.wait_value(-123.5, "daily_pnl", account="DU111111")
    ex.wait_value(15_500, "ib_position_market_value", account="DU111111", symbol="AAPL")
    wait_for(lambda: tws.subscriptions() == before, 10, what=f"subscriptions back to {before}")
    assert ex.value("ib_errors_total", code="1101") == 1
    assert ex.value("ib_disconnects_total") == 2

    for code, farm, kind, up in ((2103, "usfarm", "market", 0), (2104, "usfarm", "market", 1),
                                 (2105, "euhmds", "historical", 0), (2106, "euhmds", "historical", 1),
                                 (2157, "secdefil", "secdef", 0), (2158, "secdefil", "secdef", 1)):
        word = "OK" if up else "broken"
        tws.error(code, f"data farm connection is {word}:{farm}")
        ex.wait_value(up, "ib_farm_connected", farm=farm, kind=kind)
        if not up:
            assert ex.value("ib_errors_total", code=str(code)) == 1


def test_rejections_fills_and_slippage(tws, exporter):
    tws.set_quote("AAPL", 99.98, 100.02)  # arrival mid 100.00
    tws.set_quote("MSFT", 49.99, 50.01)  # arrival mid 50.00
    ex = exporter(tws, TRADEMON_IB_SYMBOLS="AAPL,MSFT")
    ex.wait_value(1, "ib_connected")
    tws.wait_request(1, count=2)  # both market data requests in (their quotes go out in answer)

    # a buy of another API client, filled in two parts above the arrival mid
    tws.place_order(11, "AAPL", "BUY", 100, client_id=7, order_ref="momentum", status="PendingSubmit")
    tws.order_status(11, "Submitted", client_id=7)
    tws.fill(11, 60, 100.05, client_id=7)
    tws.fill(11, 40, 100.10, client_id=7)
    # a sell filled below the arrival mid: a cost, so positive
    tws.place_order(12, "MSFT", "SELL", 10, client_id=7, order_ref="meanrev")
    tws.fill(12, 10, 49.95, client_id=7)
    # a sell filled above the arrival mid: price improvement, negative
    tws.place_order(13, "MSFT", "SELL", 10, client_id=7, order_ref="meanrev")
    tws.fill(13, 10, 50.02, client_id=7)
    # rejections: of this client id (ib_async marks it Cancelled with the code in the trade's log)
    # and of another client id; a plain cancel stays a cancel
    tws.place_order(14, "AAPL", "BUY", 5, client_id=CLIENT_ID, order_ref="momentum")
    tws.reject(14, 201, "Order rejected - reason: insufficient margin", client_id=CLIENT_ID)
    tws.place_order(15, "AAPL", "BUY", 5, client_id=7, order_ref="pairs")
    tws.reject(15, 203, "The security is not available or allowed for this account", client_id=7)
    tws.place_order(16, "MSFT", "BUY", 5, client_id=7, order_ref="pairs", order_type="LMT", limit_price=49.0)
    tws.order_status(16, "Cancelled", client_id=7)

    ex.wait_value(1, "orders_cancelled_total", strategy="pairs")
    s = ex.samples()

    def v(name, **labels):
        return s.get((name, tuple(sorted(labels.items()))))

    assert v("orders_submitted_total", strategy="momentum") == 2
    assert v("orders_submitted_total", strategy="meanrev") == 2
    assert v("orders_submitted_total", strategy="pairs") == 2
    assert v("orders_filled_total", strategy="momentum") == 1
    assert v("orders_filled_total", strategy="meanrev") == 2
    assert v("orders_rejected_total", strategy="momentum", code="201") == 1
    assert v("orders_rejected_total", strategy="pairs", code="203") == 1
    assert v("orders_cancelled_total", strategy="momentum") is None
    assert v("orders_cancelled_total", strategy="pairs") == 1
    assert v("ib_errors_total", code="201") == 1

    # slippage by hand: side * (fill - arrival) / arrival * 1e4, arrival = the mid when the order came
    aapl_mid, msft_mid = (99.98 + 100.02) * 0.5, (49.99 + 50.01) * 0.5  # 100.00 and 50.00
    momentum = [+1 * (100.05 - aapl_mid) / aapl_mid * 1e4,  # ~5 bps
                +1 * (100.10 - aapl_mid) / aapl_mid * 1e4]  # ~10 bps
    meanrev = [-1 * (49.95 - msft_mid) / msft_mid * 1e4,  # ~+10 bps: sold below arrival, a cost
               -1 * (50.02 - msft_mid) / msft_mid * 1e4]  # ~-4 bps: sold above, price improvement
    assert momentum == pytest.approx([5.0, 10.0]) and meanrev == pytest.approx([10.0, -4.0])
    for strategy, values in (("momentum", momentum), ("meanrev", meanrev)):
        assert v("order_slippage_bps_count", strategy=strategy) == 2
        for le in ("-5.0", "-2.0", "0.0", "5.0", "10.0", "20.0"):
            assert v("order_slippage_bps_bucket", strategy=strategy, le=le) == sum(x <= float(le) for x in values), le
        assert v("avg_slippage_pct", strategy=strategy) == pytest.approx(sum(values) / len(values) / 100)
    assert v("avg_slippage_pct", strategy="momentum") == pytest.approx(0.075)
    assert v("avg_slippage_pct", strategy="meanrev") == pytest.approx(0.03)
    assert v("order_slippage_bps_count", strategy="pairs") is None  # rejected and cancelled: no fills
    # latencies: acknowledged after PendingSubmit, filled once
    assert v("order_ack_latency_seconds_count", strategy="momentum") == 1
    assert v("order_fill_latency_seconds_count", strategy="momentum") == 1
    assert v("order_fill_latency_seconds_count", strategy="meanrev") == 2


def test_unknown_and_malformed_messages_do_not_crash(tws, exporter):
    seed_broker(tws)
    ex = exporter(tws)
    ex.wait_value(1, "ib_connected")
    tws.send_raw(999, 1, "from a newer TWS")  # a message id nobody knows
    tws.send_raw(94, "not-a-number", "x", "y", "z")  # pnl with garbage
    tws.send_raw(61, 3, "DU111111")  # a truncated position
    tws.send_raw(4, 2, 0, 31337, "an error code nobody documented", "")
    tws.set_pnl("DU111111", -1.0, -2.0, 1.0)
    ex.wait_value(-1.0, "daily_pnl", account="DU111111")
    assert ex.value("ib_errors_total", code="31337") == 1
    assert ex.value("ib_connected") == 1
    assert ex.proc.popen.poll() is None


@pytest.mark.parametrize("env, fragment", [
    ({"TRADEMON_IB_PORT": "abc"}, "TRADEMON_IB_PORT='abc': not a whole number"),
    ({"TRADEMON_IB_CLIENT_ID": "-1"}, "TRADEMON_IB_CLIENT_ID='-1': out of range"),
    ({"TRADEMON_IB_EXPOSURE_LIMIT": "DU1=lots"}, "TRADEMON_IB_EXPOSURE_LIMIT='DU1=lots': not a number"),
    ({"TRADEMON_IB_EXPOSURE_LIMIT": "-5"}, "positive finite number"),
    ({"TRADEMON_IB_SYMBOLS": "ES:FUT"}, "not a symbol specification; allowed: SYMBOL or SYMBOL:SECTYPE"),
    ({"TRADEMON_IB_SYMBOLS": "ES:XYZ:CME:USD"}, "unknown security type 'XYZ'"),
    ({"TRADEMON_IB_EXPORTER_PORT": "70000"}, "TRADEMON_IB_EXPORTER_PORT='70000': out of range"),
    ({"TRADEMON_IB_MARKET_DATA_TYPE": "realtime"}, "allowed: live, frozen, delayed, delayed-frozen"),
])
def test_bad_configuration_exits_2_with_a_clear_message(env, fragment):
    import os

    r = subprocess.run([sys.executable, "-m", "trademon", "ib-exporter"], env={**os.environ, **env},
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 2, r.stderr
    assert "trademon ib-exporter: configuration error:" in r.stderr
    assert fragment in r.stderr


def test_flag_overrides_variable_and_names_it():
    import os

    r = subprocess.run([sys.executable, "-m", "trademon", "ib-exporter", "--ib-port", "0"],
                       env=dict(os.environ), capture_output=True, text=True, timeout=60)
    assert r.returncode == 2
    assert "--ib-port '0': out of range" in r.stderr and "(the flag sets TRADEMON_IB_PORT)" in r.stderr, r.stderr


def test_many_symbols_paced_by_ib_async_do_not_trip_the_heartbeat(tws, exporter):
    """ib_async sends at most 45 requests a second and queues the rest; 60 symbols to qualify
    and subscribe keep that queue busy for seconds, longer than the test's heartbeat timeout."""
    symbols = [f"S{i:03d}" for i in range(60)]
    for s in symbols:
        tws.set_quote(s, 10.0, 10.02)
    seed_broker(tws)
    ex = exporter(tws, TRADEMON_IB_SYMBOLS=",".join(symbols))
    wait_for(lambda: tws.subscriptions() and tws.subscriptions()[0]["mkt_data"] == 60, 30,
             what="60 market data subscriptions")
    tws.error(1101, "Connectivity between IB and Trader Workstation has been restored - data lost.")
    tws.wait_request(2, count=60, timeout=30)  # every line cancelled ...
    wait_for(lambda: tws.subscriptions()[0]["mkt_data"] == 60, 30, what="... and requested again")
    assert ex.value("ib_disconnects_total") == 0
    assert ex.value("ib_connected") == 1
    assert tws.connections_total == 1


def test_port_in_use_exits_2_naming_the_variable():
    import os
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        r = subprocess.run([sys.executable, "-m", "trademon", "ib-exporter"], capture_output=True, text=True,
                           timeout=60, env={**os.environ, "TRADEMON_IB_EXPORTER_HOST": "127.0.0.1",
                                            "TRADEMON_IB_EXPORTER_PORT": str(port)})
    assert r.returncode == 2, r.stderr
    assert f"127.0.0.1:{port}: the port is already in use" in r.stderr
    assert "TRADEMON_IB_EXPORTER_PORT" in r.stderr
