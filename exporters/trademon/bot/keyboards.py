"""The buttons under the bot's messages: acknowledge, silence an alert for 1h, 4h or until the next session,
and one per runbook. Each button's callback data is signed (trademon.bot.auth), so a press
proves it came from a message the bot sent to that chat."""

from __future__ import annotations

from collections.abc import Sequence

from trademon.bot.auth import Signer
from trademon.bot.runbooks import key


def runbook_rows(signer: Signer, names: Sequence[str], chat_id: int) -> list[list[dict]]:
    """One 📖 button per runbook, a row each (alert names are long on a phone's width)."""
    return [[{"text": f"📖 {n}", "callback_data": signer.sign("rbk", key(n), chat_id)}] for n in names]


def keyboard(signer: Signer, ref: str, chat_id: int, runbooks: Sequence[str] = ()) -> dict:
    return {"inline_keyboard": [
        [{"text": "✋ Ack", "callback_data": signer.sign("ack", ref, chat_id)}],
        [{"text": "🔕 Silence 1h", "callback_data": signer.sign("s1h", ref, chat_id)},
         {"text": "🔕 Silence 4h", "callback_data": signer.sign("s4h", ref, chat_id)}],
        [{"text": "🔕 Until the next session", "callback_data": signer.sign("sns", ref, chat_id)}],
        *runbook_rows(signer, runbooks, chat_id)]}


def extend_keyboard(signer: Signer, ref: str, chat_id: int) -> dict:
    """Under the announcement that an acknowledgement ends while its alert still fires."""
    return {"inline_keyboard": [[{"text": "⏳ Extend 1h", "callback_data": signer.sign("x1h", ref, chat_id)},
                                 {"text": "⏳ Extend 4h", "callback_data": signer.sign("x4h", ref, chat_id)}]]}
