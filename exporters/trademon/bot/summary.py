"""The daily summary: at a configured time and zone (default 16:15 New York, after the US
equity close), P&L per account and strategy with a chart, orders, fills, rejections,
average slippage, and the day's alerts with how long each fired; on the week's last summary
day, the week too (each day's P&L at its summary time, orders, the week's alerts). The clock is injected, so a
test sets the time instead of waiting for it; what was sent last is stored, so a restart
neither repeats nor skips the day."""

from __future__ import annotations

import asyncio
import sqlite3
import logging
import time
from datetime import datetime, timedelta
from collections.abc import Callable

from trademon.bot.config import BotConfig
from trademon.bot.reports import M, Reports, esc, money
from trademon.bot.store import Store
from trademon.bot.telegram import TelegramClient, TelegramError
from trademon.bot.upstream import UpstreamError

log = logging.getLogger("trademon.bot.summary")
LATE_LIMIT_S = 6 * 3600  # a summary missed by more than this (bot down all evening) is skipped, not sent at night
KEY = "summary_last_due"


class Summary:
    def __init__(self, cfg: BotConfig, reports: Reports, tg: TelegramClient, store: Store, clock: Callable[[], float] = time.time):
        self.cfg, self.reports, self.tg, self.store, self.clock = cfg, reports, tg, store, clock
        last = store.get(KEY)
        self.next_due = self.due_after(float(last) if last else clock())

    def due_after(self, t: float) -> float:
        zone = self.cfg.summary_zone
        local = datetime.fromtimestamp(t, zone)
        for days in range(0, 8):
            day = (local + timedelta(days=days)).date()
            if day.weekday() not in self.cfg.summary_days:
                continue
            due = datetime.combine(day, self.cfg.summary_at, zone).timestamp()
            if due > t:
                return due
        raise ValueError("TRADEMON_BOT_SUMMARY_DAYS names no day")

    async def tick(self) -> bool:
        """Send the summary if its time has come; True if sent."""
        now = self.clock()
        if now < self.next_due:
            return False
        due = self.next_due
        if now - due <= LATE_LIMIT_S:
            await self.send(now)  # an error leaves it due: the next tick tries again
        else:
            log.warning("daily summary skipped: too late", extra={"due": due})
        self.next_due = self.due_after(due)
        self.store.set(KEY, str(due))
        return now - due <= LATE_LIMIT_S

    async def run(self, every: float = 15.0) -> None:
        while True:
            try:
                await self.tick()
            except (TelegramError, UpstreamError, sqlite3.Error) as e:  # tried again on the next tick
                log.error("daily summary failed", extra={"error": str(e)})
            await asyncio.sleep(every)

    async def text(self, at: float) -> str:
        r = self.reports
        start = r.day_start(at)
        w = f"{max(int(at - start), 60)}s"
        q = lambda e: r.prom.query(e, at)  # noqa: E731
        (pnl, strat, sub, fill, rej, slip), alerts, limits = await asyncio.gather(asyncio.gather(
            q(M["daily_pnl"]), q(M["strategy_pnl"]), q(f"sum(increase({M['orders_submitted_total']}[{w}]))"),
            q(f"sum(increase({M['orders_filled_total']}[{w}]))"), q(f"sum(increase({M['orders_rejected_total']}[{w}]))"),
            q(f"avg(avg_over_time({M['avg_slippage_pct']}[{w}]))")),
            r.prom.query_range(fired_expr(max(15.0, (at - start) / 1000)), start, at, max(15.0, (at - start) / 1000)),
            r.limits(at))
        cur = r.currency
        day = datetime.fromtimestamp(at, self.cfg.summary_zone)
        out = [f"📅 <b>Daily summary</b> · {day:%a %Y-%m-%d} ({esc(self.cfg.summary_zone.key)})"]
        accounts = sorted(pnl, key=lambda s: s[0].get("account", ""))
        strategies = sorted(strat, key=lambda s: s[0].get("strategy", ""))
        out.append("P&amp;L: " + ("; ".join(f"{esc(lab.get('account', '?'))} {money(v)} {esc(cur)} ({limits.text(lab.get('account', ''))})"
                                            for lab, v in accounts)
                                  or "unknown (no data)"))
        out.append("Strategies: " + ("; ".join(f"{esc(lab.get('strategy', '?'))} {money(v)}" for lab, v in strategies)
                                     or "unknown (no data)"))

        def one(res):
            return res[0][1] if res else None
        s, f, rj = one(sub), one(fill), one(rej)
        if s is None:
            out.append("Orders: unknown (no data)")
        else:
            share = f" ({rj / s:.1%})" if rj is not None and s else ""
            out.append(f"Orders: {s:.0f} submitted, {f or 0:.0f} filled, {rj or 0:.0f} rejected{share}")
        sl = one(slip)
        out.append(f"Average slippage: {sl:.3f} %" if sl is not None else "Average slippage: unknown (no fills)")
        step = max(15.0, (at - start) / 1000)
        fired = sorted(((a["metric"].get("alertname", "?"), a["metric"].get("severity", "?"), len(a["values"]) * step) for a in alerts),
                       key=lambda x: -x[2])
        if fired:
            out.append("Alerts today:")
            out += [f"• {esc(n)} ({esc(sv)}) fired {_dur(d)}" for n, sv, d in fired[:20]]
        else:
            out.append("Alerts today: none")
        return "\n".join(out)

    def last_day_of_week(self, at: float) -> bool:
        """Today is the last summary day of its week (Friday for mon-fri): the weekly one goes too."""
        return datetime.fromtimestamp(at, self.cfg.summary_zone).weekday() == max(self.cfg.summary_days)

    async def weekly_text(self, at: float) -> str:
        """The week so far: each summary day's P&L at its summary time, orders, the week's alerts."""
        r, zone = self.reports, self.cfg.summary_zone
        today = datetime.fromtimestamp(at, zone)
        monday = (today - timedelta(days=today.weekday())).replace(hour=0, minute=0, second=0, microsecond=0)
        days = [monday + timedelta(days=d) for d in range(7) if d in self.cfg.summary_days and d <= today.weekday()]
        closes = [min(datetime.combine(d.date(), self.cfg.summary_at, zone).timestamp(), at) for d in days]
        per_day = await asyncio.gather(*(r.prom.query(M["daily_pnl"], t) for t in closes))
        w = f"{max(int(at - monday.timestamp()), 60)}s"
        sub, rej, alerts = await asyncio.gather(
            r.prom.query(f"sum(increase({M['orders_submitted_total']}[{w}]))", at),
            r.prom.query(f"sum(increase({M['orders_rejected_total']}[{w}]))", at),
            r.prom.query_range(fired_expr(max(60.0, (at - monday.timestamp()) / 1000)), monday.timestamp(), at,
                               max(60.0, (at - monday.timestamp()) / 1000)))
        out = [f"🗓 <b>Weekly summary</b> · week of {monday:%Y-%m-%d}"]
        totals: dict[str, float] = {}
        for d, res in zip(days, per_day, strict=True):
            vals = "; ".join(f"{esc(lab.get('account', '?'))} {money(v)}" for lab, v in sorted(res, key=lambda s: s[0].get("account", "")))
            for lab, v in res:
                totals[lab.get("account", "?")] = totals.get(lab.get("account", "?"), 0.0) + v
            out.append(f"{d:%a}: {vals or 'unknown (no data)'}")
        out.append("Week P&amp;L: " + ("; ".join(f"{esc(a)} {money(v)} {esc(r.currency)}" for a, v in sorted(totals.items()))
                                     or "unknown (no data)"))
        if sub:
            out.append(f"Orders: {sub[0][1]:.0f} submitted, {rej[0][1] if rej else 0:.0f} rejected")
        step = max(60.0, (at - monday.timestamp()) / 1000)
        fired = sorted(((a["metric"].get("alertname", "?"), len(a["values"]) * step) for a in alerts), key=lambda x: -x[1])
        out.append("Alerts this week: " + (", ".join(f"{esc(n)} {_dur(d)}" for n, d in fired[:15]) or "none"))
        return "\n".join(out)

    async def send(self, at: float) -> None:
        text = await self.text(at)
        if self.last_day_of_week(at):
            text += "\n\n" + await self.weekly_text(at)
        png, caption = await self.reports.pnl_chart(self.reports.day_start(at), at)
        deadline = time.monotonic() + 30
        await self.tg.call_within(deadline, "sendMessage", {"chat_id": self.cfg.chat_id, "text": text, "parse_mode": "HTML",
                                                            "disable_notification": True})
        await self.tg.call_within(deadline, "sendPhoto", {"chat_id": self.cfg.chat_id, "caption": f"P&amp;L today: {caption}"[:1000],
                                                          "parse_mode": "HTML", "disable_notification": True},
                                  files={"photo": ("pnl.png", png, "image/png")})
        log.info("daily summary sent")


def fired_expr(step: float) -> str:
    """Which alerts fired in each step: max_over_time, so an alert shorter than a step is not
    missed between two evaluation points (its duration is then counted as one step)."""
    return f'max by (alertname, severity) (max_over_time(ALERTS{{alertstate="firing", severity!="info"}}[{int(step)}s]))'


def _dur(s: float) -> str:
    s = int(s)
    return f"{s // 3600}h{s % 3600 // 60:02d}m" if s >= 3600 else f"{max(s // 60, 1)}m" if s >= 60 else f"{s}s"
