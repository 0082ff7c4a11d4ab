"""A page's life in one message: its text as it stands (the page as sent, then the notes added
to it: silenced, unsilenced, resolved), the buttons its state allows, and the edit of every
copy of it in the chat (a page sent twice, after a kill -9, has two)."""

from __future__ import annotations

import logging
import time

from trademon.bot import render
from trademon.bot.auth import Signer
from trademon.bot.keyboards import keyboard, runbook_rows
from trademon.bot.runbooks import Runbooks
from trademon.bot.store import Store
from trademon.bot.telegram import TelegramClient, TelegramError

log = logging.getLogger("trademon.bot.pages")
MAX_NOTES = 6
TEXT_BUDGET = 4000  # UTF-16 units of raw text: Telegram's 4096 are counted after the markup is parsed


def text_of(ref: dict) -> str:
    """The page and its notes; the oldest notes go first when it would not fit Telegram's 4096."""
    notes = list(ref["state"].get("notes", []))
    while True:
        text = "\n\n".join([ref["text"], *notes])
        if not notes or render.units(text) <= TEXT_BUDGET:
            return text
        notes.pop(0)


def add_note(store: Store, ref: dict, note: str, **state) -> None:
    """Append ``note`` to the page (and set ``state``), on disk and in ``ref``."""
    new = {**ref["state"], **state, "notes": [*ref["state"].get("notes", []), note][-MAX_NOTES:]}
    store.set_state(ref["ref"], new)
    ref["state"] = new


def markup(signer: Signer, ref: dict, runbooks: Runbooks) -> dict:
    """Firing: the silence buttons; silenced: Unsilence; resolved: only the runbooks (nothing
    left to silence)."""
    names = runbooks.for_alerts(ref["alerts"])
    if ref["state"].get("resolved"):
        return {"inline_keyboard": runbook_rows(signer, names, ref["chat_id"])}
    if ref["silences"]:
        return {"inline_keyboard": [[{"text": "🔔 Unsilence", "callback_data": signer.sign("uns", ref["ref"], ref["chat_id"])}],
                                    *runbook_rows(signer, names, ref["chat_id"])]}
    counted = ref["state"].get("counted")
    return keyboard(signer, ref["ref"], ref["chat_id"], names, count=len(ref["alerts"]) if counted else None,
                    ack=not ref["state"].get("storm"))


async def edit(tg: TelegramClient, signer: Signer, runbooks: Runbooks, ref: dict, also: int | None = None, within: float = 10) -> None:
    """Show the page as it stands on every copy (and on ``also``, the copy a button was pressed
    on). A copy deleted in the chat, or already showing it, is no error."""
    text, keys = text_of(ref), markup(signer, ref, runbooks)
    for mid in dict.fromkeys([*ref["message_ids"], *([also] if also else [])]):
        msg = {"chat_id": ref["chat_id"], "message_id": mid, "text": text, "parse_mode": "HTML", "reply_markup": keys,
               "link_preview_options": {"is_disabled": True}}
        try:
            await tg.call_within(time.monotonic() + within, "editMessageText", msg)
        except TelegramError as e:
            if e.code == 400 and ("not modified" in e.description or "not found" in e.description):
                continue
            if e.code == 429:
                raise
            log.warning("editMessageText failed; replacing the buttons only", extra={"error": str(e)})
            await tg.call("editMessageReplyMarkup", {"chat_id": ref["chat_id"], "message_id": mid, "reply_markup": keys})
