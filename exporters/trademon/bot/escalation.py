"""Escalation: a critical page nobody acknowledged within a tier's time goes to that tier's
channels (trademon.bot.channels): Pushover's emergency priority, an SMS or a voice call
through a Twilio-compatible API, another Telegram chat. Alertmanager has no acknowledgement
(its issue 1860) and Grafana OnCall OSS is archived: the bot, which holds the Ack, climbs the
ladder itself.

    TRADEMON_BOT_ESCALATE=5m:pushover,15m:sms+call,30m:chat

Off unless set. Each tier counts from the page's arrival at the bot. A ladder is kept per set
of alerts (a repeat of the page continues it; a page whose alerts ended and fire again starts
a new one) in the bot's SQLite store, and saved after each send, so a restart resumes it where
it stood (a send cut by a kill may go once more: at least once, as the pages). Before each
tier, Alertmanager is asked which of the page's alerts still fire unsilenced: nothing
acknowledged, silenced (by a button, /silence or Alertmanager's UI) or resolved is escalated;
nor a page whose Pushover emergency message was acknowledged in the app (its receipt).
If Alertmanager cannot be asked, the bot goes by what it knows (its Ack, its silences, the
resolves it received) and escalates: a page that may be unanswered outweighs one call too many.

A channel that fails is tried again (MAX_ATTEMPTS, RETRY_S apart) and counted
(trademon_bot_escalations_total{result="failed"}); trademon_bot_escalation_channel_failing
says which channel's last try failed, and the alert EscalationChannelFailing says so in the
chat while there is still time to fix it.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from zoneinfo import ZoneInfo

from trademon import contract
from trademon.bot import pages, render
from trademon.bot.channels import PUSHOVER_MAX_EXPIRE_S, PUSHOVER_MIN_RETRY_S, Call, ChannelError, Chat, Message, Pushover, Sms
from trademon.bot.config import chat_id
from trademon.bot.reports import esc
from trademon.bot.store import Store
from trademon.bot.telegram import TelegramClient, TelegramError
from trademon.bot.upstream import Alertmanager, Record, UpstreamError
from trademon.settings import values
from trademon.settings.env import ConfigError, env_duration, env_str, env_url, secret

log = logging.getLogger("trademon.bot.escalation")

CHANNELS = ("pushover", "sms", "call", "chat")
LADDER_VARIABLE = "TRADEMON_BOT_ESCALATE"
LADDER_ALLOWED = ("tiers separated by commas, each <after>:<channel>[+<channel>...], the times rising, e.g. "
                  "5m:pushover,15m:sms+call,30m:chat; channels: " + ", ".join(CHANNELS))
MAX_TIERS = 5
MAX_LADDERS = 50        # ladders looked at per turn (bounded work)
MAX_NEW_PAGES = 200     # pages looked at per turn for a ladder to start
MAX_ATTEMPTS = contract.ESCALATION_TRIES    # tries of one channel for one tier
RETRY_S = float(contract.ESCALATION_RETRY_S)  # between them
HORIZON_S = 3600.0      # a page older than its ladder's last tier and this starts no ladder (after a long outage of the bot)
MISSING_GRACE_S = 90.0  # a page's alerts all gone from Alertmanager this long: resolved (Prometheus resends within 1m)
UTC = ZoneInfo("UTC")


@dataclass(frozen=True)
class Tier:
    after_s: float
    channels: tuple[str, ...]


def parse_ladder(value: str) -> tuple[Tier, ...]:
    tiers: list[Tier] = []
    for raw in value.split(","):
        after, sep, names = raw.strip().partition(":")
        if not sep or not names.strip():
            raise ConfigError(LADDER_VARIABLE, value, f"tier {raw.strip()!r} has no channel", LADDER_ALLOWED)
        try:
            after_s = values.seconds(after.strip())
        except ValueError:
            raise ConfigError(LADDER_VARIABLE, value, f"tier {raw.strip()!r}: {after.strip()!r} is not a duration", LADDER_ALLOWED) from None
        chans = tuple(dict.fromkeys(c.strip() for c in names.split("+")))
        unknown = [c for c in chans if c not in CHANNELS]
        if unknown:
            raise ConfigError(LADDER_VARIABLE, value, f"unknown channel {', '.join(map(repr, unknown))}", LADDER_ALLOWED)
        if after_s <= 0 or (tiers and after_s <= tiers[-1].after_s):
            raise ConfigError(LADDER_VARIABLE, value, f"tier {raw.strip()!r} does not come after the one before it", LADDER_ALLOWED)
        tiers.append(Tier(after_s, chans))
    if len(tiers) > MAX_TIERS:
        raise ConfigError(LADDER_VARIABLE, value, f"{len(tiers)} tiers", f"at most {MAX_TIERS} tiers; {LADDER_ALLOWED}")
    return tuple(tiers)


def _required(name: str, env: Mapping[str, str], channel: str, what: str, is_secret: bool = False) -> str:
    v = secret(name, env) if is_secret else env_str(name, env=env)
    if v is None:
        where = f"in .env or via {name}_FILE (a file only the bot's user can read, chmod 600)" if is_secret else "in .env"
        raise ConfigError(name, None, f"not set, and {LADDER_VARIABLE} uses the {channel} channel", f"{what}, {where}")
    return v


def _numbers(name: str, env: Mapping[str, str], channel: str) -> tuple[str, ...]:
    raw = _required(name, env, channel, "the numbers to reach, comma-separated, " + values.PHONE_ALLOWED)
    nums = tuple(dict.fromkeys(x.strip() for x in raw.split(",") if x.strip()))
    bad = [n for n in nums if not values.is_phone_number(n)]
    if bad or not nums:
        raise ConfigError(name, raw, "not a list of phone numbers", values.PHONE_ALLOWED)
    return nums[:5]


@dataclass(frozen=True)
class Settings:
    tiers: tuple[Tier, ...]
    check_s: float
    channels: dict[str, Callable[[TelegramClient], object]]  # name -> makes the channel (the chat one needs the bot's client)
    secrets: tuple[str, ...]                                   # for the log's redaction


def from_env(env: Mapping[str, str]) -> Settings | None:
    """The ladder and the settings of the channels it uses; None when escalation is off. Each
    channel's settings are read only if a tier uses it, and each missing one is named."""
    raw = env_str(LADDER_VARIABLE, env=env)
    if raw is None:
        return None
    tiers = parse_ladder(raw)
    used = {c for t in tiers for c in t.channels}
    makers: dict[str, Callable[[TelegramClient], object]] = {}
    secrets: list[str] = []
    if "pushover" in used:
        token = _required("PUSHOVER_APP_TOKEN", env, "pushover", "the API token of your Pushover application", True)
        user = _required("PUSHOVER_USER_KEY", env, "pushover", "the user (or group) key to reach", True)
        retry = env_duration("PUSHOVER_RETRY", "60s", env)
        expire = env_duration("PUSHOVER_EXPIRE", "1h", env)
        if retry < PUSHOVER_MIN_RETRY_S:
            raise ConfigError("PUSHOVER_RETRY", env_str("PUSHOVER_RETRY", env=env), "shorter than Pushover allows", "30s or more")
        if not 0 < expire <= PUSHOVER_MAX_EXPIRE_S:
            raise ConfigError("PUSHOVER_EXPIRE", env_str("PUSHOVER_EXPIRE", env=env), "longer than Pushover allows", "up to 3h")
        push_api = env_url("PUSHOVER_API_URL", "https://api.pushover.net", env)
        makers["pushover"] = lambda tg: Pushover(push_api, token, user, retry, expire)
        secrets += [token, user]
    if used & {"sms", "call"}:
        first = "sms" if "sms" in used else "call"
        sid = _required("TWILIO_ACCOUNT_SID", env, first, "your account's SID (AC...)")
        auth = _required("TWILIO_AUTH_TOKEN", env, first, "your account's auth token", True)
        sender = _required("TWILIO_FROM", env, first, "the number messages and calls come from, " + values.PHONE_ALLOWED)
        if not values.is_phone_number(sender):
            raise ConfigError("TWILIO_FROM", sender, "not a phone number", values.PHONE_ALLOWED)
        twilio_api = env_url("TWILIO_API_URL", "https://api.twilio.com", env)
        if "sms" in used:
            to = _numbers("TRADEMON_BOT_ESCALATE_SMS_TO", env, "sms")
            makers["sms"] = lambda tg: Sms(twilio_api, sid, auth, sender, to)
        if "call" in used:
            calls = _numbers("TRADEMON_BOT_ESCALATE_CALL_TO", env, "call")
            makers["call"] = lambda tg: Call(twilio_api, sid, auth, sender, calls)
        secrets.append(auth)
    if "chat" in used:
        other = chat_id("TRADEMON_BOT_ESCALATE_CHAT_ID",
                        _required("TRADEMON_BOT_ESCALATE_CHAT_ID", env, "chat", "the Telegram chat to escalate to (the bot must be in it)"))
        makers["chat"] = lambda tg: Chat(tg, other)
    return Settings(tiers, env_duration("TRADEMON_BOT_ESCALATE_CHECK", "15s", env), makers, tuple(secrets))


def ladder_key(alerts: list[dict]) -> str:
    return hashlib.sha256(json.dumps(sorted(json.dumps(a, sort_keys=True) for a in alerts)).encode()).hexdigest()[:24]


def _labels_key(labels: dict) -> str:
    return json.dumps(labels, sort_keys=True)


def is_critical(ref: dict) -> bool:
    return any(a.get("severity") == "critical" for a in ref["alerts"])


def answered(ref: dict) -> str | None:
    """Why the bot itself knows this page needs nobody more: acknowledged, silenced or resolved."""
    if ref["state"].get("resolved"):
        return "resolved"
    if ref["state"].get("ack"):
        return "acknowledged"
    if ref["silences"]:
        return "silenced"
    return None


def human(seconds: float) -> str:
    """90 -> 1m30s, 900 -> 15m, 5400 -> 1h30m."""
    s, out = int(seconds), ""
    for unit, size in (("h", 3600), ("m", 60), ("s", 1)):
        if s >= size:
            out += f"{s // size}{unit}"
            s %= size
    return out or "0s"


def message(alerts: list[dict], tier: int, after_s: float) -> Message:
    alerts = [a for a in alerts if a.get("severity") == "critical"] or alerts  # a storm's status lists warnings too
    def one(a: dict) -> str:
        where = a.get("account") or a.get("instance") or a.get("job")
        return f"{a.get('alertname', '?')} ({where})" if where else str(a.get("alertname", "?"))

    shown = [one(a) for a in alerts[:3]] + ([f"{len(alerts) - 3} more"] if len(alerts) > 3 else [])
    what = ", ".join(shown)
    title = f"trademon: CRITICAL not acknowledged for {human(after_s)}"
    text = f"trademon CRITICAL, not acknowledged for {human(after_s)}: {what}. Acknowledge it in the Telegram chat."
    body = (f"🚨 <b>Not acknowledged for {human(after_s)}</b> (escalation tier {tier}): {esc(what)}\n"
            "The page is in the trading chat: ✋ Ack it there.")
    return Message(title, text, body)


class Escalator:
    def __init__(self, settings: Settings, store: Store, tg: TelegramClient, am: Alertmanager, record: Record | None = None,
                 metrics=None, page_editor: Callable | None = None, clock: Callable[[], float] = time.time,
                 zone: ZoneInfo = UTC):
        self.settings, self.store, self.am, self.record, self.metrics, self.clock = settings, store, am, record, metrics, clock
        self.channels = {name: make(tg) for name, make in settings.channels.items()}
        self.page_editor = page_editor  # pages.edit bound to the bot's client, signer and runbooks: the note shows on the page
        self.zone = zone
        self.horizon_s = settings.tiers[-1].after_s + HORIZON_S
        if metrics is not None:  # at 0 from the start: the first escalation is an increase rate() sees, no failure seen yet
            for i, tier in enumerate(settings.tiers, 1):
                for ch in tier.channels:
                    for result in ("ok", "failed"):
                        metrics.escalations(str(i), ch, result)
                    metrics.escalation_failing.labels(channel=ch).set(0)

    def describe(self) -> str:
        """The ladder as configured, for the start-up log: ``5m pushover, 15m sms+call``."""
        return ", ".join(f"{human(t.after_s)} {'+'.join(t.channels)}" for t in self.settings.tiers)

    async def run(self) -> None:
        while True:
            try:
                await self.turn()
            except Exception as e:  # noqa: BLE001 - the loop must outlive any one fault: it ends the bot, the pager with it
                # (a state directory that takes no write: the outbox's alerts say so; the next turn tries again)
                log.error("escalation not worked this turn", extra={"error": f"{type(e).__name__}: {str(e)[:200]}"})
            await asyncio.sleep(self.settings.check_s)

    async def turn(self) -> None:
        now = self.clock()
        self._adopt(now)
        due = [lad for lad in self.store.running_ladders(MAX_LADDERS) if self._next_due(lad, now) is not None]
        if not due:
            return
        states = await self._alert_states()
        for lad in due:
            await self._climb(lad, now, states)

    # --- which pages have a ladder ----------------------------------------------------------
    def _adopt(self, now: float) -> None:
        """Start a ladder for each new critical page, or move a running one to the page's repeat."""
        for ref in reversed(self.store.refs_since(now - self.horizon_s, MAX_NEW_PAGES)):  # oldest first
            if not is_critical(ref) or answered(ref):
                continue
            # A storm's status message (trademon.bot.storm) is one rendering after another, each a page
            # of its own: one ladder for the storm, following its newest rendering.
            key = ref["group_key"] if ref["state"].get("storm") else ladder_key(ref["alerts"])
            lad = self.store.ladder(key)
            if lad is not None and (lad["ref"] == ref["ref"] or lad["state"].get("ref_created", 0) >= ref["created"]):
                continue
            if lad is not None and self._goes_on(lad, now):
                # Alertmanager's repeat of a page still unanswered (or a group's update): the same ladder goes on
                lad["ref"], lad["state"]["ref_created"] = ref["ref"], ref["created"]
            else:  # new, or its alerts were answered or ended and fire again: a new incident, a new ladder
                lad = {"key": key, "ref": ref["ref"], "started": ref["created"], "running": True,
                       "state": {"ref_created": ref["created"], "sent": {}}}
            self.store.put_ladder(lad)

    def _goes_on(self, lad: dict, now: float) -> bool:
        """The ladder's incident is still open: its page unanswered, the ladder running or at its top."""
        if lad["state"].get("stopped") not in (None, "exhausted"):
            return False
        page = self.store.ref(lad["ref"], now)
        return page is not None and answered(page) is None

    def _next_due(self, lad: dict, now: float) -> tuple[int, str] | None:
        """The first (tier index, channel) due now and not yet done."""
        for i, tier in enumerate(self.settings.tiers):
            if lad["started"] + tier.after_s > now:
                return None
            for ch in tier.channels:
                st = lad["state"]["sent"].get(f"{i}:{ch}")
                if st is None or (st["result"] == "failed" and st["attempts"] < MAX_ATTEMPTS and st["next_at"] <= now):
                    return i, ch
        return None

    def _finished(self, lad: dict) -> bool:
        sent = lad["state"]["sent"]
        return all((st := sent.get(f"{i}:{ch}")) is not None and (st["result"] == "ok" or st["attempts"] >= MAX_ATTEMPTS)
                   for i, tier in enumerate(self.settings.tiers) for ch in tier.channels)

    async def _alert_states(self) -> dict[str, str] | None:
        """label set -> "active" or "suppressed" (silenced or inhibited), as Alertmanager has them
        now; None when it cannot be asked."""
        try:
            alerts = await self.am.alerts(active=True, silenced=True, inhibited=True)
        except UpstreamError as e:
            log.warning("Alertmanager cannot be asked before escalating: going by what the bot knows", extra={"error": str(e)[:200]})
            return None
        return {_labels_key(a.get("labels", {})): str((a.get("status") or {}).get("state", "active")) for a in alerts}

    # --- one step up ------------------------------------------------------------------------
    def _stop(self, lad: dict, reason: str) -> None:
        lad["running"] = False
        lad["state"]["stopped"] = reason
        self.store.put_ladder(lad)
        log.info("escalation stopped", extra={"ladder": lad["key"][:8], "reason": reason, "tiers_sent": len(lad["state"]["sent"])})

    async def _climb(self, lad: dict, now: float, states: dict[str, str] | None) -> None:
        ref = self.store.ref(lad["ref"], now)
        if ref is None:
            return self._stop(lad, "gone")
        reason = answered(ref)
        alerts = ref["alerts"]
        if reason is None and states is not None:
            alerts = [a for a in ref["alerts"] if states.get(_labels_key(a), "suppressed") != "suppressed"]  # active, or unprocessed yet
            if any(_labels_key(a) in states for a in ref["alerts"]):
                lad["state"].pop("missing_since", None)
                reason = None if alerts else "silenced"
            else:
                # None of them in Alertmanager: resolved, or an Alertmanager just restarted (it keeps no
                # alerts; Prometheus sends them again within its resend delay). Nothing is sent meanwhile.
                since = lad["state"].setdefault("missing_since", now)
                if now - since < MISSING_GRACE_S:
                    return self.store.put_ladder(lad)
                reason = "resolved"
        if reason is None:
            reason = await self._acknowledged_in_pushover(lad, ref, now)
        if reason is not None:
            return self._stop(lad, reason)
        reached = []
        while (step := self._next_due(lad, now)) is not None:
            i, ch = step
            tier = self.settings.tiers[i]
            key = f"{i}:{ch}"
            prior = lad["state"]["sent"].get(key) or {"attempts": 0}
            try:
                detail = await self.channels[ch].send(message(alerts, i + 1, tier.after_s))  # type: ignore[attr-defined]
                st = {"result": "ok", "attempts": prior["attempts"] + 1, "next_at": 0}
                if ch == "pushover" and detail:
                    st["receipt"] = detail
                reached.append(ch)
                log.info("escalated", extra={"tier": i + 1, "channel": ch, "detail": detail, "alerts": len(alerts)})
            except ChannelError as e:
                st = {"result": "failed", "attempts": prior["attempts"] + 1, "next_at": now + RETRY_S}
                log.error("escalation channel failed", extra={"tier": i + 1, "channel": ch, "error": str(e), "attempt": st["attempts"],
                                                              "gives_up": st["attempts"] >= MAX_ATTEMPTS})
            lad["state"]["sent"][key] = st
            self.store.put_ladder(lad)  # each send on disk before the next: a restart resumes after it
            self._count(str(i + 1), ch, st["result"])
            if self.record is not None:
                by = f"{ch}, tier {i + 1}" + ("" if st["result"] == "ok" else " (failed)")  # /history's "who"
                await self.record.action("escalated", alerts, {"tier": i + 1, "channel": ch, "result": st["result"], "by": by,
                                                               "after_s": tier.after_s, "attempt": st["attempts"]})
        if self._finished(lad):
            self._stop(lad, "exhausted")
        if reached:
            await self._note(ref, reached, now)

    async def _acknowledged_in_pushover(self, lad: dict, ref: dict, now: float) -> str | None:
        """An emergency message acknowledged in the Pushover app stops the ladder (asked only when
        a tier is due); the page says so (the Telegram Ack and its silence stay the trader's)."""
        pushover = self.channels.get("pushover")
        receipts = [st["receipt"] for st in lad["state"]["sent"].values() if st.get("receipt")]
        if pushover is None or not receipts:
            return None
        try:
            by = await pushover.acknowledged(receipts[-1])  # type: ignore[attr-defined]
        except ChannelError as e:  # cannot tell: the ladder goes on
            log.warning("cannot ask Pushover whether the page was acknowledged", extra={"error": str(e)[:200]})
            return None
        if by is None:
            return None
        await self._show(ref, f"✋ Acknowledged in Pushover ({esc(by)}) at {render.fmt_clock(now, self.zone)}: the escalation "
                              "stops (the page's reminders go on until someone acks it here)")
        return "acknowledged in Pushover"

    def _count(self, tier: str, channel: str, result: str) -> None:
        if self.metrics is not None:
            self.metrics.escalations(tier, channel, result)()
            self.metrics.escalation_failing.labels(channel=channel).set(1 if result == "failed" else 0)

    async def _note(self, ref: dict, reached: list[str], now: float) -> None:
        """The page says who else was called (the trader who opens it later knows)."""
        await self._show(ref, f"📣 Not acknowledged: escalated to {esc(', '.join(reached))} at {render.fmt_clock(now, self.zone)}")

    async def _show(self, ref: dict, note: str) -> None:
        pages.add_note(self.store, ref, note)
        if self.page_editor is None or ref["state"].get("storm"):  # a storm's next rendering shows the note
            return
        try:
            await self.page_editor(ref)
        except TelegramError as e:  # Telegram away may be why nobody answered: the escalation stands
            log.warning("the page could not be edited to show the escalation", extra={"error": str(e)[:200]})

    async def close(self) -> None:
        for ch in self.channels.values():
            await ch.close()  # type: ignore[attr-defined]
