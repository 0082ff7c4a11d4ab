"""What broker truth costs the IB exporter's scrape after a day of 20,000 orders.

Not a test: it prints figures. Target (issue 25): /metrics at or under 50 ms with 20,000
orders a day. In-process, through the exporter's own handlers fed ib_async objects (as
ib_events.py): a day of orders over 200 contracts and 20 strategies, each opened, acknowledged,
revised one time in ten, then filled (an execution each) or cancelled, with 2,000 of them still
working at the end (ib_active_orders per contract and side, ib_working_order_quantity per
symbol, the execId set, today's Order Efficiency Ratio). Baseline in the same run: the same
exporter after 20 orders.

    python benchmarks/ib_broker_truth.py [--orders 20000] [--json]
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import logging
import sys
from pathlib import Path
from time import perf_counter

from ib_async import Contract, Order, OrderState
from ib_async.objects import Execution

sys.path.insert(0, str(Path(__file__).resolve().parent))
from ib_events import bench_scrape, offline_ib  # noqa: E402 (the same scrape timing as the event benchmark)

from trademon.ib.config import load  # noqa: E402
from trademon.ib.state import BrokerState  # noqa: E402

CONTRACTS = 200
STRATEGIES = 20
WORKING = 2_000


def day(orders: int) -> tuple[BrokerState, float]:
    """A BrokerState after ``orders`` orders; returns it and the seconds the handlers took."""
    ib = offline_ib()
    state = BrokerState(load({"TRADEMON_IB_CLIENT_ID": "9110"}))
    for event, handler in ((ib.openOrderEvent, state.on_open_order), (ib.orderStatusEvent, state.on_order_status),
                           (ib.execDetailsEvent, state.on_exec_details)):
        event += handler
    state.on_connected(["DU1"])
    cons = [Contract(conId=20_000 + i, symbol=f"C{i:03d}", secType="STK", exchange="SMART", currency="USD")
            for i in range(CONTRACTS)]
    w = ib.wrapper
    now = dt.datetime.now(dt.UTC)
    t0 = perf_counter()
    for k in range(orders):
        oid, perm, c = 1_000 + k, 500_000 + k, cons[k % CONTRACTS]
        order = Order(orderId=oid, clientId=7, permId=perm, action="BUY" if k % 2 else "SELL", totalQuantity=100,
                      orderType="LMT", lmtPrice=100.0, orderRef=f"strategy{k % STRATEGIES:02d}", account="DU1")
        w.openOrder(oid, c, order, OrderState(status="PreSubmitted"))
        w.orderStatus(oid, "Submitted", 0, 100, 0, perm, 0, 0, 7, "")
        if k % 10 == 0:  # a revision: a new limit price
            w.openOrder(oid, c, Order(orderId=oid, clientId=7, permId=perm, action=order.action, totalQuantity=100,
                                      orderType="LMT", lmtPrice=100.5, orderRef=order.orderRef, account="DU1"),
                        OrderState(status="Submitted"))
        if k >= orders - min(WORKING, orders // 10):
            continue  # still working at the end of the day
        if k % 20 == 0:
            w.orderStatus(oid, "Cancelled", 0, 100, 0, perm, 0, 0, 7, "")
        else:
            w.execDetails(-1, c, Execution(execId=f"e{k}", orderId=oid, clientId=7, permId=perm, shares=100, price=100.0,
                                           side="BOT", acctNumber="DU1", orderRef=order.orderRef, time=now))
            w.orderStatus(oid, "Filled", 100, 0, 100.0, perm, 0, 100.0, 7, "")
    return state, perf_counter() - t0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--orders", type=int, default=20_000)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    logging.getLogger("ib_async").setLevel(logging.CRITICAL)
    asyncio.set_event_loop(asyncio.new_event_loop())  # ib_async objects want a current loop
    out = {}
    for name, n in (("baseline_20_orders", 20), (f"day_{args.orders}_orders", args.orders)):
        state, took = day(n)
        fig = bench_scrape(state)
        fig["working_orders"] = len(state.book.working)
        fig["order_efficiency_ratio"] = state.registry.get_sample_value("ib_order_efficiency_ratio")
        fig["handlers_s"] = took
        out[name] = fig
    base, full = out["baseline_20_orders"], out[f"day_{args.orders}_orders"]
    out["scrape_ratio_to_baseline"] = full["scrape_ms_median"] / base["scrape_ms_median"]
    if args.json:
        print(json.dumps(out, indent=1))
        return 0
    for name in ("baseline_20_orders", f"day_{args.orders}_orders"):
        f = out[name]
        print(f"{name}: {f['series']} series, {f['bytes'] / 1024:.0f} KiB, scrape median {f['scrape_ms_median']:.1f} ms, "
              f"p95 {f['scrape_ms_p95']:.1f} ms, max {f['scrape_ms_max']:.1f} ms; {f['working_orders']} working orders, "
              f"OER {f['order_efficiency_ratio']:.2f}; handlers {f['handlers_s']:.2f} s")
    print(f"scrape, day / baseline: {out['scrape_ratio_to_baseline']:.2f}x (target: day median <= 50 ms)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
