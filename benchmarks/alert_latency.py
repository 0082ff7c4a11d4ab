"""Time from a money breach in the simulator to the Telegram stand-in's receipt of the page,
over repeated trials, at the shipped (production) settings, against the 10 s target.

Not a test: it prints figures. Target (issue 10.8): the money pages (loss limit, breaker, TWS
session lost) within 10 s at p95, including trials where another critical alert is already
firing (an open critical group), over at least 20 trials.

    python benchmarks/alert_latency.py [--trials 20] [--tws-trials 4] [--shortened-trials 0 --scale 15]

The whole path runs for real (tests/support/e2estack.py): `trademon sim` at real speed,
Prometheus with the project's prometheus.yml and rules as shipped (money jobs scraped every
1 s, the money rule group every 1 s, the rest every 15 s / 30 s), Alertmanager with the
project's rendered config as shipped (money route group_wait 0), the alert-sink, the
Telegram stand-in.

A loss trial: after a random pause of up to one scrape plus one evaluation interval (so the
trials do not all start at the same phase of them), switch `loss-breach` on (t0: the
simulator's P&L falls below the limit at once
and its daily-loss breaker trips), wait for the Telegram messages naming DailyLossLimitBreach
and CircuitBreakerTripped (t1, t2), switch it off, wait for the resolved messages and for
Alertmanager to drop the empty groups, so every trial starts new groups. Every other trial
starts with another critical alert already firing and delivered (an APIHealthCheckFailed
posted to Alertmanager as Prometheus would send it, kept alive): before the money route, a
loss joining that open severity group waited up to group_interval (1 min).

A TWS trial: `ib-disconnect` on at t0; TWSConnectionLost has `for: tws_lost_for` (1m), so
its latency is the page's arrival minus t0 minus that `for`.
"""

from __future__ import annotations

import argparse
import os
import math
import random
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

import requests
import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
# This checkout's package, here and in the processes started (as tests/conftest.py does).
sys.path.insert(0, str(ROOT / "exporters"))
os.environ["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT / "exporters"), os.environ.get("PYTHONPATH", "")) if p)

from tests.support.amstack import alert  # noqa: E402
from tests.support.e2estack import E2EStack, duration, seconds  # noqa: E402
from tests.support.standins import visible_text  # noqa: E402
from trademon.settings import thresholds  # noqa: E402

TARGET = 10.0
MONEY = ("DailyLossLimitBreach", "CircuitBreakerTripped")


def shipped() -> dict:
    """The shipped intervals the bound is made of."""
    prom = yaml.safe_load((ROOT / "prometheus" / "prometheus.yml").read_text())
    am = yaml.safe_load((ROOT / "alertmanager" / "alertmanager.yml").read_text())
    th = thresholds.load(ROOT)
    jobs = {sc["job_name"]: sc for sc in prom["scrape_configs"]}
    money_route = next(r for r in am["route"]["routes"] if r["matchers"][0].startswith('alertname=~"DailyLossLimitBreach'))
    return {"scrape": jobs["ib-exporter"].get("scrape_interval", prom["global"]["scrape_interval"]),
            "evaluation": str(th["money_evaluation_interval"]), "group_wait": money_route["group_wait"],
            "tws_for": seconds(str(th["tws_lost_for"]))}


def firing(stack: E2EStack, t0: float, name: str) -> list[float]:
    return [m["at"] for m in stack.telegram.sent() if m["at"] >= t0 and not m["text"].startswith("✅")
            and name in visible_text(m["text"]).split("✅ resolved:")[0]]


def resolved(stack: E2EStack, after: float, name: str) -> bool:
    return bool(stack.telegram.resolved_shown(name, after))


def wait_groups_settled(stack: E2EStack, names: tuple[str, ...], timeout: float = 150) -> None:
    """Until no group holds one of ``names`` and Alertmanager has dropped every empty group
    (its cleanup runs every 30 s; the aggregation-group gauge still counts them till then)."""
    am = stack.alerting.am_url

    def settled():
        groups = requests.get(f"{am}/api/v2/alerts/groups", timeout=5).json()
        listed = [g for g in groups if g["alerts"]]
        if any(a["labels"]["alertname"] in names for g in listed for a in g["alerts"]):
            return False
        metrics = requests.get(f"{am}/metrics", timeout=5).text
        line = next((ln for ln in metrics.splitlines() if ln.startswith("alertmanager_dispatcher_aggregation_groups ")), None)
        return line is not None and float(line.split()[1]) <= len(listed)
    stack.alerting.wait(settled, timeout, "money groups dropped by Alertmanager")


class OtherCritical:
    """Another critical alert already firing and delivered: posted as Prometheus would, and
    re-posted every 30 s so it stays active (Alertmanager ends it at endsAt)."""

    LABELS = {"job": "marketdata-stream", "instance": "127.0.0.1:1"}

    def __init__(self, stack: E2EStack):
        self.stack, self.stop = stack, threading.Event()
        self.a = alert("APIHealthCheckFailed", "critical", "marketdata-stream is down (benchmark: another critical)", **self.LABELS)
        t0 = time.time()
        stack.alerting.post(self.a)
        stack.alerting.wait(lambda: firing(stack, t0, "APIHealthCheckFailed"), 60, "the other critical page delivered")
        self.thread = threading.Thread(target=self._keep, daemon=True)
        self.thread.start()

    def _keep(self):
        while not self.stop.wait(30):
            self.stack.alerting.post(self.a)

    def close(self):
        self.stop.set()
        self.thread.join()
        self.stack.alerting.post(self.a, resolved=True)


def loss_trial(stack: E2EStack, timeout: float, jitter: float) -> tuple[float, float]:
    wait_groups_settled(stack, MONEY)
    # Alertmanager drops groups on a 30 s tick, a multiple of the money scrape and evaluation:
    # without a random pause every trial would start at the same phase of them.
    time.sleep(random.uniform(0, jitter))
    t0 = time.time()
    stack.sim.on("loss-breach")
    try:
        t1 = min(stack.alerting.wait(lambda: firing(stack, t0, "DailyLossLimitBreach"), timeout, "the loss page"))
        t2 = min(stack.alerting.wait(lambda: firing(stack, t0, "CircuitBreakerTripped"), timeout, "the breaker page"))
    finally:
        stack.sim.off("loss-breach")
    end = max(t1, t2)
    for name in MONEY:
        stack.alerting.wait(lambda: resolved(stack, end, name), 300, f"{name} resolved")
    return t1 - t0, t2 - t0


def tws_trial(stack: E2EStack, tws_for: float, timeout: float) -> float:
    wait_groups_settled(stack, ("TWSConnectionLost",))
    t0 = time.time()
    stack.sim.on("ib-disconnect")
    try:
        t1 = min(stack.alerting.wait(lambda: firing(stack, t0, "TWSConnectionLost"), tws_for + timeout, "the TWS page"))
    finally:
        stack.sim.off("ib-disconnect")
    stack.alerting.wait(lambda: resolved(stack, t1, "TWSConnectionLost"), 300, "TWSConnectionLost resolved")
    return t1 - t0 - tws_for


def p95(xs: list[float]) -> float:
    s = sorted(xs)
    return s[max(0, math.ceil(0.95 * len(s)) - 1)]


def describe(name: str, xs: list[float]) -> str:
    if not xs:
        return f"{name}: no trials"
    within = sum(x <= TARGET for x in xs)
    return (f"{name}: {len(xs)} trials, min {min(xs):.2f} / median {statistics.median(xs):.2f} / p95 {p95(xs):.2f} / "
            f"max {max(xs):.2f} s; within {TARGET:g} s: {within}/{len(xs)}")


def run(trials: int, tws_trials: int, scale: float) -> dict[str, list[float]]:
    iv = shipped()
    if scale == 1:  # production: every interval as shipped
        kw = {"speed": 1, "scrape": None, "evaluation": None, "am_intervals": {}, "for_scale": None}
        bound = seconds(iv["scrape"]) + seconds(iv["evaluation"]) + seconds(iv["group_wait"])
        tws_for = iv["tws_for"]
        jitter = seconds(iv["scrape"]) + seconds(iv["evaluation"])
    else:
        kw = {"speed": scale, "scrape": duration(15 / scale), "evaluation": duration(30 / scale),
              "am_intervals": {"group_wait": duration(seconds(iv["group_wait"]) / scale), "group_interval": duration(60 / scale)},
              "for_scale": scale}
        bound = (15 + 30) / scale + seconds(iv["group_wait"]) / scale
        tws_for = iv["tws_for"] / scale
        jitter = (15 + 30) / scale
    out: dict[str, list[float]] = {"loss": [], "breaker": [], "loss, another critical open": [],
                                    "breaker, another critical open": [], "tws": []}
    with tempfile.TemporaryDirectory(prefix="alert-latency-") as d:
        stack = E2EStack(Path(d), **kw)
        try:
            print(f"\n{'production' if scale == 1 else f'shortened /{scale:g}'}: money scrape {iv['scrape']}, money evaluation "
                  f"{iv['evaluation']}, money group_wait {iv['group_wait']} -> bound {bound:.2f} s", flush=True)
            for i in range(trials):
                other = OtherCritical(stack) if i % 2 else None
                try:
                    loss, brk = loss_trial(stack, timeout=60, jitter=jitter)
                finally:
                    if other:
                        other.close()
                suffix = ", another critical open" if other else ""
                out["loss" + suffix].append(loss)
                out["breaker" + suffix].append(brk)
                print(f"  loss trial {i + 1:2d}{' (another critical open)' if other else '                        '}: "
                      f"DailyLossLimitBreach {loss:6.2f} s, CircuitBreakerTripped {brk:6.2f} s", flush=True)
            for i in range(tws_trials):
                lat = tws_trial(stack, tws_for, timeout=60)
                out["tws"].append(lat)
                print(f"  TWS trial {i + 1:2d}: TWSConnectionLost {lat:6.2f} s after its for", flush=True)
        finally:
            stack.close()
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--trials", type=int, default=20, help="loss trials at production settings (default 20; half with another critical open)")
    ap.add_argument("--tws-trials", type=int, default=4, help="TWS-lost trials at production settings (default 4)")
    ap.add_argument("--scale", type=float, default=1.0, help="divide the intervals by this (default 1: production)")
    args = ap.parse_args()
    out = run(args.trials, args.tws_trials, args.scale)
    print()
    for name, xs in out.items():
        print(describe(name, xs))
    money = [x for k, xs in out.items() for x in xs]
    print(describe("all money pages", money))
    return 0 if money and p95(money) <= TARGET else 1


if __name__ == "__main__":
    sys.exit(main())
