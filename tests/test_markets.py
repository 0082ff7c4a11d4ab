"""The market's clock and IB's, with an injected clock: exchange sessions from
exchange-calendars rendered into Alertmanager's ``market-open`` intervals (checked at chosen
instants with Alertmanager's interval semantics, tests/support/amtime.py), next_session_open
for the bot, and IB's maintenance windows. The real Alertmanager's reading of the same
intervals is in tests/test_markets_alertmanager.py.
"""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import datetime, timedelta, UTC
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
import yaml

from trademon.alertmanager import amconfig, markets
from trademon.stack import tools
from trademon.settings.env import ConfigError

from tests.support import amtime
from tests.support.procs import serve

ROOT = Path(__file__).resolve().parents[1]
NY, LONDON, BERLIN = ZoneInfo("America/New_York"), ZoneInfo("Europe/London"), ZoneInfo("Europe/Berlin")
UTC = UTC
# "today" for the renders below: the horizon covers all of the cases
NOW = datetime(2026, 2, 2, 12, 0, tzinfo=UTC)


def at(tz: ZoneInfo, *args: int) -> datetime:
    return datetime(*args, tzinfo=tz)


@pytest.fixture(scope="module")
def rendered(tmp_path_factory) -> dict:
    """The config am-config writes on NOW for XNYS, XLON and XETR, 366 days ahead."""
    out = tmp_path_factory.mktemp("am")
    path = amconfig.render(ROOT / "alertmanager", out, {"TRADEMON_EXCHANGES": "XNYS,XLON,XETR",
                                                        "TRADEMON_MARKET_HORIZON_DAYS": "366"}, now=NOW)
    return yaml.safe_load(path.read_text())


def open_in(cfg: dict, t: datetime, name: str = "market-open") -> bool:
    return amtime.active(cfg, name, t)


# --- the cases the issue names: XNYS -----------------------------------------------------------

CASES_XNYS = [
    # (what, New York local time, open?)
    ("Thanksgiving: closed all day", (2026, 11, 26, 10, 0), False),
    ("Thanksgiving at what would be mid-session", (2026, 11, 26, 13, 0), False),
    ("half day after Thanksgiving, before 13:00", (2026, 11, 27, 12, 59), True),
    ("half day after Thanksgiving, at 13:00", (2026, 11, 27, 13, 0), False),
    ("half day after Thanksgiving, 15:00", (2026, 11, 27, 15, 0), False),
    ("normal day, open", (2026, 11, 30, 9, 30), True),
    ("normal day, last minute", (2026, 11, 30, 15, 59), True),
    ("normal day, before the open", (2026, 11, 30, 9, 29), False),
    ("normal day, at the close", (2026, 11, 30, 16, 0), False),
    ("Saturday", (2026, 11, 28, 11, 0), False),
    ("Sunday", (2026, 11, 29, 11, 0), False),
    ("DST starts (Sunday 2026-03-08): closed", (2026, 3, 8, 10, 0), False),
    ("Friday before DST starts, 09:30 EST", (2026, 3, 6, 9, 30), True),
    ("Monday after DST starts, 09:30 EDT", (2026, 3, 9, 9, 30), True),
    ("Monday after DST starts, 09:29 EDT", (2026, 3, 9, 9, 29), False),
    ("DST ends (Sunday 2026-11-01): closed", (2026, 11, 1, 10, 0), False),
    ("Monday after DST ends, 15:59 EST", (2026, 11, 2, 15, 59), True),
    ("Monday after DST ends, 16:00 EST", (2026, 11, 2, 16, 0), False),
]


@pytest.mark.parametrize("what, local, expected", CASES_XNYS, ids=[c[0] for c in CASES_XNYS])
def test_xnys_intervals(rendered, what, local, expected):
    t = at(NY, *local)
    assert open_in(rendered, t, "market-open-xnys") is expected, what
    assert markets.is_open(t, "XNYS") is expected, what


def test_dst_moves_the_utc_open_of_new_york():
    """The same 09:30 local is 14:30 UTC before the switch and 13:30 UTC after it."""
    assert markets.next_session_open(datetime(2026, 3, 6, 22, tzinfo=UTC), "XNYS") == datetime(2026, 3, 9, 13, 30, tzinfo=UTC)
    assert markets.next_session_open(datetime(2026, 10, 30, 22, tzinfo=UTC), "XNYS") == datetime(2026, 11, 2, 14, 30, tzinfo=UTC)


# --- a European exchange across its own DST switch (a different Sunday from New York's) -----------

CASES_EU = [
    ("XLON", LONDON, "Friday before BST, 08:00 GMT", (2026, 3, 27, 8, 0), True),
    ("XLON", LONDON, "BST starts (Sunday 2026-03-29): closed", (2026, 3, 29, 10, 0), False),
    ("XLON", LONDON, "Monday in BST, 08:00 local", (2026, 3, 30, 8, 0), True),
    ("XLON", LONDON, "Monday in BST, 07:59 local", (2026, 3, 30, 7, 59), False),
    ("XLON", LONDON, "Monday in BST, 16:29 local", (2026, 3, 30, 16, 29), True),
    ("XLON", LONDON, "BST ends (Sunday 2026-10-25): closed", (2026, 10, 25, 10, 0), False),
    ("XLON", LONDON, "Monday after BST, 16:30 local", (2026, 10, 26, 16, 30), False),
    ("XLON", LONDON, "Christmas Eve closes 12:30", (2026, 12, 24, 12, 30), False),
    ("XLON", LONDON, "Christmas Eve 12:29", (2026, 12, 24, 12, 29), True),
    ("XETR", BERLIN, "CEST starts (Sunday 2026-03-29): closed", (2026, 3, 29, 10, 0), False),
    ("XETR", BERLIN, "Monday in CEST, 09:00 local", (2026, 3, 30, 9, 0), True),
    ("XETR", BERLIN, "Good Friday 2026-04-03: closed", (2026, 4, 3, 10, 0), False),
    ("XETR", BERLIN, "Monday in CEST, 17:30 local", (2026, 3, 30, 17, 30), False),
]


@pytest.mark.parametrize("mic, tz, what, local, expected", CASES_EU, ids=[f"{c[0]} {c[2]}" for c in CASES_EU])
def test_european_intervals(rendered, mic, tz, what, local, expected):
    t = at(tz, *local)
    assert open_in(rendered, t, f"market-open-{mic.lower()}") is expected, what
    assert markets.is_open(t, mic) is expected, what


def test_market_open_is_any_configured_exchange(rendered):
    """In the weeks New York is already on summer time and London not yet, the union is right
    in UTC: London's 08:00 GMT open and New York's 16:00 EDT (20:00 UTC) close."""
    day = datetime(2026, 3, 20, tzinfo=UTC)
    assert not open_in(rendered, day.replace(hour=7, minute=59))
    assert open_in(rendered, day.replace(hour=8))
    assert open_in(rendered, day.replace(hour=19, minute=59))
    assert not open_in(rendered, day.replace(hour=20))
    assert not open_in(rendered, at(NY, 2026, 11, 28, 12, 0))  # a Saturday is closed everywhere
    assert open_in(rendered, at(NY, 2026, 11, 26, 6, 0))  # Thanksgiving: London (11:00) and Frankfurt trade


def test_rendered_intervals_match_the_calendar_at_every_quarter_hour(tmp_path):
    """Over the whole horizon of a default render, Alertmanager's reading of the intervals and
    exchange-calendars' own open/closed agree at every quarter hour."""
    import exchange_calendars as xc

    path = amconfig.render(ROOT / "alertmanager", tmp_path, {"TRADEMON_EXCHANGES": "XNYS"}, now=datetime(2026, 11, 20, 15, tzinfo=UTC))
    cfg = yaml.safe_load(path.read_text())
    sched = json.loads((tmp_path / amconfig.SCHEDULE_FILE).read_text())
    start, end = datetime.fromisoformat(sched["start"]), datetime.fromisoformat(sched["end"])
    assert end - datetime(2026, 11, 20, tzinfo=UTC) == timedelta(days=markets.DEFAULT_HORIZON_DAYS)
    import pandas as pd

    cal = xc.get_calendar("XNYS", start=(start - timedelta(days=7)).date().isoformat(), end=(end + timedelta(days=7)).date().isoformat())
    t, checked = start, 0
    while t < end:
        expect = bool(cal.is_open_on_minute(pd.Timestamp(t), ignore_breaks=False))
        assert open_in(cfg, t) is expect, t.astimezone(NY)
        t += timedelta(minutes=15)
        checked += 1
    assert checked > 8000
    # and nothing past the horizon: Alertmanager would call it closed, MarketCalendarExpiring warns before
    assert not open_in(cfg, at(NY, 2027, 2, 22, 10, 0))


@pytest.mark.amtool
def test_rendered_config_passes_amtool(rendered, tmp_path):
    cfg_path = tmp_path / "alertmanager.yml"
    cfg = dict(rendered)
    cfg["templates"] = []
    cfg_path.write_text(yaml.safe_dump(cfg))
    r = subprocess.run([tools.find("amtool"), "check-config", str(cfg_path)], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stdout + r.stderr
    names = [i["name"] for i in rendered["time_intervals"]]
    assert names == ["market-open", "market-open-xnys", "market-open-xlon", "market-open-xetr"]


def test_the_render_writes_the_schedule_and_copies_the_zones(tmp_path):
    amconfig.render(ROOT / "alertmanager", tmp_path, {"TRADEMON_EXCHANGES": "XNYS,XETR"}, now=NOW)
    sched = markets.Schedule.from_json(json.loads((tmp_path / amconfig.SCHEDULE_FILE).read_text()))
    assert sched.exchanges == ("XNYS", "XETR")
    assert sched.is_open(at(NY, 2026, 2, 3, 10, 0), "XNYS") is True
    assert sched.is_open(at(NY, 2026, 2, 3, 10, 0), "XETR") is True  # 16:00 Berlin
    assert sched.is_open(sched.end + timedelta(hours=1), "XNYS") is None  # past the horizon: unknown
    assert (tmp_path / "zoneinfo" / "America" / "New_York").is_file()
    assert (tmp_path / "zoneinfo" / "Europe" / "Berlin").is_file()


def test_without_the_library_the_weekday_fallback_stays(tmp_path, caplog):
    def missing(*_):
        raise markets.CalendarUnavailable("exchange-calendars is not installed: pip install 'trademon[calendars]'")

    path = amconfig.render(ROOT / "alertmanager", tmp_path, {}, now=NOW, make_schedule=missing)
    cfg = yaml.safe_load(path.read_text())
    (interval,) = [i for i in cfg["time_intervals"] if i["name"] == "market-open"]
    assert interval["time_intervals"][0]["weekdays"] == ["monday:friday"]
    assert not (tmp_path / amconfig.SCHEDULE_FILE).exists()
    assert any("trademon[calendars]" in getattr(r, "reason", "") for r in caplog.records)  # says what to install


def test_without_the_library_the_real_path_falls_back_too(tmp_path, caplog, monkeypatch):
    """Not only the test hook: reading TRADEMON_EXCHANGES already needs the library."""
    def missing():
        raise markets.CalendarUnavailable("exchange-calendars is not installed: pip install 'trademon[calendars]'")

    monkeypatch.setattr(markets, "_xcals", missing)
    path = amconfig.render(ROOT / "alertmanager", tmp_path, {}, now=NOW)
    (interval,) = [i for i in yaml.safe_load(path.read_text())["time_intervals"] if i["name"] == "market-open"]
    assert interval["time_intervals"][0]["weekdays"] == ["monday:friday"]
    assert any("trademon[calendars]" in getattr(r, "reason", "") for r in caplog.records)


@pytest.mark.parametrize("value, problem", [("XNYSS", "not an exchange calendar code"), ("", None),
                                            (",".join(["XNYS", "XLON", "XETR", "XPAR", "XAMS", "XTKS", "XHKG", "XASX", "XTSE"]), "1 to 8")])
def test_bad_exchange_list_is_a_clear_error(value, problem):
    if problem is None:
        assert markets.exchanges_from_env({"TRADEMON_EXCHANGES": value}) == ["XNYS"]  # empty: the default
        return
    with pytest.raises(ConfigError, match=problem) as e:
        markets.exchanges_from_env({"TRADEMON_EXCHANGES": value})
    assert "TRADEMON_EXCHANGES" in str(e.value)


# --- next_session_open: what the bot says -----------------------------------------------------------

@pytest.mark.parametrize("now, expected", [
    (at(NY, 2026, 11, 26, 12, 0), at(NY, 2026, 11, 27, 9, 30)),  # holiday -> the half day
    (at(NY, 2026, 11, 27, 13, 30), at(NY, 2026, 11, 30, 9, 30)),  # after the 13:00 close -> Monday
    (at(NY, 2026, 11, 28, 12, 0), at(NY, 2026, 11, 30, 9, 30)),  # weekend
    (at(NY, 2026, 11, 30, 9, 29), at(NY, 2026, 11, 30, 9, 30)),  # a minute before
    (at(NY, 2026, 11, 30, 10, 0), at(NY, 2026, 12, 1, 9, 30)),  # open now: the next session's
    (at(NY, 2026, 12, 24, 14, 0), at(NY, 2026, 12, 28, 9, 30)),  # early close, Christmas, weekend
])
def test_next_session_open(now, expected):
    got = markets.next_session_open(now, "XNYS")
    assert got == expected and got.tzinfo is not None


def test_next_session_open_skips_a_lunch_break():
    # Tokyo: 09:00-11:30, 12:30-15:30 (15:25 close from Nov 2024) Japan time
    tokyo = ZoneInfo("Asia/Tokyo")
    got = markets.next_session_open(at(tokyo, 2026, 12, 1, 11, 45), "XTKS")
    assert got.astimezone(tokyo) == at(tokyo, 2026, 12, 1, 12, 30)
    assert not markets.is_open(at(tokyo, 2026, 12, 1, 12, 0), "XTKS")


def test_naive_now_is_refused():
    with pytest.raises(ValueError, match="naive"):
        markets.next_session_open(datetime(2026, 11, 26, 12, 0), "XNYS")


# --- IB's schedule ---------------------------------------------------------------------------

IB_CASES = [
    # (what, TRADEMON_IB_MAINTENANCE, instant, windows on)
    ("NA reset, 23:50 New York", "na", at(NY, 2026, 11, 30, 23, 50), {"ib-reset-na", "gateway-restart"}),
    ("NA reset, 00:30 New York", "na", at(NY, 2026, 12, 1, 0, 30), {"ib-reset-na"}),
    ("NA reset, 01:44 New York", "na", at(NY, 2026, 12, 1, 1, 44), {"ib-reset-na"}),
    ("after the NA reset, 01:45", "na", at(NY, 2026, 12, 1, 1, 45), set()),
    ("before the NA reset, 23:44", "na", at(NY, 2026, 11, 30, 23, 44), set()),
    ("NA reset across the DST start, 00:30 EST on 2026-03-08", "na", at(NY, 2026, 3, 8, 0, 30), {"ib-reset-na"}),
    ("NA reset the evening DST starts, 23:50 EDT", "na", at(NY, 2026, 3, 8, 23, 50), {"ib-reset-na", "gateway-restart"}),
    ("weekend maintenance, Saturday 02:30", "na", at(NY, 2026, 11, 28, 2, 30), {"ib-weekend"}),
    ("weekend maintenance, Friday 23:10", "na", at(NY, 2026, 11, 27, 23, 10), {"ib-weekend"}),
    ("no weekend window on Thursday 23:10", "na", at(NY, 2026, 11, 26, 23, 10), set()),
    ("Europe reset, 06:30 Zug", "eu", at(ZoneInfo("Europe/Zurich"), 2026, 12, 1, 6, 30), {"ib-reset-eu"}),
    ("Asia second reset, 20:30 Hong Kong", "asia", at(ZoneInfo("Asia/Hong_Kong"), 2026, 12, 1, 20, 30), {"ib-reset-asia-2"}),
    ("a custom window", "02:00-02:30@Europe/London", at(LONDON, 2026, 12, 1, 2, 15), {"custom-1"}),
]


@pytest.mark.parametrize("what, setting, t, expected", IB_CASES, ids=[c[0] for c in IB_CASES])
def test_ib_windows(what, setting, t, expected):
    windows = markets.ib_windows_from_env({"TRADEMON_IB_MAINTENANCE": setting})
    assert {w.name for w in windows if w.contains(t)} == expected, what


def test_gateway_restart_is_configurable_or_off():
    w = markets.ib_windows_from_env({"TRADEMON_IB_MAINTENANCE": "none", "TRADEMON_IB_GATEWAY_RESTART": "05:00@Europe/Berlin"})
    assert [x.name for x in w] == ["gateway-restart"]
    assert w[0].contains(at(BERLIN, 2026, 12, 1, 5, 10)) and not w[0].contains(at(BERLIN, 2026, 12, 1, 5, 15))
    assert markets.ib_windows_from_env({"TRADEMON_IB_MAINTENANCE": "none", "TRADEMON_IB_GATEWAY_RESTART": "none"}) == []


@pytest.mark.parametrize("env, variable", [
    ({"TRADEMON_IB_MAINTENANCE": "23:45-00:45"}, "TRADEMON_IB_MAINTENANCE"),
    ({"TRADEMON_IB_MAINTENANCE": "25:00-01:00@America/New_York"}, "TRADEMON_IB_MAINTENANCE"),
    ({"TRADEMON_IB_MAINTENANCE": "23:45-00:45@Mars/Olympus"}, "TRADEMON_IB_MAINTENANCE"),
    ({"TRADEMON_IB_GATEWAY_RESTART": "11:45 PM"}, "TRADEMON_IB_GATEWAY_RESTART"),
])
def test_bad_ib_schedule_is_a_clear_error(env, variable):
    with pytest.raises(ConfigError) as e:
        markets.ib_windows_from_env(env)
    assert variable in str(e.value) and "allowed" in str(e.value)


# --- what am-config --watch exports ---------------------------------------------------------------

def exported(out: Path, now: datetime, windows=()) -> dict[str, dict]:
    from prometheus_client import CollectorRegistry, generate_latest
    from prometheus_client.parser import text_string_to_metric_families

    from trademon.alertmanager import amwatch

    reg = CollectorRegistry()
    reg.register(amwatch.ScheduleCollector(out, list(windows), lambda: now))
    return {f.name: {tuple(sorted(s.labels.items())): s.value for s in f.samples}
            for f in text_string_to_metric_families(generate_latest(reg).decode())}


def test_exported_market_and_ib_state_follow_the_injected_clock(tmp_path):
    amconfig.render(ROOT / "alertmanager", tmp_path, {"TRADEMON_EXCHANGES": "XNYS,XLON"}, now=datetime(2026, 11, 20, tzinfo=UTC))
    na = markets.ib_windows_from_env({})
    thanksgiving = exported(tmp_path, at(NY, 2026, 11, 26, 10, 0), na)["trademon_market_open"]
    assert thanksgiving == {(("exchange", "XNYS"),): 0.0, (("exchange", "XLON"),): 1.0}  # 15:00 in London
    half_day = exported(tmp_path, at(NY, 2026, 11, 27, 13, 0))["trademon_market_open"]
    assert half_day[(("exchange", "XNYS"),)] == 0.0
    reset = exported(tmp_path, at(NY, 2026, 11, 30, 23, 50), na)["trademon_ib_maintenance_window"]
    assert reset == {(("window", "ib-reset-na"),): 1.0, (("window", "ib-weekend"),): 0.0, (("window", "gateway-restart"),): 1.0}
    # past the horizon the state is unknown: absent, not "closed"; the horizon's end says when
    late = exported(tmp_path, datetime(2027, 6, 1, 15, tzinfo=UTC))
    assert late["trademon_market_open"] == {}
    assert late["trademon_market_calendar_end_timestamp_seconds"][()] == datetime(2027, 2, 20, tzinfo=UTC).timestamp()
    # no calendar rendered (fallback): no market series at all
    assert exported(tmp_path / "none", NOW)["trademon_market_open"] == {}


def test_a_failed_alertmanager_reload_is_counted_and_retried(tmp_path):
    """Alertmanager down at a refresh: the failure is counted, and the next refresh reloads
    although the file did not change again. At the stack's start (Alertmanager not up yet) it
    is no failure: Alertmanager reads the file when it starts."""

    from trademon.alertmanager import amwatch

    from tests.support.procs import free_port

    port = free_port()
    posts = []
    out = tmp_path / "out"
    amconfig.render(ROOT / "alertmanager", out, {"TRADEMON_EXCHANGES": "XNYS"})  # a previous run's file
    collector = amwatch.ScheduleCollector(out, [], lambda: NOW)
    w = amwatch.Watcher(ROOT / "alertmanager", out, {"TRADEMON_EXCHANGES": "XNYS,XLON"}, None, f"http://127.0.0.1:{port}/-/reload", collector)
    assert w.render_once() and collector.failures == 0 and not w.reload_pending  # starting: no failure
    w.env = {"TRADEMON_EXCHANGES": "XNYS"}
    assert w.render_once() and collector.failures == 1 and w.reload_pending  # running: Alertmanager down

    server = reload_recorder(port, posts)
    try:
        assert not w.render_once()  # nothing new, but the pending reload goes out
        assert posts == ["/-/reload"] and not w.reload_pending and collector.failures == 1
        assert not w.render_once() and posts == ["/-/reload"]  # and only once
    finally:
        server.shutdown()
        server.server_close()


def test_a_session_across_local_midnight_is_split_at_midnight():
    """No regular session of these exchanges crosses midnight, but a calendar may (futures-like
    hours): the spec ends at 24:00 and continues at 00:00 the next day, in the exchange's zone."""
    s = markets.Session("X", at(NY, 2026, 1, 30, 18, 0).astimezone(UTC), at(NY, 2026, 2, 1, 2, 0).astimezone(UTC), "America/New_York")
    specs = markets.time_interval_specs([s])
    cfg = {"time_intervals": [{"name": "m", "time_intervals": specs}]}
    assert sorted((x["months"][0], x["days_of_month"], x["times"][0]["start_time"], x["times"][0]["end_time"]) for x in specs) == [
        ("february", ["1"], "00:00", "02:00"), ("january", ["30"], "18:00", "24:00"), ("january", ["31"], "00:00", "24:00")]
    for t, expected in ((at(NY, 2026, 1, 30, 17, 59), False), (at(NY, 2026, 1, 30, 23, 59), True),
                        (at(NY, 2026, 1, 31, 12, 0), True), (at(NY, 2026, 2, 1, 1, 59), True), (at(NY, 2026, 2, 1, 2, 0), False)):
        assert amtime.active(cfg, "m", t) is expected, t


def test_a_template_only_change_reloads_alertmanager(tmp_path):
    """Editing only a message template and rendering again must reload Alertmanager too (the
    re-render command of docs/operations.md promises it), not only a change of alertmanager.yml."""
    import shutil

    from trademon.alertmanager import amwatch

    from tests.support.procs import free_port

    source = tmp_path / "alertmanager"
    shutil.copytree(ROOT / "alertmanager", source)
    port, posts = free_port(), []

    server = reload_recorder(port, posts)
    try:
        out = tmp_path / "out"
        env = {"TRADEMON_EXCHANGES": "XNYS"}
        collector = amwatch.ScheduleCollector(out, [], lambda: NOW)
        w = amwatch.Watcher(source, out, env, None, f"http://127.0.0.1:{port}/-/reload", collector)
        w.render_once()
        assert not w.render_once() and posts == []  # nothing changed: no reload
        tmpl = next((source / "templates").glob("*.tmpl"))
        tmpl.write_text(tmpl.read_text() + "\n{{/* edited */}}\n")
        assert w.render_once() and posts == ["/-/reload"]
    finally:
        server.shutdown()


def reload_recorder(port: int, posts: list):
    """A loopback stand-in for Alertmanager's /-/reload that records each POST's path."""
    from http.server import BaseHTTPRequestHandler, HTTPServer

    class Reload(BaseHTTPRequestHandler):
        def do_POST(self):
            posts.append(self.path)
            self.send_response(200)
            self.end_headers()

        def log_message(self, *args):
            pass

    server = HTTPServer(("127.0.0.1", port), Reload)
    serve(server)
    return server


def test_the_suites_warning_filter_silences_exchange_calendars_pandas_deprecations(tmp_path):
    """exchange_calendars on pandas 3.1 warns of pandas' own deprecations inside the library
    (Series.values, DatetimeIndex.values): not ours, noise over every calendar test. A pytest
    run with this project's configuration over a freshly built calendar shows no warning."""
    probe = tmp_path / "test_calendar_probe.py"
    probe.write_text("import exchange_calendars\n\n\ndef test_probe():\n"
                     "    cal = type(exchange_calendars.get_calendar('XNYS'))(start='2026-01-02', end='2026-03-31')\n"
                     "    assert cal.is_open_on_minute('2026-02-02 15:00')\n")
    r = subprocess.run([sys.executable, "-m", "pytest", "-c", str(ROOT / "pyproject.toml"), "--rootdir", str(tmp_path),
                        "-p", "no:cacheprovider", "-p", "no:xdist", "-p", "no:benchmark", "-q", str(probe)],
                       capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert r.returncode == 0, r.stdout[-3000:]
    assert "1 passed" in r.stdout and "warning" not in r.stdout.lower(), r.stdout[-3000:]
