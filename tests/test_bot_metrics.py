"""trademon-bot is a scrape job of the contract: its outbox (depth, oldest age), Telegram's
answers (sends by result and code; refusals for good), pages delivered and their latency.
The parts in process first, then the real bot against the Telegram stand-in."""

from __future__ import annotations

import time
from datetime import UTC, datetime

import pytest
import requests
from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families

from trademon import contract
from trademon.bot.metrics import BotMetrics, page_of, refusal
from trademon.bot.store import Store

from tests.support.procs import wait_for
from tests.support.standins import TelegramStandIn
from tests.test_hardening import BOT_TOKEN, start_bot


def samples(registry) -> dict[tuple, float]:
    text = generate_latest(registry).decode()
    return {(s.name, tuple(sorted(s.labels.items()))): s.value for f in text_string_to_metric_families(text) for s in f.samples}


def iso(t: float) -> str:
    return datetime.fromtimestamp(t, UTC).strftime("%Y-%m-%dT%H:%M:%S.%f") + "123Z"  # Alertmanager writes nanoseconds


@pytest.mark.parametrize("code, description, params, want", [
    (401, "Unauthorized", None, "token_rejected"),
    (403, "Forbidden: bot was blocked by the user", None, "bot_blocked"),
    (403, "Forbidden: bot was kicked from the group chat", None, "bot_blocked"),
    (400, "Bad Request: chat not found", None, "chat_not_found"),
    (400, "Bad Request: group chat was upgraded to a supergroup chat", {"migrate_to_chat_id": -100123}, "chat_migrated"),
    (400, "Bad Request: can't parse entities", None, None),
    (429, "Too Many Requests: retry after 3", {"retry_after": 3}, None),
    (500, "Internal Server Error", None, None),
])
def test_which_refusals_are_for_good(code, description, params, want):
    assert refusal(code, description, params) == want
    assert want is None or want in contract.TELEGRAM_REFUSALS


def test_sends_and_refusals_are_counted_and_cleared_by_the_next_success():
    m = BotMetrics()
    got = samples(m.registry)
    assert {got[("trademon_bot_telegram_refused", (("reason", r),))] for r in contract.TELEGRAM_REFUSALS} == {0.0}  # known, not absent
    m.telegram_answered("sendMessage", 200)
    m.telegram_answered("sendMessage", 429, "Too Many Requests")
    m.telegram_answered("sendMessage", 0)
    m.telegram_answered("sendMessage", 502)
    m.telegram_answered("getUpdates", 401, "Unauthorized")
    m.telegram_answered("sendMessage", 400, "Bad Request: chat not found")
    got = samples(m.registry)
    sends = {dict(k[1])["result"] + " " + dict(k[1])["code"]: v for k, v in got.items() if k[0] == "trademon_bot_telegram_sends_total"}
    assert sends == {"ok 200": 1, "rate_limited 429": 1, "failed network": 1, "failed 5xx": 1, "refused 400": 1}
    refused = {dict(k[1])["reason"]: v for k, v in got.items() if k[0] == "trademon_bot_telegram_refused"}
    assert refused == {"token_rejected": 1, "chat_not_found": 1, "bot_blocked": 0, "chat_migrated": 0}
    m.telegram_answered("getUpdates", 200)  # the token works again; the chat is not known to be fixed
    refused = {dict(k[1])["reason"]: v for k, v in samples(m.registry).items() if k[0] == "trademon_bot_telegram_refused"}
    assert refused["token_rejected"] == 0 and refused["chat_not_found"] == 1
    m.telegram_answered("sendMessage", 200)  # a message went: the chat is fine too
    refused = {dict(k[1])["reason"]: v for k, v in samples(m.registry).items() if k[0] == "trademon_bot_telegram_refused"}
    assert set(refused.values()) == {0}


def test_page_latency_since_the_webhook_and_since_the_alert_start_once_per_alert():
    now = [1_000_000.0]
    m = BotMetrics(clock=lambda: now[0])
    alert = {"status": "firing", "labels": {"alertname": "DailyLossLimitBreach"}, "fingerprint": "f1", "startsAt": iso(now[0] + 2)}
    old = {"status": "firing", "labels": {"alertname": "Old"}, "fingerprint": "f0", "startsAt": iso(now[0] - 3600)}
    payload = {"status": "firing", "alerts": [old, alert]}
    now[0] += 5
    page = page_of(payload, "critical", received=now[0])
    now[0] += 1.5
    m.page_delivered({"page": page})
    m.page_delivered({"page": page_of(payload, "critical", received=now[0])})  # the reminder of the same alerts
    m.page_delivered({"page": page_of({"status": "resolved", "alerts": [alert]}, "critical", now[0])})  # not a page
    m.page_delivered({"page": page_of({"status": "firing", "alerts": [old]}, "warning", now[0])})  # began before this process
    got = samples(m.registry)

    def count(since):
        return got[("trademon_bot_page_latency_seconds_count", (("since", since),))]

    assert count("webhook") == 3 and count("alert_start") == 1
    assert got[("trademon_bot_page_latency_seconds_sum", (("since", "alert_start"),))] == pytest.approx(4.5, abs=0.01)
    assert got[("trademon_bot_pages_delivered_total", (("severity", "critical"),))] == 2
    assert got[("trademon_bot_pages_delivered_total", (("severity", "warning"),))] == 1


def test_the_outbox_depth_and_oldest_age_are_read_at_each_scrape_and_absent_when_unreadable(tmp_path):
    now = [time.time()]
    m = BotMetrics(clock=lambda: now[0])
    store = Store(tmp_path / "bot.sqlite3")
    m.watch_outbox(store.depth)
    assert samples(m.registry)[("trademon_bot_outbox_oldest_age_seconds", ())] == 0
    store.put({"parts": ["x"], "sent": 0})
    now[0] += 150
    got = samples(m.registry)
    assert got[("trademon_bot_outbox_pending", ())] == 1
    assert 149 < got[("trademon_bot_outbox_oldest_age_seconds", ())] < 152
    store.close()  # unreadable: unknown is absent, never 0
    got = samples(m.registry)
    assert ("trademon_bot_outbox_oldest_age_seconds", ()) not in got and ("trademon_bot_outbox_pending", ()) not in got


def test_the_bot_exposes_exactly_its_contract_metrics():
    m = BotMetrics()
    m.watch_outbox(lambda: (0, None))
    for method, code in (("sendMessage", 200),):
        m.telegram_answered(method, code)
    m.page_delivered({"page": {"received": time.time(), "severity": "critical"}})
    m.notifications.labels(outcome="delivered").inc()
    names = {f.name for f in text_string_to_metric_families(generate_latest(m.registry).decode())}
    want = {spec.name.removesuffix("_total") for spec in contract.metrics_for_job(contract.BOT)}
    assert names == want


# ---- the real bot ---------------------------------------------------------------------------

def scrape(url: str) -> dict[tuple, float]:
    text = requests.get(f"{url}/metrics", timeout=5).text
    return {(s.name, tuple(sorted(s.labels.items()))): s.value for f in text_string_to_metric_families(text) for s in f.samples}


@pytest.mark.e2e
def test_the_running_bot_reports_pages_their_latency_and_telegram_refusing_it(tmp_path):
    telegram = TelegramStandIn(BOT_TOKEN)
    url, proc, headers = start_bot(tmp_path, telegram.url, {"TRADEMON_BOT_DELIVER_WITHIN": "0.5"})
    try:
        started = time.time()
        alert = {"status": "firing", "labels": {"alertname": "DailyLossLimitBreach", "severity": "critical"}, "annotations": {},
                 "startsAt": iso(started), "fingerprint": "abc"}
        payload = {"version": "4", "groupKey": "{}:{a}", "status": "firing", "receiver": "critical", "groupLabels": {},
                   "commonLabels": {"severity": "critical"}, "commonAnnotations": {}, "externalURL": "http://am", "alerts": [alert]}
        r = requests.post(f"{url}/alerts", json=payload, headers=headers, timeout=15)
        assert r.json()["status"] == "delivered", r.text
        got = scrape(url)
        assert got[("trademon_bot_pages_delivered_total", (("severity", "critical"),))] == 1
        assert got[("trademon_bot_page_latency_seconds_count", (("since", "webhook"),))] == 1
        assert got[("trademon_bot_page_latency_seconds_count", (("since", "alert_start"),))] == 1
        assert got[("trademon_bot_telegram_sends_total", (("code", "200"), ("result", "ok")))] >= 1
        assert got[("trademon_bot_outbox_pending", ())] == 0
        # The token revoked: the next poll says so, at once, and the page waits in the outbox.
        telegram.refuse("token")
        wait_for(lambda: scrape(url)[("trademon_bot_telegram_refused", (("reason", "token_rejected"),))] == 1, 15,
                 what="token_rejected at 1")
        second = {**payload, "groupKey": "{}:{b}", "alerts": [{**alert, "fingerprint": "def", "labels": {"alertname": "Other"}}]}
        assert requests.post(f"{url}/alerts", json=second, headers=headers, timeout=15).json()["status"] == "queued"
        wait_for(lambda: scrape(url)[("trademon_bot_outbox_oldest_age_seconds", ())] > 1, 15, what="the page ageing in the outbox")
        # The bot blocked by the trader: a 403 on the outbox's next try.
        telegram.refuse("blocked")
        wait_for(lambda: scrape(url)[("trademon_bot_telegram_refused", (("reason", "bot_blocked"),))] == 1, 30,
                 what="bot_blocked at 1")
        telegram.refuse(None)  # fixed: the page goes, every refusal clears
        wait_for(lambda: scrape(url)[("trademon_bot_outbox_pending", ())] == 0, 30, what="the outbox empty")
        got = scrape(url)
        assert {got[("trademon_bot_telegram_refused", (("reason", r),))] for r in contract.TELEGRAM_REFUSALS} == {0}
        assert got[("trademon_bot_telegram_sends_total", (("code", "403"), ("result", "refused")))] >= 1
    finally:
        proc.close()
        telegram.close()
