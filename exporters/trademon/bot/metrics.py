"""The bot's metrics (contract job ``trademon-bot``): what the pager's last hop is doing, so
that Prometheus sees a page stuck in the outbox, Telegram refusing the bot, and how long a
page takes, and the alerts on them go out by Slack and email (the channels that do not need
the bot)."""

from __future__ import annotations

import logging
import time
from collections import OrderedDict
from collections.abc import Callable
from datetime import datetime

from prometheus_client.core import GaugeMetricFamily

from trademon import contract
from trademon.contract import TELEGRAM_REFUSALS
from trademon.metrics import Children, JobMetrics

log = logging.getLogger("trademon.bot.metrics")

SENDS = frozenset({"sendMessage", "sendPhoto"})  # the calls that are messages to the chat
CODES = frozenset({400, 401, 403, 404, 409, 413, 429})  # Telegram's codes kept as they are; the rest is bounded
SEVERITIES = frozenset({"critical", "warning", "info"})
REMEMBERED_ALERTS = 10_000  # alerts whose start was measured already (a reminder is not a new page)

_COLLECTED = ("trademon_bot_outbox_pending", "trademon_bot_outbox_oldest_age_seconds")  # read from the outbox at each scrape


def refusal(code: int, description: str, parameters: dict | None = None) -> str | None:
    """Which of TELEGRAM_REFUSALS a Telegram error is, or None for one that may pass."""
    d = description.lower()
    if code == 401:
        return "token_rejected"
    if code == 403:
        return "bot_blocked"
    if code == 400 and ((parameters or {}).get("migrate_to_chat_id") or "upgraded to a supergroup" in d):
        return "chat_migrated"
    if code == 400 and "chat not found" in d:
        return "chat_not_found"
    return None


def _code(code: int) -> str:
    if code == 0:
        return "network"
    if code >= 500:
        return "5xx"
    return str(code) if code in CODES or code == 200 else "other"


def _result(code: int) -> str:
    if code == 200:
        return "ok"
    if code == 429:
        return "rate_limited"
    if code == 0 or code >= 500:
        return "failed"
    return "refused"


class OutboxCollector:
    """The outbox's depth and its oldest notification's age, read at each scrape: right even
    while the outbox loop is stuck; absent (not 0) while SQLite cannot be read."""

    def __init__(self, read: Callable[[], tuple[int, float | None]], clock: Callable[[], float] = time.time):
        self.read, self.clock = read, clock

    def collect(self):
        try:
            pending, oldest = self.read()
        except Exception as e:  # noqa: BLE001 - unknown is absent; the log says why
            log.warning("cannot read the outbox for /metrics", extra={"error": str(e)[:200]})
            return
        specs = {name: contract.metric(name) for name in _COLLECTED}
        depth = GaugeMetricFamily(_COLLECTED[0], specs[_COLLECTED[0]].help, value=pending)
        age = GaugeMetricFamily(_COLLECTED[1], specs[_COLLECTED[1]].help,
                                value=0.0 if oldest is None else max(0.0, self.clock() - oldest))
        yield depth
        yield age


class BotMetrics:
    def __init__(self, clock: Callable[[], float] = time.time):
        self.clock = clock
        self.started = clock()
        jm = JobMetrics(contract.BOT, names=[m.name for m in contract.metrics_for_job(contract.BOT) if m.name not in _COLLECTED])
        self.registry = jm.registry
        self.notifications = jm["trademon_bot_notifications_total"]
        self.conflict = jm["trademon_bot_poll_conflict"]
        self.folded = jm["trademon_bot_storm_folded_total"]
        self.sends = Children(jm["trademon_bot_telegram_sends_total"], "inc")
        self.refused = jm["trademon_bot_telegram_refused"]
        for reason in TELEGRAM_REFUSALS:  # known: not refused (0), not unknown
            self.refused.labels(reason=reason).set(0)
        self.pages = Children(jm["trademon_bot_pages_delivered_total"], "inc")
        self.latency = Children(jm["trademon_bot_page_latency_seconds"], "observe")
        for since in ("webhook", "alert_start"):  # at 0 from the start, so the first page is an increase rate() sees
            self.latency(since)
        self._measured: OrderedDict[str, None] = OrderedDict()
        self.escalations = Children(jm["trademon_bot_escalations_total"], "inc")  # trademon.bot.escalation's
        self.escalation_failing = jm["trademon_bot_escalation_channel_failing"]

    def watch_outbox(self, read: Callable[[], tuple[int, float | None]]) -> None:
        self.registry.register(OutboxCollector(read, self.clock))

    def telegram_answered(self, method: str, code: int, description: str = "", parameters: dict | None = None) -> None:
        """Every answer of the Bot API (code 200 for a success, 0 when unreachable)."""
        if method in SENDS:
            self.sends(_result(code), _code(code))()
        reason = refusal(code, description, parameters)
        if reason is not None:
            self.refused.labels(reason=reason).set(1)
        elif code == 200:
            # any success shows the token works; a message that went shows the chat does too
            self.refused.labels(reason="token_rejected").set(0)
            if method in SENDS:
                for r in TELEGRAM_REFUSALS:
                    self.refused.labels(reason=r).set(0)

    def page_delivered(self, item: dict) -> None:
        """A firing notification's last message was accepted: count it and time it."""
        page = item.get("page")
        if not page:
            return
        now = self.clock()
        severity = page.get("severity") if page.get("severity") in SEVERITIES else "other"
        self.pages(severity)()
        if page.get("received"):
            self.latency("webhook")(max(0.0, now - page["received"]))
        # The alert's start only for an alert not measured before (a reminder or a group's update
        # is not a new page) and started while this process ran (after a restart, an old alert's
        # start would measure the downtime, not the pager).
        newest, key = page.get("newest_start"), page.get("newest_key")
        if newest and key and newest >= self.started and key not in self._measured:
            self._measured[key] = None
            while len(self._measured) > REMEMBERED_ALERTS:
                self._measured.popitem(last=False)
            self.latency("alert_start")(max(0.0, now - newest))


def page_of(payload: dict, severity: str, received: float) -> dict | None:
    """What the metrics need of a firing notification, kept in its outbox item: when it came,
    its severity, and its newest alert's start (and identity)."""
    if payload.get("status") != "firing":
        return None
    newest: tuple[float, str] | None = None
    for a in payload.get("alerts", []):
        if a.get("status") != "firing":
            continue
        try:
            started = datetime.fromisoformat(str(a.get("startsAt")).replace("Z", "+00:00")).timestamp()
        except ValueError:
            continue
        key = f"{a.get('fingerprint') or sorted((a.get('labels') or {}).items())}@{a.get('startsAt')}"
        if newest is None or started > newest[0]:
            newest = (started, key)
    page: dict = {"received": received, "severity": severity}
    if newest is not None:
        page["newest_start"], page["newest_key"] = newest
    return page
