"""What the fast money path costs Prometheus: CPU and storage of the shipped configuration
(ib-exporter and position-manager scraped every 1 s, the money rule group every 1 s) against
the same configuration without it (every job every 15 s, every rule every 30 s), in the same
run, against the same simulator.

Not a test: it prints figures.

    python benchmarks/money_cost.py [--seconds 300]

Two real Prometheus processes side by side scrape one `trademon sim` (real speed): "money"
with prometheus/prometheus.yml and the rules as shipped, "baseline" with the per-job
intervals and the money group's interval removed. Measured over the run, after a warm-up:
CPU seconds (process_cpu_seconds_total), samples appended per second, head series, WAL bytes
written, and the money rule group's evaluation time. Storage per day is projected from the
samples per second at 1.3 bytes per sample (Prometheus's usual compressed size on disk); the
WAL growth is the measured, uncompressed side.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import requests
import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
# This checkout's package, here and in the processes started (as tests/conftest.py does).
sys.path.insert(0, str(ROOT / "exporters"))
os.environ["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT / "exporters"), os.environ.get("PYTHONPATH", "")) if p)

from trademon.stack import native  # noqa: E402
from trademon.gen import rules as gen_rules  # noqa: E402

from tests.support.procs import free_port, start, wait_for, wait_http  # noqa: E402
from tests.support.sim import SIM_JOBS, SimProcess  # noqa: E402

BYTES_PER_SAMPLE = 1.3
WARMUP = 30


def prometheus(work: Path, sim: SimProcess, money: bool):
    port = free_port()
    targets = {job: f"127.0.0.1:{sim.ports[job]}" for job in SIM_JOBS}
    cfg = native.render_prometheus_config(ROOT, targets, None)
    rules = []
    for src in sorted((ROOT / "monitoring" / "rules").glob("*.yml")):
        doc = yaml.safe_load(src.read_text())
        if not money:
            for g in doc["groups"]:
                g.pop("interval", None)
        dst = work / src.name
        dst.write_text(yaml.safe_dump(doc, sort_keys=False))
        rules.append(str(dst))
    if not money:
        for sc in cfg["scrape_configs"]:
            sc.pop("scrape_interval", None)
            sc.pop("scrape_timeout", None)
    cfg["rule_files"] = rules
    (work / "prometheus.yml").write_text(yaml.safe_dump(cfg, sort_keys=False))
    proc = start("prometheus", native.prometheus_cmd(work / "prometheus.yml", work / "data", port), {}, work / "prometheus.log")
    url = f"http://127.0.0.1:{port}"
    wait_http(f"{url}/-/ready", 30, proc)
    return proc, url


def metrics(url: str) -> dict[str, float]:
    out = {"cpu": 0.0, "appended": 0.0, "series": 0.0, "money_group_seconds": float("nan")}
    for line in requests.get(f"{url}/metrics", timeout=5).text.splitlines():
        if not line or line.startswith("#"):
            continue
        name, _, value = line.rpartition(" ")
        base = name.split("{")[0]
        if base == "process_cpu_seconds_total":
            out["cpu"] = float(value)
        elif base == "prometheus_tsdb_head_samples_appended_total":
            out["appended"] += float(value)
        elif base == "prometheus_tsdb_head_series":
            out["series"] = float(value)
        elif base == "prometheus_rule_group_last_duration_seconds" and gen_rules.MONEY_GROUP in name:
            out["money_group_seconds"] = float(value)
    return out


def wal_bytes(work: Path) -> int:
    return sum(p.stat().st_size for p in (work / "data" / "wal").rglob("*") if p.is_file())


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=int, default=300, help="measurement window after a 30 s warm-up (default 300)")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="money-cost-") as d:
        d = Path(d)
        sim = SimProcess.start(d / "logs", speed=1)
        procs = []
        try:
            runs = {}
            for name, money in (("money", True), ("baseline", False)):
                (d / name).mkdir()
                proc, url = prometheus(d / name, sim, money)
                procs.append(proc)
                runs[name] = url
            for url in runs.values():
                wait_for(lambda: requests.get(f"{url}/api/v1/query", params={"query": "up"}, timeout=5).json()["data"]["result"],
                         30, 0.5, "first scrapes")
            time.sleep(WARMUP)
            before = {n: (metrics(u), wal_bytes(d / n)) for n, u in runs.items()}
            t0 = time.time()
            time.sleep(args.seconds)
            after = {n: (metrics(u), wal_bytes(d / n)) for n, u in runs.items()}
            dt = time.time() - t0
        finally:
            for p in procs:
                p.close()
            sim.close()
    rows = {}
    for n in runs:
        (m0, w0), (m1, w1) = before[n], after[n]
        sps = (m1["appended"] - m0["appended"]) / dt
        rows[n] = {"cpu_pct": 100 * (m1["cpu"] - m0["cpu"]) / dt, "sps": sps, "series": m1["series"],
                   "wal_mb_h": (w1 - w0) / dt * 3600 / 1e6, "disk_mb_day": sps * 86400 * BYTES_PER_SAMPLE / 1e6,
                   "money_ms": m1["money_group_seconds"] * 1000}
    print(f"\n{dt:.0f} s against one `trademon sim` (4 jobs: the trading services and the ib-exporter), real speed")
    print(f"{'':10} {'CPU %':>7} {'samples/s':>10} {'series':>7} {'WAL MB/h':>9} {'disk MB/day':>12} {'money group ms':>15}")
    for n, r in rows.items():
        print(f"{n:10} {r['cpu_pct']:7.2f} {r['sps']:10.1f} {r['series']:7.0f} {r['wal_mb_h']:9.2f} {r['disk_mb_day']:12.1f} "
              f"{r['money_ms']:15.2f}")
    m, b = rows["money"], rows["baseline"]
    ratio = f"x{m['cpu_pct'] / b['cpu_pct']:.2f}" if b["cpu_pct"] else "(baseline too small to measure: use more --seconds)"
    print(f"money / baseline: CPU {ratio} (+{m['cpu_pct'] - b['cpu_pct']:.2f} % of a core), "
          f"samples x{m['sps'] / b['sps']:.2f} (+{m['disk_mb_day'] - b['disk_mb_day']:.1f} MB/day, "
          f"+{(m['disk_mb_day'] - b['disk_mb_day']) * 30 / 1000:.2f} GB over the 30-day retention)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
