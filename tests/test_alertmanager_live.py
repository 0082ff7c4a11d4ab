"""The project's Alertmanager configuration, rendered by `trademon am-config`, run by the real
Alertmanager 0.33 binary, delivering to the Slack and SMTP stand-ins, to the real alert-sink,
and through `trademon bot` (its webhook) to the Telegram stand-in. Alerts are posted to Alertmanager's API the way Prometheus posts them; only
group_wait/group_interval are shortened (tests/support/amstack.py). The full path from the
simulator through Prometheus, and Telegram's 500/429 outage, are in tests/test_e2e_alerting.py.
"""

from __future__ import annotations

from datetime import datetime, UTC

import pytest

from trademon.alertmanager import markets

from tests.support.amstack import AlertingStack, alert
from tests.support.standins import TELEGRAM_MAX_CHARS, telegram_visible_length, visible_text


@pytest.fixture
def stack(tmp_path):
    s = AlertingStack(tmp_path)
    yield s
    s.close()


def sink_alertnames(stack, receiver=None, status=None):
    return [a["labels"]["alertname"] for r in stack.records() if receiver in (None, r["receiver"])
            for a in r["alerts"] if status in (None, a["status"])]


def test_critical_pages_loudly_everywhere_and_resolves(stack):
    loss = alert("DailyLossLimitBreach", "critical", "Daily loss limit breached on DU1234567",
                 "Account DU1234567: daily P&L -612.40 USD, limit -500.", account="DU1234567", job="ib-exporter")
    stack.post(loss)
    tg = stack.standins.telegram
    stack.wait(lambda: tg.sent() and stack.standins.slack.sent() and stack.standins.smtp.messages and stack.records(), 30,
               "critical notification on Telegram, Slack, email and the file")
    msg = tg.sent()[0]
    assert msg["silent"] is False, "a critical alert must page with sound"
    assert msg["parse_mode"] == "HTML" and str(msg["chat_id"]) == stack.standins.CHAT_ID
    text = visible_text(msg["text"])
    assert "CRITICAL" in text and "DailyLossLimitBreach" in text and "-612.40 USD" in text
    assert 'href="http://grafana.trademon.test:3000/d/trademon-health"' in msg["text"]
    assert 'href="http://alertmanager.trademon.test:9093/#/silences/new?filter=%7Balertname%3D%22DailyLossLimitBreach%22' in msg["text"]
    assert "DailyLossLimitBreach" in stack.standins.slack.sent()[0]["attachments"][0]["text"]
    mail = stack.standins.smtp.messages[0]
    assert mail.login == stack.standins.SMTP_USER and mail.rcpt_tos == ["trader@trademon.test"]
    assert "CRITICAL" in mail.subject and "DailyLossLimitBreach" in mail.subject
    assert sink_alertnames(stack, "critical", "firing") == ["DailyLossLimitBreach"]

    stack.post(loss, resolved=True)
    # The resolve edits the page it ends (quietly), rather than ringing with a new message.
    stack.wait(lambda: tg.resolved_shown("DailyLossLimitBreach"), 30, "the page edited to say resolved on Telegram")
    stack.wait(lambda: "DailyLossLimitBreach" in sink_alertnames(stack, "critical", "resolved"), 10, "resolved on record")
    assert len(tg.sent()) == 1, [m["text"] for m in tg.sent()]


def test_warning_is_silent_info_and_synthetic_only_on_record(stack):
    stack.post(alert("UnusualSlippage", "warning", "Slippage 1.02 % on momentum", strategy="momentum", job="ib-exporter"),
               alert("Watchdog", "info", "Alerting pipeline heartbeat"),
               alert("CircuitBreakerTripped", "critical", "Circuit breaker synthetic-check tripped", breaker="synthetic-check"))
    tg = stack.standins.telegram
    stack.wait(lambda: tg.sent(), 30, "warning on Telegram")
    stack.wait(lambda: {"Watchdog", "CircuitBreakerTripped", "UnusualSlippage"} <= set(sink_alertnames(stack)), 30, "all on record")
    stack.settle(3)  # more than group_wait + group_interval: anything misrouted would have arrived
    assert [m["silent"] for m in tg.sent()] == [True], "a warning must arrive quietly (disable_notification)"
    assert "UnusualSlippage" in visible_text(tg.sent()[0]["text"])
    assert all("Watchdog" not in m["text"] and "CircuitBreakerTripped" not in m["text"] for m in tg.sent())
    assert all("Watchdog" not in str(m) and "synthetic" not in str(m) for m in stack.standins.slack.sent())
    assert stack.standins.smtp.messages == []  # warnings do not email; info and synthetic never
    by_receiver = {a["labels"]["alertname"]: r["receiver"] for r in stack.records() for a in r["alerts"]}
    assert by_receiver == {"Watchdog": "record", "CircuitBreakerTripped": "record", "UnusualSlippage": "warning"}


def test_money_page_alone_other_criticals_by_severity_and_inhibitions(stack):
    """TWS lost pages once, in a message of its own (a money page: its own group, never
    waiting for an open critical group); other criticals are grouped by severity; the warnings
    it causes, and an unreachable service's own warnings, are inhibited (visible in
    Alertmanager, not notified)."""
    stack.post(alert("TWSConnectionLost", "critical", "IB API session to TWS / IB Gateway lost", job="ib-exporter"),
               alert("APIHealthCheckFailed", "critical", "automatictrader-api is down", job="automatictrader-api"))
    stack.post(*(alert(n, "warning", job="ib-exporter", strategy="momentum") for n in
                 ("HighOrderRejectionRate", "LowOrderFillRate", "UnusualSlippage", "IBDataFarmDisconnected")),
               alert("OrderIntentErrorRateHigh", "warning", job="automatictrader-api"),
               alert("APILatencyHigh", "warning", job="automatictrader-api"),
               alert("HighRiskExposure", "warning", job="ib-exporter", account="DU1234567"))
    tg = stack.standins.telegram
    stack.wait(lambda: tg.sent(), 30, "the page")
    stack.wait(lambda: len(stack.alerts(inhibited="true", active="false", silenced="false")) >= 6, 15, "inhibitions applied")
    stack.settle(4)
    texts = [visible_text(m["text"]) for m in tg.sent()]
    critical = [t for t in texts if "CRITICAL" in t]
    assert len(critical) == 2, texts  # the money page, and the severity group
    tws = [t for t in critical if "TWSConnectionLost" in t]
    api = [t for t in critical if "APIHealthCheckFailed" in t]
    assert len(tws) == 1 and len(api) == 1 and tws != api, texts
    # HighRiskExposure is not a consequence of TWS loss and its job is up: it still arrives, quietly.
    warnings = [m for m in tg.sent() if "WARNING" in visible_text(m["text"])]
    assert len(warnings) == 1 and warnings[0]["silent"]
    assert "HighRiskExposure" in visible_text(warnings[0]["text"])
    for name in ("HighOrderRejectionRate", "LowOrderFillRate", "UnusualSlippage", "IBDataFarmDisconnected", "OrderIntentErrorRateHigh", "APILatencyHigh"):
        assert name not in " ".join(texts), name
        assert name not in sink_alertnames(stack), name
    inhibited = {a["labels"]["alertname"]: a["status"]["inhibitedBy"] for a in stack.alerts(active="false", inhibited="true", silenced="false")}
    assert set(inhibited) == {"HighOrderRejectionRate", "LowOrderFillRate", "UnusualSlippage", "IBDataFarmDisconnected",
                              "OrderIntentErrorRateHigh", "APILatencyHigh"}
    assert all(inhibited.values())


def test_2fa_wait_inhibits_the_same_gateways_session_loss(stack):
    """A gateway waiting for its second factor pages once, with the action: its lost API session
    (TWSConnectionLost, same job and instance) is inhibited; another gateway's loss still pages."""
    gw_a, gw_b = {"job": "ib-exporter", "instance": "gw-a:9110"}, {"job": "ib-exporter", "instance": "gw-b:9110"}
    stack.post(alert("IBGateway2FARequired", "critical", "IB Gateway waits for the two-factor login", **gw_a),
               alert("TWSConnectionLost", "critical", "IB API session lost on gw-a", **gw_a),
               alert("TWSConnectionLost", "critical", "IB API session lost on gw-b", **gw_b))
    tg = stack.standins.telegram
    stack.wait(lambda: stack.alerts(inhibited="true", active="false", silenced="false"), 15, "the inhibition applied")
    stack.wait(lambda: len(tg.sent()) >= 2, 30, "the pages")
    stack.settle(3)
    inhibited = [a["labels"] for a in stack.alerts(inhibited="true", active="false", silenced="false")]
    assert inhibited == [{"alertname": "TWSConnectionLost", "severity": "critical", **gw_a}], inhibited
    shown = "\n".join(visible_text(m["text"]) for m in tg.sent())
    assert "IBGateway2FARequired" in shown and "lost on gw-b" in shown
    assert "lost on gw-a" not in shown and "lost on gw-a" not in str(stack.records())


def test_escaped_and_cut_text_still_arrives(stack):
    """`<`, `&` and a description far over Telegram's limit: every alert arrives, escaped and
    cut, in ONE message (one buzz; a storm of parts buzzed four times) that Telegram's strict
    stand-in accepts: no cut inside a tag or an entity, not over 4096 characters."""
    long_desc = "P&L <fell> & kept falling; " * 1000  # ~27,000 characters
    many = [alert("PnLAnomaly", "warning", f"P&L <jump> on strategy s{i} & more", long_desc, strategy=f"s{i}", job="position-manager")
            for i in range(12)]
    stack.post(*many)
    tg = stack.standins.telegram
    # Alertmanager may flush the first of them before the rest are in; the group's update follows.
    stack.wait(lambda: [m for m in tg.sent() if "12 firing" in m["text"]], 30, "the message with all 12 alerts")
    stack.settle(2)
    (page,) = [m for m in tg.sent() if "12 firing" in m["text"]]
    assert telegram_visible_length(page["text"]) <= TELEGRAM_MAX_CHARS
    shown = visible_text(page["text"])
    assert all(f"P&L <jump> on strategy s{i} & more" in shown for i in range(12))
    assert "&lt;jump&gt;" in page["text"] and "&amp;" in page["text"]
    # the buttons under it say how many alerts they act on; one runbook button for the twelve (one alert name)
    assert page["buttons"] == ["✋ Ack · all 12", "🔕 Silence 1h · all 12", "🔕 Silence 4h · all 12",
                               "🔕 Until the next session · all 12", "📖 PnLAnomaly"]
    assert all(s == 200 for s in tg.statuses()), tg.statuses()  # Telegram (the strict stand-in) never refused one


def test_no_secret_in_any_log(stack):
    stack.post(alert("TWSConnectionLost", "critical", job="ib-exporter"))
    stack.wait(lambda: stack.standins.telegram.sent() and stack.standins.smtp.messages, 30, "delivery")
    # the bot logs the notification once Telegram took it: a moment after the stand-in has it
    stack.wait(lambda: '"logger": "trademon.bot.webhook"' in stack.logs(), 10, "the bot's log of the notification")
    logs = stack.logs()
    assert '"logger": "trademon.bot.webhook"' in logs and "Notify success" in logs  # the logs are there to scan (debug level)
    for secret in stack.standins.secrets():
        assert secret not in logs
    # nor in the rendered config: there they are *_file references to 0600 files
    cfg = stack.config_path.read_text()
    for secret in stack.standins.secrets():
        assert secret not in cfg


def in_us_market_hours(t: datetime) -> bool:
    return markets.is_open(t, "XNYS")  # the NYSE calendar: holidays and early closes too


def test_market_data_stale_notified_only_in_market_hours(stack):
    """The route's active_time_intervals, as the real Alertmanager applies them now (the
    exchange calendar am-config rendered, with the America/New_York zone file it copied): while
    NYSE is open MarketDataStale arrives, otherwise it is muted everywhere, the file included.
    A warning beside it always arrives. (Holidays by a moved calendar: test_markets_alertmanager.py.)"""
    before = in_us_market_hours(datetime.now(UTC))
    stack.post(alert("MarketDataStale", "warning", "No market data for AAPL", symbol="AAPL", job="marketdata-stream"),
               alert("UnusualSlippage", "warning", "Slippage 0.9 % on meanrev", strategy="meanrev", job="ib-exporter"))
    stack.wait(lambda: "UnusualSlippage" in sink_alertnames(stack), 30, "the other warning")
    stack.settle(3)
    after = in_us_market_hours(datetime.now(UTC))
    arrived = "MarketDataStale" in sink_alertnames(stack) or any("MarketDataStale" in m["text"] for m in stack.standins.telegram.sent())
    assert arrived in {before, after}, f"market hours now: {after}; MarketDataStale notified: {arrived}"
