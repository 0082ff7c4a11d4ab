"""Commands and button presses. Everyone but the configured chats/users is refused: a command
gets no answer at all (a stranger must cost no send, nor a 429 on it), a button press only
the callback answer; refusals are logged, at most once a minute. A callback whose signature, chat or reference does not check out
does nothing but say the button is not valid."""

from __future__ import annotations

import difflib
import html
import json
import logging
import re
import time
from datetime import datetime, timedelta, UTC
from collections.abc import Callable

from trademon.bot import history, pages, render
from trademon.bot.auth import Signer, may_act
from trademon.bot.config import BotConfig
from trademon.bot.reports import Reports, esc, fmt_time
from trademon.bot.runbooks import RELATIVE_PATH, Runbooks
from trademon.bot.sessions import MarketHours, next_session_open
from trademon.bot.store import Store
from trademon.bot.telegram import TelegramClient, TelegramError
from trademon.bot.upstream import Alertmanager, Record, UpstreamError
from trademon.settings import values

log = logging.getLogger("trademon.bot.handlers")

HELP = """<b>trademon bot</b>
/status – firing alerts, IB session and data farms, P&amp;L against the limit, breakers, exposure, targets down
/alerts – the alerts firing now (not silenced)
/silences – the active silences
/silence &lt;alertname&gt; &lt;duration&gt; – e.g. /silence UnusualSlippage 2h (capped at {cap})
/unsilence &lt;id&gt; – expire a silence (ids in /silences)
/pnl [range] – chart of today's P&amp;L per account and strategy, loss limit drawn (or the last range, e.g. /pnl 2h)
/exposure [range] – chart of gross exposure per account against its limit
/runbook &lt;alertname&gt; – what to do when it fires (the runbook shipped with the stack), e.g. /runbook TWSConnectionLost
/history [period | alert] – what fired, for how long, who acknowledged or silenced it (the last 24h, e.g. /history 7d, /history TWSConnectionLost)
/help – this
Buttons under each alert: ✋ Ack (you take it: reminders stop until it resolves); silence 1h, 4h, or until the next
session opens; Unsilence undoes either; 📖 shows the alert's runbook here."""

REFUSAL_LOG_EVERY_S = 60.0
EXTEND = {"x1h": 3600, "x4h": 4 * 3600}  # the Extend buttons under an acknowledgement about to end
_ALERTNAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,99}")
_SILENCE_ID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


def parse_duration(s: str) -> float | None:
    try:
        return values.seconds(s or "")
    except ValueError:
        return None


def human(seconds: float) -> str:
    seconds = int(seconds)
    if seconds % 3600 == 0:
        return f"{seconds // 3600}h"
    if seconds >= 3600:
        return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"
    return f"{max(seconds // 60, 1)}m"


def name_of(user: dict | None) -> str:
    """The person, as the chat shows them: first and last name, else @username, else the id."""
    if not user:
        return "someone"
    full = " ".join(str(x) for x in (user.get("first_name"), user.get("last_name")) if x).strip()
    if full:
        return full[:40]
    return f"@{str(user['username'])[:40]}" if user.get("username") else f"user {int(user.get('id', 0))}"


def who(user: dict | None) -> str:
    """For Alertmanager's createdBy and the record: the name, and the Telegram id that proves it."""
    if not user:
        return "telegram:unknown"
    return f"{name_of(user)} (Telegram {int(user.get('id', 0))})"


class Handlers:
    def __init__(self, cfg: BotConfig, tg: TelegramClient, am: Alertmanager, record: Record, store: Store, signer: Signer,
                 reports: Reports, hours: MarketHours, clock: Callable[[], float] = time.time, runbooks: Runbooks | None = None):
        self.cfg, self.tg, self.am, self.record, self.store, self.signer = cfg, tg, am, record, store, signer
        self.reports, self.hours, self.clock = reports, hours, clock
        self.runbooks = runbooks or Runbooks({})
        self.refused = 0
        self._refusals_logged_at, self._refusals_unlogged = -REFUSAL_LOG_EVERY_S, 0

    # --- dispatch --------------------------------------------------------------------------
    async def dispatch(self, update: dict) -> None:
        if "callback_query" in update:
            return await self.callback(update["callback_query"])
        msg = update.get("message")
        if msg and isinstance(msg.get("text"), str) and msg["text"].startswith("/"):
            return await self.command(msg)

    def _allowed(self, chat: dict, user: dict | None, what: str) -> bool:
        if may_act(self.cfg.allowed_chats, self.cfg.allowed_users, chat, user):
            return True
        self.refused += 1
        now = time.monotonic()
        if now - self._refusals_logged_at < REFUSAL_LOG_EVERY_S:  # a stranger's flood must not flood the log either
            self._refusals_unlogged += 1
            return False
        log.warning("refused: not an allowed chat/user", extra={"chat_id": chat.get("id"), "user_id": (user or {}).get("id"), "what": what[:40],
                                                                "refused_since_last_logged": self._refusals_unlogged})
        self._refusals_logged_at, self._refusals_unlogged = now, 0
        return False

    async def reply(self, chat_id: int, text: str) -> None:
        await self.send_parts(chat_id, render.split_lines(text))

    async def command(self, msg: dict) -> None:
        chat, user = msg["chat"], msg.get("from")
        words = msg["text"][:500].split()
        name = words[0][1:].split("@")[0].lower()
        if not self._allowed(chat, user, name):
            return
        args = words[1:]
        try:
            if name in ("help", "start"):
                await self.reply(chat["id"], HELP.format(cap=human(self.cfg.max_silence_s)))
            elif name == "status":
                await self.reply(chat["id"], await self.reports.status())
            elif name == "alerts":
                await self.reply(chat["id"], await self.reports.alerts())
            elif name == "silences":
                await self.reply(chat["id"], await self.reports.silences())
            elif name == "silence":
                await self.reply(chat["id"], await self.silence_cmd(args, user))
            elif name == "unsilence":
                await self.reply(chat["id"], await self.unsilence_cmd(args, user))
            elif name in ("pnl", "exposure"):
                await self.chart_cmd(chat["id"], name, args)
            elif name == "runbook":
                await self.runbook_cmd(chat["id"], args)
            elif name == "history":
                await self.reply(chat["id"], history.answer(self.store, args, self.clock(), self.cfg.zone))
            else:
                await self.reply(chat["id"], "Unknown command. /help lists them.")
        except UpstreamError as e:
            await self.reply(chat["id"], f"⚠️ {esc(e)}")
        except TelegramError as e:  # Telegram refused the answer (a 429 past its deadline): said once, no traceback
            log.warning("answer to a command not sent", extra={"command": name, "error": str(e)})

    async def chart_cmd(self, chat_id: int, name: str, args: list[str]) -> None:
        end = self.clock() - 1  # the last second may still be arriving (a scrape in flight): chart what is complete
        span = parse_duration(args[0]) if args else None
        if args and span is None:
            return await self.reply(chat_id, f"Usage: /{name} [range], e.g. /{name} 2h")
        start = end - min(span, 7 * 86400) if span else None
        fn = self.reports.pnl_chart if name == "pnl" else self.reports.exposure_chart
        png, caption = await fn(start, end)
        await self.tg.call_within(time.monotonic() + 20, "sendPhoto", {"chat_id": chat_id, "caption": caption, "parse_mode": "HTML"},
                                  files={"photo": (f"{name}.png", png, "image/png")})

    async def runbook_cmd(self, chat_id: int, args: list[str]) -> None:
        names = self.runbooks.names()
        if not names:
            where = self.cfg.config_root / RELATIVE_PATH
            return await self.reply(chat_id, f"No runbooks: {esc(where)} was not found when the bot started. The links on each page still work.")
        if len(args) != 1:
            return await self.reply(chat_id, "Usage: /runbook &lt;alertname&gt;, e.g. /runbook TWSConnectionLost\nRunbooks: " + esc(", ".join(names)))
        parts = self.runbooks.messages(args[0][:100])
        if not parts:
            close = difflib.get_close_matches(args[0].lower(), [n.lower() for n in names], n=3, cutoff=0.5)
            shown = [n for n in names if n.lower() in close] or names[:5]
            return await self.reply(chat_id, f"No runbook for {esc(args[0][:100])}. Some that exist: {esc(', '.join(shown))} "
                                             "(/runbook alone lists them all)")
        await self.send_parts(chat_id, parts)

    async def send_parts(self, chat_id: int, parts: list[str]) -> None:
        for part in parts:
            await self.tg.call_within(time.monotonic() + 20, "sendMessage",
                                      {"chat_id": chat_id, "text": part, "parse_mode": "HTML", "link_preview_options": {"is_disabled": True}})

    async def silence_cmd(self, args: list[str], user: dict | None) -> str:
        want = parse_duration(args[1]) if len(args) == 2 else None
        if want is None or not _ALERTNAME.fullmatch(args[0]):
            return "Usage: /silence &lt;alertname&gt; &lt;duration&gt;, e.g. /silence UnusualSlippage 2h"
        dur = min(want, self.cfg.max_silence_s)
        now = datetime.fromtimestamp(self.clock(), UTC)
        ends = now + timedelta(seconds=dur)
        sid = await self.am.silence({"alertname": args[0]}, ends, who(user), "from Telegram: /silence", starts=now)
        await self.record.action("silence", [{"alertname": args[0]}], {"by": who(user), "silence_ids": [sid], "ends_at": ends.isoformat(),
                                                                       "matchers": [{"alertname": args[0]}]})
        capped = f" (capped at the maximum {human(self.cfg.max_silence_s)})" if want > dur else ""
        return f"🔕 {esc(args[0])} silenced until {fmt_time(ends, self.cfg.zone)}{capped}\nid <code>{sid}</code>"

    async def unsilence_cmd(self, args: list[str], user: dict | None) -> str:
        if len(args) != 1 or not _SILENCE_ID.fullmatch(args[0]):
            return "Usage: /unsilence &lt;id&gt; (the ids are in /silences)"
        await self.am.expire(args[0])
        await self.record.action("unsilence", [], {"by": who(user), "silence_ids": [args[0]]})
        return f"🔔 silence <code>{args[0]}</code> expired"

    # --- buttons ---------------------------------------------------------------------------
    async def callback(self, cq: dict) -> None:
        msg = cq.get("message") or {}
        chat = msg.get("chat") or {}
        user = cq.get("from")
        if not self._allowed(chat, user, "button"):
            return await self._answer(cq, "Not allowed.")
        checked = self.signer.verify(cq.get("data", ""), int(chat.get("id", 0)))
        if checked and checked[0] == "rbk":  # no stored reference: the signature binds the runbook to this chat
            return await self._runbook(cq, int(chat["id"]), checked[1])
        # The reference is the bot's own, made before the page was sent and signed for this chat:
        # it holds on every copy of the page, and before Telegram's answer reached the bot.
        ref = self.store.ref(checked[1], self.clock()) if checked else None
        if not checked or ref is None or ref["chat_id"] != chat.get("id"):
            log.warning("button refused: forged, stale or for another chat", extra={"chat_id": chat.get("id"), "user_id": (user or {}).get("id")})
            return await self._answer(cq, "This button is no longer valid.")
        pressed = msg.get("message_id")
        action = checked[0]
        if action in EXTEND:  # pressed on the announcement, not on a copy of the page: its buttons go once used
            await self._retire_buttons(int(chat["id"]), pressed)
        elif isinstance(pressed, int) and pressed not in ref["message_ids"]:
            self.store.set_message(ref["ref"], pressed)  # a copy whose sending the bot has not heard back from yet
            ref["message_ids"].append(pressed)
        try:
            if action == "uns":
                note = await self._unsilence(ref, user)
            elif ref["state"].get("resolved"):
                note = "Already resolved: nothing to silence."
                await pages.edit(self.tg, self.signer, self.runbooks, ref)  # an old copy still showing buttons loses them
            elif action == "ack":
                note = await self._ack(ref, user)
            elif action in EXTEND:
                note = await self._extend(ref, EXTEND[action], user)
            else:
                note = await self._silence(ref, action, user)
        except UpstreamError as e:
            return await self._answer(cq, f"Failed: {e}"[:190])
        await self._answer(cq, note)

    async def _runbook(self, cq: dict, chat_id: int, k: str) -> None:
        name = self.runbooks.by_key(k)
        if name is None:  # the runbooks changed since the page, or none were found at start
            return await self._answer(cq, "No runbook for this alert in the bot's runbooks.md.")
        await self._answer(cq, f"📖 {name}")
        await self.send_parts(chat_id, self.runbooks.messages(name))

    async def _retire_buttons(self, chat_id: int, message_id) -> None:
        if not isinstance(message_id, int):
            return
        try:
            await self.tg.call_within(time.monotonic() + 10, "editMessageReplyMarkup",
                                      {"chat_id": chat_id, "message_id": message_id, "reply_markup": {"inline_keyboard": []}})
        except TelegramError as e:  # pressed twice: nothing left to retire
            log.info("buttons not retired", extra={"error": str(e)})

    async def _answer(self, cq: dict, text: str) -> None:
        try:
            await self.tg.call("answerCallbackQuery", {"callback_query_id": cq["id"], "text": text[:190]})
        except TelegramError as e:  # an old query cannot be answered any more; the action stands
            log.info("answerCallbackQuery failed", extra={"error": str(e)})

    async def _show(self, ref: dict) -> None:
        """Edit the page after a press. Held back by the chat's flood limit (a storm), the action
        stands, is recorded and answered all the same; the page's next edit shows its note."""
        try:
            await pages.edit(self.tg, self.signer, self.runbooks, ref)
        except TelegramError as e:
            log.warning("the page's edit after a button press was not sent", extra={"error": str(e)[:200]})

    async def _still_firing(self, ref: dict) -> list[dict]:
        """The page's alerts Alertmanager still has (it knows of resolves the bot may not have heard of yet)."""
        active = {json.dumps(a.get("labels", {}), sort_keys=True) for a in await self.am.alerts(active=True, silenced=True, inhibited=True)}
        return [labels for labels in ref["alerts"] if json.dumps(labels, sort_keys=True) in active]

    async def _hold(self, targets: list[dict], ends: datetime, by: str, comment: str) -> list[dict]:
        now = datetime.fromtimestamp(self.clock(), UTC)
        ids = [await self.am.silence(labels, ends, by, comment, starts=now) for labels in targets]
        return [{"id": i, "matchers": labels} for i, labels in zip(ids, targets)]

    async def _ack(self, ref: dict, user: dict | None) -> str:
        ack = ref["state"].get("ack")
        if ack and ref["silences"]:
            return f"Already acknowledged by {ack['by']}."[:190]
        if ref["silences"]:
            return "Already silenced."
        targets = await self._still_firing(ref)
        if not targets:
            return "Already resolved: nothing to acknowledge."
        now = datetime.fromtimestamp(self.clock(), UTC)
        ends = now + timedelta(seconds=min(self.cfg.ack_hold_s, self.cfg.max_silence_s))
        silences = await self._hold(targets, ends, who(user), "acknowledged from Telegram: held while it fires, ended when it resolves")
        self.store.set_silences(ref["ref"], silences)
        ref["silences"] = silences
        name = name_of(user)
        pages.add_note(self.store, ref, f"✋ <b>Acknowledged</b> by {esc(name)} at {render.fmt_clock(self.clock(), self.cfg.zone)}"
                                        f" · reminders held while it fires (until {render.fmt_clock(ends.timestamp(), self.cfg.zone)})",
                       ack={"by": name, "until": ends.timestamp(), "warned": False})
        await self._show(ref)
        await self.record.action("ack", targets, {"by": who(user), "silence_ids": [s["id"] for s in silences], "ends_at": ends.isoformat(),
                                                  "matchers": targets, "message_id": ref["message_id"]})
        return f"Acknowledged by {name}."[:190]

    async def _extend(self, ref: dict, seconds: float, user: dict | None) -> str:
        """A new silence from now for what still fires, the old one ended (an active silence's
        matchers cannot change; its end could, but a new one is plainer in the record)."""
        if not ref["state"].get("ack") or not ref["silences"]:
            return "Not acknowledged any more."
        targets = await self._still_firing(ref)
        if not targets:
            return "Already resolved: nothing to extend."
        old = [s["id"] for s in ref["silences"]]
        now = datetime.fromtimestamp(self.clock(), UTC)
        ends = now + timedelta(seconds=min(seconds, self.cfg.max_silence_s))
        silences = await self._hold(targets, ends, who(user), "acknowledgement extended from Telegram")
        for i in old:
            try:
                await self.am.expire(i)
            except UpstreamError:  # ended already: nothing to undo
                pass
        self.store.set_silences(ref["ref"], silences)
        ref["silences"] = silences
        pages.add_note(self.store, ref, f"⏳ Extended by {esc(name_of(user))} until {render.fmt_clock(ends.timestamp(), self.cfg.zone)}",
                       ack={**ref["state"]["ack"], "until": ends.timestamp(), "warned": False})
        await self._show(ref)
        await self.record.action("ack_extended", targets, {"by": who(user), "silence_ids": [s["id"] for s in silences],
                                                           "ends_at": ends.isoformat(), "matchers": targets})
        return f"Extended until {render.fmt_clock(ends.timestamp(), self.cfg.zone)}"

    async def _silence(self, ref: dict, action: str, user: dict | None) -> str:
        if ref["silences"]:
            return "Already silenced."
        targets = await self._still_firing(ref)
        if not targets:
            return "Already resolved: nothing to silence."
        now = datetime.fromtimestamp(self.clock(), UTC)
        cap = now + timedelta(seconds=self.cfg.max_silence_s)
        ends = {"s1h": now + timedelta(hours=1), "s4h": now + timedelta(hours=4)}.get(action) or next_session_open(now, self.hours)
        ends = min(ends, cap)
        by = who(user)
        silences = await self._hold(targets, ends, by, "from Telegram: button on the alert message")
        ids = [s["id"] for s in silences]
        self.store.set_silences(ref["ref"], silences)
        ref["silences"] = silences
        names = sorted({lab.get("alertname", "?")[:80] for lab in targets})
        shown = ", ".join(html.escape(n, quote=False) for n in names[:5]) + (f" and {len(names) - 5} more" if len(names) > 5 else "")
        pages.add_note(self.store, ref, f"🔕 <b>Silenced</b> by {esc(name_of(user))} until {fmt_time(ends, self.cfg.zone)}: {shown}")
        await self._show(ref)
        await self.record.action("silence", targets, {"by": by, "silence_ids": ids, "ends_at": ends.isoformat(), "matchers": targets,
                                                      "message_id": ref["message_id"], "button": action})
        return f"Silenced until {fmt_time(ends, self.cfg.zone)}"

    async def _unsilence(self, ref: dict, user: dict | None) -> str:
        if not ref["silences"]:
            return "Not silenced."
        ids = [s["id"] for s in ref["silences"]]
        for i in ids:
            await self.am.expire(i)
        self.store.set_silences(ref["ref"], [])
        ref["silences"] = []
        by = who(user)
        at = fmt_time(datetime.fromtimestamp(self.clock(), UTC), self.cfg.zone)
        pages.add_note(self.store, ref, f"🔔 Unsilenced by {esc(name_of(user))} at {at}", ack=None)
        await self._show(ref)
        await self.record.action("unsilence", ref["alerts"], {"by": by, "silence_ids": ids, "message_id": ref["message_id"]})
        return "Unsilenced."
