"""`trademon bot` end to end: the simulator, the real Prometheus and Alertmanager (the
project's rules and rendered config), the alert-sink, the bot as its own process, and the
Telegram stand-in (tests/support/standins.py) playing the trader's phone.

Shortened as in test_e2e_alerting.py (simulator 30x, rules' `for` / 30, scrape and
evaluation 1 s, group_wait/group_interval 3 s), and repeat_interval 10 s so "the next repeat
does not notify" is seen within the test.
"""

from __future__ import annotations

import asyncio
import io
import re
import time
from datetime import datetime, UTC
from pathlib import Path

import pytest
import requests
import yaml

from trademon.bot.charts import png_series

from tests.support.e2estack import E2EStack
from tests.support.standins import StandIns, visible_text

ROOT = Path(__file__).resolve().parents[1]
SPEED = 30
REPEAT = 10
AM_INTERVALS = {"group_wait": "3s", "group_interval": "3s", "repeat_interval": f"{REPEAT}s"}
GROUP = int(StandIns.CHAT_ID)
USER = StandIns.USER_ID
OTHER_CHAT = USER  # the trader's private chat with the bot, allowed too: a button copied there must not work
BUTTONS = ["✋ Ack", "🔕 Silence 1h", "🔕 Silence 4h", "🔕 Until the next session"]


@pytest.fixture(scope="module")
def e2e(tmp_path_factory):
    stack = E2EStack(tmp_path_factory.mktemp("bot-e2e"), speed=SPEED, scrape="1s", evaluation="1s", am_intervals=AM_INTERVALS,
                     for_scale=SPEED, resend_delay="2s",
                     bot_env={"TRADEMON_BOT_ALLOWED_CHAT_IDS": str(OTHER_CHAT), "TRADEMON_BOT_MAX_SILENCE": "1d",
                              # an acknowledgement held 90 s and announced 85 s before its end: seen within a test
                              "TRADEMON_BOT_ACK_HOLD": "90s", "TRADEMON_BOT_ACK_WARN": "85s", "TRADEMON_BOT_ACK_CHECK": "1s"})
    yield stack
    stack.close()


def wait(e2e, predicate, timeout, what):
    return e2e.alerting.wait(predicate, timeout, what)


def tg(e2e):
    return e2e.telegram


def firing(text: str) -> str:
    shown = visible_text(text)
    return "" if shown.startswith("✅") else shown.split("✅ resolved:")[0]


def page_with(e2e, name: str, after_id: int = 0):
    return [m for m in tg(e2e).snapshot() if m["message_id"] > after_id and name in firing(m.get("text", ""))
            and m["chat"]["id"] == GROUP]


def silences(e2e) -> list[dict]:
    return requests.get(f"{e2e.alerting.am_url}/api/v2/silences", timeout=5).json()


def matchers_of(s: dict) -> dict:
    assert all(m["isEqual"] and not m["isRegex"] for m in s["matchers"])
    return {m["name"]: m["value"] for m in s["matchers"]}


def actions(e2e, kind: str) -> list[dict]:
    return [r for r in e2e.alerting.records() if r["receiver"] == "telegram-bot" and r.get("action", {}).get("kind") == kind]


def last_reply(e2e, after_id: int, chat: int = GROUP, has: str = ""):
    """The bot's latest answer in ``chat`` containing ``has`` (alerts also arrive meanwhile)."""
    msgs = [m for m in tg(e2e).snapshot() if m["message_id"] > after_id and m["chat"]["id"] == chat and m["from"]["is_bot"]
            and has in visible_text(m.get("text", ""))]
    return msgs[-1] if msgs else None


def newest_id(e2e) -> int:
    snap = tg(e2e).snapshot()
    return snap[-1]["message_id"] if snap else 0


def test_help_lists_every_command(e2e):
    last = newest_id(e2e)
    tg(e2e).command("/help@trademon_bot", GROUP, USER)
    shown = visible_text(wait(e2e, lambda: last_reply(e2e, last, has="trademon bot"), 15, "/help")["text"])
    for cmd in ("/status", "/alerts", "/silences", "/silence <alertname> <duration>", "/unsilence <id>", "/pnl", "/exposure",
                "/runbook <alertname>", "/help"):
        assert cmd in shown, cmd


def test_loss_breach_arrives_with_buttons_silence_1h_then_unsilence(e2e):
    e2e.sim.on("loss-breach")
    try:
        page = wait(e2e, lambda: page_with(e2e, "DailyLossLimitBreach"), 40, "the loss page with buttons")[0]
        assert tg(e2e).buttons(page["message_id"])[:4] == BUTTONS
        assert "📖 DailyLossLimitBreach" in tg(e2e).buttons(page["message_id"])
        mid = page["message_id"]
        # The control: unsilenced, the group repeats (repeat_interval) or updates within REPEAT + margin.
        wait(e2e, lambda: page_with(e2e, "DailyLossLimitBreach", mid), REPEAT + 15, "a repeat of the page before any silence")
        page = page_with(e2e, "DailyLossLimitBreach")[-1]
        mid = page["message_id"]
        # Which alerts the message is about: what Alertmanager notified in that group.
        in_message = {a["labels"]["alertname"]: a["labels"] for a in e2e.alerting.alerts(active="true")
                      if a["labels"]["alertname"] in firing(page["text"]) and a["labels"].get("severity") == "critical"}
        assert "DailyLossLimitBreach" in in_message

        before = {s["id"] for s in silences(e2e)}
        qid = tg(e2e).press(mid, "Silence 1h", USER)
        wait(e2e, lambda: qid in tg(e2e).callback_answers, 15, "the button's answer")
        assert tg(e2e).callback_answers[qid]["text"].startswith("Silenced until")
        made = [s for s in silences(e2e) if s["id"] not in before]
        assert made and all(s["status"]["state"] == "active" for s in made)
        # exact label matchers: each silence is one alert's full label set
        by_name = {matchers_of(s)["alertname"]: matchers_of(s) for s in made}
        for name, labels in in_message.items():
            assert by_name[name] == labels, (name, by_name.get(name), labels)
        for s in made:
            length = (datetime.fromisoformat(s["endsAt"].replace("Z", "+00:00")) - datetime.fromisoformat(s["startsAt"].replace("Z", "+00:00")))
            assert abs(length.total_seconds() - 3600) < 5
            assert s["createdBy"] == f"Trader (Telegram {USER})"
        edited = next(m for m in tg(e2e).snapshot() if m["message_id"] == mid)
        assert "Silenced by Trader until" in visible_text(edited["text"]) and "edit_date" in edited
        runbook_buttons = [b for b in tg(e2e).buttons(mid) if b.startswith("📖")]
        assert tg(e2e).buttons(mid) == ["🔔 Unsilence", *runbook_buttons] and "📖 DailyLossLimitBreach" in runbook_buttons
        wait(e2e, lambda: actions(e2e, "silence"), 10, "the action on record")
        act = actions(e2e, "silence")[-1]["action"]
        assert sorted(act["silence_ids"]) == sorted(s["id"] for s in made) and act["by"] == f"Trader (Telegram {USER})"
        assert {a["alertname"]: a for a in act["matchers"]} == dict(by_name)

        # The next repeat does not notify: nothing about the loss for longer than repeat_interval.
        time.sleep(REPEAT + 6)
        assert page_with(e2e, "DailyLossLimitBreach", mid) == [], [visible_text(m["text"]) for m in page_with(e2e, "DailyLossLimitBreach", mid)]
        assert all(a["status"]["state"] == "suppressed" for a in e2e.alerting.alerts(filter='alertname="DailyLossLimitBreach"'))

        # Unsilence expires them; the buttons come back; the record has it.
        qid = tg(e2e).press(mid, "Unsilence", USER)
        wait(e2e, lambda: qid in tg(e2e).callback_answers, 15, "the unsilence answer")
        states = {s["id"]: s["status"]["state"] for s in silences(e2e)}
        assert all(states[s["id"]] == "expired" for s in made)
        assert tg(e2e).buttons(mid) == BUTTONS + runbook_buttons
        wait(e2e, lambda: actions(e2e, "unsilence"), 10, "the unsilence on record")
        wait(e2e, lambda: page_with(e2e, "DailyLossLimitBreach", mid), REPEAT + 15, "the page again once unsilenced")
    finally:
        e2e.sim.off("loss-breach")


def test_refused_user_forged_and_copied_buttons_change_nothing(e2e):
    e2e.alerting.post({"labels": {"alertname": "HighRiskExposure", "severity": "warning", "account": "DU7654321", "job": "ib-exporter"},
                       "annotations": {"summary": "Exposure 95 % of limit", "description": "x"}})
    page = wait(e2e, lambda: page_with(e2e, "HighRiskExposure"), 30, "the warning with buttons")[-1]
    mid, data = page["message_id"], page["reply_markup"]["inline_keyboard"][1][1]["callback_data"]
    before = len(silences(e2e))
    q = [tg(e2e).press(mid, "Silence 4h", 999999, "stranger"),                   # a group member not allowed
         tg(e2e).press(mid, "", USER, chat_id=OTHER_CHAT, data=data),            # copied to another (allowed) chat
         tg(e2e).press(mid, "", USER, data=data[:-1] + ("A" if data[-1] != "A" else "B")),  # tampered
         tg(e2e).press(mid, "", USER, data="s1h|000000000000|AAAAAAAAAAAAAAAA"),  # made up
         tg(e2e).press(mid, "", 999999, chat_id=555, data=data)]                 # a chat not allowed
    wait(e2e, lambda: all(x in tg(e2e).callback_answers for x in q), 15, "every press answered")
    answers = [tg(e2e).callback_answers[x]["text"] for x in q]
    assert answers == ["Not allowed.", "This button is no longer valid.", "This button is no longer valid.",
                       "This button is no longer valid.", "Not allowed."]
    assert len(silences(e2e)) == before
    assert tg(e2e).buttons(mid)[:4] == BUTTONS
    # A stranger's command gets no answer at all (it would cost a send, and a 429 on it).
    last = newest_id(e2e)
    tg(e2e).command("/status", 555, 999999, "stranger")
    tg(e2e).command("/help", GROUP, USER)
    wait(e2e, lambda: last_reply(e2e, last, GROUP, "/status"), 15, "the trader's answer, after the stranger's command")
    assert last_reply(e2e, last, 555) is None
    assert "refused: not an allowed chat/user" in e2e.alerting.bot.log_text()


def test_runbook_button_shows_the_shipped_runbook_in_the_chat(e2e):
    """The page's 📖 button, pressed on the phone: the runbook section of monitoring/runbooks.md
    arrives in the chat (no browser, no link to follow)."""
    from trademon.bot import runbooks

    labels = {"alertname": "PnLAnomaly", "severity": "warning", "account": "DU1234567", "job": "ib-exporter", "case": "runbook"}
    e2e.alerting.post({"labels": labels, "annotations": {"summary": "P&L moved 900 USD in 5 minutes", "description": "x"}})
    try:
        page = wait(e2e, lambda: page_with(e2e, "PnLAnomaly"), 30, "the PnLAnomaly page")[-1]
        assert "📖 PnLAnomaly" in tg(e2e).buttons(page["message_id"])
        last = newest_id(e2e)
        qid = tg(e2e).press(page["message_id"], "📖 PnLAnomaly", USER)
        reply = wait(e2e, lambda: last_reply(e2e, last, has="Runbook: PnLAnomaly"), 15, "the runbook in the chat")
        want = runbooks.load(ROOT).messages("PnLAnomaly")  # the bot runs from this checkout: config root = ROOT
        assert reply["text"] == want[0] and "First checks" in visible_text(reply["text"])
        wait(e2e, lambda: qid in tg(e2e).callback_answers, 15, "the button's answer")
        assert tg(e2e).callback_answers[qid]["text"] == "📖 PnLAnomaly"
    finally:
        e2e.alerting.post({"labels": labels}, resolved=True)


def test_status_answers_with_what_prometheus_holds(e2e):
    last = newest_id(e2e)
    tg(e2e).command("/status", GROUP, USER)
    reply = wait(e2e, lambda: last_reply(e2e, last, has="Status"), 15, "the /status answer")
    shown = visible_text(reply["text"])
    prom = {s["metric"]["account"]: float(s["value"][1]) for s in
            requests.get(f"{e2e.prom_url}/api/v1/query", params={"query": "daily_pnl"}, timeout=5).json()["data"]["result"]}
    assert prom
    for account, value in prom.items():
        m = re.search(rf"P&L {account}: (-?[\d,]+\.\d\d) USD \(limit -500\.00\)", shown)
        assert m, shown
        assert abs(float(m.group(1).replace(",", "")) - value) < 50  # the simulator's P&L drifts between the two reads
    assert "IB session: connected ✅" in shown and "Targets down: none" in shown
    assert "Breakers:" in shown and "Exposure DU1234567:" in shown
    # the simulator's exporter sees every client; its ratio and working orders come from Prometheus
    assert "Broker truth: no check firing ✅ · sees other clients' orders: yes · working orders at IB: " in shown
    assert re.search(r"order efficiency today: \d+\.\d", shown), shown


def test_pnl_chart_is_a_png_of_what_query_range_returns(e2e):
    last = newest_id(e2e)
    tg(e2e).command("/pnl 2m", GROUP, USER)
    wait(e2e, lambda: [p for p in tg(e2e).photos if p["message_id"] > last], 30, "the /pnl chart")
    photo = [p for p in tg(e2e).photos if p["message_id"] > last][-1]
    png = photo["png"]
    import matplotlib.image

    img = matplotlib.image.imread(io.BytesIO(png), format="png")  # a PNG that decodes
    assert img.shape[0] > 200 and img.shape[1] > 400
    meta = png_series(png)
    q = meta["query"]
    assert 100 <= q["end"] - q["start"] <= 130
    for metric, panel, label in (("daily_pnl", "Daily P&L per account (USD)", "account"), ("strategy_pnl", "P&L per strategy (USD)", "strategy")):
        result = requests.get(f"{e2e.prom_url}/api/v1/query_range",
                              params={"query": metric, "start": q["start"], "end": q["end"], "step": q["step"]}, timeout=5).json()["data"]["result"]
        want = {s["metric"][label]: {"points": len(s["values"]), "last": float(s["values"][-1][1])} for s in result}
        assert want and meta["panels"][panel] == want, (panel, meta["panels"][panel], want)
    assert "DU1234567" in photo["caption"]


def test_silence_and_unsilence_commands_capped(e2e):
    last = newest_id(e2e)
    tg(e2e).command("/silence UnusualSlippage 5d", GROUP, USER)
    reply = wait(e2e, lambda: last_reply(e2e, last, has="silenced until"), 15, "the /silence answer")
    assert "capped at the maximum 24h" in visible_text(reply["text"])
    sid = re.search(r"id ([0-9a-f-]{36})", visible_text(reply["text"])).group(1)
    s = next(s for s in silences(e2e) if s["id"] == sid)
    assert matchers_of(s) == {"alertname": "UnusualSlippage"}
    hours = (datetime.fromisoformat(s["endsAt"].replace("Z", "+00:00")) - datetime.now(UTC)).total_seconds() / 3600
    assert 23.9 < hours <= 24
    last = newest_id(e2e)
    tg(e2e).command(f"/unsilence {sid}", GROUP, USER)
    wait(e2e, lambda: last_reply(e2e, last, has="expired"), 15, "the /unsilence answer")
    assert next(s for s in silences(e2e) if s["id"] == sid)["status"]["state"] == "expired"
    last = newest_id(e2e)
    tg(e2e).command("/silences", GROUP, USER)
    assert sid not in wait(e2e, lambda: last_reply(e2e, last, has="silence"), 15, "/silences")["text"]


def test_daily_summary_fires_at_its_time(e2e, tmp_path):
    """In-process, the clock injected: nothing before the time, the summary at it, once."""
    from trademon.bot.cli import Bot
    from trademon.bot.config import BotConfig

    def samples_at(t: float) -> float:
        r = requests.get(f"{e2e.prom_url}/api/v1/query", params={"query": "count_over_time(daily_pnl[1h])", "time": t}, timeout=5).json()
        return float(r["data"]["result"][0]["value"][1]) if r["data"]["result"] else 0

    # The summary's minute must have Prometheus data before it (the stack may be younger than a minute).
    while samples_at(time.time() - time.time() % 60) < 10:
        time.sleep(60 - time.time() % 60 + 1)
    now = time.time()
    # The summary's zone puts this minute near noon, so the module's earlier alerts fall on the
    # same day however close to midnight UTC it runs ("Etc/GMT-12" is UTC+12).
    offset = 12 - time.gmtime(now).tm_hour
    zone = f"Etc/GMT{-offset:+d}"
    local = time.gmtime(now + offset * 3600)
    # Today is the only summary day: the last of its week, so the weekly summary comes too.
    today = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"][local.tm_wday]
    env = {**e2e.alerting.bot_environment(), "TRADEMON_BOT_STATE_DIR": str(tmp_path), "TRADEMON_BOT_SUMMARY_TZ": zone,
           "TRADEMON_BOT_SUMMARY_DAYS": today}
    due = now - now % 60  # this minute's start: Prometheus has data up to it
    env["TRADEMON_BOT_SUMMARY_AT"] = time.strftime("%H:%M", time.gmtime(due + offset * 3600))
    clock = [due - 1]
    last = newest_id(e2e)

    async def run():
        bot = Bot(BotConfig.from_env(env), clock=lambda: clock[0])
        try:
            assert bot.summary.next_due == due
            early = await bot.summary.tick()
            clock[0] = due + 1
            on_time = await bot.summary.tick()
            again = await bot.summary.tick()
            return early, on_time, again, bot.summary.next_due
        finally:
            await bot.close()

    early, on_time, again, next_due = asyncio.run(run())
    assert (early, on_time, again) == (False, True, False) and next_due == due + 7 * 86400
    text = next(m for m in tg(e2e).snapshot() if m["message_id"] > last and "Daily summary" in m.get("text", ""))
    shown = visible_text(text["text"])
    assert "P&L: DU1234567" in shown and "Orders:" in shown and "submitted" in shown and "Alerts today:" in shown
    assert re.search(r"P&L: DU1234567 -?[\d,]+\.\d\d USD \(limit -500\.00\)", shown), shown  # the account's loss limit
    assert "DailyLossLimitBreach (critical) fired" in shown  # the first test's breach
    weekly = shown.split("Weekly summary")[1]
    assert re.search(r"Week P&L: DU1234567 -?[\d,]+\.\d\d USD", weekly) and "DailyLossLimitBreach" in weekly
    # The day's chart (on the week's last summary day the week's chart comes too).
    charts = [png_series(p["png"])["panels"] for p in tg(e2e).photos if p["message_id"] > last]
    day = next(c for c in charts if "Daily P&L per account (USD)" in c and "DU1234567" in c["Daily P&L per account (USD)"])
    assert day["Daily P&L per account (USD)"]["DU1234567"]["points"] > 0


def test_second_poller_409_is_said_clearly_and_backed_off(e2e):
    """Another process polls the same token: Telegram answers 409 to one of the two each time.
    The bot says what is wrong once, reports not ready, and backs off (it does not spin)."""
    url = f"{tg(e2e).url}/bot{StandIns.TOKEN}/getUpdates"
    t0 = time.time()
    mine = 0
    while time.time() - t0 < 12:  # the intruder: a long poll, again and again
        requests.post(url, json={"timeout": 1}, timeout=5)
        mine += 1
    bot_polls = [r for r in tg(e2e).requests if r.at >= t0 and r.path.endswith("/getUpdates")]
    assert len(bot_polls) - mine <= 5, f"{len(bot_polls) - mine} polls in 12 s: the bot spins"
    log = e2e.alerting.bot.log_text()
    assert "409 Conflict from Telegram: another process is polling updates with this bot token" in log
    assert log.count("409 Conflict from Telegram") == 1
    assert requests.get(f"{e2e.alerting.bot_url}/readyz", timeout=5).status_code == 503
    wait(e2e, lambda: requests.get(f"{e2e.alerting.bot_url}/readyz", timeout=5).status_code == 200, 40, "polling again once alone")


def test_pager_safety_bot_killed_while_an_alert_fires(e2e):
    """kill -9 the bot; an alert fires while it is dead: Alertmanager's webhook fails and it
    keeps retrying; the bot comes back (as the restart policy brings it) and the page arrives."""
    def failed_attempts():
        return [line for line in e2e.alerting.am.log_text().splitlines()
                if '"receiver":"critical","integration":"webhook[1]"' in line and "Notify attempt failed" in line]

    e2e.alerting.kill_bot()
    t0 = time.time()
    before = len(failed_attempts())
    e2e.alerting.post({"labels": {"alertname": "TWSConnectionLost", "severity": "critical", "job": "ib-exporter", "case": "bot-dead"},
                       "annotations": {"summary": "IB API session to TWS / IB Gateway lost", "description": "while the bot is dead"}})

    def failing():
        return len(failed_attempts()) > before
    wait(e2e, failing, 30, "Alertmanager failing to reach the dead bot")
    assert not any("while the bot is dead" in visible_text(m["text"]) for m in tg(e2e).sent())
    time.sleep(5)  # dead a while longer: a crash loop, a slow restart
    e2e.alerting.start_bot()
    restarted = time.time()
    wait(e2e, lambda: [m for m in tg(e2e).sent() if "while the bot is dead" in visible_text(m["text"])], 60, "the page after the restart")
    arrived = next(m["at"] for m in tg(e2e).sent() if "while the bot is dead" in visible_text(m["text"]))
    print(f"\nbot dead for {restarted - t0:.1f} s; page {arrived - restarted:.1f} s after the restart")
    e2e.alerting.post({"labels": {"alertname": "TWSConnectionLost", "severity": "critical", "job": "ib-exporter", "case": "bot-dead"}},
                      resolved=True)


def test_pager_safety_outbox_survives_kill_9(e2e):
    """Telegram refuses (429) when a notification comes: the bot keeps it in its outbox on
    disk and answers 200, so Alertmanager will not send it again; kill -9 the bot; after the
    restart the outbox delivers it, once. (Posted to the bot's webhook as Alertmanager posts,
    with its bearer token, so no Alertmanager repeat can stand in for the outbox.)"""
    token_file = next(w["http_config"]["authorization"]["credentials_file"]
                      for r in yaml.safe_load(e2e.alerting.config_path.read_text())["receivers"] if r["name"] == "critical"
                      for w in r["webhook_configs"] if "http_config" in w)
    payload = {"version": "4", "status": "firing", "receiver": "critical", "groupKey": "{}:{severity=\"critical\"}",
               "groupLabels": {"severity": "critical"}, "commonLabels": {"severity": "critical"}, "commonAnnotations": {},
               "externalURL": "http://alertmanager.trademon.test:9093",
               "alerts": [{"status": "firing", "labels": {"alertname": "TWSConnectionLost", "severity": "critical", "job": "ib-exporter"},
                           "annotations": {"summary": "IB API session lost", "description": "queued in the outbox"},
                           "startsAt": "2026-01-01T00:00:00Z", "fingerprint": "outbox"}]}
    tg(e2e).fail_for(60, first_500=0, retry_after=3)
    headers = {"Authorization": f"Bearer {open(token_file).read()}"}
    assert requests.post(f"{e2e.alerting.bot_url}/alerts", json=payload, headers={"Authorization": "Bearer wrong"}, timeout=5).status_code == 401
    r = requests.post(f"{e2e.alerting.bot_url}/alerts", json=payload, headers=headers, timeout=30)
    assert r.status_code == 200 and r.json() == {"status": "queued"}
    e2e.alerting.kill_bot()
    tg(e2e).fail_for(0)
    e2e.alerting.start_bot()
    wait(e2e, lambda: [m for m in tg(e2e).sent() if "queued in the outbox" in visible_text(m["text"])], 30, "the page from the outbox")
    time.sleep(2)
    assert len([m for m in tg(e2e).sent() if "queued in the outbox" in visible_text(m["text"])]) == 1


def test_no_secret_in_any_log(e2e):
    logs = e2e.logs()
    assert '"logger": "trademon.bot' in logs
    assert '"escalation": "1h pushover+sms"' in logs  # its secrets loaded: the scan covers them
    for secret in e2e.alerting.standins.secrets():
        assert secret not in logs


def test_a_resolve_edits_the_page_quietly_and_its_old_buttons_cannot_silence(e2e):
    """The resolve used to ring as a new message while the page kept "1 firing" and live Silence
    buttons, and a press on one silenced an alert that had already resolved."""
    alert = {"labels": {"alertname": "TWSConnectionLost", "severity": "critical", "account": "DU0000024", "job": "ib-exporter"},
             "annotations": {"summary": "TWS connection lost (resolve probe)", "description": "x"}}
    e2e.alerting.post(alert)
    page = wait(e2e, lambda: [m for m in page_with(e2e, "resolve probe") if m.get("reply_markup")], 30, "the page")[-1]
    mid = page["message_id"]
    old_silence = next(b["callback_data"] for row in page["reply_markup"]["inline_keyboard"] for b in row if "Silence 1h" in b["text"])
    sent_before = len(tg(e2e).sent())
    e2e.alerting.post(alert, resolved=True)

    def edited():
        m = next(m for m in tg(e2e).snapshot() if m["message_id"] == mid)
        return m if "Resolved" in visible_text(m["text"]) else None

    m = wait(e2e, edited, 30, "the page edited as resolved")
    assert not [b for b in tg(e2e).buttons(mid) if "Silence" in b or "session" in b], tg(e2e).buttons(mid)
    time.sleep(4)  # a group_interval: a new message would have come by now
    assert [s for s in tg(e2e).sent()[sent_before:] if "resolve probe" in visible_text(s["text"])] == []
    before = len(silences(e2e))
    qid = tg(e2e).press(mid, "", USER, data=old_silence)
    wait(e2e, lambda: qid in tg(e2e).callback_answers, 15, "the old button's answer")
    assert tg(e2e).callback_answers[qid]["text"] == "Already resolved: nothing to silence."
    assert len(silences(e2e)) == before
    assert "resolve probe" in visible_text(m["text"])  # the page still says what it was about



def test_ack_by_name_holds_a_silence_while_it_fires_and_ends_it_on_the_resolve(e2e):
    """Alertmanager has no acknowledgement, and 0.33.1 sends no resolved notification for a
    silenced alert: the bot holds a silence and asks Alertmanager itself."""
    alert = {"labels": {"alertname": "TWSConnectionLost", "severity": "critical", "account": "DU0000124", "job": "ib-exporter"},
             "annotations": {"summary": "TWS connection lost (ack probe)", "description": "x"}}
    e2e.alerting.post(alert)
    page = wait(e2e, lambda: [m for m in page_with(e2e, "ack probe") if m.get("reply_markup")], 30, "the page")[-1]
    mid = page["message_id"]
    before = {s["id"] for s in silences(e2e)}
    qid = tg(e2e).press(mid, "Ack", USER)
    wait(e2e, lambda: qid in tg(e2e).callback_answers, 15, "the Ack's answer")
    assert tg(e2e).callback_answers[qid]["text"] == "Acknowledged by Trader."
    made = [s for s in silences(e2e) if s["id"] not in before]
    assert len(made) == 1 and matchers_of(made[0]) == alert["labels"] and made[0]["createdBy"] == f"Trader (Telegram {USER})"
    shown = visible_text(next(m for m in tg(e2e).snapshot() if m["message_id"] == mid)["text"])
    assert "✋ Acknowledged by Trader at" in shown and "telegram:" not in shown
    assert tg(e2e).buttons(mid)[0] == "🔔 Unsilence"
    wait(e2e, lambda: actions(e2e, "ack"), 10, "the acknowledgement on record")

    # Its silence ends within the warning time while it still fires: announced, with Extend buttons.
    note = wait(e2e, lambda: last_reply(e2e, mid, GROUP, "The acknowledgement by Trader"), 15, "the announcement")
    assert "TWSConnectionLost" in visible_text(note["text"]) and tg(e2e).buttons(note["message_id"]) == ["⏳ Extend 1h", "⏳ Extend 4h"]
    qid = tg(e2e).press(note["message_id"], "Extend 1h", USER)
    wait(e2e, lambda: qid in tg(e2e).callback_answers, 15, "the Extend's answer")
    assert tg(e2e).callback_answers[qid]["text"].startswith("Extended until")
    announcement = next(m for m in tg(e2e).snapshot() if m["message_id"] == note["message_id"])
    assert visible_text(announcement["text"]).startswith("⏳ The acknowledgement") and tg(e2e).buttons(note["message_id"]) == []
    assert "⏳ Extended by Trader until" in visible_text(next(m for m in tg(e2e).snapshot() if m["message_id"] == mid)["text"])
    states = {s["id"]: s for s in silences(e2e)}
    assert states[made[0]["id"]]["status"]["state"] == "expired"
    extended = [s for s in states.values() if s["id"] not in before and s["status"]["state"] == "active"]
    assert len(extended) == 1 and matchers_of(extended[0]) == alert["labels"]

    # Reminders stop: for longer than repeat_interval, nothing about it but copies of the page (a
    # page sent twice under load is one page: each copy shows the acknowledgement).
    time.sleep(REPEAT + 4)
    later = [visible_text(m["text"]) for m in page_with(e2e, "ack probe", mid)]
    assert all("✋ Acknowledged by Trader" in t for t in later), later

    # The resolve: Alertmanager sends nothing (silenced); the bot sees it gone, ends the silence, edits the page.
    e2e.alerting.post(alert, resolved=True)

    def resolved():
        m = next(m for m in tg(e2e).snapshot() if m["message_id"] == mid)
        return m if "Resolved at" in visible_text(m["text"]) else None

    wait(e2e, resolved, 20, "the acknowledged page edited as resolved")
    assert {s["id"]: s["status"]["state"] for s in silences(e2e)}[extended[0]["id"]] == "expired"
    assert not [b for b in tg(e2e).buttons(mid) if "Silence" in b or "Ack" in b or "Unsilence" in b]
