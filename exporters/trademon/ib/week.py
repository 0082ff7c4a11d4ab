"""IB Gateway's week: the forced weekly re-authentication, and whether a login with the second
factor is awaited.

IB invalidates the gateway's session once a week, on Sunday after 01:00 America/New_York, and
the login after it needs the second factor by hand (IB Key push or code). A gateway waiting
for it looks like any other outage from the API port (nothing listens, or the handshake
stalls), so the exporter tells it apart:
- ``ib_gateway_reauth_in_seconds``: the countdown to the next such re-authentication (01:00 is
  the earliest IB does it), so a warning can come the day before;
- ``ib_gateway_2fa_required``: 1 while the API session is down and (a) it was last seen up
  before the latest weekly re-authentication, (b) the handshake stalls at login
  (``handshake_timeout``), or (c) the gateway controller is alive (/health) but not ready.

Every function takes the wall clock (``now``) so tests inject it.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import datetime, time as dtime, timedelta, UTC
from zoneinfo import ZoneInfo

REAUTH_WEEKDAY = 6  # Sunday (Monday = 0)
REAUTH_AT = dtime(1, 0)
REAUTH_ZONE = ZoneInfo("America/New_York")
# Down reasons (contract.IB_DOWN_REASONS) that mean the gateway is up but not logged in.
LOGIN_WAIT_REASONS = frozenset({"handshake_timeout"})


def last_reauth(now: datetime) -> datetime:
    """The latest weekly re-authentication at or before ``now`` (aware, America/New_York)."""
    local = now.astimezone(REAUTH_ZONE)
    day = local.date() - timedelta(days=(local.weekday() - REAUTH_WEEKDAY) % 7)
    at = datetime.combine(day, REAUTH_AT, REAUTH_ZONE)
    return at if at <= local else datetime.combine(day - timedelta(days=7), REAUTH_AT, REAUTH_ZONE)


def next_reauth(now: datetime) -> datetime:
    """The first weekly re-authentication after ``now``. By local date, so a DST change in the
    week moves nothing: it is always 01:00 New York time."""
    return datetime.combine(last_reauth(now).date() + timedelta(days=7), REAUTH_AT, REAUTH_ZONE)


class GatewayWeek:
    """Sets the IB gateway gauges from the session state, at each scrape (``update``)."""

    def __init__(self, metrics, connected: Callable[[], bool], down_reason: Callable[[], str | None],
                 controller: Callable[[], dict[str, bool]] = dict, wall: Callable[[], float] = time.time):
        self.connected, self.down_reason, self.controller, self.wall = connected, down_reason, controller, wall
        self.countdown = metrics["ib_gateway_reauth_in_seconds"]
        self.required = metrics["ib_gateway_2fa_required"]
        self.last_up: float | None = None  # wall time the session was last seen up

    def login_awaited(self, now: float) -> bool:
        if self.connected():
            self.last_up = now
            return False
        weekly = self.last_up is not None and self.last_up < last_reauth(datetime.fromtimestamp(now, UTC)).timestamp()
        checks = self.controller()
        waiting = checks.get("health") is True and checks.get("ready") is False
        return weekly or self.down_reason() in LOGIN_WAIT_REASONS or waiting

    def update(self) -> None:
        now = self.wall()
        self.countdown.set(next_reauth(datetime.fromtimestamp(now, UTC)).timestamp() - now)
        self.required.set(1 if self.login_awaited(now) else 0)
