"""Who may act, and callback data nobody can forge.

Only the configured chats may run commands or press buttons; in a group or channel only
the configured users. Callback data (64 bytes at most) is ``action|ref|mac``: ``ref`` names a
notification the bot stored (for ``rbk``, a runbook's key), ``mac`` is an HMAC of action, ref and chat, so data copied to
another chat, edited, or made up does nothing.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re

# silence 1h, 4h, until the next session; unsilence; runbook (ref: its key); acknowledge; extend an acknowledgement 1h, 4h
ACTIONS = {"s1h", "s4h", "sns", "uns", "rbk", "ack", "x1h", "x4h"}
_DATA = re.compile(r"(s1h|s4h|sns|uns|rbk|ack|x1h|x4h)\|([A-Za-z0-9]{1,16})\|([A-Za-z0-9_-]{16})")


class Signer:
    def __init__(self, bot_token: str):
        self._key = hmac.new(bot_token.encode(), b"trademon-bot callback v1", hashlib.sha256).digest()

    def _mac(self, action: str, ref: str, chat_id: int) -> str:
        d = hmac.new(self._key, f"{action}|{ref}|{chat_id}".encode(), hashlib.sha256).digest()
        return base64.urlsafe_b64encode(d)[:16].decode()

    def sign(self, action: str, ref: str, chat_id: int) -> str:
        assert action in ACTIONS
        return f"{action}|{ref}|{self._mac(action, ref, chat_id)}"

    def verify(self, data: str, chat_id: int) -> tuple[str, str] | None:
        m = _DATA.fullmatch(data or "")
        if not m:
            return None
        action, ref, mac = m.groups()
        return (action, ref) if hmac.compare_digest(mac, self._mac(action, ref, chat_id)) else None


def may_act(allowed_chats: frozenset[int], allowed_users: frozenset[int], chat: dict, user: dict | None) -> bool:
    if int(chat.get("id", 0)) not in allowed_chats:
        return False
    if chat.get("type") == "private":
        return user is not None and int(user.get("id", 0)) == int(chat["id"])
    return user is not None and int(user.get("id", 0)) in allowed_users
