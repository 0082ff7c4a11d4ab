"""IB Gateway's week (issue 26): the countdown to IB's forced weekly re-authentication (Sunday
01:00 New York time, across DST changes), and when the exporter says a login with the second
factor is awaited. The clock is injected; tests/test_ib_gateway_e2e.py runs the exporter
against the stand-in TWS and a stand-in gateway controller."""

from __future__ import annotations

from datetime import datetime, UTC
from zoneinfo import ZoneInfo

import pytest
from prometheus_client import CollectorRegistry

from trademon.ib import week
from trademon.metrics import JobMetrics

NY = ZoneInfo("America/New_York")


def ny(*args) -> datetime:
    return datetime(*args, tzinfo=NY)


@pytest.mark.parametrize("now, last, nxt", [
    # Monday morning: last Sunday 01:00, next Sunday 01:00
    (ny(2026, 12, 7, 9, 30), ny(2026, 12, 6, 1, 0), ny(2026, 12, 13, 1, 0)),
    # Sunday 00:59: the week's re-authentication is a minute away
    (ny(2026, 12, 13, 0, 59), ny(2026, 12, 6, 1, 0), ny(2026, 12, 13, 1, 0)),
    # Sunday 01:00 exactly: it is now; the next is a week on
    (ny(2026, 12, 13, 1, 0), ny(2026, 12, 13, 1, 0), ny(2026, 12, 20, 1, 0)),
    # Saturday night
    (ny(2026, 12, 12, 23, 0), ny(2026, 12, 6, 1, 0), ny(2026, 12, 13, 1, 0)),
    # DST ends Sunday 2026-11-01 at 02:00: 01:00 happens twice; the first is the earliest IB acts
    (ny(2026, 10, 30, 12, 0), ny(2026, 10, 25, 1, 0), ny(2026, 11, 1, 1, 0)),
    # DST starts Sunday 2027-03-14 at 02:00: 01:00 exists (EST)
    (ny(2027, 3, 13, 12, 0), ny(2027, 3, 7, 1, 0), ny(2027, 3, 14, 1, 0)),
])
def test_last_and_next_weekly_reauth(now, last, nxt):
    assert week.last_reauth(now) == last and week.last_reauth(now.astimezone(UTC)) == last
    assert week.next_reauth(now) == nxt
    assert week.next_reauth(now).astimezone(NY).hour == 1 and week.next_reauth(now).weekday() == 6


def test_the_countdown_counts_real_seconds_across_a_dst_change():
    # Sunday 2026-11-01 01:30 EDT, just after that week's re-authentication; clocks go back an
    # hour at 02:00, so the next one (01:00 EST on the 8th) is 7 days and 30 minutes away.
    after = datetime(2026, 11, 1, 5, 30, tzinfo=UTC)  # 01:30 EDT
    assert after.astimezone(NY).strftime("%H:%M %Z") == "01:30 EDT"
    assert week.next_reauth(after).timestamp() - after.timestamp() == 7 * 86400 + 30 * 60


class Clock:
    def __init__(self, t: datetime):
        self.t = t.timestamp()

    def __call__(self) -> float:
        return self.t


def gauges(metrics):
    reg = metrics.registry
    return (reg.get_sample_value("ib_gateway_reauth_in_seconds"), reg.get_sample_value("ib_gateway_2fa_required"))


def make(t: datetime, **state):
    metrics = JobMetrics("ib-exporter", CollectorRegistry())
    s = {"connected": True, "reason": None, "checks": {}, **state}
    clock = Clock(t)
    w = week.GatewayWeek(metrics, lambda: s["connected"], lambda: s["reason"], lambda: s["checks"], clock)
    return w, metrics, s, clock


def test_countdown_gauge_and_quiet_while_connected():
    w, metrics, s, _ = make(ny(2026, 12, 12, 1, 0))  # Saturday 01:00: a day to go
    w.update()
    assert gauges(metrics) == (86400.0, 0.0)


def test_session_lost_after_the_weekly_reauth_is_a_2fa_wait_until_it_is_back():
    w, metrics, s, clock = make(ny(2026, 12, 13, 0, 50))
    w.update()  # seen up before 01:00
    clock.t = ny(2026, 12, 13, 1, 7).timestamp()
    s.update(connected=False, reason="socket_refused")  # the gateway logged out, its API port closed
    w.update()
    assert gauges(metrics)[1] == 1.0
    clock.t = ny(2026, 12, 13, 9, 0).timestamp()  # still not approved hours later: still 1
    w.update()
    assert gauges(metrics)[1] == 1.0
    s.update(connected=True, reason=None)  # approved
    w.update()
    assert gauges(metrics)[1] == 0.0
    s.update(connected=False, reason="connectivity_lost")  # a later outage in the week: not a login wait
    clock.t = ny(2026, 12, 15, 0, 20).timestamp()
    w.update()
    assert gauges(metrics)[1] == 0.0


def test_an_outage_midweek_with_the_handshake_stalled_at_login_is_a_2fa_wait():
    w, metrics, s, _ = make(ny(2026, 12, 9, 12, 0), connected=False, reason="handshake_timeout")
    w.update()
    assert gauges(metrics)[1] == 1.0
    s["reason"] = "socket_refused"  # never seen up, controller not configured: not known to be a login wait
    w.update()
    assert gauges(metrics)[1] == 0.0


@pytest.mark.parametrize("checks, want", [
    ({"health": True, "ready": False}, 1.0),  # the controller runs, the gateway is not logged in
    ({"health": False, "ready": False}, 0.0),  # the controller itself is down: IBGatewayControllerDown's
    ({"health": True, "ready": True}, 0.0),
    ({}, 0.0),  # no controller configured
])
def test_the_controller_alive_but_not_ready_is_a_2fa_wait(checks, want):
    w, metrics, s, _ = make(ny(2026, 12, 9, 12, 0), connected=False, reason="socket_refused", checks=checks)
    w.update()
    assert gauges(metrics)[1] == want
