"""The scenario catalogue and the demo time compression, without running the stack."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
import yaml

from trademon.stack import timescale, tools
from trademon.gen import check
from trademon.sim import catalogue
from trademon.sim.scenarios import SCENARIOS

ROOT = Path(__file__).resolve().parents[1]


def test_every_scenario_is_in_the_catalogue_with_alerts_that_exist():
    p = catalogue.Pipeline.load(ROOT)
    assert list(catalogue.EXPECTED) == list(SCENARIOS) or set(catalogue.EXPECTED) == set(SCENARIOS)
    for name, expects in catalogue.EXPECTED.items():
        assert expects, name
        for e in expects:
            assert e.alert in p.rules, f"{name}: no alert rule named {e.alert}"


def test_demo_doc_catalogue_is_generated_from_the_code():
    assert check(ROOT, only={"docs/demo.md"}) == []
    text = (ROOT / "docs" / "demo.md").read_text()
    for name in SCENARIOS:
        assert f"| `{name}` |" in text


def test_times_come_from_the_shipped_intervals():
    p = catalogue.Pipeline.load(ROOT)
    e = catalogue.Expect("PositionReconciliationMismatch", 0, 0)
    # 15 s scrape + 30 s evaluation + for 5m (on the 30 s grid) + critical group_wait 10 s
    assert p.page_s(e) == 15 + 30 + 300 + 30 + 10
    assert p.page_s(e, 30) == 1 + 1 + 10 + 1 + 1
    assert catalogue.demo_total_s(ROOT) < 5 * 60  # the guided demo's target
    # a count check's hold: 15 s scrape + 30 s evaluation + keep_firing_for (the 60 s allowance
    # and a minute) + critical group_interval 1m, from the switch-off to the RESOLVED
    held = catalogue.Expect("ExecutionNotRecorded", 0, 0)
    assert p.resolve_s(held) == 15 + 30 + 120 + 60


@pytest.mark.promtool
def test_compressed_rules_are_valid_and_every_duration_is_divided(tmp_path):
    files = sorted((ROOT / "monitoring" / "rules").glob("*.yml"))
    out = timescale.scale_rule_files(files, tmp_path, 30)
    r = subprocess.run([tools.find("promtool"), "check", "rules", *out], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stdout + r.stderr
    alerts = {x["alert"]: x for f in out for g in yaml.safe_load(Path(f).read_text())["groups"] for x in g["rules"] if "alert" in x}
    assert alerts["OrderIntentsPendingTooMany"]["for"] == "20s"  # 10m / 30
    assert alerts["ExecutionNotRecorded"]["keep_firing_for"] == "4s"  # 120s / 30
    assert alerts["SyntheticCheckFailed"]["for"] == "5m"  # the checks run on the wall clock
    assert "* 10 >= scalar(" in alerts["OrderIntentErrorRateHigh"]["expr"].replace("\n", " ").replace("  ", " ")  # rate5m * 300 -> * 10
    rules = {x["record"]: x["expr"] for f in out for g in yaml.safe_load(Path(f).read_text())["groups"] for x in g["rules"] if "record" in x}
    assert "[30s]" in rules["strategy:orders_submitted:rate15m"]  # [15m] / 30
    assert "offset 10s" in rules["account:daily_pnl:delta5m"]


def test_scale_expr_handles_subqueries_and_leaves_other_numbers():
    e = "max_over_time(x[1h:1m]) * 100 > 3 and rate(y[5m]) * 300 > 0"
    assert timescale.scale_expr(e, 60, {300}) == "max_over_time(x[60s:1s]) * 100 > 3 and rate(y[5s]) * 5 > 0"


def test_a_compressed_window_keeps_two_samples_at_any_speed():
    """At --speed 100 a [1m] window became [600ms], shorter than one scrape at the 1 s floor:
    increase() over it was empty, a fill between the two jobs' scrapes was no longer explained,
    and PositionDriftFromBroker paged at a cold start. At --speed 30 a [1m] of 2 s, two scrape
    intervals, held a single sample now and then: the same allowance empty, and the alert's
    resolve held 30 s by a few shares of scrape skew. A window is never shorter than three
    scrapes at the floor; an event count over it stays that window's length."""
    e = "increase(x[1m]) + rate(y[5m]) * 300"
    assert timescale.scale_expr(e, 30, {300}) == "increase(x[3s]) + rate(y[10s]) * 10"
    assert timescale.scale_expr(e, 20, {300}) == "increase(x[3s]) + rate(y[15s]) * 15"  # as before
    assert timescale.scale_expr(e, 100, {300}) == "increase(x[3s]) + rate(y[3s]) * 3"
    assert timescale.scale_expr(e, 1000, {300}) == "increase(x[3s]) + rate(y[3s]) * 3"


def test_the_tour_flags_a_page_later_than_the_catalogue_time():
    """At --speed 30 DailyLossLimitBreach paged after 5.6 s against the catalogue's 4 s, and the
    tour said nothing: a page past its catalogue time is said, one before it is not."""
    from trademon.stack import tour

    p = catalogue.Pipeline.load(ROOT)
    (e,) = [e for expects in catalogue.EXPECTED.values() for e in expects if e.alert == "DailyLossLimitBreach"][:1]
    due = p.page_s(e, 30)
    assert tour.late("DailyLossLimitBreach", due - 0.5, p, 30) is None
    said = tour.late("DailyLossLimitBreach", due + 1.6, p, 30)
    assert said is not None and f"{due + 1.6:.1f} s" in said and "DailyLossLimitBreach" in said
