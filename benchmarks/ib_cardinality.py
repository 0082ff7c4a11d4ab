"""What 20,000 orders with distinct orderRefs cost the IB exporter: series, scrape, memory.

Not a test: it prints figures. Targets (issue 10): a /metrics scrape under 50 ms and RSS
growth under 50 MB after 20,000 orders whose orderRefs are all different (a unique id per
order, as many trading systems write). Baseline, in the same run: the same orders with 20
orderRefs (20 strategies), so the ratio shows what distinct orderRefs still cost.

The whole path is real: ``trademon ib-exporter`` as its own process, with the ib_async client,
against the stand-in TWS (trademon.testing.fake_tws) on loopback. Each order is placed
(PendingSubmit), acknowledged (Submitted) and filled against a quoted mid, so it touches every
per-strategy family (counters, ack and fill latency, slippage). Orders go in batches (``--batch``,
1,000), the next once the exporter has counted the last.

    python benchmarks/ib_cardinality.py [--orders 20000] [--json]
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import requests

from trademon.testing.fake_tws import FakeTWS

OTHER_CLIENT = 7


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS")


def scrape(url: str) -> str:
    r = requests.get(url, timeout=30)
    r.raise_for_status()
    return r.text


def value(text: str, prefix: str) -> float:
    return sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines() if line.startswith(prefix))


def wait(predicate, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.1)
    raise TimeoutError(what)


def run(orders: int, refs, label: str, log_dir: Path, batch: int) -> dict:
    tws = FakeTWS(accounts=["DU111111"], master_client_id=9110).start()
    tws.set_quote("AAPL", 99.98, 100.02)
    port = free_port()
    env = {**os.environ, "TRADEMON_IB_HOST": "127.0.0.1", "TRADEMON_IB_PORT": str(tws.port),
           "TRADEMON_IB_CLIENT_ID": "9110", "TRADEMON_IB_EXPORTER_HOST": "127.0.0.1",
           "TRADEMON_IB_EXPORTER_PORT": str(port), "TRADEMON_IB_SYMBOLS": "AAPL",
           "TRADEMON_IB_HEARTBEAT_SECONDS": "5", "TRADEMON_IB_HEARTBEAT_TIMEOUT_SECONDS": "30"}
    log = open(log_dir / f"ib-exporter-{label}.log", "wb")
    proc = subprocess.Popen([sys.executable, "-m", "trademon", "ib-exporter"], env=env, stdout=log, stderr=log)
    url = f"http://127.0.0.1:{port}/metrics"
    try:
        wait(lambda: _up(url), 30, "the exporter connected")
        tws.wait_request(1)  # the quote line: arrival mids for slippage
        time.sleep(1.0)
        scrape(url)
        rss0 = rss_mb(proc.pid)
        t0 = time.perf_counter()
        for start in range(0, orders, batch):
            ids = list(range(100 + start, 100 + min(start + batch, orders)))
            tws.place_orders([{"order_id": i, "symbol": "AAPL", "client_id": OTHER_CLIENT, "order_ref": refs(i),
                               "status": "PendingSubmit"} for i in ids])
            tws.order_statuses(ids, "Submitted", client_id=OTHER_CLIENT)
            tws.fills([(i, 1, 100.05) for i in ids], client_id=OTHER_CLIENT)
            # the next batch once this one is counted: TWS streams orders as they happen, and a
            # backlog of unread messages would measure socket buffers, not the exporter
            done = ids[-1] - 99
            wait(lambda done=done: value(scrape(url), "orders_filled_total{") >= done, 600, f"{done} fills counted")
        absorbed = time.perf_counter() - t0
        times, text = [], ""
        for _ in range(20):
            t = time.perf_counter()
            text = scrape(url)
            times.append(time.perf_counter() - t)
        rss1 = rss_mb(proc.pid)
        samples = [ln for ln in text.splitlines() if ln and not ln.startswith("#")]
        return {"case": label, "orders": orders, "series": len(samples),
                "strategies": sum(1 for ln in samples if ln.startswith("orders_submitted_total{")),
                "overflowed": value(text, 'ib_label_overflow_total{label="strategy"}'),
                "scrape_bytes": len(text.encode()), "scrape_ms_median": statistics.median(times) * 1000,
                "scrape_ms_max": max(times) * 1000, "rss_mb_before": rss0, "rss_mb_after": rss1,
                "rss_growth_mb": rss1 - rss0, "orders_per_second": orders / absorbed}
    finally:
        proc.terminate()
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()
        tws.stop()


def _up(url: str) -> bool:
    try:
        return 'ib_connected 1.0' in scrape(url)
    except requests.RequestException:
        return False


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--orders", type=int, default=20_000)
    ap.add_argument("--batch", type=int, default=1000, help="orders sent at once (the next batch once counted)")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        results = [run(args.orders, lambda i: f"strategy{i % 20:02d}", "20 orderRefs (baseline)", Path(tmp), args.batch),
                   run(args.orders, lambda i: f"order-{i:08d}", "distinct orderRefs", Path(tmp), args.batch)]
    if args.json:
        print(json.dumps(results, indent=2))
        return 0
    base, distinct = results
    print(f"{args.orders} orders through ib_async and the stand-in TWS (each placed, acknowledged, filled; "
          f"{args.batch} at a time)")
    for r in results:
        print(f"  {r['case']:<24} {r['series']:>6} series ({r['strategies']} strategy labels, "
              f"{r['overflowed']:.0f} orders under __overflow__), scrape {r['scrape_bytes'] / 1024:.0f} KiB in "
              f"{r['scrape_ms_median']:.1f} ms median ({r['scrape_ms_max']:.1f} max), RSS {r['rss_mb_before']:.0f} -> "
              f"{r['rss_mb_after']:.0f} MB (+{r['rss_growth_mb']:.1f}), {r['orders_per_second']:.0f} orders/s absorbed")
    print(f"  distinct / baseline: series x{distinct['series'] / base['series']:.2f}, "
          f"scrape time x{distinct['scrape_ms_median'] / base['scrape_ms_median']:.2f}, "
          f"RSS growth x{distinct['rss_growth_mb'] / max(base['rss_growth_mb'], 0.1):.2f}")
    ok = distinct["scrape_ms_median"] <= 50 and distinct["rss_growth_mb"] <= 50
    print(f"  targets (scrape <= 50 ms, RSS growth <= 50 MB): {'met' if ok else 'NOT met'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
