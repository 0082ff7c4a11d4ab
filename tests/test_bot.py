"""`trademon bot`'s parts on their own: configuration errors that name the variable, the
callback signatures, who may act, the next session, the outbox across a restart, line
splitting, and the Telegram client's 429 handling against the stand-in."""

from __future__ import annotations

import asyncio
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
from trademon.config import ConfigError

from tests.support.procs import free_port
from tests.support.standins import TelegramStandIn, telegram_visible_length

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
            stand.fail_for(2.5, first_500=0, retry_after=2)
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
    assert statuses[:2] == [429, 429] and 200 in statuses
    assert waited >= 2  # no second try before retry_after
    assert err.code == 429 and err.retry_after == 30
    assert conflict.code == 409 and type(conflict).__name__ == "Conflict"
