"""Storms within Telegram's limits (about 20 messages a minute in a group, edits included):
one message per notification whatever its size, a chat's pages folded into one status message
edited at a bounded rate past a rate of pages, buttons that say how many alerts they act on,
and the Bot API client's own pacing per chat. The rate logic runs on an injected clock; the
200-alert storm runs the bot's webhook in process against the Telegram stand-in enforcing
20 messages a minute per group, on a compressed minute."""

from __future__ import annotations

import asyncio
import re
import time

import httpx
import pytest

from trademon.bot import render
from trademon.bot.auth import Signer
from trademon.bot.config import BotConfig
from trademon.bot.store import Store
from trademon.bot.telegram import TelegramClient

from tests.support.standins import TelegramStandIn, telegram_visible_length, visible_text
from tests.test_bot import BASE, TOKEN, _deliver_all, _page, _Telegram


def _storm(n: int, names: int = 6, long: bool = True) -> dict:
    page = _page(*[(f"Storm{i % names:02d}", "firing") for i in range(n)])
    for i, a in enumerate(page["alerts"]):
        a["labels"]["account"] = f"DU{i:04d}"
        if long:
            a["annotations"]["description"] = "why " * 90
    return page


def shown_count(text: str) -> int:
    """The alerts a message shows: one line each ("StormNN · summary") or counted ("StormNN ×k")."""
    shown = visible_text(text)
    return len(re.findall(r"^Storm\d+ · ", shown, re.M)) + sum(int(n) for n in re.findall(r"Storm\d+ ×(\d+)", shown))


def test_a_60_alert_notification_is_one_message_showing_all_60_with_its_buttons(tmp_path):
    """A storm of 60 alerts in one group buzzed four times and showed 16, its buttons on the
    last part only: now one message (one buzz), every alert counted, the buttons under it."""
    storm = _storm(60)
    stand = _deliver_all(tmp_path, storm)
    sent = stand.sent()
    assert len(sent) == 1 and not sent[0]["silent"]
    text = sent[0]["text"]
    assert telegram_visible_length(text) <= 4096
    assert shown_count(text) == 60
    assert sent[0]["buttons"][:4] == ["✋ Ack · all 60", "🔕 Silence 1h · all 60", "🔕 Silence 4h · all 60",
                                      "🔕 Until the next session · all 60"]


class _FakeAlertmanager:
    """Alertmanager's API as the handlers use it: the alerts given fire; silences are recorded."""

    def __init__(self, firing: list[dict]):
        self.firing, self.silences = firing, []

    async def alerts(self, **_):
        return [{"labels": labels} for labels in self.firing]

    async def silence(self, matchers, ends, by, comment, starts=None):
        self.silences.append(matchers)
        return f"s{len(self.silences)}"


def test_silence_all_n_acts_on_the_alerts_the_message_counts(tmp_path):
    """One Silence 1h press created 60 silences, 44 of them for alerts the trader never saw:
    the press acts on exactly the alerts the message counted (here 70 fire, 60 on the page),
    the button said how many, and the record says who."""
    from trademon.bot.upstream import Record
    from trademon.bot.webhook import Delivery

    storm = _storm(60)
    elsewhere = [{**a["labels"], "account": "X" + a["labels"]["account"]} for a in _storm(10)["alerts"]]
    t = _Telegram(tmp_path)
    t.h.am = _FakeAlertmanager([a["labels"] for a in storm["alerts"]] + elsewhere)
    t.h.record = Record(None, local=t.h.store)
    d = Delivery(t.cfg, t.h.store, t.tg, t.signer)
    oid, item = d.accept(storm)
    asyncio.run(d.deliver(oid, item, time.monotonic() + 10))
    page = t.stand.snapshot()[-1]
    button = next(b for row in page["reply_markup"]["inline_keyboard"] for b in row if b["text"].startswith("🔕 Silence 1h"))
    assert button["text"] == "🔕 Silence 1h · all 60"
    t.run({"callback_query": {"id": "q1", "from": {"id": 55, "first_name": "Ada"}, "data": button["callback_data"],
                              "message": {"message_id": page["message_id"], "chat": t.GROUP}}})
    assert sorted(m["account"] for m in t.h.am.silences) == sorted(a["labels"]["account"] for a in storm["alerts"])
    assert [r for r in t.stand.requests if r.path.endswith("/answerCallbackQuery")][0].body["text"].startswith("Silenced until")
    silenced = [r for r in t.h.store.history(0) if r["kind"] == "silence"]
    assert len(silenced) == 60 and {r["who"] for r in silenced} == {"Ada (Telegram 55)"}


def test_a_few_long_alerts_get_a_line_each_in_one_message():
    """Too long in full (five long descriptions), short enough one line each: every alert's
    name and summary, in one message."""
    page = _page(*[(f"Long{i}", "firing") for i in range(12)])
    for a in page["alerts"]:
        a["annotations"]["description"] = "x" * 400
    parts, shown, counted = render.render_page(page, render.Links("https://g.example.org", "https://am.example.org"))
    assert len(parts) == 1 and counted and len(shown) == 12
    assert all(f"Long{i} · Long{i}" in visible_text(parts[0]) for i in range(12))


def test_hundreds_of_names_are_counted_while_they_fit_and_the_rest_said():
    page = _storm(400, names=400, long=False)
    parts, shown, counted = render.render_page(page, render.Links("https://g.example.org", "https://am.example.org"))
    shown_text = visible_text(parts[0])
    more = int(re.search(r"… (\d+) more not listed", shown_text).group(1))
    assert len(parts) == 1 and telegram_visible_length(parts[0]) <= 4096
    assert len(shown) + more == 400 and len(shown) == len(re.findall(r"Storm\d+ ×1", shown_text))
    assert f"the buttons act on the {len(shown)} listed" in shown_text


# --- the 200-alert storm against the stand-in keeping Telegram's flood limit -----------------

MINUTE = 3.0  # the compressed minute of the stand-in and the bot alike: 20 messages per 3 s


def _one(i: int) -> dict:
    """Alert i of the storm, as Alertmanager sends a money page: one alert per group."""
    severity = "critical" if i % 4 == 0 else "warning"
    name = f"Storm{i % 7}"
    return {"version": "4", "status": "firing", "receiver": severity, "groupKey": f"{{}}:{{alertname=\"{name}\", n=\"{i}\"}}",
            "groupLabels": {"alertname": name}, "commonLabels": {"severity": severity}, "commonAnnotations": {},
            "externalURL": "http://am:9093",
            "alerts": [{"status": "firing", "labels": {"alertname": name, "severity": severity, "account": f"DU{i:04d}"},
                        "annotations": {"summary": f"{name} on DU{i:04d}"}, "startsAt": "2026-12-07T14:00:00Z", "fingerprint": f"f{i}"}]}


def _storm_against_the_flood_limit(tmp_path, n: int = 200):
    from trademon.bot.metrics import BotMetrics
    from trademon.bot.pace import Pacer
    from trademon.bot.webhook import Delivery, build_app

    stand = TelegramStandIn(TOKEN)
    stand.flood_limit(20, MINUTE)
    cfg = BotConfig.from_env({**BASE, "TELEGRAM_API_URL": stand.url})
    answers: list[int] = []

    async def run():
        tg = TelegramClient(stand.url, TOKEN, pacer=Pacer(minute=MINUTE))
        d = Delivery(cfg, Store(tmp_path / "bot.sqlite3"), tg, Signer(TOKEN), BotMetrics())
        app = build_app(d, "hook-token")
        stop = asyncio.Event()
        loop = asyncio.create_task(d.run_outbox(stop, every=0.05))
        try:
            async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://bot") as c:
                async def post(i):
                    r = await c.post("/alerts", json=_one(i), headers={"Authorization": "Bearer hook-token"})
                    answers.append(r.status_code)

                for start in range(0, n, 20):  # Alertmanager flushes its groups concurrently: 20 at a time, a burst a 1/20 minute
                    await asyncio.gather(*(post(i) for i in range(start, min(n, start + 20))))
                    await asyncio.sleep(MINUTE / 20)
            deadline = time.monotonic() + 4 * MINUTE
            while d.store.pending() and time.monotonic() < deadline:
                await asyncio.sleep(0.05)
        finally:
            stop.set()
            await loop
            await tg.close()
            stand.close()
        return d

    d = asyncio.run(run())
    return stand, d, answers


def test_a_200_alert_storm_meets_no_429_and_loses_nothing(tmp_path):
    """200 alerts in one group chat within a (compressed) minute, against a stand-in that keeps
    Telegram's 20 messages a minute per group: no 429, at most 20 a minute, and every alert on
    a page or counted in the status message; that message's buttons name what they act on."""
    t0 = time.monotonic()
    stand, d, answers = _storm_against_the_flood_limit(tmp_path)
    took = time.monotonic() - t0
    assert answers == [200] * 200 and d.store.pending() == 0
    statuses = [r.status for r in stand.requests if r.path.rsplit("/", 1)[-1] in stand.FLOOD_METHODS]
    assert 429 not in statuses and set(statuses) == {200}
    busiest = stand.max_in_window(-100777, MINUTE)
    assert busiest <= 20
    msgs = stand.snapshot()
    storm = [m for m in msgs if visible_text(m["text"]).startswith("🌩 STORM")]
    pages = [m for m in msgs if m not in storm]
    # pages: 8 a minute before the storm, then the critical alerts new to it, 4 a minute (they ring)
    minutes = took / MINUTE
    assert len(storm) == 1 and len(pages) <= 8 + 4 * (minutes + 1), (len(pages), minutes)
    on_pages = {a for m in pages for a in re.findall(r"DU\d{4}", visible_text(m["text"]))}
    status = visible_text(storm[0]["text"])
    firing = int(re.match(r"🌩 STORM · (\d+) firing", status).group(1))
    counted = sum(int(x) for x in re.findall(r"Storm\d ×(\d+)", status))
    assert len(on_pages) == len(pages) and len(on_pages) + firing == 200 and counted == firing  # none twice, none lost
    recorded = {r["labels"]["account"] for r in d.store.history(0) if r["kind"] == "fired"}  # the bot's record: /history's
    assert len(recorded) == 200
    assert d.metrics.registry.get_sample_value("trademon_bot_storm_folded_total") == 200 - len(pages), [visible_text(m["text"])[:40] for m in pages]
    assert stand.buttons(storm[0]["message_id"])[:3] == [f"🔕 Silence 1h · all {firing}", f"🔕 Silence 4h · all {firing}",
                                                         f"🔕 Until the next session · all {firing}"]
    edits = len([r for r in stand.requests if r.path.endswith("/editMessageText")])
    print(f"\n200-alert storm over {minutes:.1f} compressed minutes: {len(pages)} pages + 1 status message + {edits} edits = {len(pages) + 1 + edits} calls; "
          f"busiest {MINUTE:g} s window (the compressed minute): {busiest}; took {took:.1f} s")


# --- the rate logic on an injected clock --------------------------------------------------------

class Clock:
    def __init__(self, t: float = 1_796_000_000.0):
        self.t = t

    def __call__(self) -> float:
        return self.t


def test_a_window_allows_n_in_any_minute():
    from trademon.bot.pace import Pacer, Window

    clock = Clock()
    w = Window(3, 60, clock)
    for _ in range(3):
        assert w.wait() == 0
        w.take()
        clock.t += 10
    assert w.wait() == 30  # the first leaves the window 60 s after it was taken
    clock.t += 30
    assert w.wait() == 0 and w.count() == 2
    pacer = Pacer(clock=clock)
    assert pacer.window(-100777).limit == 20 and pacer.window(55).limit == 60  # a group, a private chat


def _alert(name: str, i: int, severity: str = "warning", status: str = "firing") -> dict:
    return {"status": status, "labels": {"alertname": name, "severity": severity, "account": f"DU{i}"}, "annotations": {}}


def _note(*alerts: dict) -> dict:
    sev = alerts[0]["labels"]["severity"]
    return {"status": "firing" if any(a["status"] == "firing" for a in alerts) else "resolved",
            "commonLabels": {"severity": sev}, "alerts": list(alerts)}


def test_past_8_pages_a_minute_a_chat_folds_into_its_storm_and_new_criticals_still_ring(tmp_path):
    from trademon.bot import storm as st

    clock = Clock()
    s = st.Storm(Store(tmp_path / "bot.sqlite3"), clock=clock)
    chat = -100777
    assert [s.takes(chat, _note(_alert("W", i))) for i in range(st.PAGES_PER_MINUTE)] == [None] * st.PAGES_PER_MINUTE
    folded = s.takes(chat, _note(_alert("W", 100)))
    assert folded is not None and folded[1] == 1
    # a critical alert new to the storm rings as its own page, CRITICAL_EXTRA a minute; then it folds too
    crit = [s.takes(chat, _note(_alert("Loss", i, "critical"))) for i in range(st.CRITICAL_EXTRA + 1)]
    assert crit[:-1] == [None] * st.CRITICAL_EXTRA and crit[-1] is not None
    clock.t += 61  # a minute later: the criticals' window has room, but an alert already in the storm folds
    assert s.takes(chat, _note(_alert("Loss", st.CRITICAL_EXTRA, "critical"))) is not None
    assert s.takes(chat, _note(_alert("Loss", 999, "critical"))) is None
    # resolves fold in while it lasts: the alert leaves the firing count
    s.takes(chat, _note(_alert("W", 100, status="resolved")))
    state = s.state(chat)
    assert len(state["firing"]) == 1 and state["resolved"] == 1 and state["version"] == 4
    # quiet for QUIET_MINUTES: over; the next notification is a page again
    clock.t += st.QUIET_MINUTES * 60
    assert s.takes(chat, _note(_alert("W", 5))) is None


class _FakeTelegram:
    def __init__(self):
        self.calls: list[tuple[str, dict]] = []

    async def call_within(self, deadline, method, payload):
        self.calls.append((method, payload))
        return {"message_id": 42}


def test_the_status_is_edited_at_most_every_10_s_and_its_buttons_act_on_each_rendering(tmp_path):
    """Each rendering of the status is a reference of its own: a press on one the phone still
    shows acts on what it listed, not on what a newer edit added; a silence made from it is
    counted as silenced in the next rendering, whose buttons leave those alerts out."""
    from trademon.bot import storm as st
    from trademon.bot.runbooks import Runbooks

    clock = Clock()
    store = Store(tmp_path / "bot.sqlite3")
    s, tg, signer, chat = st.Storm(store, clock=clock), _FakeTelegram(), Signer(TOKEN), -100777
    for i in range(st.PAGES_PER_MINUTE):
        s.takes(chat, _note(_alert("W", i)))
    first = s.takes(chat, _note(*[_alert("W", i) for i in range(100, 130)]))
    zone = BotConfig.from_env(BASE).zone

    def show(at):
        return asyncio.run(s.show(tg, signer, Runbooks({}), zone, chat, at, time.monotonic() + 5))

    assert show(first) == 0 and [m for m, _ in tg.calls] == ["sendMessage"]
    assert tg.calls[0][1]["disable_notification"] is True  # warnings only: quiet
    second = s.takes(chat, _note(*[_alert("X", i) for i in range(20)]))
    clock.t += 4
    assert show(second) == 6  # edited 4 s ago: the next edit in 6 s shows it
    clock.t += 6
    assert show(second) == 0 and [m for m, _ in tg.calls] == ["sendMessage", "editMessageText"]
    assert show(first) == 0 and len(tg.calls) == 2  # shown already by the edit
    r1, r2 = s.state(chat)["refs"]
    assert len(store.ref(r1)["alerts"]) == 30 and len(store.ref(r2)["alerts"]) == 50
    buttons = [b["text"] for row in tg.calls[1][1]["reply_markup"]["inline_keyboard"] for b in row]
    assert buttons == ["🔕 Silence 1h · all 50", "🔕 Silence 4h · all 50", "🔕 Until the next session · all 50"]  # no Ack
    store.set_silences(r1, [{"id": f"s{i}", "matchers": labels} for i, labels in enumerate(store.ref(r1)["alerts"])])
    third = s.takes(chat, _note(_alert("Y", 1)))
    clock.t += 10
    assert show(third) == 0
    text = visible_text(tg.calls[-1][1]["text"])
    assert text.startswith("🌩 STORM · 21 firing · 30 silenced · 0 resolved") and "X ×20" in text and "W ×" not in text
    assert len(store.ref(s.state(chat)["refs"][-1])["alerts"]) == 21


def test_the_group_limit_is_telegrams_unless_set_and_the_storm_scales_with_it(tmp_path):
    from trademon.bot.pace import Pacer
    from trademon.bot.storm import Storm
    from trademon.settings.env import ConfigError

    assert BotConfig.from_env(BASE).group_per_minute == 20
    with pytest.raises(ConfigError) as e:
        BotConfig.from_env({**BASE, "TRADEMON_BOT_GROUP_PER_MINUTE": "0"})
    assert e.value.variable == "TRADEMON_BOT_GROUP_PER_MINUTE"
    assert Pacer(group_limit=10).window(-1).limit == 10 and Pacer(group_limit=10).window(1).limit == 30
    s = Storm(Store(tmp_path / "bot.sqlite3"), per_minute=10)
    assert (s.pages_limit, s.critical_limit, s.edit_every) == (4, 2, 20.0)


def test_a_press_while_the_chat_is_at_its_limit_stands_is_recorded_and_answered(tmp_path):
    """In a storm the chat's window may be full for a minute: the page's edit waits for none of
    it, but the silences, the record and the answer do not depend on that edit."""
    from trademon.bot.pace import Pacer
    from trademon.bot.upstream import Record
    from trademon.bot.webhook import Delivery

    page = _page(("DailyLossLimitBreach", "firing"))
    t = _Telegram(tmp_path)
    t.h.am = _FakeAlertmanager([a["labels"] for a in page["alerts"]])
    t.h.record = Record(None, local=t.h.store)
    d = Delivery(t.cfg, t.h.store, t.tg, t.signer)
    oid, item = d.accept(page)
    asyncio.run(d.deliver(oid, item, time.monotonic() + 10))
    t.tg.pacer = Pacer(group_limit=1)
    t.tg.pacer.window(t.cfg.chat_id).take()  # the chat's minute is full
    data = t.signer.sign("s1h", item["ref"], t.cfg.chat_id)
    t.run(t.press(data))
    assert len(t.h.am.silences) == 1 and [r["kind"] for r in t.h.store.history(0)] == ["fired", "silence"]
    assert [r.body["text"] for r in t.stand.requests if r.path.endswith("/answerCallbackQuery")][0].startswith("Silenced until")
    assert not [r for r in t.stand.requests if r.path.endswith("/editMessageText")]


def test_a_status_waiting_behind_a_stalled_one_gives_up_at_its_own_deadline(tmp_path):
    """One status rendering at a time (never two status messages), but the wait for it ends at
    the caller's deadline: the webhook's answer (8 s) waited behind the outbox loop's send to a
    stalled Telegram (30 s). Not shown: a TelegramError, so the notification stays in the outbox."""
    from trademon.bot import storm as st
    from trademon.bot.runbooks import Runbooks
    from trademon.bot.telegram import TelegramError

    chat, zone = -100777, BotConfig.from_env(BASE).zone
    s = st.Storm(Store(tmp_path / "bot.sqlite3"), clock=Clock())

    class Stalling(_FakeTelegram):
        async def call_within(self, deadline, method, payload):
            await asyncio.Event().wait()  # never answered

    for i in range(st.PAGES_PER_MINUTE):
        s.takes(chat, _note(_alert("W", i)))
    first, second = s.takes(chat, _note(_alert("W", 98))), s.takes(chat, _note(_alert("W", 99)))

    async def main():
        show = lambda at, within: s.show(Stalling(), Signer(TOKEN), Runbooks({}), zone, chat, at, time.monotonic() + within)  # noqa: E731
        held = asyncio.create_task(show(first, 30))  # the outbox loop's turn
        await asyncio.sleep(0.05)
        t0 = time.monotonic()
        try:
            async with asyncio.timeout(5):
                await show(second, 0.3)  # the webhook's
        except TelegramError:
            return time.monotonic() - t0
        finally:
            held.cancel()

    took = asyncio.run(main())
    assert took is not None and took < 1, took


def test_after_a_restart_the_storm_edits_the_same_status_and_a_deleted_one_is_sent_again(tmp_path):
    from trademon.bot import storm as st
    from trademon.bot.runbooks import Runbooks
    from trademon.bot.telegram import TelegramError

    clock, chat, zone = Clock(), -100777, BotConfig.from_env(BASE).zone
    s, tg = st.Storm(Store(tmp_path / "bot.sqlite3"), clock=clock), _FakeTelegram()
    for i in range(st.PAGES_PER_MINUTE):
        s.takes(chat, _note(_alert("W", i)))
    asyncio.run(s.show(tg, Signer(TOKEN), Runbooks({}), zone, chat, s.takes(chat, _note(_alert("W", 99))), time.monotonic() + 5))
    again = st.Storm(Store(tmp_path / "bot.sqlite3"), clock=clock)  # the bot restarted
    at = again.takes(chat, _note(_alert("W", 100)))
    clock.t += 10
    asyncio.run(again.show(tg, Signer(TOKEN), Runbooks({}), zone, chat, at, time.monotonic() + 5))
    assert [(m, p.get("message_id")) for m, p in tg.calls] == [("sendMessage", None), ("editMessageText", 42)]

    class Deleted(_FakeTelegram):
        async def call_within(self, deadline, method, payload):
            if method == "editMessageText":
                raise TelegramError(method, 400, "Bad Request: message to edit not found")
            return await super().call_within(deadline, method, payload)

    tg = Deleted()
    at = again.takes(chat, _note(_alert("W", 101)))
    clock.t += 10
    asyncio.run(again.show(tg, Signer(TOKEN), Runbooks({}), zone, chat, at, time.monotonic() + 5))
    assert [m for m, _ in tg.calls] == ["sendMessage"]  # the edit found no message: a new status
    assert visible_text(tg.calls[0][1]["text"]).startswith("🌩 STORM · 3 firing")


def test_a_storm_tracks_a_bounded_number_of_alerts_and_counts_the_rest(tmp_path, monkeypatch):
    """Bounded work per notification: past MAX_TRACKED distinct alerts the storm's state stops
    growing, and its status says how many notifications it no longer lists, and that the limit
    it shows is the chat's own."""
    from zoneinfo import ZoneInfo

    from trademon.bot import storm as st

    monkeypatch.setattr(st, "MAX_TRACKED", 20)
    clock = Clock()
    s = st.Storm(Store(tmp_path / "bot.sqlite3"), clock=clock, per_minute=30)
    chat = -100778
    for i in range(st.PAGES_PER_MINUTE * 2):  # pages first, then folded
        s.takes(chat, _note(_alert("W", i)))
    for i in range(100):
        s.takes(chat, _note(_alert("W", 1000 + i)))
    state = s.state(chat)
    assert len(state["firing"]) == 20 and state["untracked"] > 0
    text, _ = s.compose(chat, state, ZoneInfo("UTC"))
    assert f"{state['untracked']} more notifications past the 20 alerts tracked" in visible_text(text)
    assert "this chat's limit: 30 messages a minute" in visible_text(text)
