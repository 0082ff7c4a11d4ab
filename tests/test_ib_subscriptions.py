"""IB's own market-data lines: tick age per cadence class within the exchange session, 1101
without a resubscribe, the delivered data type. Injected clocks; real exchange calendars.
The last test runs the exporter's connection in-process against the stand-in TWS (real
socket protocol, real ib_async) with the same injected clocks."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from datetime import datetime, UTC

from ib_async import Contract

from trademon.ib.config import IBConfig, WatchedSymbol
from trademon.ib.state import BrokerState
from trademon.testing.fake_tws import FakeTWS

# Monday 2026-12-07: NASDAQ opens 14:30 UTC (09:30 New York), closes 21:00 UTC.
MONDAY_OPEN = datetime(2026, 12, 7, 14, 30, tzinfo=UTC).timestamp()
SUNDAY_NOON = datetime(2026, 12, 6, 12, 0, tzinfo=UTC).timestamp()


class Clocks:
    def __init__(self, wall: float):
        self.mono, self.wall_at = 1000.0, wall

    def clock(self) -> float:
        return self.mono

    def wall(self) -> float:
        return self.wall_at

    def advance(self, seconds: float) -> None:
        self.mono += seconds
        self.wall_at += seconds


def C(symbol: str, secType: str = "STK", **fields) -> Contract:  # noqa: N802, N803 (ib_async's names)
    """ib_async's own Contract, as the exporter receives it."""
    return Contract(symbol=symbol, secType=secType, **{"exchange": "SMART", "primaryExchange": "NASDAQ", "conId": 1, **fields})


@dataclass
class T:
    contract: C
    marketDataType: int = 1
    bid: float = field(default=float("nan"))
    ask: float = field(default=float("nan"))


def make(wall: float, **cfg):
    clocks = Clocks(wall)
    state = BrokerState(IBConfig(**cfg), clock=clocks.clock, wall=clocks.wall)
    state.socket_up = state.connected = True
    return state, clocks


def sample(state, name, **labels):
    return state.registry.get_sample_value(name, labels)


def scrape(state):
    state.before_scrape()


def test_age_counts_from_the_last_tick_and_a_quiet_line_ages_in_session():
    state, clocks = make(MONDAY_OPEN + 3600)
    md = state.market_data
    aapl, opt = C("AAPL"), C("AAPL", "OPT", localSymbol="AAPL  261218C00200000")
    md.requested(("AAPL", "STK"), aapl)
    md.requested(("AAPL", "OPT"), opt)
    clocks.advance(30)
    md.on_tickers([T(aapl)])
    clocks.advance(45)
    scrape(state)
    assert sample(state, "ib_market_data_tick_age_seconds", subscription="AAPL@NASDAQ", cadence="quote") == 45
    assert sample(state, "ib_market_data_tick_age_seconds", subscription="AAPL  261218C00200000@NASDAQ",
                  cadence="quote_sparse") == 75  # no tick yet: counted from its request
    assert sample(state, "ib_market_data_in_session", subscription="AAPL@NASDAQ") == 1
    assert sample(state, "ib_market_data_type", subscription="AAPL@NASDAQ") == 1
    assert sample(state, "ib_market_data_type_requested") == 1


def test_outside_the_session_it_is_not_in_session_and_at_the_open_the_age_starts_over():
    state, clocks = make(MONDAY_OPEN - 600)  # 09:20 New York
    md = state.market_data
    md.requested(("AAPL", "STK"), C("AAPL"))
    clocks.advance(300)
    scrape(state)
    assert sample(state, "ib_market_data_in_session", subscription="AAPL@NASDAQ") == 0
    assert sample(state, "ib_market_data_tick_age_seconds", subscription="AAPL@NASDAQ", cadence="quote") == 300
    clocks.advance(360)  # 60 s after the open, still no tick: the age is the session's
    scrape(state)
    assert sample(state, "ib_market_data_in_session", subscription="AAPL@NASDAQ") == 1
    assert sample(state, "ib_market_data_tick_age_seconds", subscription="AAPL@NASDAQ", cadence="quote") == 60


def test_weekend_and_exchange_calendars():
    state, _ = make(SUNDAY_NOON)
    md = state.market_data
    md.requested(("AAPL", "STK"), C("AAPL"))
    md.requested(("EUR", "CASH"), C("EUR", "CASH", exchange="IDEALPRO", primaryExchange=""))
    md.requested(("ES", "FUT"), C("ES", "FUT", exchange="CME", primaryExchange="", localSymbol="ESZ6"))
    md.requested(("X", "STK"), C("X", exchange="SMART", primaryExchange="NOWHERE"))
    scrape(state)
    assert sample(state, "ib_market_data_in_session", subscription="AAPL@NASDAQ") == 0
    assert sample(state, "ib_market_data_in_session", subscription="EUR@IDEALPRO") == 0  # 24/5: closed on Sunday noon
    assert sample(state, "ib_market_data_in_session", subscription="ESZ6@CME") == 0
    # no calendar: its age is shown, its session unknown (absent), so nothing judges it
    assert sample(state, "ib_market_data_in_session", subscription="X@NOWHERE") is None
    assert sample(state, "ib_market_data_tick_age_seconds", subscription="X@NOWHERE", cadence="quote") == 0


def test_1101_counts_the_lines_until_each_is_asked_again():
    state, _ = make(MONDAY_OPEN + 60)
    md = state.market_data
    for s in ("AAPL", "MSFT"):
        md.requested((s, "STK"), C(s))
    assert sample(state, "ib_market_data_lines_lost") == 0
    state.on_error(-1, 1101, "Connectivity between IB and Trader Workstation has been restored - data lost.")
    assert sample(state, "ib_market_data_lines_lost") == 2
    md.requested(("AAPL", "STK"), C("AAPL"))
    assert sample(state, "ib_market_data_lines_lost") == 1
    state.on_error(-1, 1102, "Connectivity between IB and Trader Workstation has been restored - data maintained.")
    assert sample(state, "ib_market_data_lines_lost") == 1  # 1102 lost nothing: MSFT still waits
    md.requested(("MSFT", "STK"), C("MSFT"))
    assert sample(state, "ib_market_data_lines_lost") == 0


def test_delayed_and_frozen_data_and_10167():
    state, _ = make(MONDAY_OPEN + 60)
    md = state.market_data
    aapl, msft = C("AAPL"), C("MSFT")
    md.requested(("AAPL", "STK"), aapl)
    md.requested(("MSFT", "STK"), msft)
    state.own_request = lambda req_id: req_id == 7
    state.on_error(7, 10167, "Requested market data is not subscribed. Displaying delayed market data.", aapl)
    md.on_tickers([T(msft, marketDataType=2)])
    scrape(state)
    assert sample(state, "ib_market_data_type", subscription="AAPL@NASDAQ") == 3
    assert sample(state, "ib_market_data_type", subscription="MSFT@NASDAQ") == 2
    assert sample(state, "ib_errors_total", code="10167") == 1


def test_labels_capped_the_rest_under_overflow_with_the_worst_age():
    state, clocks = make(MONDAY_OPEN + 60, max_subscriptions=2)
    md = state.market_data
    contracts = [C(s) for s in ("A", "B", "C", "D")]
    for c in contracts:
        md.requested((c.symbol, "STK"), c)
    clocks.advance(10)
    md.on_tickers([T(contracts[0]), T(contracts[2])])  # C ticked, D did not
    clocks.advance(5)
    scrape(state)
    ages = {s.labels["subscription"]: s.value for m in state.registry.collect() if m.name == "ib_market_data_tick_age_seconds"
            for s in m.samples}
    assert ages == {"A@NASDAQ": 5, "B@NASDAQ": 15, "__overflow__": 15}
    assert sample(state, "ib_label_overflow_total", label="subscription") == 2


def test_series_go_while_the_session_is_down_and_lines_are_forgotten_at_disconnect():
    state, _ = make(MONDAY_OPEN + 60)
    md = state.market_data
    md.requested(("AAPL", "STK"), C("AAPL"))
    state.on_error(-1, 1100, "Connectivity between IB and Trader Workstation has been lost.")
    scrape(state)
    assert sample(state, "ib_market_data_tick_age_seconds", subscription="AAPL@NASDAQ", cadence="quote") is None
    state.on_error(-1, 1101, "Connectivity between IB and Trader Workstation has been restored - data lost.")
    state.on_disconnected()
    scrape(state)
    assert md.lines == {} and sample(state, "ib_market_data_lines_lost") == 0
    assert sample(state, "ib_market_data_in_session", subscription="AAPL@NASDAQ") is None


def _fake_tws_session(tws: FakeTWS, clocks: Clocks):
    """The exporter's Connection and BrokerState in this process against the stand-in TWS."""
    from trademon.ib.connection import Connection

    cfg = IBConfig(port=tws.port, client_id=77, symbols=(WatchedSymbol("AAPL"), WatchedSymbol("MSFT")),
                   heartbeat_interval=30, reconnect_min=0.05, reconnect_max=0.1, connect_timeout=5)
    state = BrokerState(cfg, clock=clocks.clock, wall=clocks.wall)
    return state, Connection(cfg, state)


async def _until(predicate, what: str, timeout: float = 10.0):
    for _ in range(int(timeout / 0.02)):
        if predicate():
            return
        await asyncio.sleep(0.02)
    raise AssertionError(f"not reached within {timeout}s: {what}")


def test_against_the_stand_in_tws_ticks_data_type_10167_and_1101():
    clocks = Clocks(MONDAY_OPEN + 600)
    with FakeTWS(accounts=["DU1"]) as tws:
        tws.set_quote("AAPL", 99.5, 100.5)
        tws.set_market_data_type("MSFT", 3)  # TWS answers MSFT with delayed data ...
        state, conn = _fake_tws_session(tws, clocks)

        def v(name, **labels):
            state.before_scrape()
            return sample(state, name, **labels)

        async def go():
            task = asyncio.create_task(conn.run())
            try:
                await _until(lambda: len(state.market_data.lines) == 2, "two lines requested")
                await _until(lambda: v("ib_market_data_type", subscription="AAPL@NASDAQ") == 1, "AAPL live")
                assert v("ib_market_data_type", subscription="MSFT@NASDAQ") == 3
                assert v("ib_market_data_in_session", subscription="AAPL@NASDAQ") == 1
                clocks.advance(40)
                tws.set_quote("AAPL", 99.6, 100.6)
                await _until(lambda: v("ib_market_data_tick_age_seconds", subscription="AAPL@NASDAQ", cadence="quote") == 0,
                             "AAPL's tick")
                assert v("ib_market_data_tick_age_seconds", subscription="MSFT@NASDAQ", cadence="quote") == 40

                # 1101: both lines lost; the exporter cancels and asks again, then ticks flow
                tws.error(1101, "Connectivity between IB and Trader Workstation has been restored - data lost.")
                await _until(lambda: tws.request_count(2) == 2, "both lines cancelled")
                await _until(lambda: v("ib_market_data_lines_lost") == 0 and tws.subscriptions()[0]["mkt_data"] == 2,
                             "both lines asked again")

                # a resubscription that never comes: the count stays
                state.on_error(-1, 1101, "Connectivity between IB and Trader Workstation has been restored - data lost.")
                assert v("ib_market_data_lines_lost") == 2
            finally:
                task.cancel()
                await asyncio.gather(task, return_exceptions=True)

        asyncio.run(go())
