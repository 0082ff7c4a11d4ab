"""The market's clock: exchange sessions from a maintained calendar, as Alertmanager
``time_intervals``; and ``next_session_open`` / ``is_open`` for other parts (the bot).

Sessions come from `exchange-calendars` (PyPI, the optional extra ``trademon[calendars]``):
it knows holidays and early closes per exchange by ISO MIC code (XNYS, XNAS, XLON, XETR,
XTKS...), with lunch breaks where an exchange has them, and is the library
pandas-market-calendars itself builds on for most exchanges; we need sessions, not its
pandas-oriented extras. Every function takes ``now`` so tests inject the clock.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, UTC
from collections.abc import Iterable, Mapping
from zoneinfo import ZoneInfo

from trademon.settings.env import ConfigError, env_int, env_str
from trademon.settings.values import WEEKDAYS, weekday

DEFAULT_EXCHANGES = ("XNYS",)
MAX_EXCHANGES = 8  # each is a label value of trademon_market_open: bounded
DEFAULT_HORIZON_DAYS = 92  # about three months of intervals per render
MAX_HORIZON_DAYS = 366
INTERVAL_NAME = "market-open"  # what the market-hours-only routes name in alertmanager.yml
MONTHS = ("january", "february", "march", "april", "may", "june", "july", "august",
          "september", "october", "november", "december")


class CalendarUnavailable(RuntimeError):
    """exchange-calendars is not installed."""


@dataclass(frozen=True)
class Session:
    """One continuous trading period (a session, or half of one around a lunch break), UTC."""

    exchange: str
    open: datetime
    close: datetime
    tz: str


def _xcals():
    try:
        import exchange_calendars
    except ModuleNotFoundError:
        raise CalendarUnavailable("exchange-calendars is not installed: pip install 'trademon[calendars]' "
                                  "(the trademon image has it)") from None
    return exchange_calendars


def check_exchange(code: str) -> str:
    code = code.strip().upper()
    xcals = _xcals()
    if code not in xcals.get_calendar_names(include_aliases=True):
        raise ConfigError("TRADEMON_EXCHANGES", code, "not an exchange calendar code",
                          "ISO MIC codes of exchange-calendars, e.g. XNYS, XNAS, XLON, XETR, XTKS, XHKG")
    return code


def exchanges_from_env(env: Mapping[str, str] | None = None) -> list[str]:
    raw = env_str("TRADEMON_EXCHANGES", ",".join(DEFAULT_EXCHANGES), env=env)
    codes = list(dict.fromkeys(c.strip().upper() for c in raw.split(",") if c.strip()))
    if not codes or len(codes) > MAX_EXCHANGES:
        raise ConfigError("TRADEMON_EXCHANGES", raw, f"needs 1 to {MAX_EXCHANGES} exchanges", "e.g. XNYS or XNYS,XETR")
    return [check_exchange(c) for c in codes]


def horizon_days_from_env(env: Mapping[str, str] | None = None) -> int:
    return env_int("TRADEMON_MARKET_HORIZON_DAYS", DEFAULT_HORIZON_DAYS, 14, MAX_HORIZON_DAYS, env=env)


def _utc(t: datetime) -> datetime:
    if t.tzinfo is None:
        raise ValueError("a naive datetime: pass an aware one (e.g. datetime.now(timezone.utc))")
    return t.astimezone(UTC)


def _calendar(exchange: str, first: date, last: date):
    import pandas as pd

    return _xcals().get_calendar(exchange, start=pd.Timestamp(first), end=pd.Timestamp(last))


def sessions(exchange: str, start: datetime, end: datetime) -> list[Session]:
    """The trading periods of ``exchange`` that overlap [start, end), in order."""
    start, end = _utc(start), _utc(end)
    cal = _calendar(exchange, (start - timedelta(days=2)).date(), (end + timedelta(days=2)).date())
    tz = str(cal.tz)
    out = []
    for _, row in cal.schedule.iterrows():
        opens, closes = row["open"].to_pydatetime(), row["close"].to_pydatetime()
        pieces = [(opens, closes)]
        b0, b1 = row.get("break_start"), row.get("break_end")
        if b0 is not None and b1 is not None and b0 == b0 and b1 == b1:  # NaT != NaT: no break
            pieces = [(opens, b0.to_pydatetime()), (b1.to_pydatetime(), closes)]
        for o, c in pieces:
            if o < end and c > start:
                out.append(Session(exchange, o.astimezone(UTC), c.astimezone(UTC), tz))
    return out


def is_open(now: datetime, exchange: str = "XNYS") -> bool:
    now = _utc(now)
    return any(s.open <= now < s.close for s in sessions(exchange, now - timedelta(days=1), now + timedelta(days=1)))


def next_session_open(now: datetime, exchange: str = "XNYS") -> datetime:
    """The next time ``exchange`` opens strictly after ``now`` (UTC, aware): holidays, weekends
    and lunch breaks skipped. While it is open, that is the next session's (or the afternoon's) open."""
    now = _utc(now)
    for days in (10, 40, 400):  # the longest closures (e.g. Lunar New Year, 2001's 9/11) fit in the first window
        for s in sessions(exchange, now, now + timedelta(days=days)):
            if s.open > now:
                return s.open
    raise LookupError(f"{exchange}: no session within 400 days of {now.isoformat()}")


def _local_pieces(s: Session) -> Iterable[tuple[date, time, time | None]]:
    """(local date, start, end) per local day the session touches; end None means 24:00."""
    tz = ZoneInfo(s.tz)
    o, c = s.open.astimezone(tz), s.close.astimezone(tz)
    day = o.date()
    while True:
        start = o.time() if day == o.date() else time(0, 0)
        if day == c.date():
            if c.time() > start:
                yield day, start, c.time()
            return
        yield day, start, None
        day += timedelta(days=1)


def _hhmm(t: time | None) -> str:
    return "24:00" if t is None else f"{t.hour:02d}:{t.minute:02d}"


def _day_ranges(days: list[int]) -> list[str]:
    out, run = [], [days[0]]
    for d in days[1:]:
        if d == run[-1] + 1:
            run.append(d)
        else:
            out.append(run)
            run = [d]
    out.append(run)
    return [str(r[0]) if len(r) == 1 else f"{r[0]}:{r[-1]}" for r in out]


def time_interval_specs(periods: Iterable[Session]) -> list[dict]:
    """Alertmanager ``time_intervals`` entries covering exactly ``periods``: explicit dates
    (year, month, days of month) with local times in the exchange's own zone, so daylight
    saving is Alertmanager's tz database's business, as it is the exchange's."""
    groups: dict[tuple, set[int]] = {}
    for s in periods:
        for day, start, end in _local_pieces(s):
            groups.setdefault((day.year, day.month, s.tz, _hhmm(start), _hhmm(end)), set()).add(day.day)
    specs = []
    for (year, month, tz, start, end), days in sorted(groups.items()):
        specs.append({"times": [{"start_time": start, "end_time": end}], "days_of_month": _day_ranges(sorted(days)),
                      "months": [MONTHS[month - 1]], "years": [str(year)], "location": tz})
    return specs


@dataclass(frozen=True)
class Schedule:
    """What one render knows: the sessions from ``start`` to ``end`` of each exchange."""

    exchanges: tuple[str, ...]
    start: datetime
    end: datetime  # the horizon: after this, the rendered intervals have no session
    periods: tuple[Session, ...]

    def intervals(self) -> list[dict]:
        """Alertmanager ``time_intervals``: ``market-open`` (any configured exchange open),
        then one per exchange (``market-open-xnys``...) for routes that want one."""
        out = [{"name": INTERVAL_NAME, "time_intervals": time_interval_specs(self.periods)}]
        for ex in self.exchanges:
            out.append({"name": f"{INTERVAL_NAME}-{ex.lower()}",
                        "time_intervals": time_interval_specs(p for p in self.periods if p.exchange == ex)})
        return out

    def is_open(self, now: datetime, exchange: str) -> bool | None:
        """Open at ``now``; None past the horizon (unknown is not "closed")."""
        now = _utc(now)
        if not self.start <= now < self.end:
            return None
        return any(p.exchange == exchange and p.open <= now < p.close for p in self.periods)

    def as_json(self) -> dict:
        return {"exchanges": list(self.exchanges), "start": self.start.isoformat(), "end": self.end.isoformat(),
                "sessions": [[p.exchange, p.open.isoformat(), p.close.isoformat(), p.tz] for p in self.periods]}

    @classmethod
    def from_json(cls, d: dict) -> Schedule:
        return cls(tuple(d["exchanges"]), datetime.fromisoformat(d["start"]), datetime.fromisoformat(d["end"]),
                   tuple(Session(e, datetime.fromisoformat(o), datetime.fromisoformat(c), tz) for e, o, c, tz in d["sessions"]))


def schedule(exchanges: Iterable[str], now: datetime, horizon_days: int = DEFAULT_HORIZON_DAYS) -> Schedule:
    """From the start of yesterday (UTC) to ``horizon_days`` after today, for every exchange."""
    now = _utc(now)
    start = datetime.combine(now.date() - timedelta(days=1), time(0), UTC)
    end = datetime.combine(now.date() + timedelta(days=horizon_days), time(0), UTC)
    exchanges = tuple(exchanges)
    periods = [p for ex in exchanges for p in sessions(ex, start, end)]
    return Schedule(exchanges, start, end, tuple(sorted(periods, key=lambda p: (p.open, p.exchange))))


# --- IB's own schedule: server resets and the Gateway's auto-restart ------------------------

# IB's published daily reset times (interactivebrokers.com "System Status"; they move: check
# yours there). North America: IB now lists 00:15-01:45 ET; the long-known 23:45-00:45 ET is
# kept inside the default window. The weekend maintenance, Friday 23:00 - Saturday 03:00 ET,
# is the same for every region.
IB_PRESETS: dict[str, tuple[str, ...]] = {
    "na": ("23:45-01:45@America/New_York", "fri 23:00-03:00@America/New_York"),
    "eu": ("06:25-07:45@Europe/Zurich", "fri 23:00-03:00@America/New_York"),
    "asia": ("04:45-06:05@Asia/Hong_Kong", "20:15-21:15@Asia/Hong_Kong", "fri 23:00-03:00@America/New_York"),
}
DEFAULT_IB_MAINTENANCE = "na"
DEFAULT_GATEWAY_RESTART = "23:45@America/New_York"  # IB Gateway's default auto-restart time (Configure > Lock and Exit)
GATEWAY_RESTART_MINUTES = 15  # a Gateway restart plus its re-login
MAX_WINDOWS = 8  # each is a label value of trademon_ib_maintenance_window: bounded
_SPEC = re.compile(r"(?:(" + "|".join(d[:3] for d in WEEKDAYS) + r") )?(\d\d):(\d\d)-(\d\d):(\d\d)@([A-Za-z_+/-]+)")


@dataclass(frozen=True)
class Window:
    """A recurring window in local time: daily, or weekly from ``weekday``; ends the next day
    when ``end`` <= ``start``."""

    name: str
    start: time
    end: time
    tz: str
    weekday: int | None = None  # 0 = Monday

    def contains(self, now: datetime) -> bool:
        local = _utc(now).astimezone(ZoneInfo(self.tz))
        for back in (0, 1):  # a window that began yesterday and crosses midnight
            day = local.date() - timedelta(days=back)
            if self.weekday is not None and day.weekday() != self.weekday:
                continue
            end_day = day + timedelta(days=1) if self.end <= self.start else day
            begin = datetime.combine(day, self.start, ZoneInfo(self.tz))
            finish = datetime.combine(end_day, self.end, ZoneInfo(self.tz))
            if begin <= local < finish:
                return True
        return False


def parse_window(name: str, spec: str, variable: str = "TRADEMON_IB_MAINTENANCE") -> Window:
    when, _, zone = spec.strip().partition("@")
    m = _SPEC.fullmatch(f"{when.strip().lower()}@{zone.strip()}")
    allowed = "a preset (na, eu, asia) or [weekday ]HH:MM-HH:MM@Zone, e.g. 23:45-01:45@America/New_York or fri 23:00-03:00@America/New_York"
    if not m:
        raise ConfigError(variable, spec, "not a maintenance window", allowed)
    wd, h0, m0, h1, m1, tz = m.groups()
    try:
        ZoneInfo(tz)
        start, end = time(int(h0), int(m0)), time(int(h1), int(m1))
    except (ValueError, KeyError, OSError):
        raise ConfigError(variable, spec, "bad time or unknown time zone", allowed) from None
    return Window(name, start, end, tz, weekday(wd) if wd else None)


def ib_windows_from_env(env: Mapping[str, str] | None = None) -> list[Window]:
    """TRADEMON_IB_MAINTENANCE (presets and/or specs, comma-separated; "none" for none) and
    TRADEMON_IB_GATEWAY_RESTART (HH:MM@Zone, "none" when the Gateway does not auto-restart)."""
    raw = env_str("TRADEMON_IB_MAINTENANCE", DEFAULT_IB_MAINTENANCE, env=env)
    out: list[Window] = []
    for item in (i.strip() for i in raw.split(",")):
        if not item or item.lower() == "none":
            continue
        if item.lower() in IB_PRESETS:
            daily = [s for s in IB_PRESETS[item.lower()] if not s.startswith("fri")]
            for i, s in enumerate(daily, 1):
                out.append(parse_window(f"ib-reset-{item.lower()}" + (f"-{i}" if len(daily) > 1 else ""), s))
            out += [parse_window("ib-weekend", s) for s in IB_PRESETS[item.lower()] if s.startswith("fri")]
        else:
            out.append(parse_window(f"custom-{len(out) + 1}", item))
    restart = env_str("TRADEMON_IB_GATEWAY_RESTART", DEFAULT_GATEWAY_RESTART, env=env)
    if restart.lower() != "none":
        m = re.fullmatch(r"(\d\d):(\d\d)@(\S+)", restart)
        if not m:
            raise ConfigError("TRADEMON_IB_GATEWAY_RESTART", restart, "not HH:MM@Zone", "e.g. 23:45@America/New_York, or none")
        begin = datetime(2000, 1, 3, int(m.group(1)), int(m.group(2))) + timedelta(minutes=GATEWAY_RESTART_MINUTES)
        out.append(parse_window("gateway-restart", f"{m.group(1)}:{m.group(2)}-{begin:%H:%M}@{m.group(3)}", "TRADEMON_IB_GATEWAY_RESTART"))
    merged: dict[str, Window] = {}
    for w in out:  # a preset named twice, or the weekend window of two regions: once
        merged.setdefault(w.name, w)
    if len(merged) > MAX_WINDOWS:
        raise ConfigError("TRADEMON_IB_MAINTENANCE", raw, f"more than {MAX_WINDOWS} windows", "fewer windows")
    return list(merged.values())
