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


def keyboard(signer: Signer, ref: str, chat_id: int, runbooks: Sequence[str] = (), count: int | None = None,
             ack: bool = True) -> dict:
    """``count``: the buttons say how many alerts they act on ("🔕 Silence 1h · all 60"), for a
    message that counts its alerts rather than showing each in full. ``ack``: a storm's status
    message has no Ack (it is silenced as a whole; pages are acknowledged one by one)."""
    all_n = f" · all {count}" if count is not None else ""
    return {"inline_keyboard": [
        *([[{"text": f"✋ Ack{all_n}", "callback_data": signer.sign("ack", ref, chat_id)}]] if ack else []),
        [{"text": f"🔕 Silence 1h{all_n}", "callback_data": signer.sign("s1h", ref, chat_id)},
         {"text": f"🔕 Silence 4h{all_n}", "callback_data": signer.sign("s4h", ref, chat_id)}],
        [{"text": f"🔕 Until the next session{all_n}", "callback_data": signer.sign("sns", ref, chat_id)}],
        *runbook_rows(signer, runbooks, chat_id)]}


def extend_keyboard(signer: Signer, ref: str, chat_id: int) -> dict:
    """Under the announcement that an acknowledgement ends while its alert still fires."""
    return {"inline_keyboard": [[{"text": "⏳ Extend 1h", "callback_data": signer.sign("x1h", ref, chat_id)},
                                 {"text": "⏳ Extend 4h", "callback_data": signer.sign("x4h", ref, chat_id)}]]}
