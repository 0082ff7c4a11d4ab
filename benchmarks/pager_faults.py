"""Fault-to-page times of the alert path's own failures: for each fault, the seconds from the
fault to the page on Slack and by email (the channels that do not depend on what failed),
against the bound its intervals allow, at stated compressed settings; and that bound at the
production settings (the shipped prometheus.yml, rules and alertmanager.yml).

Not a test: it prints figures.

    python benchmarks/pager_faults.py [--runs 3] [--scale 120]

The faults and the stacks are those of tests/test_e2e_faults.py (tests/support/faults.py):
real Prometheus, Alertmanager and `trademon bot`, the Telegram, Slack and SMTP stand-ins;
scrape and evaluation every 1 s, group_wait 1 s, group_interval 2 s, every rule's `for`
divided by --scale, and the range window of the alerts whose window is part of their wait.
Between runs the groups of the pager and critical receivers are left to expire, so every run
starts new groups, as a fault in production does.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "exporters"))
sys.path.insert(0, str(ROOT / "benchmarks"))
# This checkout's package, here and in the processes started (as tests/conftest.py does).
os.environ["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT / "exporters"), os.environ.get("PYTHONPATH", "")) if p)

from alert_latency import wait_groups_settled  # noqa: E402
from tests.support import faults  # noqa: E402
from tests.support.amstack import alert  # noqa: E402
from tests.support.e2estack import E2EStack  # noqa: E402
from tests.support.hastack import HAStack  # noqa: E402
from tests.support.procs import wait_for  # noqa: E402
from trademon.settings.values import seconds  # noqa: E402
from trademon.stack.scaleout import PEER_TIMEOUT  # noqa: E402

AM = {"group_wait": "1s", "group_interval": "2s"}
FAULTS = [("bot killed", "TelegramBotDown"), ("Telegram 401 (token)", "TelegramRefusesBot"),
          ("Telegram 403 (blocked)", "TelegramRefusesBot"), ("Telegram 400 (chat not found)", "TelegramRefusesBot"),
          ("rule fails at run time", "PrometheusRuleFailures"), ("Alertmanager reload, broken file", "AlertmanagerFailedReload"),
          ("one Alertmanager of the pair killed", "AlertmanagerClusterDown")]
REFUSALS = {"Telegram 401 (token)": ("token", "token_rejected"), "Telegram 403 (blocked)": ("blocked", "bot_blocked"),
            "Telegram 400 (chat not found)": ("chat", "chat_not_found")}


def production_bounds() -> dict[str, faults.Bound]:
    """Each fault's bound with the shipped files: the jobs' scrape intervals, the global
    evaluation interval, the rules and Alertmanager's routes as shipped."""
    prom = yaml.safe_load((ROOT / "prometheus" / "prometheus.yml").read_text())
    am = yaml.safe_load((ROOT / "alertmanager" / "alertmanager.yml").read_text())
    files = sorted((ROOT / "monitoring" / "rules").glob("*.yml"))
    jobs = {sc["job_name"]: seconds(sc.get("scrape_interval", prom["global"]["scrape_interval"])) for sc in prom["scrape_configs"]}
    ev = seconds(prom["global"]["evaluation_interval"])
    job_of = {"TelegramBotDown": "trademon-bot", "TelegramRefusesBot": "trademon-bot", "PrometheusRuleFailures": "prometheus",
              "AlertmanagerFailedReload": "alertmanager", "AlertmanagerClusterDown": "alertmanager"}
    out = {}
    for fault, name in FAULTS:
        out[fault] = faults.bound(faults.alert_rule(files, name), jobs[job_of[name]], ev, am,
                                  first_evaluation=name == "PrometheusRuleFailures",
                                  peer_timeout=seconds(PEER_TIMEOUT) if name == "AlertmanagerClusterDown" else 0.0)
    return out


def single_node_run(e2e: E2EStack, pages: dict[str, list[float]], bounds: dict[str, faults.Bound]) -> None:
    files = yaml.safe_load(e2e.config_path.read_text())["rule_files"]
    cfg = yaml.safe_load(e2e.alerting.config_path.read_text())
    st = e2e.alerting.standins

    def timed(fault, name, t0, **kw):
        bounds.setdefault(fault, faults.bound(faults.alert_rule(files, name), 1, 1, cfg, **kw))
        page = faults.wait_page(st, fault, name, t0, bounds[fault].total + 60, text=text.get(fault, ""), wait=e2e.alerting.wait)
        pages.setdefault(fault, []).append(page.latency)
        print(f"  {fault:36} {page.latency:6.2f} s", flush=True)

    text = {f: f"Telegram refuses the bot ({reason})" for f, (_, reason) in REFUSALS.items()}
    text["rule fails at run time"] = "fault.many_to_many"
    t0 = faults.kill_bot(e2e)
    try:
        timed("bot killed", "TelegramBotDown", t0)
    finally:
        e2e.alerting.start_bot()
    for fault, (what, _) in REFUSALS.items():
        probe = alert("FaultProbe", "warning", f"a page for the bot to send ({what})", fault=what)
        try:
            timed(fault, "TelegramRefusesBot", faults.telegram_refuses(e2e, what, probe))
        finally:
            e2e.telegram.refuse(None)
            e2e.alerting.post(probe, resolved=True)
    t0 = faults.break_a_rule(e2e)
    try:
        timed("rule fails at run time", "PrometheusRuleFailures", t0, first_evaluation=True)
    finally:
        faults.mend_the_rule(e2e)
    t0, good = faults.break_am_config(e2e.alerting)
    try:
        timed("Alertmanager reload, broken file", "AlertmanagerFailedReload", t0)
    finally:
        faults.mend_am_config(e2e.alerting, good)
    # every run starts new groups (other alerts may stay: a refused page delivered late
    # makes PageLatencyHigh fire, as it should)
    wait_groups_settled(e2e, tuple({name for _, name in FAULTS}), 180)


def ha_run(work: Path, scale: float, pages: dict[str, list[float]], bounds: dict[str, faults.Bound]) -> None:
    fault, name = FAULTS[-1]
    ha = HAStack(work, for_scale=scale, compress=faults.COMPRESS, intervals=AM, resend_delay="1s")
    try:
        rule = faults.alert_rule(yaml.safe_load((ha.dir / "prometheus-a.yml").read_text())["rule_files"], name)
        b = bounds.setdefault(fault, faults.bound(rule, 1, 1, yaml.safe_load(ha.am_config.read_text()),
                                                  peer_timeout=seconds(PEER_TIMEOUT)))
        faults.steady([p.url for p in ha.proms], "alertmanager", b.parts["window"] / faults.WINDOWED[name],
                      lambda p, t, w: wait_for(p, t, 0.2, w))
        t0 = faults.kill_first_alertmanager(ha)
        page = faults.wait_page(ha.standins, fault, name, t0, b.total + 60, wait=lambda p, t, w: wait_for(p, t, 0.1, w))
        pages.setdefault(fault, []).append(page.latency)
        print(f"  {fault:36} {page.latency:6.2f} s", flush=True)
    finally:
        ha.close()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--scale", type=float, default=120, help="every `for` (and the windows of the windowed alerts) divided by this")
    args = ap.parse_args()
    pages: dict[str, list[float]] = {}
    bounds: dict[str, faults.Bound] = {}
    with tempfile.TemporaryDirectory(prefix="pager-faults-") as d:
        e2e = E2EStack(Path(d) / "single", scrape="1s", evaluation="1s", am_intervals=AM, for_scale=args.scale,
                       resend_delay="1s", scrape_bot=True, compress=faults.COMPRESS)
        try:
            for i in range(args.runs):
                print(f"run {i + 1}", flush=True)
                single_node_run(e2e, pages, bounds)
                ha_run(Path(d) / f"ha-{i}", args.scale, pages, bounds)
        finally:
            e2e.close()
    prod = production_bounds()
    print(f"\n{args.runs} runs; compressed: scrape and evaluation 1 s, group_wait 1 s, group_interval 2 s, `for` and windows / {args.scale:g}")
    print(f"{'fault':36} {'alert':26} {'fault -> Slack/email (median, max)':>34} {'bound':>7} {'production bound':>17}")
    for fault, name in FAULTS:
        xs = pages.get(fault, [])
        print(f"{fault:36} {name:26} {statistics.median(xs):>24.2f} s, {max(xs):5.2f} s {bounds[fault].total:6.1f}s "
              f"{prod[fault].total / 60:12.1f} min")
    print("\nproduction bounds, part by part (s):")
    for fault, _ in FAULTS:
        print(f"  {fault:36} {prod[fault]}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
