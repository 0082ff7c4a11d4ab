"""What the money path's speed costs: the shipped money path (ib-exporter and position-manager
scraped every 1 s, the money rule group every 1 s, the money route's group_wait 0) against a
baseline (by default the former one: 2 s, 2 s, group_wait 1 s), in the same run, as ratios.

Not a test: it prints figures.

    python benchmarks/money_faster.py [--trials 8] [--baseline-interval 2s] [--baseline-group-wait 1s]

Two whole stacks side by side (tests/support/e2estack.py at production settings: each its own
`trademon sim` at real speed, Prometheus, Alertmanager, bot, Telegram stand-in): "shipped"
with the files as shipped, "baseline" with the two money jobs' scrape interval, the money
group's interval and the money route's group_wait replaced (and reloaded). The loss trials of
benchmarks/alert_latency.py run on both at once (so both carry the same load), and the
breach-to-Telegram times of DailyLossLimitBreach and CircuitBreakerTripped are pooled per
stack. Over the whole run: each Prometheus' CPU seconds and samples appended per second,
each Alertmanager's notifications sent.
"""

from __future__ import annotations

import argparse
import os
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
sys.path.insert(0, str(ROOT / "exporters"))
sys.path.insert(0, str(ROOT / "benchmarks"))
os.environ["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT / "exporters"), os.environ.get("PYTHONPATH", "")) if p)

from alert_latency import loss_trial, p95, shipped  # noqa: E402
from tests.support.e2estack import E2EStack  # noqa: E402
from trademon.gen.rules import MONEY_GROUP  # noqa: E402
from trademon.settings.values import seconds  # noqa: E402

MONEY_JOBS = ("ib-exporter", "position-manager")


def set_money_path(stack: E2EStack, interval: str, group_wait: str) -> None:
    """The money jobs scraped, the money group evaluated every ``interval``; the money route's
    group_wait ``group_wait``; both engines reloaded."""
    cfg = yaml.safe_load(stack.config_path.read_text())
    for sc in cfg["scrape_configs"]:
        if sc["job_name"] in MONEY_JOBS:
            sc["scrape_interval"] = sc["scrape_timeout"] = interval
    files = []
    for f in cfg["rule_files"]:
        doc = yaml.safe_load(Path(f).read_text())
        for g in doc["groups"]:
            if g["name"] == MONEY_GROUP:
                g["interval"] = interval
        copy = stack.dir / f"money-path-{Path(f).name}"
        copy.write_text(yaml.safe_dump(doc, sort_keys=False, allow_unicode=True))
        files.append(str(copy))
    cfg["rule_files"] = files
    stack.config_path.write_text(yaml.safe_dump(cfg, sort_keys=False))
    requests.post(f"{stack.prom_url}/-/reload", timeout=10).raise_for_status()
    am = yaml.safe_load(stack.alerting.config_path.read_text())
    money = next(r for r in am["route"]["routes"] if r["matchers"][0].startswith('alertname=~"DailyLossLimitBreach'))
    money["group_wait"] = group_wait
    stack.alerting.config_path.write_text(yaml.safe_dump(am, sort_keys=False))
    requests.post(f"{stack.alerting.am_url}/-/reload", timeout=10).raise_for_status()


def counters(stack: E2EStack) -> dict[str, float]:
    out = {"cpu": 0.0, "appended": 0.0, "notifications": 0.0}
    for url, names in ((stack.prom_url, {"process_cpu_seconds_total": "cpu", "prometheus_tsdb_head_samples_appended_total": "appended"}),
                       (stack.alerting.am_url, {"alertmanager_notifications_total": "notifications"})):
        for line in requests.get(f"{url}/metrics", timeout=5).text.splitlines():
            if line and not line.startswith("#"):
                name, _, value = line.rpartition(" ")
                key = names.get(name.split("{")[0])
                if key:
                    out[key] += float(value)
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--trials", type=int, default=8, help="loss trials on each stack (two pages each)")
    ap.add_argument("--baseline-interval", default="2s", help="the baseline's money scrape and evaluation interval (default 2s)")
    ap.add_argument("--baseline-group-wait", default="1s", help="the baseline's money route group_wait (default 1s)")
    args = ap.parse_args()
    iv = shipped()
    kw = {"speed": 1, "scrape": None, "evaluation": None, "am_intervals": {}, "for_scale": None}
    jitter = {"shipped": seconds(iv["scrape"]) + seconds(iv["evaluation"]), "baseline": 2 * seconds(args.baseline_interval)}
    lat: dict[str, list[float]] = {"shipped": [], "baseline": []}
    with tempfile.TemporaryDirectory(prefix="money-faster-") as d:
        stacks = {}
        try:
            for name in lat:
                stacks[name] = E2EStack(Path(d) / name, **kw)
            set_money_path(stacks["baseline"], args.baseline_interval, args.baseline_group_wait)
            time.sleep(10)
            before = {n: counters(s) for n, s in stacks.items()}
            t0 = time.time()
            for i in range(args.trials):
                got: dict[str, tuple[float, float]] = {}
                threads = [threading.Thread(target=lambda n=n: got.__setitem__(n, loss_trial(stacks[n], 60, jitter[n]))) for n in stacks]
                for t in threads:
                    t.start()
                for t in threads:
                    t.join()
                for n in stacks:
                    lat[n].extend(got[n])
                print(f"  trial {i + 1}: " + ", ".join(f"{n} {got[n][0]:.2f} / {got[n][1]:.2f} s" for n in stacks), flush=True)
            after = {n: counters(s) for n, s in stacks.items()}
            dt = time.time() - t0
        finally:
            for s in stacks.values():
                s.close()
    rows = {}
    for n in stacks:
        a, b = after[n], before[n]
        rows[n] = {"cpu": 100 * (a["cpu"] - b["cpu"]) / dt, "sps": (a["appended"] - b["appended"]) / dt,
                   "notes": a["notifications"] - b["notifications"], "p50": statistics.median(lat[n]), "p95": p95(lat[n]),
                   "max": max(lat[n])}
    print(f"\n{dt:.0f} s, {args.trials} loss trials on each stack (loss and breaker pages: {len(lat['shipped'])} each), real speed")
    print(f"shipped: money scrape {iv['scrape']}, money group {iv['evaluation']}, group_wait {iv['group_wait']}; "
          f"baseline: {args.baseline_interval}, {args.baseline_interval}, group_wait {args.baseline_group_wait}")
    print(f"{'':9} {'Prometheus CPU %':>17} {'samples/s':>10} {'AM notifications':>17} {'page p50 s':>11} {'p95 s':>7} {'max s':>7}")
    for n, r in rows.items():
        print(f"{n:9} {r['cpu']:17.2f} {r['sps']:10.1f} {r['notes']:17.0f} {r['p50']:11.2f} {r['p95']:7.2f} {r['max']:7.2f}")
    f, s = rows["shipped"], rows["baseline"]
    print(f"shipped / baseline: CPU x{f['cpu'] / s['cpu']:.2f} (+{f['cpu'] - s['cpu']:.2f} % of a core), samples/s x{f['sps'] / s['sps']:.2f}, "
          f"notifications x{f['notes'] / max(s['notes'], 1):.2f}, page p50 x{f['p50'] / s['p50']:.2f}, p95 x{f['p95'] / s['p95']:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
