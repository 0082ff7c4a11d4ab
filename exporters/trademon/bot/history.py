"""``/history [period | alert]``: what fired, for how long, and who acknowledged or silenced
it, from the bot's own record (trademon.bot.store's history table: the alerts' startsAt and
endsAt as Alertmanager sent them, and every action from Telegram). One message at most: the
newest first, and "… N more" with how to narrow it."""

from __future__ import annotations

import difflib
import json
import re
from dataclasses import dataclass, field
from datetime import datetime
from zoneinfo import ZoneInfo

from trademon.bot import render
from trademon.bot.store import HISTORY_KEEP_S, Store
from trademon.settings import values

DEFAULT_PERIOD_S = 86400
BUDGET = 3800  # UTF-16 units: one message, under Telegram's 4096
ALERTNAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,99}")
ICONS = {**render.ICONS, "info": "🔵"}
ACTIONS = {"ack": "✋", "ack_extended": "⏳", "silence": "🔕", "unsilence": "🔔", "escalated": "📣"}  # escalated: by "sms, tier 2"
USAGE = ("Usage: /history [period | alert], e.g. /history 6h, /history 7d, /history DailyLossLimitBreach "
         f"(the record keeps {HISTORY_KEEP_S // 86400} days)")


def timestamp(text) -> float | None:
    """An Alertmanager time (RFC 3339, nanoseconds allowed) as epoch seconds; None for none
    (a firing alert's endsAt of year 1 included)."""
    try:
        t = datetime.fromisoformat(str(text).replace("Z", "+00:00")).timestamp()
    except (ValueError, OverflowError, OSError):
        return None
    return t if t > 0 else None


def rows_of(payload: dict) -> list[tuple[float, str, dict, str | None, float | None]]:
    """What a notification adds to the record: each alert's start, and the end of a resolved one."""
    rows: list[tuple[float, str, dict, str | None, float | None]] = []
    for a in payload.get("alerts", []):
        started = timestamp(a.get("startsAt"))
        if started is not None:
            rows.append((started, "fired", a.get("labels") or {}, None, None))
        ended = timestamp(a.get("endsAt")) if a.get("status") == "resolved" else None
        if ended is not None:
            rows.append((ended, "resolved", a.get("labels") or {}, None, None))
    return rows


@dataclass
class Episode:
    labels: dict
    fired: float
    resolved: float | None = None
    actions: list[dict] = field(default_factory=list)


def episodes(rows: list[dict]) -> list[Episode]:
    """Rows (oldest first) into one episode per alert firing: its resolve, and the actions taken
    while it fired (an action by alert name, /silence's, goes to every episode of that name)."""
    open_: dict[str, Episode] = {}
    out: list[Episode] = []
    for r in rows:
        k = json.dumps(r["labels"], sort_keys=True)
        if r["kind"] == "fired":
            if k in open_ and open_[k].fired == r["at"]:
                continue
            open_[k] = Episode(r["labels"], r["at"])
            out.append(open_[k])
        elif r["kind"] in ("resolved", "ack_resolved"):
            ep = open_.pop(k, None)
            if ep is not None and ep.resolved is None:
                ep.resolved = r["at"]
        elif r["kind"] in ACTIONS:
            targets = [open_[k]] if k in open_ else [e for e in open_.values() if _matches(r["labels"], e.labels)]
            for ep in targets:
                ep.actions.append(r)
    return out


def _matches(matchers: dict, labels: dict) -> bool:
    return bool(matchers) and all(labels.get(n) == v for n, v in matchers.items())


def _clock(t: float, zone: ZoneInfo, now: float) -> str:
    local = datetime.fromtimestamp(t, zone)
    return local.strftime("%H:%M" if local.date() == datetime.fromtimestamp(now, zone).date() else "%a %d %b %H:%M")


def span(seconds: float) -> str:
    """2m, 1h05m, 24h, 3d2h, 7d (to the minute)."""
    m = max(0, round(seconds / 60))
    if m >= 2 * 1440:
        return f"{m // 1440}d" + (f"{m % 1440 // 60}h" if m % 1440 // 60 else "")
    if m >= 60:
        return f"{m // 60}h" + (f"{m % 60:02d}m" if m % 60 else "")
    return f"{m}m"


def line(ep: Episode, zone: ZoneInfo, now: float) -> str:
    name = render._cut(ep.labels.get("alertname", "?"), 80)
    icon = ICONS.get(ep.labels.get("severity", ""), "🔵")
    which = ", ".join(f"{render._cut(k, 30)}={render._cut(str(v), 30)}" for k, v in sorted(ep.labels.items())
                      if k not in ("alertname", "severity"))[:120]
    when = f"{_clock(ep.fired, zone, now)} → "
    when += (f"{_clock(ep.resolved, zone, now)} ({span(ep.resolved - ep.fired)})" if ep.resolved is not None
             else f"no resolve recorded ({span(now - ep.fired)} so far)")
    acts = []
    for a in ep.actions[-3:]:
        by = render._cut(re.sub(r" \(Telegram \d+\)$", "", a["who"] or "someone"), 40)
        until = f" until {_clock(a['until'], zone, now)}" if a.get("until") else ""
        acts.append(f"{ACTIONS[a['kind']]} {by} {_clock(a['at'], zone, now)}{until}")
    return " · ".join([f"{icon} <b>{name}</b>" + (f" ({which})" if which else ""), when, *acts])


def parse_args(args: list[str]) -> tuple[float, str | None] | str:
    """(period in seconds, alert name or None), or the error to answer."""
    period: float | None = None
    alert: str | None = None
    for a in args[:3]:
        try:
            got = values.seconds(a)
        except ValueError:
            got = None
        if got is not None and period is None and got > 0:
            period = got
        elif got is None and alert is None and ALERTNAME.fullmatch(a):
            alert = a
        else:
            return f"Not a period or an alert name: {render._cut(a, 60)}. {USAGE}"
    if len(args) > 2:
        return USAGE
    return (period or (HISTORY_KEEP_S if alert else DEFAULT_PERIOD_S)), alert


def answer(store: Store, args: list[str], now: float, zone: ZoneInfo) -> str:
    parsed = parse_args(args)
    if isinstance(parsed, str):
        return parsed
    period, alert = parsed
    capped = period > HISTORY_KEEP_S
    period = min(period, HISTORY_KEEP_S)
    since = now - period
    # episodes that began before the period but were still firing in it: their start is looked up too
    eps = [e for e in episodes(store.history(now - HISTORY_KEEP_S if alert else max(now - HISTORY_KEEP_S, since - 7 * 86400), alert))
           if (e.resolved or now) >= since]
    what = f"the last {span(period)}" + (f" (the record keeps {HISTORY_KEEP_S // 86400} days)" if capped else "")
    if not eps:
        if alert:
            names = store.alert_names(now - HISTORY_KEEP_S)
            close = difflib.get_close_matches(alert, names, n=3, cutoff=0.5)
            hint = f" Recorded names like it: {', '.join(close)}." if close else ""
            return f"Nothing recorded for {render._cut(alert, 100)} in {what}.{hint}"
        return f"Nothing fired in {what}."
    local = datetime.fromtimestamp(now, zone)
    head = (f"📜 <b>History</b> · {render._cut(alert, 100) + ' · ' if alert else ''}{what} · {len(eps)} fired "
            f"(times {zone.key}, {local.strftime('%Z')})")
    lines, used = [head], render.units(head)
    for i, ep in enumerate(reversed(eps)):
        text = line(ep, zone, now)
        if used + render.units(text) + 1 > BUDGET - 120:
            more = len(eps) - i
            lines.append(f"… {more} more, older: a shorter period or one alert, e.g. /history 1h, "
                         f"/history {render._cut(ep.labels.get('alertname', ''), 80)}")
            break
        lines.append(text)
        used += render.units(text) + 1
    return "\n".join(lines)
