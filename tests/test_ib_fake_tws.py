"""The stand-in TWS speaks what ib_async decodes, at the server versions ib_async negotiates."""

from __future__ import annotations

import asyncio

import pytest
from ib_async import IB, Contract, Stock
from ib_async.ib import StartupFetchNONE

from trademon.testing.fake_tws import FakeTWS


async def _session(port: int, client_id: int = 3, timeout: float = 5):
    ib = IB()
    await ib.connectAsync("127.0.0.1", port, client_id, timeout=timeout, readonly=True, fetchFields=StartupFetchNONE)
    return ib


@pytest.mark.parametrize("version", [176, 178])  # below and above the layout changes at 177 and 178
def test_ib_async_decodes_every_message_kind(version):
    with FakeTWS(accounts=["DU1", "DU2"], max_version=version, master_client_id=3) as tws:
        tws.set_position("DU1", "AAPL", 100, 150.5, market_value=15_500.0)
        tws.set_pnl("DU1", -12.5, 3.0, -15.5)
        tws.set_account_value("DU1", "NetLiquidation", 100_000)
        tws.set_quote("AAPL", 99.5, 100.5)
        tws.place_order(7, "AAPL", "SELL", 25, client_id=9, order_ref="meanrev", order_type="LMT", limit_price=101.25)
        tws.fill(7, 5, 101.25, client_id=9)

        async def go():
            ib = await _session(tws.port)
            try:
                assert ib.client.serverVersion() == version
                assert ib.client.getAccounts() == ["DU1", "DU2"]
                [pos] = ib.positions()
                assert (pos.account, pos.contract.symbol, pos.position, pos.avgCost) == ("DU1", "AAPL", 100, 150.5)

                trades = await ib.reqAllOpenOrdersAsync()
                [t] = trades
                o = t.order
                assert (o.orderId, o.clientId, o.action, o.totalQuantity, o.orderType, o.lmtPrice, o.orderRef) == (
                    7, 9, "SELL", 25, "LMT", 101.25, "meanrev")
                assert o.permId > 0 and t.contract.symbol == "AAPL" and t.contract.conId > 0
                assert t.orderStatus.status == "Submitted" and t.orderStatus.filled == 5

                [fill] = await ib.reqExecutionsAsync()
                ex = fill.execution
                assert (ex.side, ex.shares, ex.price, ex.orderRef, ex.clientId, ex.acctNumber) == (
                    "SLD", 5, 101.25, "meanrev", 9, "DU1")

                [c] = await ib.qualifyContractsAsync(Stock("AAPL", "SMART", "USD"))
                assert c.conId == pos.contract.conId
                ticker = ib.reqMktData(c)
                pnl = ib.reqPnL("DU1")
                single = ib.reqPnLSingle("DU1", "", c.conId)
                await ib.reqAccountSummaryAsync()
                now = await ib.reqCurrentTimeAsync()
                for _ in range(100):
                    if ticker.midpoint() == ticker.midpoint() and pnl.dailyPnL == pnl.dailyPnL and single.value == single.value:
                        break
                    await asyncio.sleep(0.02)
                assert (ticker.bid, ticker.ask, ticker.midpoint()) == (99.5, 100.5, 100.0)
                assert (pnl.dailyPnL, pnl.unrealizedPnL, pnl.realizedPnL) == (-12.5, 3.0, -15.5)
                assert single.value == 15_500.0
                assert [v.value for v in await ib.accountSummaryAsync("DU1") if v.tag == "NetLiquidation"] == ["100000"]
                assert now.year >= 2024
                assert tws.subscriptions() == [{"mkt_data": 1, "pnl": 1, "pnl_single": 1, "account_summary": 1,
                                                "positions": 1}]
            finally:
                ib.disconnect()

        asyncio.run(go())


def test_unknown_contract_and_client_id_in_use():
    with FakeTWS() as tws:
        tws.unknown_symbols.add("NOPE")

        async def go():
            ib = await _session(tws.port, client_id=5)
            try:
                assert await ib.qualifyContractsAsync(Contract(symbol="NOPE", secType="STK", exchange="SMART",
                                                               currency="USD")) == [None]
                with pytest.raises(Exception):  # noqa: B017 - ib_async raises its own or a timeout; either is the point
                    # TWS answers 326 and closes the socket; ib_async waits for its timeout
                    await _session(tws.port, client_id=5, timeout=0.5)
                assert ib.isConnected()
            finally:
                ib.disconnect()

        asyncio.run(go())


@pytest.mark.parametrize("master", [None, 8, 3])
def test_only_the_master_client_is_sent_other_clients_orders(master):
    """TWS sends a client the events and executions of other clients' orders only when it is the
    Master API client; reqAllOpenOrders answers every client with every open order."""
    with FakeTWS(master_client_id=master) as tws:
        async def go():
            ib = await _session(tws.port, client_id=3)
            try:
                seen = []
                ib.openOrderEvent += seen.append
                tws.place_order(7, "AAPL", "BUY", 10, client_id=9)
                tws.fill(7, 10, 100.0, client_id=9)
                tws.place_order(8, "MSFT", "SELL", 5, client_id=9, order_type="LMT", limit_price=300.0)
                await asyncio.sleep(0.3)
                is_master = master == 3
                assert [t.order.orderId for t in seen] == ([7, 8] if is_master else [])
                assert [t.order.orderId for t in await ib.reqAllOpenOrdersAsync()] == [8]
                assert len(await ib.reqExecutionsAsync()) == (1 if is_master else 0)
            finally:
                ib.disconnect()
        asyncio.run(go())
