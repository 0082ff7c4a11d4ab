"""How much broker traffic the IB exporter absorbs on one core, and what a scrape costs.

Not a test: it prints figures. Targets (issue 3): at least 50,000 tick events per second,
/metrics under 50 ms with 500 symbols and 20 strategies populated.

    python benchmarks/ib_events.py [--seconds 1.0] [--json]

Two paths per event kind:
- "handler": the exporter's own handler (trademon.ib.state.BrokerState), fed ib_async
  objects, as ib_async's events call it; this is what the exporter adds.
- "ib_async": raw TWS API bytes (what the stand-in TWS sends) through ib_async's client,
  decoder and wrapper, then the exporter's handler: the whole path inside the process.
A tick event is one ticker update handed to pendingTickersEvent (the "ib_async" path packs
50 tick messages per network read, as TWS does under load). Figures are the best of three
timed runs, pinned to one CPU when the OS allows.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import os
import platform
import statistics
import sys
from time import perf_counter

from ib_async import IB, Contract, Order, OrderState
from ib_async.objects import CommissionReport, Execution, Fill
from prometheus_client import generate_latest

from trademon.ib.cli import scrape_app
from trademon.ib.config import load
from trademon.ib.state import BrokerState
from trademon.runtime.service import Probes
from trademon.testing.fake_tws import FakeContract, encode

SYMBOLS = 500
STRATEGIES = 20
VERSION = 178


def best_rate(fn, n: int, runs: int = 3) -> float:
    """Events per second: best of ``runs`` timed runs of ``fn(n)``."""
    rates = []
    for _ in range(runs):
        gc.collect()
        t0 = perf_counter()
        fn(n)
        rates.append(n / (perf_counter() - t0))
    return max(rates)


def calibrate(fn, seconds: float) -> int:
    n = 1000
    while True:
        t0 = perf_counter()
        fn(n)
        dt = perf_counter() - t0
        if dt > seconds / 4 or n > 50_000_000:
            return max(1000, int(n * seconds / max(dt, 1e-9)))
        n *= 4


def offline_ib() -> IB:
    """An ib_async IB whose client believes it is connected: bytes are fed to it directly."""
    ib = IB()
    c = ib.client
    c._serverVersion = VERSION  # noqa: SLF001 - the handshake is skipped on purpose
    c.decoder.serverVersion = VERSION
    c.connState = c.CONNECTED
    c._apiReady = True  # noqa: SLF001
    ib.wrapper.clientId = 1
    return ib


def contracts() -> list[Contract]:
    return [Contract(conId=10_000 + i, symbol=f"S{i:03d}", secType="STK", exchange="SMART", currency="USD")
            for i in range(SYMBOLS)]


def trade_objects(ib: IB, state: BrokerState, cons: list[Contract], per_strategy: int = 25):
    """Open orders of 20 strategies over the symbols, known to ib_async and to the exporter
    (which takes the arrival mid from the quotes it holds)."""
    for t in [ib.wrapper.startTicker(10_000 + i, c, "arrival") for i, c in enumerate(cons)]:
        t.bid, t.ask = 99.99, 100.01
        state.on_pending_tickers({t})
    for k in range(STRATEGIES * per_strategy):
        order = Order(orderId=100 + k, clientId=7, permId=9000 + k, action="BUY", totalQuantity=1e9,
                      orderType="MKT", orderRef=f"strategy{k % STRATEGIES:02d}")
        ib.wrapper.openOrder(100 + k, cons[k % SYMBOLS], order, OrderState(status="Submitted"))
    trades = list(ib.wrapper.trades.values())
    for t in trades:
        state.on_open_order(t)
    return trades


# ---- ticks ----------------------------------------------------------------------------

def bench_ticks_handler(state: BrokerState, ib: IB, cons: list[Contract]):
    tickers = [ib.wrapper.startTicker(i, c, "mktData") for i, c in enumerate(cons)]
    singles = [{t} for t in tickers]

    def run(n):
        handler = state.on_pending_tickers
        k = 0
        for i in range(n):
            t = tickers[k]
            t.bid = 100.0 + (i & 7) * 0.01
            t.ask = t.bid + 0.02
            handler(singles[k])
            k = k + 1 if k < SYMBOLS - 1 else 0
    return run


def bench_ticks_ib_async(ib: IB, per_read: int = 50):
    # tickPrice bid/ask alternating over all symbols, 50 messages per network read
    msgs = [encode(1, 6, i % SYMBOLS, 1 + (i // SYMBOLS) % 2, 100.0 + (i % 7) * 0.01, 100, 0)
            for i in range(SYMBOLS * 2)]
    reads = [b"".join(msgs[j:j + per_read]) for j in range(0, len(msgs), per_read)]
    feed = ib.client._onSocketHasData  # noqa: SLF001 - the socket's data callback

    def run(n):
        reads_needed = max(1, n // per_read)
        for i in range(reads_needed):
            feed(reads[i % len(reads)])
    return run


# ---- order statuses and fills -----------------------------------------------------------

def bench_status_handler(state: BrokerState, trades):
    def run(n):
        handler = state.on_order_status
        m = len(trades)
        for i in range(n):
            handler(trades[i % m])
    return run


def bench_status_ib_async(ib: IB, trades):
    orders = [(t.order.orderId, t.order.permId) for t in trades]

    def run(n):
        status = ib.wrapper.orderStatus
        m = len(orders)
        for i in range(n):
            oid, perm = orders[i % m]
            status(oid, "Submitted", float(i), 1e9 - i, 100.0, perm, 0, 100.0, 7, "")
            if i % m == m - 1:
                forget_history(trades)
    return run


def forget_history(trades) -> None:
    """A real order sees a handful of updates; ib_async keeps each in the trade's log and
    formats the whole trade into a log line per update, so a pool of orders reused millions
    of times would measure that growth, not the traffic. Start each pass afresh."""
    for t in trades:
        t.log.clear()
        t.fills.clear()


def bench_fills_handler(state: BrokerState, trades):
    fills = [Fill(t.contract, Execution(execId=f"x{k}", side="BOT", shares=1, price=100.01, permId=t.order.permId),
                  CommissionReport(), None) for k, t in enumerate(trades)]

    def run(n):
        handler = state.on_exec_details
        m = len(trades)
        for i in range(n):
            handler(trades[i % m], fills[i % m])
    return run


def bench_fills_ib_async(ib: IB, trades, per_read: int = 20, pool: int = 20_000):
    """execDetails messages, encoded beforehand; ib_async drops an execId it has seen, so its
    fill map is emptied at each pass over the pool (as a new session would)."""
    msgs = []
    for i in range(pool):
        t = trades[i % len(trades)]
        c = FakeContract(t.contract.conId, t.contract.symbol)
        msgs.append(encode(11, -1, t.order.orderId, *c.fields(), f"e{i}", "20261121 10:00:00 UTC", "DU1",
                           "ISLAND", "BOT", 1, 100.01, t.order.permId, 7, 0, i, 100.0, t.order.orderRef,
                           "", "", "", 1, 0))
    reads = [b"".join(msgs[j:j + per_read]) for j in range(0, pool, per_read)]

    def run(n):
        feed = ib.client._onSocketHasData  # noqa: SLF001
        for i in range(max(1, n // per_read)):
            k = i % len(reads)
            if k == 0:
                ib.wrapper.fills.clear()
                forget_history(trades)
            feed(reads[k])
    return run


# ---- scrape -----------------------------------------------------------------------------

def populate(state: BrokerState, ib: IB, cons: list[Contract], trades) -> None:
    """500 positions with market values, account values, 20 strategies with every order metric."""
    from ib_async import PnL, Position

    state.on_connected(["DU1"])
    for i, c in enumerate(cons):
        state.on_position(Position("DU1", c, 100 + i, 50.0))
        p = type("PnLSingle", (), {})()
        p.account, p.conId, p.value = "DU1", c.conId, 5_000.0 + i
        state.on_pnl_single(p)
    state.on_pnl(PnL("DU1", "", -100.0, 50.0, -150.0))
    for tag in ("NetLiquidation", "GrossPositionValue", "MaintMarginReq", "ExcessLiquidity", "BuyingPower", "Cushion"):
        v = type("AccountValue", (), {})()
        v.account, v.tag, v.value, v.currency = "DU1", tag, "1000", "USD"
        state.on_account_summary(v)
    for t in trades:
        s = t.order.orderRef
        state.submitted(s).inc(10)
        state.filled(s).inc(8)
        state.cancelled(s).inc(1)
        state.rejected(s, "201").inc(1)
        state.ack_latency(s).observe(0.05)
        state.fill_latency(s).observe(0.5)
    bench_fills_handler(state, trades)(STRATEGIES * 5)
    for code in (2104, 2106, 2158, 2103, 201, 202, 399, 10167):
        state.on_error(-1, code, "x:usfarm")


def bench_scrape(state: BrokerState, repeats: int = 100) -> dict:
    app = scrape_app(state, Probes())
    body_len = [0]

    async def scrape():
        async def receive():
            return {"type": "http.request", "body": b""}

        async def send(msg):
            if msg["type"] == "http.response.body":
                body_len[0] = len(msg["body"])

        await app({"type": "http", "path": "/metrics", "method": "GET", "headers": []}, receive, send)

    loop = asyncio.new_event_loop()
    times_app, times_gen = [], []
    for _ in range(repeats):
        t0 = perf_counter()
        loop.run_until_complete(scrape())
        times_app.append(perf_counter() - t0)
        t0 = perf_counter()
        generate_latest(state.registry)
        times_gen.append(perf_counter() - t0)
    loop.close()
    series = sum(len(f.samples) for f in state.registry.collect())
    return {"series": series, "bytes": body_len[0],
            "scrape_ms_median": statistics.median(times_app) * 1e3,
            "scrape_ms_p95": sorted(times_app)[int(len(times_app) * 0.95) - 1] * 1e3,
            "scrape_ms_max": max(times_app) * 1e3,
            "generate_latest_ms_median": statistics.median(times_gen) * 1e3}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seconds", type=float, default=1.0, help="rough duration of each timed run")
    ap.add_argument("--json", action="store_true", help="print the figures as JSON")
    args = ap.parse_args()
    try:
        os.sched_setaffinity(0, {sorted(os.sched_getaffinity(0))[0]})
        pinned = True
    except (AttributeError, OSError):
        pinned = False

    import logging
    logging.getLogger("ib_async").setLevel(logging.CRITICAL)  # no per-message log lines in the figures
    cfg = load({"TRADEMON_IB_EXPOSURE_LIMIT": "1000000"})
    cons = contracts()

    asyncio.set_event_loop(asyncio.new_event_loop())  # ib_async objects want a current loop
    ib = offline_ib()
    state = BrokerState(cfg)
    state.on_connected(["DU1"])
    for event, handler in ((ib.pendingTickersEvent, state.on_pending_tickers),
                           (ib.orderStatusEvent, state.on_order_status),
                           (ib.execDetailsEvent, state.on_exec_details)):
        event += handler
    trades = trade_objects(ib, state, cons)

    figures: dict[str, float] = {}
    for name, fn in (("ticks_handler", bench_ticks_handler(state, ib, cons)),
                     ("ticks_ib_async", bench_ticks_ib_async(ib)),
                     ("order_status_handler", bench_status_handler(state, trades)),
                     ("order_status_ib_async", bench_status_ib_async(ib, trades)),
                     ("fills_handler", bench_fills_handler(state, trades)),
                     ("fills_ib_async", bench_fills_ib_async(ib, trades))):
        n = calibrate(fn, args.seconds)
        figures[name + "_per_second"] = best_rate(fn, n)
    assert len(state.mids) == SYMBOLS, "every symbol should have a mid after the tick runs"
    assert state.registry.get_sample_value("order_slippage_bps_count", {"strategy": "strategy00"}), "no slippage measured"

    scrape_state = BrokerState(cfg)
    scrape_ib = offline_ib()
    populate(scrape_state, scrape_ib, cons, trade_objects(scrape_ib, scrape_state, cons))
    figures.update(bench_scrape(scrape_state))

    if args.json:
        print(json.dumps({"python": platform.python_version(), "pinned_to_one_cpu": pinned, **figures}, indent=2))
        return 0
    print(f"IB exporter event absorption (Python {platform.python_version()}, "
          f"{'one CPU' if pinned else 'not pinned'}, best of 3)")
    print(f"{'event':<16}{'exporter handler':>20}{'ib_async decode + handler':>30}")
    for kind in ("ticks", "order_status", "fills"):
        print(f"{kind:<16}{figures[kind + '_handler_per_second']:>16,.0f} /s"
              f"{figures[kind + '_ib_async_per_second']:>26,.0f} /s")
    print(f"/metrics with {SYMBOLS} symbols and {STRATEGIES} strategies: {figures['series']} series, "
          f"{figures['bytes'] / 1024:.0f} KiB, median {figures['scrape_ms_median']:.1f} ms "
          f"(p95 {figures['scrape_ms_p95']:.1f} ms, max {figures['scrape_ms_max']:.1f} ms; "
          f"generate_latest alone {figures['generate_latest_ms_median']:.1f} ms)")
    tick_ok = figures["ticks_handler_per_second"] >= 50_000
    scrape_ok = figures["scrape_ms_median"] < 50
    print(f"targets: ticks >= 50,000/s {'met' if tick_ok else 'MISSED'}; scrape < 50 ms {'met' if scrape_ok else 'MISSED'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
