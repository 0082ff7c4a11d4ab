"""HA failover figures: for each kill, how many times the loss page is delivered and how many
seconds pass from the breach to the page, with the pair of Prometheus replicas and the pair of
gossiping Alertmanagers of tests/support/hastack.py (real engines, shortened intervals).

Not a test: it prints figures. Targets (issue 16): at least one delivery, zero duplicates.

    python benchmarks/ha_failover.py

Kills (SIGKILL, right after the breach starts, so the page must come from the survivors):
none (baseline), the Alertmanager that would send first, one Prometheus, both of those. Each
case starts a new stack so no notification log carries over. Deliveries are counted at the
alert-sink (every receiver includes it): notifications of the critical receiver whose firing
alerts include DailyLossLimitBreach; a duplicate is one with the same firing alerts again.
"""

from __future__ import annotations

import sys
import tempfile
import time
from collections import Counter
from datetime import datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.support.hastack import HAStack
from tests.support.procs import wait_for

LOSS = "DailyLossLimitBreach"
SETTLE = 8


def pages(stack: HAStack, t0: float) -> list[tuple[float, tuple]]:
    out = []
    for r in stack.records():
        at = datetime.fromisoformat(r["received_at"]).timestamp()
        firing = [a for a in r["alerts"] if a["status"] == "firing"]
        if at >= t0 and r["receiver"] == "critical" and any(a["labels"]["alertname"] == LOSS for a in firing):
            out.append((at, tuple(sorted(a["fingerprint"] for a in firing))))
    return out


def trial(kill: str) -> tuple[int, int, float]:
    with tempfile.TemporaryDirectory(prefix="ha-failover-") as d:
        stack = HAStack(Path(d))
        try:
            time.sleep(3)
            t0 = time.time()
            stack.sim.on("loss-breach")
            if "alertmanager" in kill:
                stack.first_sender().kill9()
            if "prometheus" in kill:
                stack.proms[0].kill9()
            wait_for(lambda: pages(stack, t0), 90, 0.1, "the page")
            time.sleep(SETTLE)
            got = pages(stack, t0)
            dup = sum(n - 1 for n in Counter(k for _, k in got).values())
            return len(got), dup, min(at for at, _ in got) - t0
        finally:
            stack.close()


def main() -> int:
    print(f"{'killed -9':32} {'deliveries':>10} {'duplicates':>10} {'breach->page s':>15}")
    for kill in ("nothing", "first alertmanager", "one prometheus", "first alertmanager + one prometheus"):
        n, dup, latency = trial(kill)
        print(f"{kill:32} {n:>10} {dup:>10} {latency:>15.1f}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
