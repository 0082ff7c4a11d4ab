"""HA failover figures: for each kill, how many times the loss page is delivered and how many
seconds pass from the breach to the page, with the pair of Prometheus replicas and the pair of
gossiping Alertmanagers of tests/support/hastack.py (real engines, shortened intervals).

Not a test: it prints figures. Targets (issue 16): at least one delivery, zero duplicates.

    python benchmarks/ha_failover.py

Each case runs ``--runs`` times (default 3; the kill lands before or after gossip has declared
the node dead, so one run says little), with the stack's --cluster.peer-timeout and, as the
baseline of the same run, Alertmanager's default of 15 s.

    python benchmarks/ha_failover.py --runs 6

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

from tests.support.hastack import HAStack  # noqa: E402 - after the repository root is on the path
from tests.support.procs import wait_for  # noqa: E402

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


def trial(kill: str, peer_timeout: str | None = None) -> tuple[int, int, float]:
    with tempfile.TemporaryDirectory(prefix="ha-failover-") as d:
        stack = HAStack(Path(d), peer_timeout=peer_timeout)
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
    import argparse
    import statistics

    from trademon.stack.scaleout import PEER_TIMEOUT

    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--cases", default="nothing,first alertmanager,one prometheus,first alertmanager + one prometheus")
    args = ap.parse_args()
    print(f"{'killed -9':36} {'peer timeout':>12} {'deliveries':>10} {'duplicates':>10} {'breach->page s (median, min-max)':>34}")
    for kill in args.cases.split(","):
        for timeout, label in ((None, PEER_TIMEOUT), ("15s", "15s (default)")):
            got = [trial(kill, timeout) for _ in range(args.runs)]
            lat = [g[2] for g in got]
            print(f"{kill:36} {label:>12} {'/'.join(str(g[0]) for g in got):>10} {sum(g[1] for g in got):>10} "
                  f"{statistics.median(lat):>12.1f} ({min(lat):.1f}-{max(lat):.1f})", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
