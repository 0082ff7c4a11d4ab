"""Escalation of a critical page nobody acknowledged (trademon.bot.escalation, .channels): the
ladder's configuration and its errors, each channel against a stand-in that speaks its real
API on loopback (Pushover, a Twilio-compatible API, Telegram), the whole ladder walked with an
injected clock, what is never escalated, a restart mid-ladder, and a failing channel made
visible. Alertmanager's answer is played by a small fake of the bot's client (the bot asks it
one question: which alerts fire, and are they silenced); the real one is in test_bot_e2e."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import stat
import time
from pathlib import Path

import pytest

from trademon.bot import escalation
from trademon.bot.channels import Call, ChannelError, Chat, Message, Pushover, Sms
from trademon.bot.metrics import BotMetrics
from trademon.bot.store import Store
from trademon.bot.telegram import TelegramClient
from trademon.bot.upstream import UpstreamError
from trademon.settings.env import ConfigError

from tests.support.standins import PushoverStandIn, TelegramStandIn, TwilioStandIn, visible_text

TOKEN = "123456:AAbotTOKENforTESTS_x"
CHAT = -100777
PUSH_TOKEN, PUSH_USER = "azGDORePK8gMaC0QOYAMyEEuzJnyUi", "uQiRzpo4DXghDmr9QzzfQu27cmVRsG"
SID, AUTH = "AC00000000000000000000000000fake", "fakeTwilioAuthToken0123456789abc"
FROM, TO = "+15005550006", "+14155550123"
SECRETS = (PUSH_TOKEN, PUSH_USER, AUTH)


class FakeAlertmanager:
    """The one question the escalation asks: GET /api/v2/alerts (active, silenced and
    inhibited), each alert with its status.state as Alertmanager 0.33.1 answers."""

    def __init__(self):
        self.states: dict[str, str] = {}  # labels as JSON -> "active" | "suppressed"
        self.down = False
        self.asked = 0

    def fire(self, labels: dict, state: str = "active") -> None:
        self.states[json.dumps(labels, sort_keys=True)] = state

    def end(self, labels: dict) -> None:
        self.states.pop(json.dumps(labels, sort_keys=True), None)

    async def alerts(self, **params):
        self.asked += 1
        if self.down:
            raise UpstreamError("Alertmanager unreachable (ConnectError)")
        return [{"labels": json.loads(k), "status": {"state": v, "silencedBy": [], "inhibitedBy": []}} for k, v in self.states.items()]


class Clock:
    def __init__(self, t: float):
        self.t = t

    def __call__(self) -> float:
        return self.t


def alert(name: str, account: str = "DU1") -> dict:
    return {"alertname": name, "severity": "critical", "account": account}


class Rig:
    """The stand-ins, a store, and an Escalator built as the bot builds it."""

    def __init__(self, tmp_path: Path, ladder: str = "1m:pushover,2m:sms+call,3m:chat", extra: dict | None = None):
        self.telegram = TelegramStandIn(TOKEN)
        self.pushover = PushoverStandIn(PUSH_TOKEN, PUSH_USER)
        self.twilio = TwilioStandIn(SID, AUTH)
        self.env = {"TRADEMON_BOT_ESCALATE": ladder, "PUSHOVER_APP_TOKEN": PUSH_TOKEN, "PUSHOVER_USER_KEY": PUSH_USER,
                    "PUSHOVER_API_URL": self.pushover.url, "TWILIO_API_URL": self.twilio.url, "TWILIO_ACCOUNT_SID": SID,
                    "TWILIO_AUTH_TOKEN": AUTH, "TWILIO_FROM": FROM, "TRADEMON_BOT_ESCALATE_SMS_TO": TO,
                    "TRADEMON_BOT_ESCALATE_CALL_TO": TO, "TRADEMON_BOT_ESCALATE_CHAT_ID": "-100888", **(extra or {})}
        self.settings = escalation.from_env(self.env)
        self.path = tmp_path / "bot.sqlite3"
        self.store = Store(self.path)
        self.am = FakeAlertmanager()
        self.metrics = BotMetrics()
        self.clock = Clock(time.time())
        self.edited: list[str] = []

    def page(self, *alerts: dict, fire: bool = True) -> str:
        ref = self.store.new_ref(CHAT, list(alerts), "🔴 <b>CRITICAL</b> page", "{}:{severity=\"critical\"}")
        for a in alerts:
            if fire:
                self.am.fire(a)
        return ref

    def started(self, ref: str) -> float:
        return self.store.ref(ref)["created"]

    def turns(self, *offsets: float, ref: str, restart_after: int | None = None) -> list[tuple[float, list[str]]]:
        """One escalation turn at each ``offset`` seconds after ``ref``'s page came; with
        ``restart_after``, the bot restarts (store and escalator anew) after that many turns.
        Returns, per turn, the channels that took something."""
        out = []

        async def run():
            tg = TelegramClient(self.telegram.url, TOKEN)

            async def edit(ref):
                self.edited.append(ref["ref"])

            def make():
                return escalation.Escalator(self.settings, self.store, tg, self.am, metrics=self.metrics, page_editor=edit,
                                            clock=self.clock)

            esc = make()
            try:
                for n, off in enumerate(offsets):
                    if restart_after is not None and n == restart_after:
                        await esc.close()
                        self.store.close()
                        self.store = Store(self.path)
                        esc = make()
                    before = self.counts()
                    self.clock.t = self.started(ref) + off
                    await esc.turn()
                    after = self.counts()
                    out.append((off, [k for k in after if after[k] > before[k]]))
            finally:
                await esc.close()
                await tg.close()

        asyncio.run(run())
        return out

    def counts(self) -> dict[str, int]:
        return {"pushover": len(self.pushover.sent()), "sms": len(self.twilio.sent("Messages")),
                "call": len(self.twilio.sent("Calls")), "chat": len([m for m in self.telegram.sent() if m["chat_id"] == -100888])}

    def metric(self, name: str, **labels) -> float | None:
        return self.metrics.registry.get_sample_value(name, labels)

    def close(self):
        self.store.close()
        for s in (self.telegram, self.pushover, self.twilio):
            s.close()


@pytest.fixture
def rig(tmp_path):
    r = Rig(tmp_path)
    yield r
    r.close()


# --- configuration ------------------------------------------------------------------------------

def test_off_unless_configured():
    assert escalation.from_env({}) is None
    assert escalation.from_env({"PUSHOVER_APP_TOKEN": PUSH_TOKEN}) is None  # a channel's settings alone start nothing


@pytest.mark.parametrize("env, variable, says", [
    ({"TRADEMON_BOT_ESCALATE": "5m"}, "TRADEMON_BOT_ESCALATE", "has no channel"),
    ({"TRADEMON_BOT_ESCALATE": "soon:pushover"}, "TRADEMON_BOT_ESCALATE", "is not a duration"),
    ({"TRADEMON_BOT_ESCALATE": "5m:pager"}, "TRADEMON_BOT_ESCALATE", "unknown channel 'pager'"),
    ({"TRADEMON_BOT_ESCALATE": "15m:sms,5m:call"}, "TRADEMON_BOT_ESCALATE", "does not come after"),
    ({"TRADEMON_BOT_ESCALATE": "5m:pushover"}, "PUSHOVER_APP_TOKEN", "uses the pushover channel"),
    ({"TRADEMON_BOT_ESCALATE": "5m:pushover", "PUSHOVER_APP_TOKEN": PUSH_TOKEN}, "PUSHOVER_USER_KEY", "not set"),
    ({"TRADEMON_BOT_ESCALATE": "5m:pushover", "PUSHOVER_APP_TOKEN": PUSH_TOKEN, "PUSHOVER_USER_KEY": PUSH_USER,
      "PUSHOVER_RETRY": "10s"}, "PUSHOVER_RETRY", "shorter than Pushover allows"),
    ({"TRADEMON_BOT_ESCALATE": "5m:sms", "TWILIO_ACCOUNT_SID": SID, "TWILIO_AUTH_TOKEN": AUTH, "TWILIO_FROM": FROM},
     "TRADEMON_BOT_ESCALATE_SMS_TO", "uses the sms channel"),
    ({"TRADEMON_BOT_ESCALATE": "5m:call", "TWILIO_ACCOUNT_SID": SID, "TWILIO_AUTH_TOKEN": AUTH, "TWILIO_FROM": FROM,
      "TRADEMON_BOT_ESCALATE_CALL_TO": "0415 555 0123"}, "TRADEMON_BOT_ESCALATE_CALL_TO", "not a list of phone numbers"),
    ({"TRADEMON_BOT_ESCALATE": "5m:chat", "TRADEMON_BOT_ESCALATE_CHAT_ID": "@oncall"}, "TRADEMON_BOT_ESCALATE_CHAT_ID",
     "not a Telegram chat id"),
])
def test_config_errors_name_the_variable_and_the_fix(env, variable, says):
    with pytest.raises(ConfigError) as e:
        escalation.from_env(env)
    assert e.value.variable == variable and says in str(e.value) and e.value.allowed
    assert not any(s in str(e.value) for s in SECRETS)


def test_secrets_come_from_0600_files(tmp_path):
    files = {}
    for name, value in (("PUSHOVER_APP_TOKEN", PUSH_TOKEN), ("PUSHOVER_USER_KEY", PUSH_USER), ("TWILIO_AUTH_TOKEN", AUTH)):
        f = tmp_path / name.lower()
        f.write_text(value + "\n")
        os.chmod(f, stat.S_IRUSR | stat.S_IWUSR)
        files[f"{name}_FILE"] = str(f)
    s = escalation.from_env({"TRADEMON_BOT_ESCALATE": "5m:pushover,10m:sms", "TWILIO_ACCOUNT_SID": SID, "TWILIO_FROM": FROM,
                             "TRADEMON_BOT_ESCALATE_SMS_TO": f"{TO}, +442071838750", **files})
    assert [t.after_s for t in s.tiers] == [300, 600] and set(s.channels) == {"pushover", "sms"}
    assert set(s.secrets) == set(SECRETS)
    with pytest.raises(ConfigError) as e:
        escalation.from_env({"TRADEMON_BOT_ESCALATE": "5m:pushover", "PUSHOVER_APP_TOKEN_FILE": str(tmp_path / "missing")})
    assert e.value.variable == "PUSHOVER_APP_TOKEN_FILE"


# --- each channel against its stand-in ----------------------------------------------------------

MSG = Message("trademon: CRITICAL not acknowledged for 5m", "trademon CRITICAL <&> not acknowledged", "🚨 <b>x</b>")


def test_pushover_sends_the_emergency_priority_and_names_a_refusal():
    stand = PushoverStandIn(PUSH_TOKEN, PUSH_USER)

    async def run():
        ok = Pushover(stand.url, PUSH_TOKEN, PUSH_USER, 60, 3600)
        wrong = Pushover(stand.url, "a" * 30, PUSH_USER, 60, 3600)
        try:
            receipt = await ok.send(MSG)
            assert await ok.acknowledged(receipt) is None
            stand.acknowledge(receipt)
            assert await ok.acknowledged(receipt) == "trader-iphone"
            assert await ok.acknowledged("../messages") is None  # not a receipt: no request
            with pytest.raises(ChannelError) as gone:
                await wrong.acknowledged(receipt)
            assert "application token is invalid" in str(gone.value)
            with pytest.raises(ChannelError) as e:
                await wrong.send(MSG)
            stand.fail_for(5)
            with pytest.raises(ChannelError) as down:
                await ok.send(MSG)
            return receipt, str(e.value), str(down.value)
        finally:
            await ok.close()
            await wrong.close()
            stand.close()

    receipt, refused, down = asyncio.run(run())
    (sent,) = stand.sent()
    assert sent["priority"] == "2" and sent["retry"] == "60" and sent["expire"] == "3600" and sent["message"] == MSG.text
    assert receipt.startswith("r") and "application token is invalid" in refused and "HTTP 400" in refused
    assert not any(PUSH_TOKEN in r.path for r in stand.requests)
    # the receipt's URL holds the token (Pushover's API asks it so): a line naming it is masked
    from trademon.runtime.logs import redact

    assert PUSH_TOKEN not in redact(f'HTTP Request: GET {stand.url}/1/receipts/{receipt}.json?token={PUSH_TOKEN} "HTTP/1.1 200 OK"')
    assert "HTTP 500" in down and not any(s in refused + down for s in SECRETS)


def test_twilio_sms_and_call_with_basic_auth_and_twiml():
    stand = TwilioStandIn(SID, AUTH)

    async def run():
        sms = Sms(stand.url, SID, AUTH, FROM, (TO, "+442071838750"))
        call = Call(stand.url, SID, AUTH, FROM, (TO,))
        bad = Sms(stand.url, SID, "wrong-token-wrong-token", FROM, (TO,))
        try:
            sids = await sms.send(MSG), await call.send(MSG)
            with pytest.raises(ChannelError) as e:
                await bad.send(MSG)
            return sids, str(e.value)
        finally:
            for c in (sms, call, bad):
                await c.close()
            stand.close()

    (sms_sids, call_sid), refused = asyncio.run(run())
    texts, calls = stand.sent("Messages"), stand.sent("Calls")
    assert [m["To"] for m in texts] == [TO, "+442071838750"] and all(m["From"] == FROM and m["Body"] == MSG.text for m in texts)
    assert sms_sids.startswith("SM") and call_sid.startswith("CA") and len(calls) == 1
    assert calls[0]["Twiml"].startswith("<Response><Say>trademon CRITICAL &lt;&amp;&gt; not acknowledged</Say>")
    assert "HTTP 401: Authenticate" in refused and AUTH not in refused


def test_another_telegram_chat():
    stand = TelegramStandIn(TOKEN)

    async def run():
        tg = TelegramClient(stand.url, TOKEN)
        try:
            return await Chat(tg, -100888).send(MSG)
        finally:
            await tg.close()
            stand.close()

    assert asyncio.run(run()).startswith("message ")
    (sent,) = stand.sent()
    assert sent["chat_id"] == -100888 and visible_text(sent["text"]) == "🚨 x"


# --- the ladder -----------------------------------------------------------------------------------

def test_the_whole_ladder_tier_by_tier(rig):
    ref = rig.page(alert("DailyLossLimitBreach"))
    steps = rig.turns(0, 59, 60, 61, 119, 120, 179, 180, 400, ref=ref)
    assert steps == [(0, []), (59, []), (60, ["pushover"]), (61, []), (119, []), (120, ["sms", "call"]), (179, []),
                     (180, ["chat"]), (400, [])]
    assert "DailyLossLimitBreach (DU1)" in rig.pushover.sent()[0]["message"]
    assert rig.pushover.sent()[0]["title"] == "trademon: CRITICAL not acknowledged for 1m"
    assert "not acknowledged for 2m: DailyLossLimitBreach (DU1)" in rig.twilio.sent("Messages")[0]["Body"]
    assert "escalation tier 3" in visible_text([m for m in rig.telegram.sent() if m["chat_id"] == -100888][0]["text"])
    for tier, channel in ((1, "pushover"), (2, "sms"), (2, "call"), (3, "chat")):
        assert rig.metric("trademon_bot_escalations_total", tier=str(tier), channel=channel, result="ok") == 1
        assert rig.metric("trademon_bot_escalations_total", tier=str(tier), channel=channel, result="failed") == 0
        assert rig.metric("trademon_bot_escalation_channel_failing", channel=channel) == 0
    notes = rig.store.ref(ref)["state"]["notes"]
    assert [n.split(" at ")[0] for n in notes] == ["📣 Not acknowledged: escalated to pushover", "📣 Not acknowledged: escalated to sms, call",
                                                   "📣 Not acknowledged: escalated to chat"]
    assert rig.edited == [ref] * 3
    assert rig.store.running_ladders(10) == []


def test_history_shows_who_else_was_called(rig):
    """The escalation is recorded as an action (the alert-sink's record and the bot's own, which
    /history reads): "📣 pushover, tier 1" under the alert that fired."""
    from trademon.bot import history
    from trademon.bot.upstream import Record

    labels = alert("DailyLossLimitBreach")
    ref = rig.page(labels)
    rig.store.record([(rig.started(ref) - 5, "fired", labels, None, None)])
    record = Record(None, local=rig.store)

    async def run():
        tg = TelegramClient(rig.telegram.url, TOKEN)
        esc = escalation.Escalator(rig.settings, rig.store, tg, rig.am, record=record, clock=rig.clock)
        rig.clock.t = rig.started(ref) + 60
        try:
            await esc.turn()
        finally:
            await esc.close()
            await tg.close()
            await record.close()

    asyncio.run(run())
    shown = visible_text(history.answer(rig.store, ["DailyLossLimitBreach"], time.time() + 61, escalation.UTC))
    assert "📣 pushover, tier 1" in shown, shown


def test_never_what_was_acknowledged_silenced_or_resolved(rig):
    acked = rig.page(alert("TWSConnectionLost", "A"))
    rig.store.set_silences(acked, [{"id": "s-1", "matchers": alert("TWSConnectionLost", "A")}])
    rig.store.set_state(acked, {"ack": {"by": "Ada", "until": time.time() + 7200, "warned": False}})
    buttoned = rig.page(alert("TWSConnectionLost", "B"))
    rig.store.set_silences(buttoned, [{"id": "s-2", "matchers": alert("TWSConnectionLost", "B")}])
    resolved = rig.page(alert("TWSConnectionLost", "C"))
    rig.store.set_state(resolved, {"resolved": True})
    in_am_ui = rig.page(alert("TWSConnectionLost", "D"))
    rig.am.fire(alert("TWSConnectionLost", "D"), state="suppressed")  # silenced in Alertmanager's UI, or by /silence
    ended_unheard = rig.page(alert("TWSConnectionLost", "E"), fire=False)  # resolved while silenced: no notification came
    control = rig.page(alert("TWSConnectionLost", "F"))
    rig.turns(0, 60, 120, 180, ref=control)
    assert rig.counts() == {"pushover": 1, "sms": 1, "call": 1, "chat": 1}
    assert "(F)" in rig.pushover.sent()[0]["message"]
    stopped = {rig.store.ladder(escalation.ladder_key(rig.store.ref(r)["alerts"]))["state"]["stopped"]
               for r in (in_am_ui, ended_unheard)}
    assert stopped == {"silenced", "resolved"}
    for r in (acked, buttoned, resolved):  # the bot knew: no ladder at all
        assert rig.store.ladder(escalation.ladder_key(rig.store.ref(r)["alerts"])) is None


def test_acknowledged_mid_ladder_stops_it(rig):
    ref = rig.page(alert("CircuitBreakerTripped"))
    rig.turns(60, ref=ref)
    rig.store.set_state(ref, {**rig.store.ref(ref)["state"], "ack": {"by": "Ada", "until": time.time() + 7200, "warned": False}})
    rig.store.set_silences(ref, [{"id": "s-1", "matchers": alert("CircuitBreakerTripped")}])
    rig.turns(120, 180, ref=ref)
    assert rig.counts() == {"pushover": 1, "sms": 0, "call": 0, "chat": 0}


def test_acknowledged_in_pushover_stops_the_ladder(rig):
    """The person reached by Pushover's emergency priority acknowledges it in the app: the
    receipt says so, the ladder stops before SMS and call, and the page says who."""
    ref = rig.page(alert("DailyLossLimitBreach"))
    rig.turns(60, ref=ref)
    (receipt,) = [r for r, at in rig.pushover.receipts.items()]
    rig.turns(90, ref=ref)  # nothing due: Pushover not asked
    assert not [r for r in rig.pushover.requests if "/receipts/" in r.path]
    rig.pushover.acknowledge(receipt)
    rig.turns(120, 180, ref=ref)
    assert rig.counts() == {"pushover": 1, "sms": 0, "call": 0, "chat": 0}
    assert rig.store.ladder(escalation.ladder_key([alert("DailyLossLimitBreach")]))["state"]["stopped"] == "acknowledged in Pushover"
    assert "✋ Acknowledged in Pushover (trader-iphone)" in rig.store.ref(ref)["state"]["notes"][-1]


def test_an_alertmanager_restart_pauses_the_ladder_and_does_not_end_it(rig):
    """Alertmanager keeps no alerts across a restart (Prometheus sends them again within its
    resend delay): a page's alerts missing from it pause the ladder; only missing for
    MISSING_GRACE_S do they count as resolved."""
    labels = alert("TWSConnectionLost")
    ref = rig.page(labels)
    rig.am.end(labels)  # Alertmanager restarted a moment ago
    rig.turns(60, 80, ref=ref)
    assert rig.counts()["pushover"] == 0
    rig.am.fire(labels)  # Prometheus' resend
    rig.turns(95, ref=ref)
    assert rig.counts()["pushover"] == 1
    rig.am.end(labels)  # resolved, while the bot heard nothing (silenced alerts send no resolve)
    rig.turns(120, 120 + escalation.MISSING_GRACE_S - 1, ref=ref)
    assert rig.store.running_ladders(10) != [] and rig.counts()["sms"] == 0
    rig.turns(120 + escalation.MISSING_GRACE_S, ref=ref)
    assert rig.store.running_ladders(10) == [] and rig.counts() == {"pushover": 1, "sms": 0, "call": 0, "chat": 0}


def test_alertmanager_away_escalates_on_what_the_bot_knows(rig):
    ref = rig.page(alert("DailyLossLimitBreach"))
    rig.am.down = True
    rig.turns(60, ref=ref)
    assert rig.counts()["pushover"] == 1


def test_a_restart_mid_ladder_resumes_it(rig):
    """The bot restarts (a new Store on the same file, a new Escalator) between tier 1 and 2:
    tier 1 is not sent again, tier 2 and 3 come at their times."""
    ref = rig.page(alert("PositionReconciliationMismatch"))
    steps = rig.turns(60, 90, 120, 180, ref=ref, restart_after=2)
    assert steps == [(60, ["pushover"]), (90, []), (120, ["sms", "call"]), (180, ["chat"])]
    assert rig.counts() == {"pushover": 1, "sms": 1, "call": 1, "chat": 1}


def test_a_repeat_continues_the_ladder_and_a_new_incident_starts_one(rig):
    first = rig.page(alert("DailyLossLimitBreach"))
    rig.turns(60, ref=first)
    repeat = rig.page(alert("DailyLossLimitBreach"))  # Alertmanager's repeat_interval: the same alerts, a new page
    rig.turns(110, 120, ref=first)
    assert rig.counts() == {"pushover": 1, "sms": 1, "call": 1, "chat": 0}  # not tier 1 again at 160
    rig.store.set_state(repeat, {"resolved": True})  # it ended...
    rig.turns(130, ref=first)
    again = rig.page(alert("DailyLossLimitBreach"))  # ...and fires again: a new incident
    rig.turns(0, 60, ref=again)
    assert rig.counts() == {"pushover": 2, "sms": 1, "call": 1, "chat": 0}


def test_a_storms_status_renderings_climb_one_ladder(rig):
    """In a storm the status message is rendered again and again (trademon.bot.storm), each
    rendering a page of its own with the alerts it lists: one ladder for the storm, not one per
    rendering; the message names the critical alerts."""
    storm = "storm:ab12cd34"
    warn = {"alertname": "UnusualSlippage", "severity": "warning", "strategy": "s1"}
    first = rig.store.new_ref(CHAT, [warn, alert("TWSConnectionLost")], "🌩 STORM", storm, state={"storm": True, "counted": True})
    for a in (warn, alert("TWSConnectionLost"), alert("CircuitBreakerTripped")):
        rig.am.fire(a)
    rig.turns(30, ref=first)
    rig.store.new_ref(CHAT, [warn, alert("TWSConnectionLost"), alert("CircuitBreakerTripped")], "🌩 STORM", storm,
                      state={"storm": True, "counted": True})
    rig.turns(61, 121, ref=first)
    assert rig.counts() == {"pushover": 1, "sms": 1, "call": 1, "chat": 0}
    assert "TWSConnectionLost (DU1), CircuitBreakerTripped (DU1)." in rig.pushover.sent()[0]["message"]
    assert "UnusualSlippage" not in rig.pushover.sent()[0]["message"]
    assert rig.edited == []  # the storm's next rendering shows the note, not an edit of an old one


def test_a_failing_channel_is_retried_counted_and_visible(rig, caplog):
    ref = rig.page(alert("TWSConnectionLost"))
    rig.twilio.fail_for(3600)
    with caplog.at_level(logging.INFO, logger="trademon.bot.escalation"):
        rig.turns(120, 121, ref=ref)
        assert rig.metric("trademon_bot_escalation_channel_failing", channel="sms") == 1
        assert rig.metric("trademon_bot_escalations_total", tier="2", channel="sms", result="failed") == 1
        assert rig.counts()["pushover"] == 1  # tier 1 went; tier 2's channels failed
        rig.twilio.fail_for(0)
        rig.turns(120 + escalation.RETRY_S, 200, 300, ref=ref)
    assert rig.metric("trademon_bot_escalation_channel_failing", channel="sms") == 0
    assert rig.metric("trademon_bot_escalations_total", tier="2", channel="sms", result="ok") == 1
    assert rig.counts() == {"pushover": 1, "sms": 1, "call": 1, "chat": 1}
    failed = [r for r in caplog.records if r.getMessage() == "escalation channel failed"]
    assert failed and "HTTP 503" in failed[0].error
    # the bot's own lines (httpx's request log names Pushover's receipt URL, token included: the bot
    # turns it down to warnings, and the log's redaction masks token= anyway)
    text = "\n".join(f"{r.getMessage()} {vars(r)}" for r in caplog.records if r.name.startswith("trademon."))
    assert not any(s in text for s in SECRETS)


def test_a_channel_that_keeps_failing_is_given_up_after_its_tries(rig):
    ref = rig.page(alert("TWSConnectionLost"))
    rig.pushover.fail_for(3600)
    rig.turns(*[60 + escalation.RETRY_S * n for n in range(6)], ref=ref)
    assert len(rig.pushover.requests) == escalation.MAX_ATTEMPTS
    assert rig.metric("trademon_bot_escalations_total", tier="1", channel="pushover", result="failed") == escalation.MAX_ATTEMPTS


def test_the_loop_outlives_a_fault(rig, caplog):
    """One turn that raises (a bug, a disk error) is logged; the loop goes on: it is supervised,
    and a loop that ends takes the whole bot, the pager with it."""
    import dataclasses

    turns = []

    async def run():
        tg = TelegramClient(rig.telegram.url, TOKEN)
        esc = escalation.Escalator(dataclasses.replace(rig.settings, check_s=0.01), rig.store, tg, rig.am, clock=rig.clock)

        async def turn():
            turns.append(1)
            if len(turns) == 1:
                raise RuntimeError("boom")

        esc.turn = turn  # type: ignore[method-assign]
        task = asyncio.create_task(esc.run())
        while len(turns) < 3:
            await asyncio.sleep(0.01)
        task.cancel()
        await esc.close()
        await tg.close()

    with caplog.at_level(logging.ERROR, logger="trademon.bot.escalation"):
        asyncio.run(asyncio.wait_for(run(), 5))
    assert [r.error for r in caplog.records] == ["RuntimeError: boom"]


# --- the bot as a process, with the real Alertmanager ------------------------------------------------

@pytest.mark.e2e
def test_the_bot_escalates_survives_a_kill_9_mid_ladder_and_skips_what_alertmanager_silenced(tmp_path):
    """`trademon bot` with a two-tier ladder (2s Pushover, 5s SMS) and Alertmanager 0.33.1, two
    critical pages: DU1's gets tier 1, the bot is killed (-9), the restarted bot sends its tier 2
    (not tier 1 again); DU2's alert was silenced in Alertmanager: no tier at all. The secrets
    come from 0600 files and are in no log line."""
    import sys
    from datetime import datetime, timedelta, UTC

    import requests

    from trademon.bot.config import derived_webhook_token
    from trademon.stack.native import alertmanager_cmd
    from tests.support.procs import free_port, start, wait_for, wait_http

    root = Path(__file__).resolve().parents[1]
    rig = Rig(tmp_path)
    am_port, bot_port = free_port(), free_port()
    am_url = f"http://127.0.0.1:{am_port}"
    (tmp_path / "am.yml").write_text("route: {receiver: none}\nreceivers: [{name: none}]\n")
    am = start("alertmanager", alertmanager_cmd(tmp_path / "am.yml", tmp_path / "am-data", am_port), None, tmp_path / "am.log")
    procs = [am]
    files = {}
    for name, value in (("PUSHOVER_APP_TOKEN", PUSH_TOKEN), ("TWILIO_AUTH_TOKEN", AUTH)):
        f = tmp_path / name.lower()
        f.write_text(value)
        f.chmod(0o600)
        files[f"{name}_FILE"] = str(f)
    env = {**{k: v for k, v in rig.env.items() if k not in ("PUSHOVER_APP_TOKEN", "TWILIO_AUTH_TOKEN")}, **files,
           "TRADEMON_BOT_ESCALATE": "2s:pushover,5s:sms", "TRADEMON_BOT_ESCALATE_CHECK": "200ms",
           "TELEGRAM_BOT_TOKEN": TOKEN, "TELEGRAM_CHAT_ID": str(CHAT), "TELEGRAM_API_URL": rig.telegram.url,
           "TRADEMON_BOT_PORT": str(bot_port), "TRADEMON_BOT_STATE_DIR": str(tmp_path / "state"), "TRADEMON_BOT_POLL_TIMEOUT": "1",
           "TRADEMON_BOT_CONFIG_ROOT": str(root), "TRADEMON_BOT_ALERTMANAGER_URL": am_url}
    unanswered, silenced = ({"alertname": "TWSConnectionLost", "severity": "critical", "account": acc} for acc in ("DU1", "DU2"))
    now = datetime.now(UTC)

    def bot():
        p = start("trademon-bot", [sys.executable, "-m", "trademon", "bot"], env, tmp_path / "bot.log")
        procs.append(p)
        wait_http(f"http://127.0.0.1:{bot_port}/readyz", 30, p)
        return p

    def page(labels: dict) -> None:
        body = {"version": "4", "status": "firing", "receiver": "critical", "groupKey": f"{{}}:{{account={labels['account']!r}}}",
                "groupLabels": {"account": labels["account"]}, "commonLabels": labels, "commonAnnotations": {}, "externalURL": am_url,
                "alerts": [{"status": "firing", "labels": labels, "annotations": {"summary": "IB API session lost"},
                            "startsAt": now.isoformat(), "fingerprint": labels["account"]}]}
        r = requests.post(f"http://127.0.0.1:{bot_port}/alerts", json=body, timeout=15,
                          headers={"Authorization": f"Bearer {derived_webhook_token(TOKEN)}"})
        assert r.status_code == 200

    try:
        wait_http(f"{am_url}/-/ready", 20, am)
        requests.post(f"{am_url}/api/v2/alerts", timeout=5, json=[
            {"labels": labels, "startsAt": now.isoformat(), "endsAt": (now + timedelta(hours=1)).isoformat()}
            for labels in (unanswered, silenced)]).raise_for_status()
        requests.post(f"{am_url}/api/v2/silences", timeout=5, json={
            "matchers": [{"name": k, "value": v, "isRegex": False, "isEqual": True} for k, v in silenced.items()],
            "startsAt": now.isoformat(), "endsAt": (now + timedelta(hours=1)).isoformat(),
            "createdBy": "test", "comment": "silenced in Alertmanager's UI"}).raise_for_status()
        first = bot()
        page(silenced)
        page(unanswered)
        t0 = time.monotonic()
        wait_for(lambda: rig.pushover.sent(), 10, what="tier 1 (Pushover)")
        assert 1.5 < time.monotonic() - t0 and rig.counts()["sms"] == 0
        os.killpg(first.popen.pid, 9)  # kill -9 mid-ladder
        first.popen.wait(5)
        bot()
        wait_for(lambda: rig.twilio.sent("Messages"), 20, what="tier 2 (SMS) from the restarted bot")
        assert time.monotonic() - t0 > 4.5
        time.sleep(0.5)  # a turn more: nothing else comes
        sent = [m["message"] for m in rig.pushover.sent()] + [m["Body"] for m in rig.twilio.sent("Messages")]
        assert len(sent) == 2 and all("TWSConnectionLost (DU1)" in m for m in sent), sent  # tier 1 once; DU2 never
        log = (tmp_path / "bot.log").read_text()
        assert '"escalation": "2s pushover, 5s sms"' in log and '"reason": "silenced"' in log
        assert not any(s in log for s in SECRETS)
    finally:
        for p in procs:
            p.close()
        rig.close()
