"""``trademon bot``: wire the parts together and run them in one event loop.

Listens on TRADEMON_BOT_HOST:TRADEMON_BOT_PORT (default 127.0.0.1:9114) for Alertmanager's
webhook (/alerts) and /healthz, /readyz, /metrics; polls Telegram; sends the outbox and the
daily summary. Settings: see docs/telegram.md.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import os
import time

from trademon.bot.metrics import BotMetrics
from trademon.runtime import logs
from trademon.settings.env import ConfigError, env_choice
from trademon.runtime.service import Listener, Probes, Runner, Task, basics_app

log = logging.getLogger("trademon.bot")


class Bot:
    """Everything, built from a BotConfig; ``clock`` is injectable (the daily summary's tests)."""

    def __init__(self, cfg, clock=time.time, env=None):
        from trademon.bot import runbooks, sessions
        from trademon.bot.auth import Signer
        from trademon.bot.handlers import Handlers
        from trademon.bot.pace import Pacer
        from trademon.bot.poller import Poller
        from trademon.bot.reports import Reports
        from trademon.settings import thresholds
        from trademon.bot.store import Store
        from trademon.bot.summary import Summary
        from trademon.bot.telegram import TelegramClient
        from trademon.bot.upstream import Alertmanager, Prometheus, Record
        from trademon.bot.webhook import Delivery

        self.cfg = cfg
        env = os.environ if env is None else env
        from trademon.bot import escalation, pages

        ladder = escalation.from_env(env)  # None: off (TRADEMON_BOT_ESCALATE unset); a bad setting stops the bot before it opens anything
        am_yml = cfg.config_root / "alertmanager" / "alertmanager.yml"
        from trademon.alertmanager import markets

        exchange = markets.exchanges_from_env(env)[0]
        hours = sessions.load(am_yml, exchange) if am_yml.is_file() else dataclasses.replace(sessions.DEFAULT, exchange=exchange)
        if am_yml.is_file():  # a retry window that would swallow reminders or let a retry through: say so
            import yaml

            from trademon.bot.retrywindow import problem

            wrong = problem(yaml.safe_load(am_yml.read_text(encoding="utf-8")) or {}, cfg.retry_window_s)
            if wrong:
                log.warning(wrong)
        self.metrics = BotMetrics()
        self.store = Store(cfg.state_dir / "bot.sqlite3")
        self.metrics.watch_outbox(self.store.depth)
        self.tg = TelegramClient(cfg.telegram_api_url, cfg.token, answered=self.metrics.telegram_answered,
                                 pacer=Pacer(group_limit=cfg.group_per_minute))
        self.am = Alertmanager(cfg.alertmanager_url)
        self.prom = Prometheus(cfg.prometheus_url)
        self.record = Record(cfg.alert_sink_url, cfg.alert_sink_token, local=self.store)  # and /history's
        self.signer = Signer(cfg.token)
        self.runbooks = runbooks.load(cfg.config_root)  # monitoring/runbooks.md: the 📖 buttons and /runbook
        # The loss limits come from Prometheus (the series the alert compares with); the
        # currency, a label for money, from monitoring/config.yml.
        self.reports = Reports(self.prom, self.am, thresholds.currency(cfg.config_root), cfg.zone)
        self.delivery = Delivery(cfg, self.store, self.tg, self.signer, self.metrics, runbooks=self.runbooks)
        self.handlers = Handlers(cfg, self.tg, self.am, self.record, self.store, self.signer, self.reports, hours, clock, runbooks=self.runbooks)
        self.poller = Poller(self.tg, self.handlers.dispatch, cfg.poll_timeout_s)
        self.summary = Summary(cfg, self.reports, self.tg, self.store, clock)
        from trademon.bot.acks import AckWatch

        self.acks = AckWatch(cfg, self.store, self.tg, self.am, self.record, self.signer, self.runbooks, clock)
        self.escalator = None if ladder is None else escalation.Escalator(
            ladder, self.store, self.tg, self.am, self.record, self.metrics, clock=clock, zone=cfg.zone,
            page_editor=lambda ref: pages.edit(self.tg, self.signer, self.runbooks, ref))

    def app(self):
        from trademon.bot.webhook import build_app

        def polling_ok() -> bool:
            return not self.poller.conflict

        self.metrics.conflict.set_function(lambda: 1 if self.poller.conflict else 0)  # as of each scrape
        # Not ready exactly while it cannot do its job: a second poller takes the button presses,
        # a state directory that takes no write takes no notification.
        return basics_app(self.metrics.registry, Probes({"telegram polling (no 409 conflict)": polling_ok,
                                                         "state directory writable": self.store.writable}),
                          inner=build_app(self.delivery, self.cfg.webhook_token))

    async def close(self) -> None:
        if self.escalator is not None:
            await self.escalator.close()
        for c in (self.tg, self.am, self.prom, self.record):
            await c.close()
        self.store.close()


def idle() -> int:
    """Telegram not configured at all: say so once and serve /healthz only, so a compose
    stack without Telegram neither crash-loops nor alarms (am-config leaves the webhook out)."""
    from trademon.settings.env import env_port, env_str
    from trademon import contract

    log.warning("Telegram not configured: set TELEGRAM_BOT_TOKEN and TELEGRAM_CHAT_ID in .env to use the bot; idling")
    metrics = BotMetrics()
    host = env_str("TRADEMON_BOT_HOST", "127.0.0.1")
    runner = Runner([Listener("bot", basics_app(metrics.registry), host, env_port("TRADEMON_BOT_PORT", contract.BOT_PORT), "TRADEMON_BOT_PORT")])
    runner.bind_all()
    asyncio.run(runner.serve())
    return 0


def configure(parser) -> None:
    pass  # everything comes from the environment (.env); see docs/telegram.md


def main(args) -> int:
    from trademon.bot.config import BotConfig

    level = env_choice("TRADEMON_LOG_LEVEL", "info", ["debug", "info", "warning", "error"])
    logs.setup("bot", level)
    logging.getLogger("httpx").setLevel(logging.WARNING)  # its request log prints URLs, and Telegram's hold the token
    logging.getLogger("httpcore").setLevel(logging.WARNING)
    if not any(os.environ.get(n, "").strip() for n in ("TELEGRAM_BOT_TOKEN", "TELEGRAM_BOT_TOKEN_FILE", "TELEGRAM_CHAT_ID")):
        return idle()
    cfg = BotConfig.from_env(os.environ)
    logs.register_secret(cfg.token)
    logs.register_secret(cfg.token.split(":", 1)[1])
    logs.register_secret(cfg.webhook_token)
    logs.register_secret(cfg.alert_sink_token)
    if not cfg.webhook_token:
        raise ConfigError("TRADEMON_BOT_WEBHOOK_TOKEN", None, "not set", "a random string (or leave it unset to derive it from TELEGRAM_BOT_TOKEN)")
    bot = Bot(cfg, env=os.environ)
    for s in bot.escalator.settings.secrets if bot.escalator else ():
        logs.register_secret(s)

    async def outbox():
        await bot.delivery.run_outbox()

    async def poll():
        await bot.poller.run()

    async def summary():
        await bot.summary.run()

    async def acks():
        await bot.acks.run()

    async def escalate():
        if bot.escalator is not None:
            await bot.escalator.run()

    async def warm_up():
        from trademon.bot import charts

        try:
            await asyncio.to_thread(charts.warm_up)
        except ImportError:
            log.warning("matplotlib is not installed: /pnl, /exposure and the summary chart will fail (pip install 'trademon[bot]')")

    from trademon.alertmanager.payload import MAX_BODY

    # Alertmanager's payloads with every alert of a storm: the alert-sink's body limit, not the
    # default 1 MiB (a 413 is not retried, and the page would be lost).
    # The webhook's token is checked before the body is read (a caller without it sends nothing in).
    runner = Runner([Listener("bot", bot.app(), cfg.host, cfg.port, "TRADEMON_BOT_PORT", max_body=MAX_BODY,
                              token_paths=("/alerts",), token=cfg.webhook_token)],
                    # the loops are supervised: one that dies ends the bot
                    [outbox, poll, summary, acks, *([escalate] if bot.escalator else []), Task(warm_up, once=True)])
    runner.bind_all()
    log.info("trademon bot started", extra={"chat_id": cfg.chat_id, "pending_in_outbox": bot.store.pending(),
                                             "escalation": bot.escalator.describe() if bot.escalator else "off",
                                             "next_summary": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(bot.summary.next_due))})
    async def serve():
        try:
            await runner.serve()
        finally:
            await bot.close()  # in the loop its HTTP clients belong to

    asyncio.run(serve())
    return 0
