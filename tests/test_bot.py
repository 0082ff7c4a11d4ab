"""`trademon bot`'s parts on their own: configuration errors that name the variable, the
callback signatures, who may act, the next session, the outbox across a restart, line
splitting, and the Telegram client's 429 handling against the stand-in."""

from __future__ import annotations

import asyncio
import re
import os
import subprocess
import sys
import time
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from trademon.bot import render, sessions
from trademon.bot.auth import Signer, may_act
from trademon.bot.config import BotConfig
from trademon.bot.store import Store
from trademon.bot.telegram import TelegramClient, TelegramError
from trademon.settings.env import ConfigError

from tests.support.procs import free_port
from tests.support.standins import TelegramStandIn, telegram_visible_length, visible_text

ROOT = Path(__file__).resolve().parents[1]
TOKEN = "123456:AAbotTOKENforTESTS_x"
BASE = {"TELEGRAM_BOT_TOKEN": TOKEN, "TELEGRAM_CHAT_ID": "-100777"}
NY = ZoneInfo("America/New_York")


@pytest.mark.parametrize("env, variable", [
    ({"TELEGRAM_CHAT_ID": "-100777"}, "TELEGRAM_BOT_TOKEN"),
    ({"TELEGRAM_BOT_TOKEN": TOKEN}, "TELEGRAM_CHAT_ID"),
    ({**BASE, "TELEGRAM_CHAT_ID": "@channel"}, "TELEGRAM_CHAT_ID"),
    ({**BASE, "TRADEMON_BOT_ALLOWED_USER_IDS": "12,abc"}, "TRADEMON_BOT_ALLOWED_USER_IDS"),
    ({**BASE, "TRADEMON_BOT_SUMMARY_AT": "25:00"}, "TRADEMON_BOT_SUMMARY_AT"),
    ({**BASE, "TRADEMON_BOT_SUMMARY_TZ": "Mars/Olympus"}, "TRADEMON_BOT_SUMMARY_TZ"),
    ({**BASE, "TRADEMON_BOT_MAX_SILENCE": "forever"}, "TRADEMON_BOT_MAX_SILENCE"),
    ({**BASE, "TELEGRAM_API_URL": "api.telegram.org"}, "TELEGRAM_API_URL"),
    ({**BASE, "TRADEMON_BOT_WEBHOOK_TOKEN": "short"}, "TRADEMON_BOT_WEBHOOK_TOKEN"),
])
def test_config_errors_name_the_variable(env, variable):
    with pytest.raises(ConfigError) as e:
        BotConfig.from_env(env)
    assert e.value.variable == variable and TOKEN not in str(e.value)


def test_config_defaults():
    cfg = BotConfig.from_env(BASE)
    assert cfg.chat_id == -100777 and cfg.allowed_chats == {-100777} and cfg.allowed_users == frozenset()
    assert cfg.host == "127.0.0.1" and cfg.max_silence_s == 86400 and cfg.summary_zone.key == "America/New_York"
    assert cfg.summary_at.strftime("%H:%M") == "16:15" and cfg.summary_days == set(range(5))
    assert cfg.webhook_token and TOKEN not in cfg.webhook_token


@pytest.mark.e2e
def test_cli_says_what_to_set(tmp_path):
    r = subprocess.run([sys.executable, "-m", "trademon", "bot"], capture_output=True, text=True, timeout=60,
                       env={"PATH": "/usr/bin:/bin", "PYTHONPATH": os.environ.get("PYTHONPATH", ""), "TELEGRAM_CHAT_ID": "-100777",
                            "TRADEMON_BOT_PORT": str(free_port())})
    assert r.returncode == 2 and "TELEGRAM_BOT_TOKEN" in r.stderr and "not set" in r.stderr


def test_signed_callback_data():
    s = Signer(TOKEN)
    data = s.sign("s1h", "abc123def456", -100777)
    assert len(data.encode()) <= 64
    assert s.verify(data, -100777) == ("s1h", "abc123def456")
    assert s.verify(data, 42) is None                                    # copied to another chat
    assert s.verify(data.replace("s1h", "s4h"), -100777) is None          # action changed
    assert s.verify(data[:-1] + ("x" if data[-1] != "x" else "y"), -100777) is None
    assert Signer("999:other").verify(data, -100777) is None              # another bot's key
    assert s.verify("s1h|abc|" + "A" * 16, -100777) is None and s.verify("", -100777) is None


def test_who_may_act():
    chats, users = frozenset({-100777, 55}), frozenset({55})
    group = {"id": -100777, "type": "supergroup"}
    assert may_act(chats, users, group, {"id": 55})
    assert not may_act(chats, users, group, {"id": 56})
    assert may_act(chats, users, {"id": 55, "type": "private"}, {"id": 55})
    assert not may_act(chats, users, {"id": 66, "type": "private"}, {"id": 66})
    assert not may_act(chats, frozenset(), group, {"id": 55})  # a group with no user configured: nobody


@pytest.mark.parametrize("now, want", [
    ("2026-11-27 17:00", "2026-11-30 09:30"),  # Friday after the close -> Monday
    ("2026-11-30 08:00", "2026-11-30 09:30"),  # Monday before the open
    ("2026-11-30 10:00", "2026-12-01 09:30"),  # in the session -> the next one
    ("2026-11-28 12:00", "2026-11-30 09:30"),  # Saturday
])
def test_next_session_open_from_the_weekday_fallback(now, want):
    hours = sessions.load(ROOT / "alertmanager" / "alertmanager.yml")
    assert hours == sessions.DEFAULT
    got = sessions.next_session_open(datetime.strptime(now, "%Y-%m-%d %H:%M").replace(tzinfo=NY), hours)
    assert got == datetime.strptime(want, "%Y-%m-%d %H:%M").replace(tzinfo=NY)


def test_next_session_open_from_the_exchange_calendar():
    """With the calendar (trademon[calendars]) Thanksgiving is no session: Wednesday evening -> Friday."""
    hours = sessions.load(ROOT / "alertmanager" / "alertmanager.yml", "XNYS")
    got = sessions.next_session_open(datetime(2026, 11, 25, 17, 0, tzinfo=NY), hours)
    assert got == datetime(2026, 11, 27, 9, 30, tzinfo=NY)


def test_split_lines_never_over_the_limit():
    text = "\n".join(f"<b>line {i}</b> &amp; " + "x" * (i % 300) for i in range(2000))
    parts = render.split_lines(text)
    assert len(parts) > 1 and "\n".join(parts) == text
    for p in parts:
        assert telegram_visible_length(p) <= 4096


def test_outbox_survives_a_reopen(tmp_path):
    s = Store(tmp_path / "bot.sqlite3")
    oid = s.put({"parts": ["a", "b"], "sent": 1})
    s.close()
    s = Store(tmp_path / "bot.sqlite3")
    assert s.due(time.time()) == [(oid, {"parts": ["a", "b"], "sent": 1})]
    s.retry_later(oid, time.time() + 60)
    assert s.due(time.time()) == [] and s.pending() == 1
    s.done(oid)
    assert s.pending() == 0


def test_client_honours_retry_after_and_says_409():
    stand = TelegramStandIn(TOKEN)

    async def run():
        tg = TelegramClient(stand.url, TOKEN)
        try:
            stand.fail_for(0.5, first_500=0, retry_after=1)  # Telegram's retry_after: whole seconds
            t0 = time.monotonic()
            await tg.call_within(time.monotonic() + 10, "sendMessage", {"chat_id": 1, "text": "hi"})
            waited = time.monotonic() - t0
            with pytest.raises(TelegramError) as e:  # retry_after beyond the deadline: give up, do not hammer
                stand.fail_for(5, first_500=0, retry_after=30)
                await tg.call_within(time.monotonic() + 1, "sendMessage", {"chat_id": 1, "text": "hi"})
            poll = asyncio.create_task(tg.call("getUpdates", {"timeout": 3}, timeout=10))
            await asyncio.sleep(0.5)
            second = TelegramClient(stand.url, TOKEN)
            await second.call("getUpdates", {"timeout": 0})
            await second.close()
            with pytest.raises(TelegramError) as conflict:
                await poll
            return waited, e.value, conflict.value
        finally:
            await tg.close()
            stand.close()

    waited, err, conflict = asyncio.run(run())
    statuses = stand.statuses()
    assert statuses[:2] == [429, 200]
    assert waited >= 1  # no second try before retry_after: one that ignored it would be through in the 0.5 s
    assert err.code == 429 and err.retry_after == 30
    assert conflict.code == 409 and type(conflict).__name__ == "Conflict"


# --- runbooks: the sections of monitoring/runbooks.md, shown in the chat --------------------

RUNBOOK_MD = """# Runbooks

Intro text, not a section.

## FirstAlert

**Critical.** When `x < 5 && y > 3` the
trader loses & cries.

First checks
- The `job` label names
  the service.
  - a nested bullet
1. numbered stays

| reason | do |
| --- | --- |
| `a<b>` | restart **now** |

```sh
curl -X POST localhost:9090/-/reload   # <not a tag>
## not a heading inside a fence
```

### Sub heading `code`

See [the docs](https://example.org/a?b=1&c=2) and [a file](docs/x.md).

## second_alert

Line <script>alert(1)</script>
"""


def test_runbook_sections_parsed_by_heading():
    from trademon.bot import runbooks

    sections = runbooks.parse(RUNBOOK_MD)
    assert list(sections) == ["FirstAlert", "second_alert"]
    assert "## not a heading inside a fence" in sections["FirstAlert"]
    assert "Intro text" not in sections["FirstAlert"] and sections["second_alert"].strip() == "Line <script>alert(1)</script>"
    rb = runbooks.Runbooks(sections)
    assert rb.find("firstalert")[0] == "FirstAlert" and rb.find("SECOND_ALERT")[0] == "second_alert"
    assert rb.find("Nope") is None


def test_runbook_html_escapes_and_keeps_the_structure():
    from trademon.bot import runbooks

    out = runbooks.to_html(runbooks.parse(RUNBOOK_MD)["FirstAlert"])
    telegram_visible_length(out)  # Telegram's HTML parse mode accepts it (raises where Telegram would refuse)
    lines = out.split("\n")
    assert "<b>Critical.</b> When <code>x &lt; 5 &amp;&amp; y &gt; 3</code> the trader loses &amp; cries." in lines
    assert "• The <code>job</code> label names the service." in lines          # wrapped lines joined, bullet kept
    assert "  • a nested bullet" in lines and "1. numbered stays" in lines
    assert "<b>reason — do</b>" in lines and "• <code>a&lt;b&gt;</code> — restart <b>now</b>" in lines
    assert "<code>curl -X POST localhost:9090/-/reload   # &lt;not a tag&gt;</code>" in lines
    assert "<code>## not a heading inside a fence</code>" in lines
    assert "<b>Sub heading <code>code</code></b>" in lines
    assert 'See <a href="https://example.org/a?b=1&amp;c=2">the docs</a> and a file.' in lines
    assert "```" not in out and "| ---" not in out
    assert "&lt;script&gt;" in runbooks.to_html(runbooks.parse(RUNBOOK_MD)["second_alert"])


def test_every_shipped_runbook_fits_telegram():
    """Each section of monitoring/runbooks.md, as the bot sends it: markup Telegram accepts,
    each message under 4096 characters, nothing lost but the markup."""
    from trademon.bot import runbooks

    rb = runbooks.load(ROOT)
    assert rb.source == ROOT / "monitoring" / "runbooks.md" and "DailyLossLimitBreach" in rb.names() and len(rb.names()) >= 20
    for name in rb.names():
        parts = rb.messages(name)
        assert parts and f"Runbook: {name}" in visible_text(parts[0])
        for p in parts:
            assert 0 < telegram_visible_length(p) <= 4096, name
    long_one = max(rb.names(), key=lambda n: len(rb.find(n)[1]))
    assert len(rb.messages(long_one)) >= 1 and "First checks" in visible_text("\n".join(rb.messages("TWSConnectionLost")))


def test_missing_runbooks_file_logs_once_and_leaves_links_only(tmp_path, caplog):
    from trademon.bot import runbooks

    with caplog.at_level("WARNING", logger="trademon.bot.runbooks"):
        rb = runbooks.load(tmp_path)
    assert rb.names() == [] and rb.for_alerts([{"alertname": "DailyLossLimitBreach"}]) == []
    warned = [r for r in caplog.records if r.name == "trademon.bot.runbooks"]
    assert len(warned) == 1 and "runbooks.md" in warned[0].getMessage() and "links only" in warned[0].getMessage()


def _page(*alerts: tuple[str, str]) -> dict:
    return {"version": "4", "status": "firing", "receiver": "critical", "groupKey": "{}", "groupLabels": {"severity": "critical"},
            "commonLabels": {"severity": "critical"}, "commonAnnotations": {}, "externalURL": "http://am:9093",
            "alerts": [{"status": status, "labels": {"alertname": name, "severity": "critical", "account": f"DU{i}"},
                        "annotations": {"summary": name, "runbook_url": f"https://example.org/runbooks.md#{name.lower()}"},
                        "startsAt": "2026-01-01T00:00:00Z", "fingerprint": str(i)} for i, (name, status) in enumerate(alerts)]}


def test_page_has_a_signed_runbook_button_per_firing_alert(tmp_path):
    from trademon.bot import runbooks

    rb = runbooks.load(ROOT)
    stand = _deliver_all(tmp_path, _page(("DailyLossLimitBreach", "firing"), ("DailyLossLimitBreach", "firing"),
                                         ("TWSConnectionLost", "firing"), ("NoSuchRunbook", "firing"),
                                         ("CircuitBreakerTripped", "resolved")))
    page = stand.snapshot()[-1]
    assert stand.buttons(page["message_id"]) == ["✋ Ack", "🔕 Silence 1h", "🔕 Silence 4h", "🔕 Until the next session",
                                                 "📖 DailyLossLimitBreach", "📖 TWSConnectionLost"]
    assert 'href="https://example.org/runbooks.md#dailylosslimitbreach">runbook</a>' in page["text"]  # the link stays
    data = [b["callback_data"] for row in page["reply_markup"]["inline_keyboard"] for b in row if b["text"].startswith("📖")]
    for d, name in zip(data, ["DailyLossLimitBreach", "TWSConnectionLost"]):
        assert len(d.encode()) <= 64
        action, key = Signer(TOKEN).verify(d, -100777)
        assert action == "rbk" and rb.by_key(key) == name
        assert Signer(TOKEN).verify(d, 42) is None  # copied to another chat


class _Telegram:
    """A TelegramClient on the stand-in, and the Handlers of a bot with the shipped runbooks."""

    GROUP = {"id": -100777, "type": "supergroup"}

    def __init__(self, tmp_path, runbooks_root=ROOT):
        from trademon.bot import runbooks
        from trademon.bot.handlers import Handlers

        self.stand = TelegramStandIn(TOKEN)
        self.cfg = BotConfig.from_env({**BASE, "TELEGRAM_API_URL": self.stand.url, "TRADEMON_BOT_ALLOWED_USER_IDS": "55",
                                        "TRADEMON_BOT_ALLOWED_CHAT_IDS": "55"})
        self.tg = TelegramClient(self.stand.url, TOKEN)
        self.signer = Signer(TOKEN)
        self.rb = runbooks.load(runbooks_root)
        self.h = Handlers(self.cfg, self.tg, None, None, Store(tmp_path / "bot.sqlite3"), self.signer, None, None, runbooks=self.rb)

    def run(self, *updates: dict) -> list[dict]:
        async def go():
            try:
                for u in updates:
                    await self.h.dispatch(u)
            finally:
                await self.tg.close()
                self.stand.close()
        asyncio.run(go())
        return self.stand.sent()

    def command(self, text: str, chat: dict | None = None, user: int = 55) -> dict:
        return {"message": {"message_id": 1, "chat": chat or self.GROUP, "from": {"id": user}, "text": text}}

    def press(self, data: str, chat: dict | None = None, user: int = 55) -> dict:
        return {"callback_query": {"id": "q1", "from": {"id": user}, "data": data,
                                   "message": {"message_id": 7, "chat": chat or self.GROUP}}}


def test_runbook_command_for_an_allowed_chat(tmp_path):
    t = _Telegram(tmp_path)
    sent = t.run(t.command("/runbook dailylosslimitbreach"), t.command("/runbook@trademon_bot NoSuchAlert"), t.command("/runbook"),
                 t.command("/help"))
    assert all(m["chat_id"] == -100777 and m["parse_mode"] == "HTML" for m in sent)
    shown = [visible_text(m["text"]) for m in sent]
    runbook = t.rb.messages("DailyLossLimitBreach")
    assert [m["text"] for m in sent[:len(runbook)]] == runbook and shown[0].startswith("📖 Runbook: DailyLossLimitBreach")
    assert "First checks" in "\n".join(shown[:len(runbook)])
    unknown = next(s for s in shown if "NoSuchAlert" in s)
    assert "No runbook for NoSuchAlert" in unknown and "DailyLossLimitBreach" in unknown
    usage = next(s for s in shown if s.startswith("Usage: /runbook"))
    assert all(n in usage for n in ("TWSConnectionLost", "Watchdog"))
    assert any("/runbook <alertname>" in s for s in shown)  # /help lists it


def test_strangers_get_no_answer_and_their_refusals_are_logged_rate_limited(tmp_path, caplog):
    """Every "Not allowed." was a send a stranger could make the bot spend (and a 429 on it)."""
    import logging

    t = _Telegram(tmp_path)
    flood = [t.command("/status", chat={"id": 555, "type": "private"}, user=555) for _ in range(30)]
    with caplog.at_level(logging.INFO, logger="trademon.bot.handlers"):
        sent = t.run(t.command("/runbook DailyLossLimitBreach", chat={"id": 555, "type": "private"}, user=555),  # a chat not allowed
                     t.command("/runbook DailyLossLimitBreach", user=56), *flood)  # a group member not allowed
    assert sent == [] and t.stand.requests == [] and t.h.refused == 32
    logged = [r for r in caplog.records if "refused" in r.getMessage()]
    assert 1 <= len(logged) <= 3, [r.getMessage() for r in logged]


def test_a_429_on_one_chat_holds_back_only_that_chat():
    """A stranger's burst got a 429 from Telegram; the trader's page must not wait for it."""
    stand = TelegramStandIn(TOKEN)

    async def run():
        tg = TelegramClient(stand.url, TOKEN)
        try:
            stand.fail_for(10, first_500=0, retry_after=5, chat_id=555)
            with pytest.raises(TelegramError):
                await tg.call_within(time.monotonic() + 1, "sendMessage", {"chat_id": 555, "text": "hi"})
            t0 = time.monotonic()
            await tg.call_within(time.monotonic() + 4, "sendMessage", {"chat_id": -100777, "text": "page"})
            took = time.monotonic() - t0
            with pytest.raises(TelegramError):  # the refused chat itself still waits its retry_after
                await tg.call_within(time.monotonic() + 1, "sendMessage", {"chat_id": 555, "text": "again"})
            return took
        finally:
            await tg.close()
            stand.close()

    took = asyncio.run(run())
    assert took < 1.0
    assert stand.statuses() == [429, 200]  # no second try at 555 inside its retry_after


def test_runbook_button_sends_the_runbook_to_the_chat(tmp_path):
    from trademon.bot import runbooks

    t = _Telegram(tmp_path)
    data = t.signer.sign("rbk", runbooks.key("TWSConnectionLost"), -100777)
    sent = t.run(t.press(data), t.press(data, user=56), t.press(data, chat={"id": 55, "type": "private"}),
                 t.press(data[:-1] + ("A" if data[-1] != "A" else "B")))
    assert [m["text"] for m in sent] == t.rb.messages("TWSConnectionLost")  # once: the refused presses send nothing
    assert all(m["chat_id"] == -100777 for m in sent) and visible_text(sent[0]["text"]).startswith("📖 Runbook: TWSConnectionLost")
    answers = [r.body["text"] for r in t.stand.requests if r.path.endswith("/answerCallbackQuery")]
    assert answers == ["📖 TWSConnectionLost", "Not allowed.", "This button is no longer valid.", "This button is no longer valid."]


def test_runbook_command_without_runbooks_says_why(tmp_path):
    t = _Telegram(tmp_path, runbooks_root=tmp_path)
    sent = t.run(t.command("/runbook DailyLossLimitBreach"))
    assert len(sent) == 1 and "runbooks.md" in visible_text(sent[0]["text"]) and "not found" in visible_text(sent[0]["text"])


@pytest.mark.e2e  # describing the native stack finds the Prometheus and Alertmanager binaries
def test_native_runs_the_bot_with_the_checkout_as_config_root(tmp_path):
    from trademon.stack import native

    from trademon.stack import services

    layout = services.Layout("demo", False, "127.0.0.1", {})
    svc = {s.name: s for s in native.native_services(layout, native.repo_root(), tmp_path, tmp_path / "am" / "alertmanager.yml",
                                                     {"prometheus": tmp_path / "prometheus.yml"})}["trademon-bot"]
    root = Path(svc.env["TRADEMON_BOT_CONFIG_ROOT"])
    assert (root / "monitoring" / "runbooks.md").is_file() and (root / "monitoring" / "config.yml").is_file()


def test_compose_mounts_the_runbooks_where_the_bot_reads_them():
    import yaml

    from trademon.bot import runbooks

    bot = yaml.safe_load((ROOT / "docker-compose.yml").read_text())["services"]["trademon-bot"]
    root = Path(bot["environment"]["TRADEMON_BOT_CONFIG_ROOT"])
    mounts = {v.split(":")[1]: v for v in bot["volumes"] if v.startswith("./")}
    assert mounts[str(root / runbooks.RELATIVE_PATH)] == f"./monitoring/runbooks.md:{root / runbooks.RELATIVE_PATH}:ro"


def test_a_huge_runbook_paragraph_still_goes_out_as_valid_messages():
    """split_lines cuts an over-long line anywhere (inside a tag): such a line goes as plain text in pieces."""
    from trademon.bot import runbooks

    md = "## Huge\n\n" + " ".join(f"`code{i}` **b** & <x>" for i in range(300)) + "\n\n- after"
    rb = runbooks.Runbooks(runbooks.parse(md))
    parts = rb.messages("Huge")
    assert len(parts) > 1
    for p in parts:
        assert 0 < telegram_visible_length(p) <= 4096
    shown = visible_text("\n".join(parts))
    assert "code299 b & <x>" in shown and shown.endswith("• after")


# ------------------------------------------------------------------ Alertmanager's retries


def _post_twice(tmp_path, payloads, telegram_down_s: float = 0.0, deliver_within: float = 10.0, env: dict | None = None):
    """Post each payload to the bot's webhook in turn (the second of a pair as Alertmanager's
    retry) and let the outbox run; return (answers, texts Telegram received)."""
    import httpx

    from trademon.bot.webhook import Delivery, build_app

    stand = TelegramStandIn(TOKEN)
    cfg = BotConfig.from_env({**BASE, "TELEGRAM_API_URL": stand.url, **(env or {})})
    cfg.deliver_within_s = deliver_within
    answers = []

    async def run():
        tg = TelegramClient(stand.url, TOKEN)
        d = Delivery(cfg, Store(tmp_path / "bot.sqlite3"), tg, Signer(TOKEN))
        app = build_app(d, "hook-token")
        if telegram_down_s:
            stand.fail_for(telegram_down_s, first_500=0, retry_after=1)
        try:
            async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://bot") as c:
                for p in payloads:
                    r = await c.post("/alerts", json=p, headers={"Authorization": "Bearer hook-token"})
                    answers.append((r.status_code, r.json().get("status")))
            stop = asyncio.Event()
            loop = asyncio.create_task(d.run_outbox(stop, every=0.1))
            deadline = time.monotonic() + telegram_down_s + 10
            while d.store.pending() and time.monotonic() < deadline:
                await asyncio.sleep(0.1)
            stop.set()
            await loop
        finally:
            await tg.close()
            stand.close()

    asyncio.run(run())
    return answers, [visible_text(m["text"]) for m in stand.snapshot()]


def test_a_retry_of_a_delivered_notification_is_not_a_second_message(tmp_path):
    """Alertmanager timed out waiting for the answer and sends the same notification again:
    the trader's phone shows it once."""
    page = _page(("DailyLossLimitBreach", "firing"))
    answers, texts = _post_twice(tmp_path, [page, page])
    assert answers == [(200, "delivered"), (200, "delivered")]
    assert len(texts) == 1 and "DailyLossLimitBreach" in texts[0]


def test_a_retry_while_telegram_is_down_finishes_the_one_in_the_outbox(tmp_path):
    page = _page(("TWSConnectionLost", "firing"))
    answers, texts = _post_twice(tmp_path, [page, page], telegram_down_s=2.0, deliver_within=0.3)
    assert [a for _, a in answers] == ["queued", "queued"]
    assert len(texts) == 1 and "TWSConnectionLost" in texts[0]


def test_what_changed_is_a_new_message_and_a_repeat_after_the_window_too(tmp_path):
    firing, resolved = _page(("DailyLossLimitBreach", "firing")), _page(("DailyLossLimitBreach", "resolved"))
    resolved["status"] = "resolved"
    other = _page(("DailyLossLimitBreach", "firing"), ("CircuitBreakerTripped", "firing"))
    _, texts = _post_twice(tmp_path / "a", [firing, other, resolved])
    assert len(texts) == 2  # the resolve is no new message: it edits the page it ends (the first; the second still fires)
    assert "Resolved at" in texts[0] and "Resolved" not in texts[1]
    # the window over: Alertmanager's repeat_interval reminder
    _, texts = _post_twice(tmp_path / "b", [firing, firing], env={"TRADEMON_BOT_RETRY_WINDOW": "0s"})
    assert len(texts) == 2


def test_the_retry_window_sits_between_group_interval_and_repeat_interval():
    """Shorter than every repeat_interval of the routes to the bot (a reminder is sent), longer
    than every group_interval (when Alertmanager retries a notification it saw fail)."""
    import yaml

    from trademon.bot.retrywindow import bot_routes, problem

    am = yaml.safe_load((ROOT / "alertmanager" / "alertmanager.yml").read_text())
    assert {r["receiver"] for r in bot_routes(am)} >= {"critical", "warning"}
    assert problem(am, BotConfig.from_env(BASE).retry_window_s) is None
    # a window that would swallow the hourly reminder, or let a retry after 5m through
    assert "not shorter than the shortest repeat_interval" in problem(am, 3600)
    assert "not longer than the longest group_interval" in problem(am, 60)



def test_the_bot_says_at_start_when_its_retry_window_does_not_fit_the_routes(tmp_path, caplog):
    import logging

    import yaml

    from trademon.bot.cli import Bot

    am = yaml.safe_load((ROOT / "alertmanager" / "alertmanager.yml").read_text())
    warning = next(r for r in am["route"]["routes"] if r.get("receiver") == "warning")
    warning["repeat_interval"] = "10m"  # a trader's own, shorter than the 15m window
    (tmp_path / "alertmanager").mkdir()
    (tmp_path / "alertmanager" / "alertmanager.yml").write_text(yaml.safe_dump(am))
    (tmp_path / "monitoring").mkdir()
    (tmp_path / "monitoring" / "config.yml").write_text((ROOT / "monitoring" / "config.yml").read_text())
    cfg = BotConfig.from_env({**BASE, "TRADEMON_BOT_CONFIG_ROOT": str(tmp_path), "TRADEMON_BOT_STATE_DIR": str(tmp_path / "state")})
    with caplog.at_level(logging.WARNING, logger="trademon.bot"):
        Bot(cfg, env={})
    assert any("TRADEMON_BOT_RETRY_WINDOW (900s) is not shorter than the shortest repeat_interval" in r.getMessage()
               for r in caplog.records), [r.getMessage() for r in caplog.records]


def _deliver_all(tmp_path, *payloads, env: dict | None = None):
    """Accept and deliver each payload in turn through the bot's Delivery; return the stand-in."""
    from trademon.bot import runbooks
    from trademon.bot.webhook import Delivery

    stand = TelegramStandIn(TOKEN)
    cfg = BotConfig.from_env({**BASE, "TELEGRAM_API_URL": stand.url, **(env or {})})

    async def run():
        tg = TelegramClient(stand.url, TOKEN)
        try:
            d = Delivery(cfg, Store(tmp_path / "bot.sqlite3"), tg, Signer(TOKEN), runbooks=runbooks.load(ROOT))
            for p in payloads:
                oid, item = d.accept(p)
                assert await d.deliver(oid, item, time.monotonic() + 10)
        finally:
            await tg.close()
            stand.close()

    asyncio.run(run())
    return stand


def test_a_resolve_edits_its_page_quietly_and_retires_the_silence_buttons(tmp_path):
    firing = _page(("DailyLossLimitBreach", "firing"))
    resolved = _page(("DailyLossLimitBreach", "resolved"))
    resolved["status"] = "resolved"
    stand = _deliver_all(tmp_path, firing, resolved)
    sent = stand.sent()
    assert len(sent) == 1 and not sent[0]["silent"]  # the page rang; nothing else did
    page = stand.snapshot()[0]
    assert "✅ Resolved at" in visible_text(page["text"]) and "DailyLossLimitBreach" in visible_text(page["text"])
    assert stand.buttons(page["message_id"]) == ["📖 DailyLossLimitBreach"]
    edits = [r for r in stand.requests if r.path.endswith("/editMessageText")]
    assert len(edits) == 1 and edits[0].status == 200


def test_a_resolve_with_no_page_to_edit_arrives_quietly(tmp_path):
    resolved = _page(("DailyLossLimitBreach", "resolved"))
    resolved["status"] = "resolved"
    sent = _deliver_all(tmp_path, resolved).sent()
    assert len(sent) == 1 and sent[0]["silent"] and sent[0]["buttons"] == []


def test_buttons_work_before_telegram_answers_and_on_every_copy(tmp_path):
    """The page's buttons refer to the bot's own reference, made before the page is sent: a
    press that comes before Telegram's answer (message id unknown to the bot), or on the first
    copy of a page sent twice, is a valid press ("Not silenced." for Unsilence on a page never
    silenced), not "This button is no longer valid."."""
    from trademon.bot.webhook import Delivery

    t = _Telegram(tmp_path)
    d = Delivery(t.cfg, t.h.store, t.tg, t.signer)
    _, item = d.accept(_page(("DailyLossLimitBreach", "firing")))  # in the outbox, not sent: no message id known
    data = t.signer.sign("uns", item["ref"], t.cfg.chat_id)
    chat = {"id": t.cfg.chat_id, "type": "supergroup"}
    t.run(t.press(data, chat=chat), {"callback_query": {"id": "q2", "from": {"id": 55}, "data": data,
                                                        "message": {"message_id": 8, "chat": chat}}})
    answers = [r.body["text"] for r in t.stand.requests if r.path.endswith("/answerCallbackQuery")]
    assert answers == ["Not silenced.", "Not silenced."]
    assert t.h.store.ref(item["ref"])["message_ids"] == [7, 8]  # both copies known: a later edit reaches each


def test_status_broker_truth_line_names_the_checks_firing_and_unknowns():
    from trademon.bot.reports import broker_truth_line

    alerts = [{"labels": {"alertname": "OrderNotAcknowledgedByIB", "strategy": "momentum"},
               "annotations": {"dashboard": "/d/trademon-broker-truth"}},
              {"labels": {"alertname": "PositionDriftFromBroker", "symbol": "AAPL"},
               "annotations": {"dashboard": "/d/trademon-broker-truth"}},
              {"labels": {"alertname": "BreakerLeakingOrders", "breaker": "daily_loss"},
               "annotations": {"dashboard": "/d/trademon-broker-truth"}},
              {"labels": {"alertname": "DailyLossLimitBreach"}, "annotations": {"dashboard": "/d/trademon-pnl"}}]
    line = broker_truth_line(alerts, [({}, 0.0)], [({}, 3.0)], [({}, 16.25)])
    assert line == ("Broker truth: ❌ BreakerLeakingOrders (daily_loss), OrderNotAcknowledgedByIB (momentum), "
                    "PositionDriftFromBroker (AAPL) · "
                    "sees other clients' orders: NO (Master API client ID?) · working orders at IB: 3 · "
                    "order efficiency today: 16.2")
    quiet = broker_truth_line([], None, [], RuntimeError("down"))
    assert quiet == ("Broker truth: no check firing ✅ · sees other clients' orders: unknown · "
                     "working orders at IB: unknown · order efficiency today: unknown")
    assert broker_truth_line(RuntimeError("am"), None, None, None).startswith("Broker truth: unknown (Alertmanager")


def test_who_acted_is_said_by_name():
    """The edit said "Silenced by telegram:u111111 (111111)"; the trader is a name."""
    from trademon.bot.handlers import name_of, who

    assert name_of({"id": 111111, "first_name": "Ada", "last_name": "Lovelace", "username": "ada"}) == "Ada Lovelace"
    assert name_of({"id": 111111, "username": "ada"}) == "@ada"
    assert name_of({"id": 111111}) == "user 111111"
    assert who({"id": 111111, "first_name": "Ada"}) == "Ada (Telegram 111111)"


def test_every_button_fits_telegrams_64_bytes():
    from trademon.bot.keyboards import extend_keyboard, keyboard

    signer = Signer(TOKEN)
    rows = keyboard(signer, "a" * 12, -1001234567890123, ["DailyLossLimitBreach"])["inline_keyboard"]
    rows += extend_keyboard(signer, "a" * 12, -1001234567890123)["inline_keyboard"]
    data = [b["callback_data"] for row in rows for b in row]
    assert {d.split("|")[0] for d in data} == {"ack", "s1h", "s4h", "sns", "rbk", "x1h", "x4h"}
    assert all(1 <= len(d.encode()) <= 64 and signer.verify(d, -1001234567890123) for d in data)


def _hrefs(text: str) -> list[str]:
    import re

    return re.findall(r'href="([^"]+)"', text)


def test_links_open_on_a_phone_or_the_page_says_once_why_not(tmp_path):
    """With the defaults the dashboard and silence links pointed at localhost, which Telegram
    shows as plain text: only the runbook link opened on the phone."""
    page = _page(("DailyLossLimitBreach", "firing"), ("TWSConnectionLost", "firing"))
    for a in page["alerts"]:
        a["annotations"]["dashboard"] = "/d/trademon-pnl"
    text = _deliver_all(tmp_path / "a", page).sent()[0]["text"]
    assert [h for h in _hrefs(text) if "localhost" in h or "127.0.0.1" in h] == []
    assert len(_hrefs(text)) == 2  # the runbooks
    assert visible_text(text).count("GRAFANA_URL and ALERTMANAGER_URL point at an address only this machine can open") == 1
    external = {"GRAFANA_URL": "https://grafana.example.org", "ALERTMANAGER_URL": "https://am.example.org"}
    text = _deliver_all(tmp_path / "b", page, env=external).sent()[0]["text"]
    hrefs = _hrefs(text)
    assert "https://grafana.example.org/d/trademon-pnl" in hrefs and sum(h.startswith("https://am.example.org/#/silences/new") for h in hrefs) == 2
    assert "only this machine" not in visible_text(text)


def test_times_on_pages_are_in_the_traders_zone(tmp_path):
    assert BotConfig.from_env(BASE).zone.key == "America/New_York"  # the summary's, unless set
    assert BotConfig.from_env({**BASE, "TRADEMON_BOT_SUMMARY_TZ": "Asia/Tokyo"}).zone.key == "Asia/Tokyo"
    firing, resolved = _page(("DailyLossLimitBreach", "firing")), _page(("DailyLossLimitBreach", "resolved"))
    resolved["status"] = "resolved"
    stand = _deliver_all(tmp_path, firing, resolved, env={"TRADEMON_BOT_TZ": "Europe/Berlin", "TRADEMON_BOT_SUMMARY_TZ": "Asia/Tokyo"})
    shown = visible_text(stand.snapshot()[0]["text"])
    assert re.search(r"Resolved at \d\d:\d\d CET", shown), shown


def test_a_storm_pages_buttons_act_only_on_the_alerts_shown(tmp_path):
    """One Silence 1h press on a 60-alert page created 60 silences, 44 of them for alerts the
    trader never saw: the page's reference holds the alerts it shows, and only those (here 400
    names, more than one message can count)."""
    from trademon.bot.webhook import Delivery

    storm = _page(*[(f"Storm{i:03d}", "firing") for i in range(400)])
    t = _Telegram(tmp_path)
    d = Delivery(t.cfg, t.h.store, t.tg, t.signer)
    _, item = d.accept(storm)
    shown = visible_text("\n".join(item["parts"]))
    assert "more not listed" in shown
    on_page = {a["labels"]["alertname"] for a in storm["alerts"] if a["labels"]["alertname"] + " ×" in shown}
    ref = t.h.store.ref(item["ref"])
    assert 0 < len(on_page) < 400 and {labels["alertname"] for labels in ref["alerts"]} == on_page
    t.run()


def test_ack_watch_asks_alertmanager_nothing_while_nothing_is_acknowledged(tmp_path):
    from trademon.bot.acks import AckWatch
    from trademon.bot.webhook import Delivery

    t = _Telegram(tmp_path)
    Delivery(t.cfg, t.h.store, t.tg, t.signer).accept(_page(("DailyLossLimitBreach", "firing")))  # a page, not acknowledged
    watch = AckWatch(t.cfg, t.h.store, t.tg, None, None, t.signer, t.rb)  # no Alertmanager at all: a call would fail
    asyncio.run(watch.turn())
    assert t.h.store.acknowledged(50) == []
    t.run()


def test_ack_watch_outlives_a_state_directory_that_takes_no_write(tmp_path):
    """An acknowledged page resolving while the disk is full: the write of its end raised
    sqlite3's error out of the loop, which ended the bot (its supervisor starts it again into the
    same full disk). The next turn tries again, as the outbox and the escalation do."""
    import dataclasses
    import sqlite3

    from trademon.bot.acks import AckWatch

    t = _Telegram(tmp_path)
    watch = AckWatch(dataclasses.replace(t.cfg, ack_check_s=0.01), t.h.store, t.tg, None, None, t.signer, t.rb)
    turns = []

    async def turn():
        turns.append(1)
        if len(turns) <= 2:
            raise sqlite3.OperationalError("database or disk is full")

    watch.turn = turn

    async def main():
        running = asyncio.create_task(watch.run())
        await asyncio.sleep(0.3)
        alive = not running.done()
        running.cancel()
        return alive

    assert asyncio.run(main()) and len(turns) > 3, turns
    t.run()

