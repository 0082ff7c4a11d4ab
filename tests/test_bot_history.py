"""`/history [period | alert]`: what fired, for how long, who acknowledged or silenced it, from
the bot's own record (each alert's start and end as Alertmanager sent them, every action from
Telegram); one message at most, times in the trader's zone, a clear answer to a bad argument.
Injected clock throughout."""

from __future__ import annotations

import asyncio
import re
from datetime import datetime, UTC
from zoneinfo import ZoneInfo

from trademon.bot import history
from trademon.bot.config import BotConfig
from trademon.bot.store import Store
from trademon.bot.upstream import Record

from tests.support.standins import telegram_visible_length, visible_text
from tests.test_bot import BASE, _page, _Telegram

BERLIN = ZoneInfo("Europe/Berlin")
NOW = datetime(2026, 12, 7, 15, 0, tzinfo=UTC).timestamp()  # 16:00 in Berlin


def iso(t: float) -> str:
    return datetime.fromtimestamp(t, UTC).isoformat().replace("+00:00", "Z")


def notification(name: str, account: str, start: float, end: float | None = None, severity: str = "critical") -> dict:
    page = _page((name, "resolved" if end else "firing"))
    a = page["alerts"][0]
    a["labels"].update(account=account, severity=severity)
    a["startsAt"] = iso(start)[:-1] + ".123456789Z"  # Alertmanager's nanoseconds
    a["endsAt"] = iso(end) if end else "0001-01-01T00:00:00Z"
    page["status"] = a["status"]
    return page


def fill(store: Store) -> None:
    loss = notification("DailyLossLimitBreach", "DU1", NOW - 3600)
    for _ in range(3):  # Alertmanager repeats the firing alert: one episode
        store.record(history.rows_of(loss))
    store.record(history.rows_of(notification("DailyLossLimitBreach", "DU1", NOW - 3600, end=NOW - 1800)))
    store.record(history.rows_of(notification("UnusualSlippage", "DU2", NOW - 600, severity="warning")))
    store.record(history.rows_of(notification("TWSConnectionLost", "DU1", NOW - 3 * 86400, end=NOW - 3 * 86400 + 120)))


def test_history_says_what_fired_how_long_and_who_acted_in_the_traders_zone(tmp_path, monkeypatch):
    store = Store(tmp_path / "bot.sqlite3")
    fill(store)
    record = Record(None, local=store)
    loss = {"alertname": "DailyLossLimitBreach", "severity": "critical", "account": "DU1"}
    monkeypatch.setattr("trademon.bot.upstream.time.time", lambda: NOW - 3500)
    asyncio.run(record.action("ack", [loss], {"by": "Ada Lovelace (Telegram 111)", "ends_at": iso(NOW - 3500 + 7200)}))
    monkeypatch.setattr("trademon.bot.upstream.time.time", lambda: NOW - 500)
    asyncio.run(record.action("silence", [{"alertname": "UnusualSlippage"}],  # /silence: by name
                              {"by": "@bob (Telegram 222)", "ends_at": iso(NOW + 3600)}))
    text = history.answer(store, [], NOW, BERLIN)
    shown = visible_text(text)
    lines = shown.split("\n")
    assert lines[0] == "📜 History · the last 24h · 2 fired (times Europe/Berlin, CET)"
    assert lines[1] == "🟠 UnusualSlippage (account=DU2) · 15:50 → no resolve recorded (10m so far) · 🔕 @bob 15:51 until 17:00"
    assert lines[2] == ("🔴 DailyLossLimitBreach (account=DU1) · 15:00 → 15:30 (30m) · ✋ Ada Lovelace 15:01 until 17:01")
    assert len(lines) == 3  # the loss three days ago is outside the day
    week = visible_text(history.answer(store, ["7d"], NOW, BERLIN))
    assert "TWSConnectionLost (account=DU1) · Fri 04 Dec 16:00 → Fri 04 Dec 16:02 (2m)" in week
    one = visible_text(history.answer(store, ["twsconnectionlost"], NOW, BERLIN))  # an alert: the whole record, any case
    assert one.startswith("📜 History · twsconnectionlost · the last 30d") and "1 fired" in one


def test_history_is_one_message_with_the_rest_counted(tmp_path):
    store = Store(tmp_path / "bot.sqlite3")
    store.record([row for i in range(400)  # one write: each is an fsync
                  for row in history.rows_of(notification(f"Alert{i % 9}", f"DU{i:05d}" + "x" * 40, NOW - 60 * i, end=NOW - 60 * i + 30))])
    text = history.answer(store, ["1d"], NOW, BERLIN)
    assert telegram_visible_length(text) <= 4096
    shown = visible_text(text)
    listed = len(re.findall(r"^[🔴🟠🔵] Alert\d", shown, re.M))
    more = int(re.search(r"… (\d+) more, older: a shorter period or one alert", shown).group(1))
    assert listed + more == 400 and 10 < listed < 400 and "400 fired" in shown


def test_history_answers_a_bad_argument_with_the_usage(tmp_path):
    store = Store(tmp_path / "bot.sqlite3")
    fill(store)
    for bad in (["5x"], ["2h", "3h"], ["rm -rf"], ["0s"], ["a", "b", "c"]):
        got = visible_text(history.answer(store, bad, NOW, BERLIN))
        assert "Usage: /history [period | alert], e.g. /history 6h" in got, bad
    assert visible_text(history.answer(store, ["5x"], NOW, BERLIN)).startswith("Not a period or an alert name: 5x.")
    got = visible_text(history.answer(store, ["DailyLosLimitBreach"], NOW, BERLIN))
    assert got == "Nothing recorded for DailyLosLimitBreach in the last 30d. Recorded names like it: DailyLossLimitBreach."
    got = visible_text(history.answer(store, ["1y"], NOW, BERLIN))
    assert "the last 30d (the record keeps 30 days)" in got
    assert visible_text(history.answer(Store(tmp_path / "empty.sqlite3"), [], NOW, BERLIN)) == "Nothing fired in the last 24h."


def test_history_command_and_the_record_of_a_delivered_notification(tmp_path):
    """Through the bot: a notification taken by the webhook is in the record; /history answers
    in the chat, in TRADEMON_BOT_TZ."""
    from trademon.bot.webhook import Delivery

    t = _Telegram(tmp_path)
    t.cfg.zone = BERLIN
    t.h.clock = lambda: NOW
    Delivery(t.cfg, t.h.store, t.tg, t.signer).accept(notification("CircuitBreakerTripped", "DU9", NOW - 120))
    sent = t.run(t.command("/history"), t.command("/history@trademon_bot 2h CircuitBreakerTripped"), t.command("/history 5x"))
    shown = [visible_text(m["text"]) for m in sent]
    assert "🔴 CircuitBreakerTripped (account=DU9) · 15:58 → no resolve recorded (2m so far)" in shown[0]
    assert shown[1].startswith("📜 History · CircuitBreakerTripped · the last 2h · 1 fired")
    assert shown[2].startswith("Not a period or an alert name: 5x.")
    assert BotConfig.from_env(BASE).zone.key == "America/New_York"  # TRADEMON_BOT_TZ's default: the summary's zone
