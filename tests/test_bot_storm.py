"""Storms within Telegram's limits (about 20 messages a minute in a group, edits included):
one message per notification whatever its size, a chat's pages folded into one status message
edited at a bounded rate past a rate of pages, buttons that say how many alerts they act on,
and the Bot API client's own pacing per chat. The rate logic runs on an injected clock; the
200-alert storm runs the bot's webhook in process against the Telegram stand-in enforcing
20 messages a minute per group, on a compressed minute."""

from __future__ import annotations

import re


from trademon.bot import render

from tests.support.standins import telegram_visible_length, visible_text
from tests.test_bot import _deliver_all, _page, _Telegram


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


def test_silence_all_n_acts_on_the_alerts_the_message_counts(tmp_path):
    """One Silence 1h press created 60 silences, 44 of them for alerts the trader never saw:
    the press acts on exactly the alerts the message counted, and the button said how many."""
    from trademon.bot.webhook import Delivery

    storm = _storm(60)
    t = _Telegram(tmp_path)
    d = Delivery(t.cfg, t.h.store, t.tg, t.signer)
    _, item = d.accept(storm)
    ref = t.h.store.ref(item["ref"])
    assert sorted(a["account"] for a in ref["alerts"]) == sorted(a["labels"]["account"] for a in storm["alerts"])
    t.run()


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
