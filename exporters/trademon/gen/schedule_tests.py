"""monitoring/tests/schedule.yml: promtool tests of IB's maintenance windows and the market
calendar's horizon, from monitoring/config.yml.

Inside a window (``trademon_ib_maintenance_window`` = 1, exported by am-config --watch from
TRADEMON_IB_MAINTENANCE) TWSConnectionLost and IBDataFarmDisconnected wait
``ib_maintenance_hold`` before their own ``for``: a scheduled reset's blip stays quiet, a
session that stays down still pages, inside the window or right after it. The expected
texts are those of the alerts' own tests in rule_tests (the texts are not this file's subject).
"""

from __future__ import annotations

from pathlib import Path

import yaml

from . import rule_tests as rt
from . import rules

FILE = "schedule.yml"
WINDOW = rt.sel("trademon_ib_maintenance_window", window="ib-reset-na", job="alertmanager-config",
                instance=rt.target("alertmanager-config"))
IB = {"job": "ib-exporter", "instance": rt.target("ib-exporter")}


def _fired(c: rt.Ctx, alert: str) -> rt.Fired:
    """The firing alert as the alert's own step test in rule_tests expects it."""
    tests = rt.money_tests(c) + rt.health_tests(c)
    for t in tests:
        for _, name, fired in t.checks:
            if name == alert and fired:
                return fired[0]
    raise LookupError(f"rule_tests has no firing case of {alert}")


def tws_tests(c: rt.Ctx) -> list[rt.Test]:
    step, hold, F = 15, rt.secs(c["ib_maintenance_hold"]), c.for_("TWSConnectionLost")
    fired = _fired(c, "TWSConnectionLost")
    blip = max(F + 2 * c.eval, 120)  # longer than `for`: outside a window this pages
    out = []

    # Window from 10m for 2 holds; a blip at 15m, back up, then down for good at 25m.
    w_on, w_len = 600, 2 * hold + 600
    b_on, gone = 900, 900 + blip + 300
    total = w_on + w_len + 900
    t = rt.Test("TWSConnectionLost in an IB maintenance window: a reset's blip longer than its for stays quiet; "
                "a session that stays down pages after the hold and its for", step)
    t.add(WINDOW, rt.gauge((0, w_on // step), (1, w_len // step), (0, (total - w_on - w_len) // step)))
    t.add(rt.sel("ib_connected", **IB), rt.gauge((1, b_on // step), (0, blip // step), (1, (gone - b_on - blip) // step),
                                                   (0, (total - gone) // step)))
    t.expect(c.next_eval(b_on + blip) - c.eval, "TWSConnectionLost")  # the blip, for longer than `for`: held
    t.expect(c.next_eval(gone + F + c.eval), "TWSConnectionLost")  # outside a window this would fire here
    # the first evaluation whose hold-long range holds no sample of the session up (ranges are left-open)
    first = c.next_eval(gone - step + hold)
    t.expect(first + F - c.eval, "TWSConnectionLost")
    t.expect(first + F, "TWSConnectionLost", fired)
    assert first + F < w_on + w_len, "the persistent loss must page inside the window"
    out.append(t)

    # Lost shortly before a short window ends: pages right after it, not a hold later.
    w_len2 = hold // 2
    lost = w_on + 60
    total = w_on + w_len2 + 900
    t = rt.Test("TWSConnectionLost: a session lost in a window and not back when it ends pages right after the window", step)
    t.add(WINDOW, rt.gauge((0, w_on // step), (1, w_len2 // step), (0, (total - w_on - w_len2) // step)))
    t.add(rt.sel("ib_connected", **IB), rt.gauge((1, lost // step), (0, (total - lost) // step)))
    end = w_on + w_len2
    t.expect(c.next_eval(end) - c.eval, "TWSConnectionLost")
    t.expect(c.next_eval(end) + F + c.eval, "TWSConnectionLost", fired)
    out.append(t)

    # Unknown schedule (am-config down): nothing is held.
    t = rt.Test("TWSConnectionLost: without the schedule (no window series) the blip pages as usual", step)
    t.add(rt.sel("ib_connected", **IB), rt.gauge((1, b_on // step), (0, blip // step), (1, 600 // step)))
    t.expect(c.next_eval(b_on) + F + c.eval, "TWSConnectionLost", fired)
    out.append(t)
    return out


def farm_tests(c: rt.Ctx) -> list[rt.Test]:
    step, hold, F = 60, rt.secs(c["ib_maintenance_hold"]), c.for_("IBDataFarmDisconnected")
    fired = _fired(c, "IBDataFarmDisconnected")
    farm = rt.sel("ib_farm_connected", farm="usfarm", kind="market", **IB)
    w_on, w_len = 600, 2 * hold + 2 * F + 1200
    flap_on, flap = 900, F + 180
    gone = flap_on + flap + 300
    total = w_on + w_len + 600
    t = rt.Test("IBDataFarmDisconnected in an IB maintenance window: a flap longer than its for stays quiet; "
                "a farm that stays down fires after the hold and its for", step)
    t.add(WINDOW, rt.gauge((0, w_on // step), (1, w_len // step), (0, (total - w_on - w_len) // step)))
    t.add(farm, rt.gauge((1, flap_on // step), (0, flap // step), (1, (gone - flap_on - flap) // step), (0, (total - gone) // step)))
    t.expect(c.next_eval(flap_on + flap) - c.eval, "IBDataFarmDisconnected")
    first = c.next_eval(gone - step + hold)
    t.expect(first + F - c.eval, "IBDataFarmDisconnected")
    t.expect(first + F, "IBDataFarmDisconnected", fired)
    return [t]


def incident_tests(c: rt.Ctx) -> list[rt.Test]:
    """A reconnect inside a window is not an incident on the dashboards; one outside is."""
    step = 15
    t = rt.Test("job:ib_disconnect_incidents:increase5m: a disconnect in a maintenance window is no incident", step)
    t.add(WINDOW, rt.gauge((0, 40), (1, 40), (0, 40)))
    # one disconnect at 5m (outside), one at 15m (inside the window 10m-20m)
    t.add(rt.sel("ib_disconnects_total", **IB), rt.gauge((3, 20), (4, 40), (5, 60)))
    incidents = "count(job:ib_disconnect_incidents:increase5m > 0)"
    t.expect_expr(420, incidents, ({}, 1))
    t.expect_expr(1020, incidents)  # the window's reconnect at 15m: not counted
    t.expect_expr(1020, "count(job:ib_disconnect_incidents:increase5m == 0)", ({}, 1))
    t.expect_expr(1020, "count(sum by (job) (increase(ib_disconnects_total[5m])) > 0)", ({}, 1))  # it happened
    return [t]


def calendar_tests(c: rt.Ctx) -> list[rt.Test]:
    days = float(c["market_calendar_min_days"])
    end = days * 86400 + 600  # the horizon: min_days and 10 minutes after t=0
    t = rt.Test("MarketCalendarExpiring: fires once fewer than market_calendar_min_days of intervals are left", 60)
    t.add(rt.sel("trademon_market_calendar_end_timestamp_seconds", job="alertmanager-config",
                 instance=rt.target("alertmanager-config")), rt.gauge((end, 30)))
    t.expect(540, "MarketCalendarExpiring")
    left = (end - 900) / 86400
    t.expect(900, "MarketCalendarExpiring", rt.Fired(
        {"job": "alertmanager-config"}, f"Market calendar runs out in {left:.0f} days",
        f"The market-open intervals rendered into Alertmanager end in {left:.1f} days (warning below {days:g}): after "
        "that MarketDataStale is muted as if the market never opened. alertmanager-config renders them daily; "
        "it is failing or stopped."))
    return [t]


def render(root: Path) -> str:
    c = rt.Ctx(root)
    doc = {
        "rule_files": rt.RULE_FILES,
        "evaluation_interval": rt.dur(c.eval),
        # every group of the rule files, recording rules first (as rule_tests orders them)
        "group_eval_order": [*rules.RECORDING_GROUPS, *(g["name"] for g in yaml.safe_load(rules.render_alerts(root))["groups"])],
        "tests": [t.as_dict() for t in tws_tests(c) + farm_tests(c) + incident_tests(c) + calendar_tests(c)],
    }
    header = ("# promtool unit tests: IB maintenance windows hold the IB alerts longer (not muted); the market calendar's horizon.\n"
              "# Generated by `trademon gen` from monitoring/config.yml and exporters/trademon/gen/schedule_tests.py.\n"
              "# Run: promtool test rules monitoring/tests/*.yml\n")
    return header + yaml.dump(doc, Dumper=rules._Dumper, sort_keys=False, width=1000, allow_unicode=True)


GENERATED = [(f"{rt.TESTS_DIR}/{FILE}", render)]
