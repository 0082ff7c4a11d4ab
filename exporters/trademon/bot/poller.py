"""getUpdates long polling: no inbound port on the trader's host.

Telegram lets one poller per token; a second one makes both get 409 Conflict. That is said
once, plainly, with what to do, and the poller backs off (5 s doubling to 5 min) instead
of spinning; readiness reports it until a poll succeeds again.
"""

from __future__ import annotations

import asyncio
import logging

from trademon.bot.telegram import Conflict, TelegramClient, TelegramError
from trademon.runtime.backoff import Backoff

log = logging.getLogger("trademon.bot.poller")

CONFLICT_HELP = ("409 Conflict from Telegram: another process is polling updates with this bot token "
                 "(a second `trademon bot`, another bot framework, or a webhook set on the token). "
                 "Only one may poll: stop the other one (or delete its webhook with deleteWebhook). "
                 "Retrying with backoff; alerts are still delivered meanwhile.")


class Poller:
    def __init__(self, tg: TelegramClient, dispatch, timeout_s: int = 25, max_parallel: int = 4):
        self.tg, self.dispatch, self.timeout_s = tg, dispatch, timeout_s
        self.offset: int | None = None
        self.conflict = False
        self.polls = 0
        self._sem = asyncio.Semaphore(max_parallel)  # bounded work: a flood of updates queues here

    async def _handle(self, update: dict) -> None:
        async with self._sem:
            try:
                await self.dispatch(update)
            except Exception:  # noqa: BLE001 - one bad update must not stop the poller
                log.exception("update handling failed", extra={"update_id": update.get("update_id")})

    async def poll_once(self) -> list[dict]:
        payload = {"timeout": self.timeout_s, "allowed_updates": ["message", "callback_query"]}
        if self.offset is not None:
            payload["offset"] = self.offset
        self.polls += 1
        updates = await self.tg.call("getUpdates", payload, timeout=self.timeout_s + 10)
        for u in updates:
            self.offset = max(self.offset or 0, int(u["update_id"]) + 1)
        return updates

    async def run(self) -> None:
        conflicts, errors = Backoff(5.0, 300), Backoff(1.0, 60)
        tasks: set[asyncio.Task] = set()
        while True:
            try:
                updates = await self.poll_once()
            except Conflict:
                if not self.conflict:
                    log.error(CONFLICT_HELP)
                self.conflict = True
                wait = conflicts.next()
                log.warning("getUpdates conflict, backing off", extra={"wait_s": wait})
                await asyncio.sleep(wait)
                continue
            except TelegramError as e:
                wait = errors.next()
                log.warning("getUpdates failed, backing off", extra={"error": str(e), "wait_s": wait})
                await asyncio.sleep(e.retry_after or wait)
                continue
            if self.conflict:
                log.info("polling again: the other poller is gone")
            self.conflict = False
            conflicts.reset()
            errors.reset()
            for u in updates:
                t = asyncio.create_task(self._handle(u))
                tasks.add(t)
                t.add_done_callback(tasks.discard)
