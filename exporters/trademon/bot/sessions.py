"""When the next trading session opens, for the "Until the next session" button.

From the exchange calendar (trademon.alertmanager.markets, the first exchange of TRADEMON_EXCHANGES:
holidays and early closes known) when exchange-calendars is installed; otherwise from the
weekday hours of the ``market-open`` time_interval of alertmanager/alertmanager.yml (the
same fallback Alertmanager uses), which knows no holidays.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, time as dtime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import yaml

from trademon.alertmanager import markets
from trademon.settings import values

INTERVAL = markets.INTERVAL_NAME


@dataclass(frozen=True)
class MarketHours:
    weekdays: frozenset[int]
    open: dtime
    zone: ZoneInfo
    exchange: str | None = None  # the calendar to ask first


DEFAULT = MarketHours(frozenset(range(5)), dtime(9, 30), ZoneInfo("America/New_York"))


def load(alertmanager_yml: Path, exchange: str | None = None) -> MarketHours:
    cfg = yaml.safe_load(alertmanager_yml.read_text(encoding="utf-8"))
    for ti in cfg.get("time_intervals", []):
        if ti.get("name") == INTERVAL:
            spec = ti["time_intervals"][0]
            h, m = spec["times"][0]["start_time"].split(":")
            return MarketHours(values.weekdays(spec["weekdays"], through=":"), dtime(int(h), int(m)), ZoneInfo(spec.get("location", "UTC")), exchange)
    return MarketHours(DEFAULT.weekdays, DEFAULT.open, DEFAULT.zone, exchange)


def next_session_open(now: datetime, hours: MarketHours = DEFAULT) -> datetime:
    """The first session open strictly after ``now`` (aware datetime in, aware out)."""
    if hours.exchange:
        try:
            return markets.next_session_open(now, hours.exchange).astimezone(hours.zone)
        except markets.CalendarUnavailable:
            pass  # the weekday hours below
    local = now.astimezone(hours.zone)
    for days in range(0, 8):
        day = (local + timedelta(days=days)).date()
        if day.weekday() not in hours.weekdays:
            continue
        opening = datetime.combine(day, hours.open, hours.zone)
        if opening > local:
            return opening
    raise ValueError("market hours without any weekday")
