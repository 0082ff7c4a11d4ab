"""Every PromQL query of every dashboard, run by a real Prometheus against the simulator.

Prometheus runs with the project's prometheus.yml and rules (only addresses and intervals
rewritten, by trademon.stack.native's renderer) and scrapes the simulator, the alert sink and the
synthetic checks on loopback. Each panel query, with the dashboard's variables set to "All"
and Grafana's interval variables given values, must be valid PromQL and return data within
a bounded wait. A misspelt metric or a label that does not exist returns nothing and fails.
Panels that need an exporter that cannot run here (cAdvisor) are skipped by name, and only
those.
"""

from __future__ import annotations

import copy
import re
import sys
import time
from pathlib import Path

import pytest
import requests
import yaml

from trademon import contract, grafana_uids
from trademon.bot.config import derived_webhook_token
from trademon.settings.env import port_variable
from trademon.gen import dashboard_queries as dq
from trademon.gen import hostfilter
from trademon.stack.native import prometheus_cmd, render_prometheus_config

from tests.support.procs import free_port, start, wait_for, wait_http
from tests.support.sim import SimProcess
from tests.support.standins import TelegramStandIn

ROOT = Path(__file__).resolve().parents[1]
DOCS = dq.load(ROOT)
ALL = [(d, q) for d in DOCS for q in dq.queries(d) if q.lang == "promql"]
PANELS = [(d, q) for d, q in ALL if q.kind == "panel" and q.needs is None]
EXTERNAL = [(d, q) for d, q in ALL if q.kind == "panel" and q.needs is not None]
LABEL_VALUES = re.compile(r"^label_values\((?P<metric>\w+),\s*(?P<label>\w+)\)$")
DATA_TIMEOUT = 90.0  # seconds for every panel to have data, from the first scrape


BOT_TOKEN = "7312345678:AAG-fakeTelegramToken_dashboardslive"


class Stack:
    """Simulator, alert sink, synthetic checks, am-config --watch, thresholds --watch and the Telegram
    bot (against the Telegram stand-in), scraped by Prometheus with the project's config."""

    def __init__(self, workdir: Path, configure=None):
        """``configure``: a function of the rendered prometheus.yml (tests/test_store_live.py
        makes it a replica that writes into VictoriaMetrics)."""
        self.dir = workdir
        self.procs = []
        self.sim = SimProcess.start(workdir, speed=30.0, seed=7)
        self.sink_port, self.syn_port, self.prom_port = free_port(), free_port(), free_port()
        self.amc_port, self.thr_port = free_port(), free_port()
        self.prom = f"http://127.0.0.1:{self.prom_port}"
        sink = start("alert-sink", [sys.executable, "-m", "trademon", "alert-sink"],
                     {"TRADEMON_ALERT_SINK_HOST": "127.0.0.1", port_variable("alert-sink"): str(self.sink_port),
                      "TRADEMON_ALERT_SINK_FILE": str(workdir / "alerts.jsonl")}, workdir / "alert-sink.log")
        self.procs.append(sink)
        wait_http(f"http://127.0.0.1:{self.sink_port}/healthz", 20, sink)
        targets = {job: f"127.0.0.1:{port}" for job, port in self.sim.ports.items() if job != "control"}
        # am-config --watch: the market calendar and IB schedule series (no Alertmanager to reload here)
        amc = start("alertmanager-config", [sys.executable, "-m", "trademon", "am-config", "--watch", "--source", str(ROOT / "alertmanager"),
                                            "--out", str(workdir / "am-config")],
                    {port_variable("alertmanager-config"): str(self.amc_port)}, workdir / "am-config.log")
        self.procs.append(amc)
        wait_http(f"http://127.0.0.1:{self.amc_port}/readyz", 30, amc)
        # the thresholds service: the threshold series' rules, rendered before Prometheus starts
        thr = start("thresholds", [sys.executable, "-m", "trademon", "thresholds", "--watch", "--root", str(ROOT),
                                   "--out", str(workdir / "thresholds")],
                    {port_variable("thresholds"): str(self.thr_port),
                     "TRADEMON_THRESHOLDS_RELOAD_URL": f"http://127.0.0.1:{self.prom_port}/-/reload"}, workdir / "thresholds.log")
        self.procs.append(thr)
        wait_http(f"http://127.0.0.1:{self.thr_port}/readyz", 30, thr)
        # the bot, delivering to the Telegram stand-in
        self.telegram = TelegramStandIn(BOT_TOKEN)
        self.bot_port = free_port()
        bot = start("trademon-bot", [sys.executable, "-m", "trademon", "bot"],
                    {"TELEGRAM_BOT_TOKEN": BOT_TOKEN, "TELEGRAM_CHAT_ID": "42", "TELEGRAM_API_URL": self.telegram.url,
                     "TRADEMON_BOT_PORT": str(self.bot_port), "TRADEMON_BOT_STATE_DIR": str(workdir / "bot"),
                     "TRADEMON_BOT_POLL_TIMEOUT": "1",
                     # escalation on (to another chat of the stand-in): its series exist from the start
                     "TRADEMON_BOT_ESCALATE": "10m:chat", "TRADEMON_BOT_ESCALATE_CHAT_ID": "43"}, workdir / "bot.log")
        self.procs.append(bot)
        wait_http(f"http://127.0.0.1:{self.bot_port}/healthz", 30, bot)
        targets.update({"alert-sink": f"127.0.0.1:{self.sink_port}", "synthetic": f"127.0.0.1:{self.syn_port}",
                        "prometheus": f"127.0.0.1:{self.prom_port}", "alertmanager-config": f"127.0.0.1:{self.amc_port}",
                        contract.BOT: f"127.0.0.1:{self.bot_port}", "thresholds": f"127.0.0.1:{self.thr_port}"})
        cfg = render_prometheus_config(ROOT, targets, None, scrape_interval="1s", evaluation_interval="1s",
                                      thresholds_dir=workdir / "thresholds")
        if configure is not None:
            cfg = configure(cfg)
        (workdir / "prometheus.yml").write_text(yaml.safe_dump(cfg, sort_keys=False))
        prom = start("prometheus", prometheus_cmd(workdir / "prometheus.yml", workdir / "tsdb", self.prom_port),
                     None, workdir / "prometheus.log")
        self.procs.append(prom)
        wait_http(f"{self.prom}/-/ready", 30, prom)
        health = ",".join(f"{job}={self.sim.url(job)}/healthz" for job in self.sim.ports if job != "control")
        syn = start("synthetic", [sys.executable, "-m", "trademon", "synthetic"], {
            "TRADEMON_SYNTHETIC_HOST": "127.0.0.1", port_variable("synthetic"): str(self.syn_port),
            "TRADEMON_SYNTHETIC_API_URL": self.sim.url("automatictrader-api"),
            "TRADEMON_SYNTHETIC_POSITION_MANAGER_URL": self.sim.url("position-manager"),
            "TRADEMON_SYNTHETIC_PROMETHEUS_URL": self.prom, "TRADEMON_SYNTHETIC_ALERTMANAGER_URL": "off",
            "TRADEMON_SYNTHETIC_HEALTH_TARGETS": health,
            "TRADEMON_SYNTHETIC_CIRCUIT_BREAKER_INTERVAL": "20", "TRADEMON_SYNTHETIC_CIRCUIT_BREAKER_TIMEOUT": "15",
            "TRADEMON_SYNTHETIC_PIPELINE_INTERVAL": "5", "TRADEMON_SYNTHETIC_PIPELINE_TIMEOUT": "5",
            "TRADEMON_SYNTHETIC_HEALTH_INTERVAL": "2", "TRADEMON_SYNTHETIC_HEALTH_TIMEOUT": "2",
            "TRADEMON_SYNTHETIC_WATCHDOG_INTERVAL": "5", "TRADEMON_SYNTHETIC_WATCHDOG_TIMEOUT": "5",
        }, workdir / "synthetic.log")
        self.procs.append(syn)
        wait_http(f"http://127.0.0.1:{self.syn_port}/healthz", 20, syn)

    def query(self, expr: str) -> dict:
        r = requests.post(f"{self.prom}/api/v1/query", data={"query": expr}, timeout=10)
        body = r.json()
        if r.status_code != 200 or body.get("status") != "success":
            raise AssertionError(f"Prometheus refused the query ({r.status_code}): {body.get('error')}\n  {expr}")
        return body["data"]

    def has_data(self, expr: str) -> bool:
        data = self.query(expr)
        return bool(data["result"]) if isinstance(data["result"], list) else data["result"] is not None

    def label_values(self, metric: str, label: str) -> list[str]:
        r = requests.get(f"{self.prom}/api/v1/label/{label}/values", params={"match[]": metric}, timeout=10)
        r.raise_for_status()
        return r.json()["data"]

    def pointed_at(self, url: str) -> Stack:
        """The same stack, its queries sent to another PromQL API (e.g. VictoriaMetrics)."""
        view = copy.copy(self)
        view.prom = url
        return view

    def logs(self) -> str:
        return "\n".join(f"--- {p.name}\n{p.tail(15)}" for p in self.procs)

    def close(self) -> None:
        for p in reversed(self.procs):
            p.close()
        self.sim.close()
        self.telegram.close()


def webhook(status: str) -> dict:
    """An Alertmanager webhook payload, as Alertmanager sends it to the alert sink."""
    now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    alert = {"status": status, "labels": {"alertname": "Watchdog", "severity": "info"},
             "annotations": {"summary": "dashboards live test"}, "startsAt": now, "endsAt": "0001-01-01T00:00:00Z",
             "generatorURL": "", "fingerprint": "0123456789abcdef"}
    return {"version": "4", "groupKey": "{}:{alertname=\"Watchdog\"}", "truncatedAlerts": 0, "status": status,
            "receiver": "file", "groupLabels": {"alertname": "Watchdog"}, "commonLabels": alert["labels"],
            "commonAnnotations": alert["annotations"], "externalURL": "http://alertmanager:9093", "alerts": [alert]}


def exercise(stack: Stack) -> None:
    """Events a trading day has that an idle start has not: a notification, a refused
    payload, a duplicate and an invalid intent (each makes its labelled counter appear)."""
    sink = f"http://127.0.0.1:{stack.sink_port}"
    requests.post(f"{sink}/alerts", json=webhook("firing"), timeout=5).raise_for_status()
    page = webhook("firing") | {"receiver": "critical", "commonLabels": {"alertname": "Watchdog", "severity": "critical"}}
    r = requests.post(f"http://127.0.0.1:{stack.bot_port}/alerts", json=page, timeout=15,
                      headers={"Authorization": f"Bearer {derived_webhook_token(BOT_TOKEN)}"})
    assert r.json()["status"] == "delivered", r.text
    assert requests.post(f"{sink}/alerts", data="not json", headers={"Content-Type": "application/json"},
                         timeout=5).status_code >= 400
    api = stack.sim.url("automatictrader-api")
    intent = {"strategy": "momentum", "symbol": "AAPL", "side": "buy", "quantity": 1, "order_type": "market"}
    for _ in range(2):
        requests.post(f"{api}/intents", json=intent, headers={"Idempotency-Key": "dashboards-live-dup"}, timeout=5)
    bad = requests.post(f"{api}/intents", json={**intent, "quantity": -1}, headers={"Idempotency-Key": "dashboards-live-bad"},
                        timeout=5)
    assert bad.status_code == 422, bad.text


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    s = Stack(tmp_path_factory.mktemp("dashboards-live"))
    try:
        exercise(s)
        yield s
    finally:
        s.close()


def concrete(doc: dict, q: dq.Query) -> str:
    return q.concrete(dq.variable_names(doc))


def test_every_panel_query_is_valid_and_returns_data(stack):
    """All panel queries are polled together until each has data, or the wait runs out."""
    exprs = {str(q): concrete(d, q) for d, q in PANELS}
    for expr in set(exprs.values()):  # a syntax error or unknown function fails at once
        stack.query(expr)
    pending = dict(exprs)
    deadline = time.monotonic() + DATA_TIMEOUT
    while pending and time.monotonic() < deadline:
        pending = {k: e for k, e in pending.items() if not stack.has_data(e)}
        if pending:
            time.sleep(2)
    assert not pending, (f"{len(pending)} of {len(exprs)} panel queries returned no data within {DATA_TIMEOUT:.0f}s:\n"
                         + "\n".join(f"  {k}\n    sent: {e}" for k, e in pending.items()) + "\n" + stack.logs())


def test_every_variable_offers_values(stack):
    variables = [(d, q) for d, q in ALL if q.kind == "variable"]
    assert variables
    for _d, q in variables:
        mt = LABEL_VALUES.match(q.expr)
        assert mt, f"{q}: not label_values(<metric>, <label>)"
        if mt["label"] == hostfilter.VARIABLE:  # an external label: only a shared store has it (tests/test_store_live.py)
            continue
        values = wait_for(lambda: stack.label_values(mt["metric"], mt["label"]), 30, what=f"values for {q}")
        assert all(v for v in values), f"{q}: empty value among {values}"


def test_every_annotation_query_is_valid(stack):
    """Annotations show alerts only while they fire; here they must at least be valid PromQL."""
    annotations = [(d, q) for d, q in ALL if q.kind == "annotation"]
    assert annotations
    for d, q in annotations:
        stack.query(concrete(d, q))
    # The rules are loaded (ALERTS exists): Watchdog always fires.
    wait_for(lambda: stack.has_data('ALERTS{alertname="Watchdog", alertstate="firing"}'), 30, what="Watchdog firing")


def test_a_misspelt_metric_or_label_returns_nothing(stack):
    """The data check above can fail: a typo in a metric or a label value gives no data."""
    wait_for(lambda: stack.has_data("sum(rate(orders_filled_total[1m]))"), 30, what="orders filled")
    assert not stack.has_data("sum(rate(orders_filed_total[1m]))")
    assert not stack.has_data('sum(rate(orders_filled_total{stratgy=~".+"}[1m]))')


def test_panels_that_need_an_external_exporter_are_only_the_marked_ones():
    """Skipped here: cAdvisor cannot run on this machine, and this stack scrapes no Alertmanager
    and configures no remote write (those panels' alerts are tested by promtool): listed, and only these."""
    skipped = sorted(f"{q.dashboard}: {q.where} (needs {q.needs})" for _, q in EXTERNAL)
    print("panels not run here:\n  " + "\n  ".join(skipped))
    assert skipped == ["trademon-health: panel 'Alertmanager cluster' (needs alertmanager)",
                       "trademon-health: panel 'Alertmanager cluster' (needs alertmanager)",
                       "trademon-health: panel 'Alertmanager config reloads' (needs alertmanager)",
                       "trademon-health: panel 'Alertmanager: failed deliveries' (needs alertmanager)",
                       "trademon-health: panel 'Container CPU' (needs cadvisor)",
                       "trademon-health: panel 'Container memory' (needs cadvisor)",
                       "trademon-health: panel 'Remote write lag' (needs remote_write)",
                       "trademon-health: panel 'Remote write lag' (needs remote_write)"]
    for _, q in EXTERNAL:  # and they say so to the trader
        assert q.needs in ("cadvisor", "alertmanager", "remote_write")


def test_the_panels_checked_here_cover_every_prometheus_dashboard():
    """Every dashboard but Logs (LogQL only, parsed in test_dashboards_static.py) is run here."""
    assert {d["uid"] for d, _ in PANELS} == set(grafana_uids.DASHBOARDS.values()) - {grafana_uids.DASHBOARDS["logs"]}
    assert len(PANELS) > 80
