"""Acknowledgements, watched: Alertmanager has none (its issue 1860), so an Ack is a silence
held while the alert fires. Alertmanager 0.33.1 sends no resolved notification for a
silenced alert, even after the silence ends, so the bot asks instead: every
``ack_check_s``, one GET /api/v2/alerts (only while some page is acknowledged) says which
acknowledged alerts still fire. One resolved: its silence is ended and the page edited
("Resolved"). One still firing when its silence is about to end: announced in the chat,
once, ``ack_warn_s`` before, with Extend buttons."""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Callable

from trademon.bot import pages, render
from trademon.bot.auth import Signer
from trademon.bot.config import BotConfig
from trademon.bot.keyboards import extend_keyboard
from trademon.bot.reports import esc
from trademon.bot.runbooks import Runbooks
from trademon.bot.store import Store
from trademon.bot.telegram import TelegramClient, TelegramError
from trademon.bot.upstream import Alertmanager, Record, UpstreamError

log = logging.getLogger("trademon.bot.acks")
MAX_WATCHED = 50  # acknowledged pages looked at per turn (bounded work)


class AckWatch:
    def __init__(self, cfg: BotConfig, store: Store, tg: TelegramClient, am: Alertmanager, record: Record, signer: Signer,
                 runbooks: Runbooks, clock: Callable[[], float] = time.time):
        self.cfg, self.store, self.tg, self.am, self.record, self.signer = cfg, store, tg, am, record, signer
        self.runbooks, self.clock = runbooks, clock

    async def run(self) -> None:
        while True:
            try:
                await self.turn()
            except (UpstreamError, TelegramError) as e:  # Alertmanager or Telegram away: the next turn asks again
                log.warning("acknowledgements not checked this turn", extra={"error": str(e)[:200]})
            except Exception as e:  # noqa: BLE001 - the loop must outlive any one fault (a state directory that takes no write)
                log.error("acknowledgements not worked this turn", extra={"error": f"{type(e).__name__}: {str(e)[:200]}"})
            await asyncio.sleep(self.cfg.ack_check_s)

    async def turn(self) -> None:
        acked = self.store.acknowledged(MAX_WATCHED)
        if not acked:
            return
        firing = {json.dumps(a.get("labels", {}), sort_keys=True) for a in await self.am.alerts(active=True, silenced=True, inhibited=True)}
        now = self.clock()
        for ref in acked:
            still = [labels for labels in ref["alerts"] if json.dumps(labels, sort_keys=True) in firing]
            ack = ref["state"]["ack"]
            if not still:
                await self._resolved(ref)
            elif not ack.get("warned") and ack["until"] - now <= self.cfg.ack_warn_s:
                await self._announce(ref, still, ack)

    async def _resolved(self, ref: dict) -> None:
        ids = [s["id"] for s in ref["silences"]]
        for i in ids:
            try:
                await self.am.expire(i)
            except UpstreamError:  # ended already
                pass
        self.store.set_silences(ref["ref"], [])
        ref["silences"] = []
        pages.add_note(self.store, ref, f"✅ <b>Resolved</b> at {render.fmt_clock(self.clock(), self.cfg.zone)}"
                                        " · the acknowledgement's silence ended", resolved=True, ack=None)
        await pages.edit(self.tg, self.signer, self.runbooks, ref)
        await self.record.action("ack_resolved", ref["alerts"], {"silence_ids": ids})

    async def _announce(self, ref: dict, still: list[dict], ack: dict) -> None:
        names = sorted({labels.get("alertname", "?") for labels in still})
        text = (f"⏳ The acknowledgement by {esc(ack['by'])} of {esc(', '.join(names[:5]))} ends at "
                f"{render.fmt_clock(ack['until'], self.cfg.zone)} and it still fires: reminders come back then.")
        await self.tg.call_within(time.monotonic() + 10, "sendMessage",
                                  {"chat_id": ref["chat_id"], "text": text, "parse_mode": "HTML",
                                   "reply_markup": extend_keyboard(self.signer, ref["ref"], ref["chat_id"])})
        ref["state"] = {**ref["state"], "ack": {**ack, "warned": True}}
        self.store.set_state(ref["ref"], ref["state"])
