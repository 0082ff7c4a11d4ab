"""``trademon am-config --watch``: render the Alertmanager config, then keep it current.

The market-open intervals are explicit dates up to a horizon, so a stack that runs for
months must render them again: this renders at start and every
TRADEMON_AM_REFRESH_SECONDS (default a day), asks Alertmanager to reload
(TRADEMON_AM_RELOAD_URL, comma-separated for several) when the file changed, and exports what it knows on /metrics:
whether each configured exchange is open, the horizon's end (MarketCalendarExpiring fires
before it runs out) and whether an IB maintenance window is on (the IB alerts hold longer
inside one). Alertmanager stays the one that mutes; this only tells the dashboards and rules.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import os
import time
from datetime import datetime, UTC
from pathlib import Path
from collections.abc import Callable, Mapping

from prometheus_client import CollectorRegistry
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

from trademon.alertmanager import amconfig, markets
from trademon import contract
from trademon.settings.env import env_float, env_int, env_str, job_port, port_variable
from trademon.runtime import http
from trademon.runtime.service import Listener, Probes, Runner, Task, basics_app

JOB = "alertmanager-config"
log = logging.getLogger("trademon.amwatch")


class ScheduleCollector:
    """Mirrors the last rendered schedule and the IB windows, evaluated at scrape time."""

    def __init__(self, out: Path, windows: list[markets.Window], clock: Callable[[], datetime]):
        self.out, self.windows, self.clock = out, windows, clock
        self.last_render: float | None = None
        self.failures = 0
        self._cached: tuple[float, markets.Schedule] | None = None  # (file mtime, parsed): one parse per render

    def schedule(self) -> markets.Schedule | None:
        path = self.out / amconfig.SCHEDULE_FILE
        try:
            mtime = path.stat().st_mtime
            if self._cached is None or self._cached[0] != mtime:
                self._cached = (mtime, markets.Schedule.from_json(json.loads(path.read_text(encoding="utf-8"))))
            return self._cached[1]
        except (OSError, ValueError, KeyError):
            return None  # no calendar (fallback intervals): the market gauges are absent, not 0

    def collect(self):
        now = self.clock()
        m = contract.metric
        sched = self.schedule()
        open_ = GaugeMetricFamily(m("trademon_market_open").name, m("trademon_market_open").help, labels=["exchange"])
        end = GaugeMetricFamily(m("trademon_market_calendar_end_timestamp_seconds").name,
                                m("trademon_market_calendar_end_timestamp_seconds").help)
        if sched is not None:
            for ex in sched.exchanges:
                state = sched.is_open(now, ex)
                if state is not None:  # past the horizon: unknown
                    open_.add_metric([ex], 1.0 if state else 0.0)
            end.add_metric([], sched.end.timestamp())
        yield open_
        yield end
        win = GaugeMetricFamily(m("trademon_ib_maintenance_window").name, m("trademon_ib_maintenance_window").help, labels=["window"])
        for w in self.windows:
            win.add_metric([w.name], 1.0 if w.contains(now) else 0.0)
        yield win
        last = GaugeMetricFamily(m("trademon_am_config_last_render_timestamp_seconds").name,
                                 m("trademon_am_config_last_render_timestamp_seconds").help)
        if self.last_render is not None:
            last.add_metric([], self.last_render)
        yield last
        fails = CounterMetricFamily(m("trademon_am_config_render_failures_total").client_name,
                                    m("trademon_am_config_render_failures_total").help)
        fails.add_metric([], float(self.failures))
        yield fails


def _digest(out: Path) -> str:
    """One hash of everything rendered into `out` (config, templates, secret files)."""
    h = hashlib.sha256()
    for f in sorted(p for p in out.rglob("*") if p.is_file()):
        h.update(str(f.relative_to(out)).encode() + b"\0" + f.read_bytes() + b"\0")
    return h.hexdigest()


class Watcher:
    """Renders, reloads Alertmanager on change, records the outcome for the collector."""

    def __init__(self, source: Path, out: Path, env: Mapping[str, str], alert_sink_url: str | None,
                 reload_url: str | None, collector: ScheduleCollector, bot_url: str | None = None):
        self.source, self.out, self.env = source, out, env
        self.alert_sink_url, self.reload_url, self.collector = alert_sink_url, reload_url, collector
        self.bot_url = bot_url  # `trademon bot`'s webhook, kept on every render
        self.reload_pending = False

    def render_once(self) -> bool:
        target = self.out / "alertmanager.yml"
        before = _digest(self.out) if target.exists() else None
        amconfig.render(self.source, self.out, self.env, self.alert_sink_url, bot_url=self.bot_url)
        # `trademon native --mode demo --speed N` compresses Alertmanager's waits too; a daily
        # render must keep that, or the demo's alerts would slow down after the first refresh.
        speed = env_float("TRADEMON_AM_TIMESCALE", 1.0, 1.0, None, env=self.env)
        if speed > 1:
            from trademon.stack import timescale

            timescale.scale_alertmanager_config(target, speed)
        # Templates and secret files count too: a new GRAFANA_URL only changes a template.
        changed = _digest(self.out) != before
        if self.reload_url and ((changed and before is not None) or self.reload_pending):
            self.reload_pending = not self.reload(starting=self.collector.last_render is None)
        self.collector.last_render = time.time()
        return changed

    def reload(self, starting: bool = False) -> bool:
        """Ask each Alertmanager (comma-separated URLs: an HA pair) to read the file again;
        False if that must be retried."""
        ok = True
        for url in (u.strip() for u in (self.reload_url or "").split(",") if u.strip()):
            try:
                r = http.request("POST", url, timeout=10)
                r.raise_for_status()
                log.info("alertmanager reloaded", extra={"url": url})
            except http.Error as e:
                if starting and isinstance(e, http.Refused):
                    # the stack is starting: Alertmanager reads the new file when it starts
                    log.info("alertmanager not running yet; it reads the config when it starts", extra={"url": url})
                    continue
                self.collector.failures += 1  # retried at the next refresh
                log.error("alertmanager reload failed", extra={"url": url, "error": str(e)[:200]})
                ok = False
        return ok

    async def loop(self, every: float) -> None:
        while True:
            await asyncio.sleep(every)
            try:
                await asyncio.to_thread(self.render_once)
            except Exception as e:  # keep serving the last good config; the counter shows it
                self.collector.failures += 1
                log.error("alertmanager config render failed", extra={"error": str(e)[:300]})


def run(args) -> int:
    env = dict(os.environ)
    out = Path(args.out)
    windows = markets.ib_windows_from_env(env)
    collector = ScheduleCollector(out, windows, lambda: datetime.now(UTC))
    watcher = Watcher(Path(args.source), out, env, args.alert_sink_url, env_str("TRADEMON_AM_RELOAD_URL", env=env), collector,
                      getattr(args, "bot_url", None))
    every = env_int("TRADEMON_AM_REFRESH_SECONDS", 86400, 1, 7 * 86400, env=env)
    host = env_str("TRADEMON_ALERTMANAGER_CONFIG_HOST", "127.0.0.1", env=env)
    port = job_port(JOB, env)
    registry = CollectorRegistry()
    registry.register(collector)
    runner = Runner([Listener(JOB, basics_app(registry, Probes({"rendered": lambda: collector.last_render is not None})),
                              host, port, port_variable(JOB))],
                    [Task(lambda: watcher.loop(every), "refresh")])
    runner.bind_all()
    watcher.render_once()  # a bad configuration stops here, before anything serves
    log.info("alertmanager config rendered; refreshing", extra={"path": str(out / "alertmanager.yml"), "every_seconds": every})
    asyncio.run(runner.serve())
    return 0
