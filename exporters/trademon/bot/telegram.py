"""The Telegram Bot API client: JSON in, ``result`` out, Telegram's errors as exceptions.

The URL holds the token, so no URL is ever logged or put in an exception message (httpx's
own request log is turned down in ``cli``, and the token is registered with ``logs``).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import AsyncIterator, Callable

import httpx

from trademon.bot.pace import Pacer
from trademon.runtime import http
from trademon.runtime.backoff import Backoff

log = logging.getLogger("trademon.bot.telegram")


class TelegramError(Exception):
    def __init__(self, method: str, code: int, description: str, retry_after: float | None = None):
        super().__init__(f"Telegram {method}: {code} {description}")
        self.method, self.code, self.description, self.retry_after = method, code, description, retry_after


class Conflict(TelegramError):
    """409: another process polls getUpdates with the same token (or a webhook is set)."""


class Unreachable(TelegramError):
    pass


@contextlib.asynccontextmanager
async def turn_within(lock: asyncio.Lock, deadline: float, method: str, busy: str) -> AsyncIterator[None]:
    """``lock`` held, waited for no later than the monotonic ``deadline``: past it, Unreachable
    saying ``busy`` (the earlier holder is still waiting for Telegram; this send stays in the outbox)."""
    try:
        async with asyncio.timeout(max(0.0, deadline - time.monotonic())):
            await lock.acquire()
    except TimeoutError:
        raise Unreachable(method, 0, busy) from None
    try:
        yield
    finally:
        lock.release()


class Paced(TelegramError):
    """Not sent: the chat's flood limit (trademon.bot.pace) would pass before the deadline.
    Code 429 with ``retry_after``, as Telegram would have answered, without asking it."""


CALL_ROOM_S = 2.0  # a paced call goes only with this long left before its deadline
GATED = {"sendMessage", "sendPhoto", "editMessageText", "editMessageReplyMarkup"}  # what a 429 holds back


class TelegramClient:
    def __init__(self, api_url: str, token: str, timeout: float = 10.0,
                 answered: Callable[[str, int, str, dict | None], None] | None = None, pacer: Pacer | None = None):
        self._base = f"{api_url.rstrip('/')}/bot{token}"
        # (method, code, description, parameters) of every answer, for the metrics: 200 for a
        # success, 0 when the Bot API could not be reached
        self._answered = answered or (lambda *_: None)
        self._http = http.async_client(timeout)
        self._timeout = timeout
        # monotonic, per chat: a 429's retry_after holds back that chat's sends, not only the refused one.
        # Per chat, as Telegram's flood limits are: a 429 on one chat must not delay another's page.
        self._not_before: dict[str, float] = {}
        # One send at a time per chat (Telegram keeps a chat's messages in the order sent; a 429 is
        # seen before that chat's next send goes); chats do not wait for each other. The chats are
        # the configured ones (commands come only from allowed chats): a few locks.
        self._chat_locks: dict[str, asyncio.Lock] = {}
        # Telegram's per-chat flood limits kept here (edits count too), so a storm meets no 429.
        self.pacer = pacer or Pacer()

    async def call(self, method: str, payload: dict | None = None, *, files: dict | None = None, timeout: float | None = None):
        url = f"{self._base}/{method}"
        try:
            if files:
                data = {k: (json.dumps(v) if isinstance(v, (dict, list)) else str(v)) for k, v in (payload or {}).items()}
                r = await self._http.post(url, data=data, files=files, timeout=timeout or self._timeout)
            else:
                r = await self._http.post(url, json=payload or {}, timeout=timeout or self._timeout)
        except httpx.HTTPError as e:  # the message of some httpx errors names the URL: keep only the kind
            self._answered(method, 0, "", None)
            raise Unreachable(method, 0, f"cannot reach the Bot API ({type(e).__name__})") from None
        try:
            doc = r.json()
        except ValueError:
            self._answered(method, r.status_code if r.status_code != 200 else 502, "", None)
            raise TelegramError(method, r.status_code, f"non-JSON answer (HTTP {r.status_code})") from None
        if doc.get("ok"):
            self._answered(method, 200, "", None)
            return doc.get("result")
        code = int(doc.get("error_code") or r.status_code)
        desc = str(doc.get("description") or "")[:300]
        self._answered(method, code, desc, doc.get("parameters") if isinstance(doc.get("parameters"), dict) else None)
        retry_after = (doc.get("parameters") or {}).get("retry_after")
        if code == 429 and retry_after is not None and method in GATED:
            self._hold(str((payload or {}).get("chat_id")), time.monotonic() + float(retry_after))
        cls = Conflict if code == 409 else TelegramError
        raise cls(method, code, desc, float(retry_after) if retry_after is not None else None)

    def _hold(self, chat: str, until: float) -> None:
        now = time.monotonic()
        if len(self._not_before) > 100:  # bounded: holds that are over go
            self._not_before = {c: t for c, t in self._not_before.items() if t > now}
        self._not_before[chat] = max(self._not_before.get(chat, 0.0), until)

    def held_for(self, chat_id) -> float:
        """Seconds a send to ``chat_id`` must still wait for an earlier 429 (0 when none)."""
        return max(0.0, self._not_before.get(str(chat_id), 0.0) - time.monotonic())

    async def call_within(self, deadline: float, method: str, payload: dict | None = None, **kw):
        """``call``, waiting out 429 retry_after (and retrying 5xx / unreachable with backoff)
        while the monotonic ``deadline`` allows; the last error otherwise."""
        retry = Backoff(0.5, 10)
        while True:
            chat = str((payload or {}).get("chat_id"))
            hold = self.held_for(chat) if method in GATED else 0
            if hold > 0:
                if time.monotonic() + hold > deadline:
                    raise TelegramError(method, 429, "Too Many Requests (held back by an earlier retry_after)", hold)
                await asyncio.sleep(hold)
                continue
            # No call outlives the deadline: the webhook answers Alertmanager in time, the outbox has it.
            kw["timeout"] = min(self._timeout, max(0.5, deadline - time.monotonic()))
            try:
                if method not in GATED:
                    return await self.call(method, payload, **kw)
                lock = self._chat_locks.setdefault(chat, asyncio.Lock())
                async with turn_within(lock, deadline, method, "an earlier send to this chat is still waiting for Telegram"):
                    if self.held_for(chat) > 0:
                        continue  # a 429 arrived while this one waited for its turn
                    window = await self._pace(chat, method, deadline)
                    kw["timeout"] = min(self._timeout, max(0.5, deadline - time.monotonic()))
                    try:
                        return await self.call(method, payload, **kw)
                    finally:  # counted once answered: the window then runs from no earlier than Telegram's count
                        window.take()
            except TelegramError as e:
                if e.code == 429 and e.retry_after is not None:
                    wait = e.retry_after
                elif e.code >= 500 or isinstance(e, Unreachable):
                    wait = retry.next()
                else:
                    raise
                if time.monotonic() + wait > deadline:
                    raise
                log.warning("Telegram asks to wait", extra={"method": method, "code": e.code, "wait_s": wait})
                await asyncio.sleep(wait)

    async def _pace(self, chat: str, method: str, deadline: float):
        """Wait (the chat's lock held: its messages keep their order) until the chat's window
        allows one more call; Paced if that is past the deadline. Returns the window."""
        window = self.pacer.window(chat)
        while (pause := window.wait()) > 0:
            # room left for the call itself: a call cut short by its timeout may still have been
            # taken by Telegram, and the retry would be a second copy
            if time.monotonic() + pause + CALL_ROOM_S > deadline:
                raise Paced(method, 429, f"held back: Telegram allows {window.limit} messages a minute in this chat", pause)
            await asyncio.sleep(pause)
        return window

    async def close(self) -> None:
        await self._http.aclose()
