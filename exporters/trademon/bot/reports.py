"""The answers built from Prometheus and Alertmanager: /status, /alerts, /silences, and the
P&L and exposure charts. What Prometheus does not have is shown as unknown, never as 0."""

from __future__ import annotations

import asyncio
import html
import math
import time
from dataclasses import dataclass, field
from datetime import datetime, UTC
from zoneinfo import ZoneInfo

from trademon import contract, grafana_uids
from trademon.thresholds import render as threshold_rules
from trademon.bot import charts
from trademon.bot.upstream import Alertmanager, Prometheus, UpstreamError

M = {n: contract.metric(n).name for n in ("daily_pnl", "strategy_pnl", "ib_connected", "ib_farm_connected", "circuit_breaker_open",
                                           "risk_gross_exposure", "risk_gross_exposure_limit", "orders_submitted_total",
                                           "orders_filled_total", "orders_rejected_total", "avg_slippage_pct",
                                           "ib_master_client", "ib_working_orders", "ib_order_efficiency_ratio")}
# The broker-truth alerts are the ones whose dashboard is Broker Truth (docs/broker-truth.md).
BROKER_TRUTH_DASHBOARD = grafana_uids.path("broker")
MAX_LINES = 30
SEV_ORDER = {"critical": 0, "warning": 1, "info": 2}


def esc(s) -> str:
    return html.escape(str(s), quote=False)


def money(v: float) -> str:
    return f"{v:,.2f}"


def fmt_time(t: datetime, zone: ZoneInfo) -> str:
    return t.astimezone(zone).strftime("%Y-%m-%d %H:%M %Z")


LOSS_LIMIT = threshold_rules.series("daily_loss_limit")  # the alert's own threshold, as Prometheus has it


@dataclass
class Limits:
    """The daily loss limits DailyLossLimitBreach compares with, read from Prometheus's
    threshold series (trademon.thresholds): what the alert uses now, reload included."""
    daily_loss_limit: float | None  # the default, for the accounts without their own; None: unknown
    currency: str
    per_account: dict[str, float] = field(default_factory=dict)  # account -> its own daily loss limit

    @classmethod
    def from_series(cls, samples, currency: str) -> Limits:
        """From the samples of trademon:threshold:daily_loss_limit: the one without an account
        label is the default, the others are accounts' own."""
        default, own = None, {}
        for lab, v in samples or []:
            if lab.get("account"):
                own[lab["account"]] = v
            else:
                default = v
        return cls(default, currency, own)

    def loss_limit(self, account: str) -> float | None:
        return self.per_account.get(account, self.daily_loss_limit)

    def loss_lines(self, accounts) -> list[tuple[str, float]]:
        """The limit lines of a chart of ``accounts``: the default once (if an account of the
        chart has it, or no account has its own), and each charted account's own."""
        own = sorted(a for a in set(accounts) if a in self.per_account)
        lines = [(f"loss limit {a} {money(self.per_account[a])}", self.per_account[a]) for a in own]
        if self.daily_loss_limit is not None and (not own or set(accounts) - set(own)):
            lines.insert(0, (f"loss limit {money(self.daily_loss_limit)}", self.daily_loss_limit))
        return lines

    def text(self, account: str) -> str:
        lim = self.loss_limit(account)
        return "limit unknown" if lim is None else f"limit {money(lim)}"


def _one(samples) -> float | None:
    """The value of a one-sample answer; None when unknown (no answer, no sample)."""
    if not samples or isinstance(samples, BaseException):
        return None
    return samples[0][1]


def _check_name(labels: dict) -> str:
    """A broker-truth alert and what it is about: its strategy (else its breaker) and symbol."""
    scope = labels.get("strategy") or labels.get("breaker")
    return (labels.get("alertname", "?") + (f" ({scope})" if scope else "")
            + (f" ({labels['symbol']})" if labels.get("symbol") else ""))


def broker_truth_line(alerts, master, working, oer) -> str:
    """/status: the broker-truth checks firing (trading system against IB), and what they stand on."""
    firing = [] if isinstance(alerts, BaseException) else sorted(
        {_check_name(a["labels"]) for a in alerts if a.get("annotations", {}).get("dashboard") == BROKER_TRUTH_DASHBOARD})
    if isinstance(alerts, BaseException):
        head = "Broker truth: unknown (Alertmanager unreachable)"
    elif firing:
        head = "Broker truth: ❌ " + ", ".join(esc(f) for f in firing[:5]) + (f" … {len(firing) - 5} more" if len(firing) > 5 else "")
    else:
        head = "Broker truth: no check firing ✅"
    m, w, r = _one(master), _one(working), _one(oer)
    facts = ["sees other clients' orders: " + ("unknown" if m is None else "yes" if m == 1 else "NO (Master API client ID?)"),
             "working orders at IB: " + ("unknown" if w is None else f"{w:.0f}"),
             "order efficiency today: " + ("unknown" if r is None else f"{r:.1f}")]
    return head + " · " + " · ".join(facts)


def pnl_lines(pnl: list[tuple[dict, float]], limits: Limits) -> list[str]:
    """/status: each account's daily P&L against its own loss limit."""
    out = []
    for lab, v in sorted(pnl, key=lambda s: s[0].get("account", "")):
        lim_v = limits.loss_limit(lab.get("account", ""))
        flag = "" if lim_v is None else "⛔ below the limit" if v < lim_v else ("⚠️" if v < lim_v / 2 else "")
        out.append(f"P&amp;L {esc(lab.get('account', '?'))}: {money(v)} {esc(limits.currency)} ({limits.text(lab.get('account', ''))}) {flag}".rstrip())
    return out


class Reports:
    def __init__(self, prom: Prometheus, am: Alertmanager, currency: str, zone: ZoneInfo):
        self.prom, self.am, self.currency, self.zone = prom, am, currency, zone

    async def _q(self, expr: str):
        try:
            return await self.prom.query(expr)
        except UpstreamError:
            return None  # unknown

    async def limits(self, at: float | None = None) -> Limits:
        """The loss limits in force (at ``at``): unknown while Prometheus or its threshold series are."""
        try:
            return Limits.from_series(await self.prom.query(LOSS_LIMIT, at), self.currency)
        except UpstreamError:
            return Limits(None, self.currency)

    async def status(self) -> str:
        alerts, ib, farms, pnl, breakers, exp, lim, down, master, working, oer, loss = await asyncio.gather(
            self.am.alerts(active=True, silenced=False, inhibited=False), self._q(M["ib_connected"]),
            self._q(M["ib_farm_connected"]), self._q(M["daily_pnl"]), self._q(M["circuit_breaker_open"]),
            self._q(M["risk_gross_exposure"]), self._q(M["risk_gross_exposure_limit"]), self._q("up == 0"),
            self._q(f"min({M['ib_master_client']})"), self._q(f"sum({M['ib_working_orders']})"),
            self._q(f"max({M['ib_order_efficiency_ratio']})"), self.limits(),
            return_exceptions=True)
        out = [f"📊 <b>Status</b> · {fmt_time(datetime.now(UTC), self.zone)}"]
        if isinstance(alerts, BaseException):
            out.append("Alerts: unknown (Alertmanager unreachable)")
        else:
            by: dict[str, int] = {}
            for a in alerts:
                by[a["labels"].get("severity", "none")] = by.get(a["labels"].get("severity", "none"), 0) + 1
            out.append("Alerts firing: " + (" · ".join(f"{esc(k)} {v}" for k, v in sorted(by.items(), key=lambda kv: SEV_ORDER.get(kv[0], 9)))
                                             if by else "none"))
        if not ib or isinstance(ib, BaseException):
            out.append("IB session: unknown (no ib_connected in Prometheus)")
        else:
            out.append("IB session: " + ("connected ✅" if ib[0][1] == 1 else "DISCONNECTED ❌"))
        if farms and not isinstance(farms, BaseException):
            out.append("Data farms: " + ", ".join(f"{esc(lab.get('farm', '?'))} ({esc(lab.get('kind', '?'))}) {'✅' if v == 1 else '❌'}"
                                                  for lab, v in sorted(farms, key=lambda s: (s[0].get('kind', ''), s[0].get('farm', '')))))
        if not pnl or isinstance(pnl, BaseException):
            out.append("P&amp;L: unknown (no daily_pnl in Prometheus)")
        else:
            out += pnl_lines(pnl, loss if isinstance(loss, Limits) else Limits(None, self.currency))
        if breakers and not isinstance(breakers, BaseException):
            opened = [esc(lab.get("breaker", "?")) for lab, v in breakers if v == 1]
            out.append("Breakers: " + ("OPEN: " + ", ".join(opened) if opened else "all closed"))
        else:
            out.append("Breakers: unknown")
        if exp and not isinstance(exp, BaseException):
            limits = {lab.get("account"): v for lab, v in (lim if lim and not isinstance(lim, BaseException) else [])}
            for lab, v in sorted(exp, key=lambda s: s[0].get("account", "")):
                acct = lab.get("account")
                lv = limits.get(acct)
                share = f" of {money(lv)} ({v / lv:.0%})" if lv else " (limit unknown)"
                out.append(f"Exposure {esc(acct)}: {money(v)}{share}")
        out.append(broker_truth_line(alerts, master, working, oer))
        if down is None or isinstance(down, BaseException):
            out.append("Targets down: unknown (Prometheus unreachable)")
        else:
            out.append("Targets down: " + (", ".join(sorted({esc(lab.get("job", "?")) for lab, _ in down})) or "none"))
        return "\n".join(out[:MAX_LINES])

    async def alerts(self) -> str:
        alerts = await self.am.alerts(active=True, silenced=False, inhibited=False)
        if not alerts:
            return "✅ No alert firing."
        alerts.sort(key=lambda a: (SEV_ORDER.get(a["labels"].get("severity"), 9), a["labels"].get("alertname", "")))
        out = [f"🔔 <b>{len(alerts)} firing</b>"]
        for a in alerts[:MAX_LINES]:
            lab = a["labels"]
            extra = ", ".join(f"{esc(k)}={esc(v)[:40]}" for k, v in sorted(lab.items()) if k not in ("alertname", "severity"))[:200]
            out.append(f"{esc(lab.get('severity', '?'))} <b>{esc(lab.get('alertname', '?'))[:80]}</b> {extra} · "
                       f"{esc(a.get('annotations', {}).get('summary', ''))[:150]}")
        if len(alerts) > MAX_LINES:
            out.append(f"… {len(alerts) - MAX_LINES} more")
        return "\n".join(out)

    async def silences(self) -> str:
        active = [s for s in await self.am.silences() if s["status"]["state"] == "active"]
        if not active:
            return "No active silence."
        out = [f"🔕 <b>{len(active)} active silence(s)</b>"]
        for s in sorted(active, key=lambda s: s["endsAt"])[:MAX_LINES]:
            ms = ", ".join(f"{esc(m['name'])}{'=' if m.get('isEqual', True) else '!='}{'~' if m['isRegex'] else ''}{esc(m['value'])[:40]}"
                           for m in s["matchers"])[:300]
            ends = datetime.fromisoformat(s["endsAt"].replace("Z", "+00:00"))
            out.append(f"<code>{esc(s['id'])}</code> until {fmt_time(ends, self.zone)} by {esc(s['createdBy'])[:60]}: {ms}")
        return "\n".join(out)

    def day_start(self, now: float) -> float:
        local = datetime.fromtimestamp(now, self.zone)
        return local.replace(hour=0, minute=0, second=0, microsecond=0).timestamp()

    async def _range(self, exprs: dict[str, str], start: float, end: float) -> tuple[dict, float, float]:
        """The results, the step and the (aligned) start of the window asked for."""
        step = max(1.0, math.ceil((end - start) / 300))
        # Prometheus evaluates at start, start + step, ...: align the grid on `end`, so the last
        # point is now (a chart late in the day, with a coarse step, would miss the last minutes).
        start = end - math.ceil((end - start) / step) * step
        results = await asyncio.gather(*(self.prom.query_range(e, start, end, step) for e in exprs.values()))
        return dict(zip(exprs, results)), step, start

    async def pnl_chart(self, start: float | None = None, end: float | None = None) -> tuple[bytes, str]:
        end = end or time.time()
        start = start or self.day_start(end)
        (r, step, start), limits = await asyncio.gather(self._range({"acct": M["daily_pnl"], "strat": M["strategy_pnl"]}, start, end),
                                                        self.limits(end))
        cur = self.currency
        accounts = charts.series_of(r["acct"], "account")
        panels = [charts.Panel(f"Daily P&L per account ({cur})", accounts, limits.loss_lines(accounts), cur),
                  charts.Panel(f"P&L per strategy ({cur})", charts.series_of(r["strat"], "strategy"), [], cur)]
        png = await asyncio.to_thread(charts.chart, f"P&L {fmt_time(datetime.fromtimestamp(end, UTC), self.zone)}",
                                      panels, self.zone, {"start": start, "end": end, "step": step})
        caption = "; ".join(f"{esc(n)} {money(pts[-1][1])}" for p in panels for n, pts in sorted(p.series.items()) if pts)
        return png, (caption or "no P&amp;L data in Prometheus")[:1000]

    async def exposure_chart(self, start: float | None = None, end: float | None = None) -> tuple[bytes, str]:
        end = end or time.time()
        start = start or self.day_start(end)
        r, step, start = await self._range({"exp": M["risk_gross_exposure"], "lim": M["risk_gross_exposure_limit"]}, start, end)
        lims = charts.series_of(r["lim"], "account")
        panel = charts.Panel("Gross exposure per account", charts.series_of(r["exp"], "account"),
                             [(f"limit {a}", pts[-1][1]) for a, pts in sorted(lims.items()) if pts])
        png = await asyncio.to_thread(charts.chart, f"Exposure {fmt_time(datetime.fromtimestamp(end, UTC), self.zone)}",
                                      [panel], self.zone, {"start": start, "end": end, "step": step})
        caption = "; ".join(f"{esc(a)} {money(pts[-1][1])}" for a, pts in sorted(panel.series.items()) if pts)
        return png, (caption or "no exposure data in Prometheus")[:1000]
