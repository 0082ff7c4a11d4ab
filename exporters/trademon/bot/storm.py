"""A storm in one chat, within Telegram's limits (about 20 messages a minute in a group, edits
counted too). Up to PAGES_PER_MINUTE firing notifications a minute are pages of their own
(critical ones CRITICAL_EXTRA more: they ring); past that the chat's notifications, firing and
resolved, fold into ONE status message, edited at most EDITS_PER_MINUTE times a minute: the
firing alerts counted by name, how many were silenced and resolved, and silence buttons that
name how many alerts they act on. Each rendering of the status is a reference of its own
(trademon.bot.store refs), so a button acts on what that rendering showed, even when a newer
one has not reached the phone yet. The storm ends after QUIET_MINUTES without a notification.

At most 8 + 4 pages, 1 status message and 6 edits a minute: 19, under Telegram's 20, and the
Bot API client's own pacing (trademon.bot.pace) holds back anything else (a command's answer,
a button's edit) rather than meet a 429.
"""

from __future__ import annotations

import asyncio
import json
import secrets
import time
from collections.abc import Callable
from zoneinfo import ZoneInfo

from trademon.bot import pages, render
from trademon.bot.auth import Signer
from trademon.bot.pace import GROUP_PER_MINUTE, MINUTE, Window
from trademon.bot.runbooks import Runbooks
from trademon.bot.store import Store
from trademon.bot.telegram import TelegramClient, TelegramError, turn_within

# At Telegram's 20 messages a minute in a group (TRADEMON_BOT_GROUP_PER_MINUTE); a limit set
# otherwise scales them alike.
PAGES_PER_MINUTE = 8    # firing notifications a minute sent as pages of their own, in one chat
CRITICAL_EXTRA = 4      # more of them a minute when critical (they ring; an edit never does)
EDITS_PER_MINUTE = 6    # the status message's edits a minute: one every 10 s at most
QUIET_MINUTES = 5       # no notification for this long: the storm is over
MAX_REFS = 50           # renderings of one status whose silences are still shown (bounded)
MAX_NOTES = 4
MAX_TRACKED = 2000      # firing alerts a storm keeps by name (bounded work per notification); past it, counted


def key(labels: dict) -> str:
    return json.dumps(labels, sort_keys=True)


class Storm:
    """The storms of the bot's chats: state in the store (kv ``storm:<chat>``), so a restart
    resumes the status message instead of starting a second one."""

    def __init__(self, store: Store, minute: float = MINUTE, clock: Callable[[], float] = time.time, per_minute: int = GROUP_PER_MINUTE):
        self.store, self.minute, self.clock, self.per_minute = store, minute, clock, per_minute
        scale = per_minute / GROUP_PER_MINUTE
        self.pages_limit, self.critical_limit = max(1, round(PAGES_PER_MINUTE * scale)), max(1, round(CRITICAL_EXTRA * scale))
        self.edit_every = minute / max(1, round(EDITS_PER_MINUTE * scale))
        self._pages: dict[int, Window] = {}
        self._critical: dict[int, Window] = {}
        self._lock = asyncio.Lock()  # one rendering at a time: never two status messages

    def _window(self, which: dict[int, Window], chat_id: int, limit: int) -> Window:
        if chat_id not in which:
            which[chat_id] = Window(limit, self.minute, self.clock)
        return which[chat_id]

    def state(self, chat_id: int) -> dict | None:
        raw = self.store.get(f"storm:{chat_id}")
        return json.loads(raw) if raw else None

    def _save(self, chat_id: int, state: dict) -> None:
        self.store.set(f"storm:{chat_id}", json.dumps(state))

    def active(self, chat_id: int) -> dict | None:
        state = self.state(chat_id)
        return state if state and self.clock() - state["last"] < QUIET_MINUTES * self.minute else None

    def takes(self, chat_id: int, payload: dict) -> list | None:
        """At accept: ``[storm id, version]`` when this notification folds into the chat's
        status message, None when it is a message of its own (counted as a page if firing)."""
        firing = [a for a in payload["alerts"] if a["status"] == "firing"]
        state = self.active(chat_id)
        if state is None and not firing:
            return None
        if state is None and self._window(self._pages, chat_id, self.pages_limit).wait() == 0:
            self._pages[chat_id].take()
            return None
        # A critical alert new to the storm still rings as a page of its own, a few a minute (an edit never rings).
        new = [a for a in firing if state is None or key(a["labels"]) not in state["firing"]]
        if new and render.severity_of(payload) == "critical" and self._window(self._critical, chat_id, self.critical_limit).wait() == 0:
            self._critical[chat_id].take()
            return None
        if state is None:
            now = self.clock()
            state = {"id": secrets.token_hex(4), "since": now, "last": now, "firing": {}, "resolved": 0, "version": 0,
                     "shown": 0, "message_id": None, "edited": 0.0, "refs": []}
        for a in payload["alerts"]:
            k = key(a["labels"])
            if a["status"] == "firing":
                if k in state["firing"] or len(state["firing"]) < MAX_TRACKED:
                    state["firing"][k] = a["labels"]
                else:
                    state["untracked"] = state.get("untracked", 0) + 1
            elif state["firing"].pop(k, None) is not None or not firing:
                state["resolved"] += 1
        state["version"] += 1
        state["last"] = self.clock()
        self._save(chat_id, state)
        return [state["id"], state["version"]]

    def _silenced(self, state: dict) -> tuple[set[str], list[str]]:
        """The alerts silenced from the status's renderings, and their notes (newest last)."""
        keys: set[str] = set()
        notes: list[str] = []
        for r in state["refs"]:
            ref = self.store.ref(r)
            if ref is None:
                continue
            keys.update(key(s["matchers"]) for s in ref["silences"])
            notes.extend(ref["state"].get("notes", []))
        return keys, notes[-MAX_NOTES:]

    def compose(self, chat_id: int, state: dict, zone: ZoneInfo) -> tuple[str, list[dict]]:
        """The status text and the alerts its buttons act on (firing, not silenced, listed)."""
        silenced, notes = self._silenced(state)
        firing = [{"labels": labels} for k, labels in state["firing"].items() if k not in silenced]
        n_silenced = sum(1 for k in state["firing"] if k in silenced)
        critical = sum(1 for a in firing if a["labels"].get("severity") == "critical")
        untracked = state.get("untracked", 0)
        head = (f"🌩 <b>STORM</b> · {len(firing)} firing" + (f" ({critical} critical)" if critical else "")
                + f" · {n_silenced} silenced · {state['resolved']} resolved"
                + (f" · {untracked} more notifications past the {MAX_TRACKED} alerts tracked: /alerts" if untracked else ""))
        about = (f"<i>Since {render.fmt_clock(state['since'], zone)}, more than {self.pages_limit} pages a minute in this chat: "
                 f"they are counted in this message, edited at most every {self.edit_every:.0f} s, instead of new messages "
                 f"(this chat's limit: {self.per_minute} messages a minute, edits included). Updated {render.fmt_clock(self.clock(), zone)}.</i>")
        tail = "\n\n".join(notes)
        listed, shown, more = render.digest_lines(firing, render.PART_BUDGET - render.units(head + about + tail) - 200)
        text = "\n".join([head, about, *listed])
        if more:
            text += f"\n… {more} more not listed (the buttons act on the {len(shown)} listed): /alerts"
        return (text + ("\n\n" + tail if tail else "")), shown

    async def show(self, tg: TelegramClient, signer: Signer, runbooks: Runbooks, zone: ZoneInfo, chat_id: int, at: list,
                   deadline: float) -> float:
        """Bring the status message up to ``at`` (``[storm id, version]``): 0 when it shows it
        (or a newer storm replaced it), else the seconds until the next edit may go."""
        # the wait for the lock ends at the caller's deadline too: the webhook's answer must not
        # wait out the outbox loop's longer send to a stalled Telegram
        async with turn_within(self._lock, deadline, "sendMessage", "an earlier status of this storm is still waiting for Telegram"):
            state = self.state(chat_id)
            if state is None or state["id"] != at[0] or state["shown"] >= at[1]:
                return 0.0
            wait = state["edited"] + self.edit_every - self.clock()
            if state["message_id"] is not None and wait > 0:
                return wait
            version = state["version"]
            text, shown = self.compose(chat_id, state, zone)
            ref = self.store.new_ref(chat_id, shown, text, f"storm:{state['id']}", state={"storm": True, "counted": True})
            page = self.store.ref(ref)
            assert page is not None
            keys = pages.markup(signer, page, runbooks) if shown else {"inline_keyboard": []}
            msg = {"chat_id": chat_id, "text": text, "parse_mode": "HTML", "reply_markup": keys, "link_preview_options": {"is_disabled": True}}
            if state["message_id"] is None:
                critical = any(a.get("severity") == "critical" for a in shown)
                result = await tg.call_within(deadline, "sendMessage", {**msg, "disable_notification": not critical})
                state["message_id"] = result["message_id"]
            else:
                try:
                    await tg.call_within(deadline, "editMessageText", {**msg, "message_id": state["message_id"]})
                except TelegramError as e:  # the status deleted in the chat: a new one
                    if e.code != 400 or "not found" not in e.description:
                        raise
                    result = await tg.call_within(deadline, "sendMessage", {**msg, "disable_notification": True})
                    state["message_id"] = result["message_id"]
            self.store.set_message(ref, state["message_id"])
            fresh = self.state(chat_id) or state  # notifications folded in while this one was sent
            fresh.update(message_id=state["message_id"], shown=version, edited=self.clock(), refs=[*state["refs"], ref][-MAX_REFS:])
            self._save(chat_id, fresh)
            return 0.0
