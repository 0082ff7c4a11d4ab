"""End to end: the simulator misbehaves, the real Prometheus (the project's prometheus.yml and
rules) alerts, the real Alertmanager (the project's config, rendered by am-config) routes,
and the Telegram, Slack and SMTP stand-ins and the alert-sink receive.

One stack serves the whole module. Shortened, and only these (tests/support/e2estack.py):
the simulator runs 30x real time; scrape and evaluation every 1 s; each rule's `for` divided
by 30 (so `for: 5m` is five simulated minutes, 10 s of real time); Prometheus re-sends firing
alerts every 2 s (1m / 30); group_wait and group_interval 3 s. group_wait is kept at least one
scrape plus one evaluation, as the spread between the loss-breach's two alerts (P&L from
ib-exporter, the breaker from position-manager, scraped at different moments) is up to that;
repeat_interval keeps its production value so no repeat muddles the counting.
"""

from __future__ import annotations

import re
import time
from datetime import datetime

import pytest
import requests

from tests.support.e2estack import E2EStack
from tests.support.standins import visible_text

SPEED = 30
AM_INTERVALS = {"group_wait": "3s", "group_interval": "3s"}
SETTLE = 5  # > group_interval + scrape + evaluation: a second message would have come by then


@pytest.fixture(scope="module")
def e2e(tmp_path_factory):
    stack = E2EStack(tmp_path_factory.mktemp("e2e"), speed=SPEED, scrape="1s", evaluation="1s",
                     am_intervals=AM_INTERVALS, for_scale=SPEED, resend_delay="2s")
    yield stack
    stack.close()


def messages_since(e2e, t0: float) -> list[dict]:
    return [dict(m, shown=visible_text(m["text"])) for m in e2e.telegram.sent() if m["at"] >= t0]


def firing_section(shown: str) -> str:
    """The firing part of a message (resolved alerts are listed after it)."""
    return shown.split("✅ resolved:")[0] if not shown.startswith("✅") else ""


def sink_alerts(e2e, receiver: str | None = None) -> list[tuple[str, str, str]]:
    return [(r["receiver"], a["status"], a["labels"]["alertname"]) for r in e2e.alerting.records()
            for a in r["alerts"] if receiver in (None, r["receiver"])]


def wait(e2e, predicate, timeout, what):
    return e2e.alerting.wait(predicate, timeout, what)


def test_watchdog_info_reaches_only_the_file(e2e):
    wait(e2e, lambda: ("record", "firing", "Watchdog") in sink_alerts(e2e), 30, "Watchdog on record")
    assert all(r["receiver"] == "record" for r in e2e.alerting.records() if any(a["labels"]["alertname"] == "Watchdog" for a in r["alerts"]))
    assert not any("Watchdog" in m["text"] for m in e2e.telegram.sent())
    assert not any("Watchdog" in str(s) for s in e2e.alerting.standins.slack.sent())


def test_loss_breach_two_pages_loss_then_breaker_each_once_then_resolved(e2e):
    """The double page, decided (issue 10.9): a loss breach and the daily-loss breaker it trips
    are two money pages, each in a group of its own (the money route groups by alertname), so
    each leaves after the money route's group_wait instead of the second joining the first's
    group and waiting up to its group_interval (a minute). Two messages, seconds apart, each
    once: the loss (how much) and the halt (new orders refused)."""
    t0 = time.time()
    e2e.sim.on("loss-breach")
    try:
        for name in ("DailyLossLimitBreach", "CircuitBreakerTripped"):
            wait(e2e, lambda: any(name in firing_section(m["shown"]) for m in messages_since(e2e, t0)), 30, f"the {name} page")
        latency = next(m["at"] for m in messages_since(e2e, t0) if "DailyLossLimitBreach" in m["shown"]) - t0
        pnl = e2e.sim.state()["accounts"]["DU1234567"]["daily_pnl"]
        time.sleep(SETTLE)
        pages = [m for m in messages_since(e2e, t0) if m["shown"].startswith("🔴 CRITICAL")]
        loss = [m for m in pages if "DailyLossLimitBreach" in firing_section(m["shown"])]
        breaker = [m for m in pages if "CircuitBreakerTripped" in firing_section(m["shown"])]
        assert len(loss) == 1 and len(breaker) == 1 and loss[0] is not breaker[0], [m["shown"] for m in pages]
        assert len(pages) == 2, [m["shown"] for m in pages]
        assert abs(loss[0]["at"] - breaker[0]["at"]) < 2 * SETTLE  # seconds apart, not a group_interval
        page = loss[0]
        assert page["silent"] is False and breaker[0]["silent"] is False
        assert "Daily loss limit breached on DU1234567" in page["shown"]
        m = re.search(r"daily P&L (-\d+\.\d\d) USD, limit -500", page["shown"])
        assert m, page["shown"]
        assert abs(float(m.group(1)) - pnl) < 50, (m.group(1), pnl)  # the P&L the simulator had, give or take its drift
        assert "Circuit breaker daily_loss tripped" in breaker[0]["shown"]
        print(f"\nloss-breach -> Telegram: {latency:.2f} s (bound scrape+evaluation+group_wait = {e2e.bound(AM_INTERVALS['group_wait']):.0f} s)")
    finally:
        e2e.sim.off("loss-breach")
    wait(e2e, lambda: e2e.telegram.resolved_shown("DailyLossLimitBreach", t0), 30, "the resolve (a message, or the page edited)")
    assert ("critical", "resolved", "DailyLossLimitBreach") in sink_alerts(e2e, "critical")
    # Nothing delivered twice. (If the breaker resets before the P&L alert resolves, the group's
    # update lists the loss once more, beside the resolved breaker: other content, not a repeat.)
    texts = [m["text"] for m in messages_since(e2e, t0)]
    assert len(texts) == len(set(texts)), texts


def test_ib_disconnect_pages_once_and_inhibits_its_warnings(e2e):
    t0 = time.time()
    e2e.sim.on("ib-disconnect")
    try:
        wait(e2e, lambda: any("TWSConnectionLost" in firing_section(m["shown"]) for m in messages_since(e2e, t0)), 30, "the TWS page")

        def inhibited():
            tws = {a["fingerprint"] for a in e2e.alerting.alerts(filter='alertname="TWSConnectionLost"')}
            return [a for a in e2e.alerting.alerts(active="false", inhibited="true", silenced="false")
                    if tws & set(a["status"]["inhibitedBy"])]

        # Intents pile up in `ready` while the broker is gone: WorkerProcessingLag follows, inhibited.
        held = wait(e2e, inhibited, 45, "a warning inhibited by TWSConnectionLost")
        time.sleep(SETTLE)
        names = {a["labels"]["alertname"] for a in held}
        delivered = messages_since(e2e, t0)
        pages = [m for m in delivered if "TWSConnectionLost" in firing_section(m["shown"])]
        assert pages and not pages[0]["silent"], [m["shown"] for m in delivered]
        # Once: nothing delivered twice. The critical group may still carry the loss breach's
        # breaker (it resets only once the P&L is back above half the limit), so a later
        # message can list TWSConnectionLost again as an update with other content.
        texts = [m["text"] for m in delivered]
        assert len(texts) == len(set(texts)), [m["shown"] for m in delivered]
        assert all(m["shown"].startswith(("🔴", "✅")) or "TWSConnectionLost" not in m["shown"] for m in delivered)
        for m in messages_since(e2e, t0):
            assert not names & set(re.findall(r"\w+", firing_section(m["shown"]))), (names, m["shown"])
        recorded = {a["labels"]["alertname"] for r in e2e.alerting.records() if received(r) >= t0 for a in r["alerts"]}
        assert "TWSConnectionLost" in recorded and not names & recorded, (names, recorded)
    finally:
        e2e.sim.off("ib-disconnect")
    wait(e2e, lambda: e2e.telegram.resolved_shown("TWSConnectionLost", t0), 30, "TWS resolved")


def received(record: dict) -> float:
    return datetime.fromisoformat(record["received_at"]).timestamp()


def test_warnings_arrive_silent(e2e):
    """Whatever warnings the runs above produced (intent errors after the breaker, worker lag
    after the reconnect...) came without sound; if none came yet, stalled workers make one."""
    if not any(m["shown"].startswith("🟠 WARNING") for m in messages_since(e2e, 0)):
        e2e.sim.on("intent-backlog")
        try:
            wait(e2e, lambda: any(m["shown"].startswith("🟠 WARNING") for m in messages_since(e2e, 0)), 60, "a warning")
        finally:
            e2e.sim.off("intent-backlog")
    warnings = [m for m in messages_since(e2e, 0) if m["shown"].startswith("🟠 WARNING")]
    assert warnings and all(m["silent"] for m in warnings)
    assert all(not m["silent"] for m in messages_since(e2e, 0) if m["shown"].startswith("🔴 CRITICAL"))


def test_telegram_outage_500_then_429_message_arrives_once(e2e):
    """Telegram answers 500 twice, then 429 with retry_after, for 12 s: the page for the API
    going down arrives afterwards, once; the file webhook, in the same receiver, got it at once.

    `trademon bot` delivers: it retries 5xx with backoff and waits out retry_after while its
    answer to Alertmanager may wait (TRADEMON_BOT_DELIVER_WITHIN, 8 s), then keeps the
    message in its outbox on disk, answers Alertmanager, and sends it once Telegram takes it.
    A 429 is honoured (no request before retry_after has passed)."""
    t0 = time.time()
    e2e.telegram.fail_for(12, first_500=2, retry_after=3)
    e2e.sim.on("api-down")
    try:
        wait(e2e, lambda: any("APIHealthCheckFailed" in firing_section(m["shown"]) for m in messages_since(e2e, t0)), 60,
             "the page after the outage")
        time.sleep(SETTLE)
        statuses = [r.status for r in e2e.telegram.requests if r.at >= t0 and r.path.endswith("/sendMessage")]
        assert statuses[:2] == [500, 500] and 429 in statuses, statuses
        reqs = [r for r in e2e.telegram.requests if r.at >= t0 and r.path.endswith("/sendMessage")]
        for a, b in zip(reqs, reqs[1:]):
            if a.status == 429:
                assert b.at - a.at >= 3 - 0.05, "retry_after not honoured"
        delivered = messages_since(e2e, t0)
        pages = [m for m in delivered if "APIHealthCheckFailed" in firing_section(m["shown"])]
        # Once: no notification delivered twice. (A later message listing the alert again is a
        # group update with other content, e.g. an alert joining or resolving.)
        texts = [m["text"] for m in delivered]
        assert len(texts) == len(set(texts)), [m["shown"] for m in delivered]
        assert pages, [m["shown"] for m in delivered]
        sink_at = min(received(r) for r in e2e.alerting.records() if any(a["labels"]["alertname"] == "APIHealthCheckFailed" for a in r["alerts"]))
        assert sink_at < pages[0]["at"]  # the file webhook did not wait for Telegram
    finally:
        e2e.sim.off("api-down")


def test_hostile_alert_text_arrives_escaped_and_cut(e2e):
    """Alert text the simulator cannot produce (its names are plain): posted to the same
    Alertmanager as a rule with such annotations would send it."""
    t0 = time.time()
    e2e.alerting.post({"labels": {"alertname": "HighRiskExposure", "severity": "warning", "account": "DU1234567", "job": "ib-exporter"},
                       "annotations": {"summary": "Exposure <b>98 %</b> of limit & rising",
                                       "description": "gross <exposure> & more; " * 2000, "dashboard": "/d/trademon-risk"}})
    wait(e2e, lambda: any("Exposure <b>98 %</b>" in m["shown"] for m in messages_since(e2e, t0)), 30, "the message")
    m = next(m for m in messages_since(e2e, t0) if "Exposure <b>98 %</b>" in m["shown"])
    assert "&lt;b&gt;98 %&lt;/b&gt;" in m["text"] and len(m["text"]) < 4096
    assert "gross <exposure> & more;" in m["shown"] and "…" in m["shown"]
    e2e.alerting.post({"labels": {"alertname": "HighRiskExposure", "severity": "warning", "account": "DU1234567", "job": "ib-exporter"}},
                      resolved=True)


def test_no_secret_in_any_log(e2e):
    logs = e2e.logs()
    assert '"logger": "trademon.bot.webhook"' in logs and "Notify success" in logs  # the logs are the real ones, at debug level
    for secret in e2e.alerting.standins.secrets():
        assert secret not in logs, f"a secret appears in the process logs under {e2e.dir}"
    cfg = e2e.alerting.config_path.read_text()
    for secret in e2e.alerting.standins.secrets():
        assert secret not in cfg
    r = requests.get(f"{e2e.alerting.am_url}/api/v2/status", timeout=5).json()["config"]["original"]
    for secret in e2e.alerting.standins.secrets():
        assert secret not in r
