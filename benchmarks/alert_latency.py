"""Time from the simulator's loss breach to the Telegram stand-in's receipt of the page, over
repeated trials, against the bound the configured intervals allow.

Not a test: it prints figures. Target (issue 4): every trial within the bound.

    python benchmarks/alert_latency.py [--trials 8] [--production-trials 1] [--scale 15]

The whole path runs for real (tests/support/e2estack.py): `trademon sim`, Prometheus with the
project's prometheus.yml and rules, Alertmanager with the project's rendered config, the
alert-sink, the Telegram stand-in. A trial: switch `loss-breach` on (t0: the simulator's P&L
falls below the limit at once), wait for the Telegram message naming DailyLossLimitBreach
(t1), switch it off, wait for the resolved message and for Alertmanager to drop the empty
group (it does so every 30 s), so every trial starts a new group and waits group_wait.

Bound = scrape_interval + evaluation_interval + the critical route's group_wait: the breach
is seen at the next scrape, becomes an alert at the next evaluation (DailyLossLimitBreach has
no `for`), and Alertmanager holds a new group for group_wait. Ratio = latency / bound.

- production: scrape 15 s, evaluation 30 s, group_wait 10 s (bound 55 s), the simulator at
  real speed; one trial takes about a minute, plus two for the resolve and the group's end.
- shortened: every one of those divided by --scale (15: 1 s, 2 s, 0.667 s; bound 3.67 s).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.support.e2estack import E2EStack, duration, seconds  # noqa: E402
from tests.support.standins import visible_text  # noqa: E402

PROD_SCRAPE, PROD_EVAL = "15s", "30s"


def critical_group_wait() -> str:
    cfg = yaml.safe_load((ROOT / "alertmanager" / "alertmanager.yml").read_text())
    return next(r["group_wait"] for r in cfg["route"]["routes"] if r["matchers"] == ['severity="critical"'])


def trial(stack: E2EStack, timeout: float) -> float:
    stack.wait_no_group("critical", timeout=120)
    t0 = time.time()
    stack.sim.on("loss-breach")
    try:
        def paged():
            return [m["at"] for m in stack.telegram.sent() if m["at"] >= t0 and "DailyLossLimitBreach" in visible_text(m["text"])
                    and not m["text"].startswith("✅")]
        t1 = min(stack.alerting.wait(paged, timeout, "the loss page"))
    finally:
        stack.sim.off("loss-breach")
    stack.alerting.wait(lambda: any(m["at"] > t1 and "resolved: DailyLossLimitBreach" in visible_text(m["text"])
                                    for m in stack.telegram.sent()), timeout + 90, "the resolved message")
    return t1 - t0


def run(name: str, trials: int, *, scale: float, speed: float) -> list[tuple[float, float]]:
    gw = critical_group_wait()
    scrape, evaluation, group_wait = (duration(seconds(d) / scale) for d in (PROD_SCRAPE, PROD_EVAL, gw))
    am = {} if scale == 1 else {"group_wait": group_wait, "group_interval": duration(seconds("1m") / scale)}
    with tempfile.TemporaryDirectory(prefix="alert-latency-") as d:
        stack = E2EStack(Path(d), speed=speed, scrape=scrape, evaluation=evaluation, am_intervals=am,
                         for_scale=None if scale == 1 else scale)
        try:
            bound = stack.bound(group_wait)
            print(f"\n{name}: scrape {scrape}, evaluation {evaluation}, group_wait {group_wait} "
                  f"-> bound {bound:.2f} s; simulator speed {speed:g}x", flush=True)
            out = []
            for i in range(trials):
                lat = trial(stack, timeout=bound * 3 + 30)
                out.append((lat, bound))
                print(f"  trial {i + 1:2d}: {lat:7.2f} s   ratio {lat / bound:5.2f}{'' if lat <= bound else '   OVER THE BOUND'}", flush=True)
        finally:
            stack.close()
    return out


def summary(name: str, results: list[tuple[float, float]]) -> None:
    if not results:
        return
    lats = [lat for lat, _ in results]
    ratios = [lat / b for lat, b in results]
    within = sum(lat <= b for lat, b in results)
    print(f"{name}: {len(results)} trials, latency min {min(lats):.2f} / median {statistics.median(lats):.2f} / max {max(lats):.2f} s; "
          f"ratio to bound max {max(ratios):.2f}; within the bound: {within}/{len(results)}")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--trials", type=int, default=8, help="trials at shortened intervals (default 8)")
    ap.add_argument("--production-trials", type=int, default=1, help="trials at production intervals (default 1; 0 to skip)")
    ap.add_argument("--scale", type=float, default=15.0, help="divide the production intervals by this for the shortened run (default 15)")
    args = ap.parse_args()
    prod = run("production intervals", args.production_trials, scale=1, speed=1) if args.production_trials else []
    short = run(f"shortened intervals (/{args.scale:g})", args.trials, scale=args.scale, speed=args.scale) if args.trials else []
    print()
    summary("production", prod)
    summary("shortened", short)
    return 0 if all(lat <= b for lat, b in prod + short) else 1


if __name__ == "__main__":
    sys.exit(main())
