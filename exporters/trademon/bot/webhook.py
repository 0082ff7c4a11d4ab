"""Alertmanager -> bot: ``POST /alerts`` (webhook payload version 4, bearer token), and the
outbox that makes delivery to Telegram survive a Telegram outage or a bot restart.

Pager safety: a notification is answered 2xx only once it is in the outbox on disk
(SQLite, synchronous=FULL); it is then delivered at once if Telegram allows within
``deliver_within_s``, else by the outbox loop, which a restart resumes. Until the bot has
answered, Alertmanager keeps retrying (its backoff, then the next group_interval flush),
so a dead bot delays a page, never loses it. A bot killed after Telegram took a message
but before it answered sends that message again on the retry: at least once, never zero.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import json
import logging
import re
import sqlite3
import time

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from trademon.alertmanager.payload import Rejected, parse
from trademon.bot import render
from trademon.bot.auth import Signer
from trademon.bot import history, pages
from trademon.bot.metrics import page_of
from trademon.bot.runbooks import Runbooks
from trademon.bot.config import BotConfig
from trademon.bot.store import Store
from trademon.bot.pace import Pacer
from trademon.bot.storm import Storm
from trademon.bot.telegram import TelegramClient, TelegramError
from trademon.runtime.backoff import Backoff

log = logging.getLogger("trademon.bot.webhook")



def digest(payload: dict) -> str:
    """What makes two notifications the same one: receiver, group, status and each alert's
    identity and times (a firing alert's endsAt is Alertmanager's, not the rule's)."""
    alerts = sorted((a.get("fingerprint") or json.dumps(a.get("labels", {}), sort_keys=True), a.get("status"), a.get("startsAt"),
                     a.get("endsAt") if a.get("status") == "resolved" else None) for a in payload["alerts"])
    doc = [payload.get("receiver"), payload.get("groupKey"), payload.get("status"), alerts]
    return hashlib.sha256(json.dumps(doc, sort_keys=True).encode()).hexdigest()


class Delivery:
    def __init__(self, cfg: BotConfig, store: Store, tg: TelegramClient, signer: Signer, metrics=None, runbooks: Runbooks | None = None):
        self.cfg, self.store, self.tg, self.signer = cfg, store, tg, signer
        self.runbooks = runbooks or Runbooks({})
        self.metrics = metrics
        self._busy: set[str] = set()  # outbox items being sent now (the webhook and the loop never both send one)
        self.links = render.Links(cfg.grafana_url, cfg.alertmanager_external_url)
        pacer = tg.pacer if tg is not None else Pacer()  # the client's minute and limit: the storm's budgets fit them
        self.storm = Storm(store, pacer.minute, per_minute=pacer.group_limit)

    def accept(self, payload: dict) -> tuple[str, dict]:
        """Render, and put in the outbox (on disk when this returns). A notification whose
        alerts are all resolved edits the pages it ends (quietly, their buttons retired)
        instead of ringing as a new message."""
        self.store.record(history.rows_of(payload))  # for /history: each alert's start and end, once
        ended = self._ended_pages(payload)
        storm = self.storm.takes(self.cfg.chat_id, payload)
        if storm is not None:  # past the chat's rate of pages: counted in its status message instead
            item = {"chat_id": self.cfg.chat_id, "silent": True, "parts": [], "sent": 0, "ref": None, "retire": ended, "storm": storm,
                    "page": page_of(payload, render.severity_of(payload), time.time())}
            if self.metrics is not None:
                self.metrics.folded.inc()
            return self._put(payload, item), item
        parts, firing, counted = render.render_page(payload, self.links)  # the firing alerts shown: what the buttons act on
        silent = render.severity_of(payload) != "critical" or not firing  # warnings and resolves arrive quietly
        item = {"chat_id": self.cfg.chat_id, "silent": silent, "parts": [] if ended and not firing else parts, "sent": 0, "ref": None,
                "runbooks": self.runbooks.for_alerts(firing), "retire": ended,
                "page": page_of(payload, render.severity_of(payload), time.time())}  # for its latency, once delivered
        if firing:
            item["ref"] = self.store.new_ref(self.cfg.chat_id, firing, parts[-1], str(payload.get("groupKey", "")),
                                             state={"counted": True} if counted else None)
        return self._put(payload, item), item

    def _put(self, payload: dict, item: dict) -> str:
        oid = self.store.put(item)
        now = time.time()
        self.store.remember(digest(payload), oid, now, forget_before=now - self.cfg.retry_window_s)
        return oid

    def _ended_pages(self, payload: dict) -> list[str]:
        """The open pages of this group whose every alert is resolved in ``payload``: marked
        resolved now (their buttons refuse from here on), edited by the delivery."""
        gone = {json.dumps(a["labels"], sort_keys=True) for a in payload["alerts"] if a["status"] == "resolved"}
        if not gone:
            return []
        ended = []
        at = render.fmt_clock(time.time(), self.cfg.zone)
        for page in self.store.open_pages(self.cfg.chat_id, str(payload.get("groupKey", ""))):
            if all(json.dumps(labels, sort_keys=True) in gone for labels in page["alerts"]):
                pages.add_note(self.store, page, f"✅ <b>Resolved</b> at {at}", resolved=True)
                ended.append(page["ref"])
        return ended

    def retried(self, payload: dict) -> tuple[str, dict | None] | None:
        """(outbox id, the item if not all delivered yet) when ``payload`` is Alertmanager's
        retry of a notification taken within the retry window (BotConfig.retry_window_s):
        it sends one again when its call timed out while the bot was still trying Telegram.
        None for a new one."""
        oid = self.store.seen(digest(payload), time.time() - self.cfg.retry_window_s)
        if oid is None:
            return None
        self._count("retried")
        return oid, self.store.in_outbox(oid)

    async def deliver(self, oid: str, item: dict, deadline: float) -> bool:
        """Send the parts not yet sent; True once all are. Progress is saved part by part."""
        if oid in self._busy:
            return False
        self._busy.add(oid)
        try:
            # As it stands now: the outbox loop's list of due items is read before its turn, and a
            # storm makes a turn long; one the webhook delivered meanwhile is gone (sent again, it
            # would be a second copy), one partly sent is resumed where it stopped.
            current = self.store.in_outbox(oid)
            if current is None:
                return True
            item = current
            if item.get("storm"):
                wait = await self.storm.show(self.tg, self.signer, self.runbooks, self.cfg.zone, item["chat_id"], item["storm"], deadline)
                if wait > 0:  # the status was edited moments ago: the next edit shows this one too
                    self.store.retry_later(oid, time.time() + wait)
                    return False
            while item["sent"] < len(item["parts"]):
                i = item["sent"]
                text = item["parts"][i]
                last = i == len(item["parts"]) - 1
                msg = {"chat_id": item["chat_id"], "text": text, "parse_mode": "HTML",
                       "disable_notification": item["silent"], "link_preview_options": {"is_disabled": True}}
                ref = self.store.ref(item["ref"]) if last and item.get("ref") else None
                if ref is not None:  # as the page stands now: resolved or silenced before it could be sent
                    msg["text"], msg["reply_markup"] = pages.text_of(ref), pages.markup(self.signer, ref, self.runbooks)
                try:
                    result = await self.tg.call_within(deadline, "sendMessage", msg)
                except TelegramError as e:
                    if e.code == 400 and "parse" in e.description:  # never expected; the page must still go out
                        log.error("Telegram refused the markup; sending as plain text", extra={"error": e.description})
                        msg.pop("parse_mode")
                        msg["text"] = re.sub(r"<[^>]+>", "", text)
                        result = await self.tg.call_within(deadline, "sendMessage", msg)
                    else:
                        raise
                if ref is not None:
                    self.store.set_message(ref["ref"], result["message_id"])
                item["sent"] = i + 1
                self.store.update(oid, item)
            for r in item.get("retire", []):  # the pages this resolve ended, edited (an edit again is harmless)
                page = self.store.ref(r)
                if page is not None:
                    await pages.edit(self.tg, self.signer, self.runbooks, page, within=max(0.5, deadline - time.monotonic()))
            self.store.done(oid)
            self._count("delivered")
            if self.metrics is not None:
                self.metrics.page_delivered(item)
            return True
        except TelegramError as e:
            wait = e.retry_after if e.retry_after else 5.0
            with contextlib.suppress(sqlite3.Error):  # unrecorded, it is simply due again at once
                self.store.retry_later(oid, time.time() + wait)
            log.warning("notification kept in the outbox", extra={"error": str(e), "retry_in_s": wait})
            self._count("deferred")
            return False
        except sqlite3.Error as e:  # progress not recorded: the outbox loop tries it again once writes work
            log.error("cannot record a delivery in the outbox; it stays there", extra={"error": str(e)})
            self._count("deferred")
            return False
        finally:
            self._busy.discard(oid)

    def _count(self, outcome: str) -> None:
        if self.metrics is not None:
            self.metrics.notifications.labels(outcome=outcome).inc()

    async def run_outbox(self, stop: asyncio.Event | None = None, every: float = 1.0, max_wait: float = 30.0) -> None:
        """Forever: a turn that fails (the state directory full, SQLite busy or broken) is tried
        again after a backoff; nothing is sent while the outbox cannot record it (each turn
        would send the same message again)."""
        turns, waits = 0, Backoff(every, max_wait, jitter=0.2)
        while stop is None or not stop.is_set():
            turns += 1
            try:
                await self._outbox_turn(prune=turns % 3600 == 1)  # hourly: buttons older than their lifetime go
                waits.reset()
                wait = every
            except Exception as e:  # noqa: BLE001 - the loop must outlive any one fault
                wait = waits.next()
                log.error("the outbox cannot be worked; trying again", extra={"error": str(e), "retry_in_s": round(wait, 1)})
            await asyncio.sleep(wait)

    async def _outbox_turn(self, prune: bool) -> None:
        if not self.store.writable():
            raise OutboxStuck(f"the state directory takes no write ({self.store.failing or 'nearly full'})")
        if prune:
            self.store.prune(time.time())
        for oid, item in self.store.due(time.time()):
            await self.deliver(oid, item, time.monotonic() + 30)


class OutboxStuck(Exception):
    pass


def build_app(delivery: Delivery, token: str) -> FastAPI:
    app = FastAPI(title="trademon bot", docs_url=None, redoc_url=None, openapi_url=None)
    expected = f"Bearer {token}".encode()

    @app.post("/alerts")
    async def alerts(request: Request):
        got = request.headers.get("authorization", "").encode()
        if not token or not hmac.compare_digest(got, expected):
            log.warning("webhook call without the right token refused", extra={"client": request.client.host if request.client else None})
            return JSONResponse({"error": "unauthorized"}, status_code=401)
        try:
            payload = parse(await request.body())
        except Rejected as e:
            log.warning("payload rejected", extra={"reason": e.reason, "detail": e.detail[:300]})
            return JSONResponse({"error": e.reason, "detail": e.detail}, status_code=e.status)
        try:
            prior = delivery.retried(payload)
            if prior is not None:  # taken already: finish it, never send it twice
                oid, pending = prior
                if pending is None:
                    log.info("Alertmanager's retry of a delivered notification: not sent again", extra={"receiver": payload["receiver"]})
                    return {"status": "delivered"}
                item = pending
            else:
                oid, item = delivery.accept(payload)
        except Exception:  # noqa: BLE001 - not on disk: 500, so Alertmanager retries
            log.exception("cannot store the notification; Alertmanager will retry")
            return JSONResponse({"error": "store_failed"}, status_code=500)
        sent = await delivery.deliver(oid, item, time.monotonic() + delivery.cfg.deliver_within_s)
        log.info("notification accepted", extra={"receiver": payload["receiver"], "status": payload["status"],
                                                 "alerts": len(payload["alerts"]), "delivered": sent})
        return {"status": "delivered" if sent else "queued"}

    return app
