"""Alertmanager's time_interval semantics, for checking rendered intervals at any instant.

Alertmanager's own clock cannot be set, so the unit tests evaluate the rendered
``time_intervals`` here at chosen instants (holidays, DST switch days), and
tests/test_markets_alertmanager.py checks with the real Alertmanager that it reads them the
same way around now. Implemented from Alertmanager's documentation (configuration.md,
time_interval): every given field must match; ``times`` are [start, end) in minutes of the
day in ``location``; ranges are ``a:b`` inclusive.
"""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

MONTHS = ["january", "february", "march", "april", "may", "june", "july", "august", "september",
          "october", "november", "december"]
WEEKDAYS = ["monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday"]


def _ranges(items, value: int, names: list[str] | None = None, base: int = 1) -> bool:
    def num(x: str) -> int:
        x = x.strip().lower()
        return names.index(x) + base if names and x in names else int(x)

    for item in items:
        lo, _, hi = str(item).partition(":")
        if num(lo) <= value <= num(hi or lo):
            return True
    return False


def _minutes(hhmm: str) -> int:
    h, m = hhmm.split(":")
    return int(h) * 60 + int(m)


def spec_active(spec: dict, t: datetime) -> bool:
    local = t.astimezone(ZoneInfo(spec.get("location", "UTC")))
    if "years" in spec and not _ranges(spec["years"], local.year):
        return False
    if "months" in spec and not _ranges(spec["months"], local.month, MONTHS):
        return False
    if "days_of_month" in spec and not _ranges(spec["days_of_month"], local.day):
        return False
    if "weekdays" in spec and not _ranges(spec["weekdays"], local.weekday(), WEEKDAYS, base=0):
        return False
    if "times" in spec:
        minute = local.hour * 60 + local.minute
        if not any(_minutes(r["start_time"]) <= minute < _minutes(r["end_time"]) for r in spec["times"]):
            return False
    return True


def active(cfg: dict, name: str, t: datetime) -> bool:
    """Is the named time interval of an Alertmanager config active at ``t``?"""
    (interval,) = [i for i in cfg["time_intervals"] if i["name"] == name]
    return any(spec_active(s, t) for s in interval["time_intervals"])
