"""The market calendar as the real Alertmanager 0.33 applies it, and `am-config --watch`.

Alertmanager's clock cannot be set, so the real XNYS calendar around Thanksgiving 2026 is
moved in time until now falls on the day wanted: noon of Thanksgiving (a holiday) or noon of
the Monday after (a normal day). am-config renders those sessions into `market-open` as it
renders the real ones; Alertmanager decides, and its API and receivers show the decision.
"""

from __future__ import annotations

import json
import sys
import time
from datetime import datetime, timedelta, UTC
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
import requests
import yaml
from prometheus_client import generate_latest
from prometheus_client.core import CollectorRegistry
from prometheus_client.parser import text_string_to_metric_families

from trademon.alertmanager import amconfig, amwatch, markets
from trademon.settings.env import port_variable

from tests.support.amstack import AlertingStack, alert
from tests.support.procs import free_port, start, wait_for, wait_http

pytestmark = pytest.mark.e2e  # real Alertmanager and am-config processes

ROOT = Path(__file__).resolve().parents[1]
NY = ZoneInfo("America/New_York")
THANKSGIVING_NOON = datetime(2026, 11, 26, 12, 0, tzinfo=NY)
MONDAY_NOON = datetime(2026, 11, 30, 12, 0, tzinfo=NY)


def calendar_moved_to_now(day_noon: datetime):
    """A make_schedule for amconfig.render: XNYS's real sessions of the two weeks around
    ``day_noon``, shifted so that ``day_noon`` is now."""

    def make(exchanges, now, horizon_days):
        shift = now - day_noon
        real = markets.sessions("XNYS", day_noon - timedelta(days=7), day_noon + timedelta(days=7))
        periods = tuple(markets.Session(p.exchange, p.open + shift, p.close + shift, p.tz) for p in real)
        return markets.Schedule(("XNYS",), now - timedelta(days=1), now + timedelta(days=6), periods)

    return make


def stale_and_other(stack: AlertingStack) -> None:
    stack.post(alert("MarketDataStale", "warning", "No market data for AAPL", symbol="AAPL", job="marketdata-stream"),
               alert("UnusualSlippage", "warning", "Slippage 0.9 % on meanrev", strategy="meanrev", job="ib-exporter"))
    stack.wait(lambda: any(a["labels"]["alertname"] == "UnusualSlippage" for r in stack.records() for a in r["alerts"]),
               30, "the other warning, which no interval mutes")
    stack.settle(3)  # more than group_wait + group_interval: a MarketDataStale notification would be in


def delivered(stack: AlertingStack, name: str) -> bool:
    return (any(a["labels"]["alertname"] == name for r in stack.records() for a in r["alerts"])
            or any(name in m["text"] for m in stack.standins.telegram.sent()))


def market_open_gauge(out: Path) -> dict[str, float]:
    reg = CollectorRegistry()
    reg.register(amwatch.ScheduleCollector(out, [], lambda: datetime.now(UTC)))
    fams = {f.name: f for f in text_string_to_metric_families(generate_latest(reg).decode())}
    return {s.labels["exchange"]: s.value for s in fams["trademon_market_open"].samples}


@pytest.mark.parametrize("day, expect_delivered", [(THANKSGIVING_NOON, False), (MONDAY_NOON, True)],
                         ids=["holiday: muted", "normal day: delivered"])
def test_stale_data_muted_on_the_holiday_and_delivered_on_a_normal_day(tmp_path, day, expect_delivered):
    stack = AlertingStack(tmp_path, make_schedule=calendar_moved_to_now(day))
    try:
        cfg = yaml.safe_load(stack.config_path.read_text())
        assert any(i["name"] == "market-open" and i["time_intervals"] for i in cfg["time_intervals"])
        stale_and_other(stack)
        if expect_delivered:  # under load it may come a little after the other warning
            stack.wait(lambda: delivered(stack, "MarketDataStale"), 30, "MarketDataStale delivered on a normal day")
        assert delivered(stack, "MarketDataStale") is expect_delivered
        # Alertmanager's own account: in its route's group, muted by the market-open interval
        # (state "suppressed") on the holiday, not on the normal day.
        groups = requests.get(f"{stack.am_url}/api/v2/alerts/groups", timeout=5).json()
        (status,) = [a["status"] for g in groups for a in g["alerts"] if a["labels"]["alertname"] == "MarketDataStale"]
        if expect_delivered:
            assert status["mutedBy"] == [] and status["state"] == "active", status
        else:
            assert status["mutedBy"] == ["market-open"] and status["state"] == "suppressed", status
        # the dashboards' gauge agrees with Alertmanager's decision
        assert market_open_gauge(stack.dir / "am-config") == {"XNYS": 1.0 if expect_delivered else 0.0}
    finally:
        stack.close()


def test_watch_renders_serves_the_schedule_and_reloads_alertmanager_on_change(tmp_path):
    """`trademon am-config --watch`: renders at start (readiness waits for it), exports market
    and IB window state, renders again every TRADEMON_AM_REFRESH_SECONDS and, when the file
    changed, makes the real Alertmanager reload it."""
    from trademon.stack import tools

    source = tmp_path / "source"
    import shutil

    shutil.copytree(ROOT / "alertmanager", source)
    out = tmp_path / "out"
    am_port, w_port = free_port(), free_port()
    amconfig.render(source, out, {})  # the first render, as compose's start or native does
    am = start("alertmanager", [tools.find("alertmanager"), f"--config.file={out / 'alertmanager.yml'}",
                                f"--storage.path={tmp_path / 'am-data'}", f"--web.listen-address=127.0.0.1:{am_port}",
                                "--cluster.listen-address="], {"ZONEINFO": str(out / "zoneinfo")}, tmp_path / "am.log")
    watch = None
    try:
        wait_http(f"http://127.0.0.1:{am_port}/-/ready", 20, am)
        watch = start("am-config", [sys.executable, "-m", "trademon", "am-config", "--watch", "--source", str(source), "--out", str(out)],
                      {port_variable("alertmanager-config"): str(w_port), "TRADEMON_AM_REFRESH_SECONDS": "1",
                       "TRADEMON_AM_RELOAD_URL": f"http://127.0.0.1:{am_port}/-/reload", "TRADEMON_EXCHANGES": "XNYS,XETR"},
                      tmp_path / "watch.log")
        wait_http(f"http://127.0.0.1:{w_port}/readyz", 30, watch)
        fams = {f.name: f for f in text_string_to_metric_families(requests.get(f"http://127.0.0.1:{w_port}/metrics", timeout=5).text)}
        now = datetime.now(UTC)
        assert {s.labels["exchange"]: s.value for s in fams["trademon_market_open"].samples} == {
            "XNYS": float(markets.is_open(now, "XNYS")), "XETR": float(markets.is_open(now, "XETR"))}
        (end,) = fams["trademon_market_calendar_end_timestamp_seconds"].samples
        assert end.value - time.time() > (markets.DEFAULT_HORIZON_DAYS - 2) * 86400
        assert {s.labels["window"] for s in fams["trademon_ib_maintenance_window"].samples} == {"ib-reset-na", "ib-weekend", "gateway-restart"}

        def am_config() -> str:
            return requests.get(f"http://127.0.0.1:{am_port}/api/v2/status", timeout=5).json()["config"]["original"]

        # The start's render added XETR: Alertmanager was told to reload.
        wait_for(lambda: "market-open-xetr" in am_config(), 20, 0.2, "Alertmanager reloaded with the XETR interval")
        # A change of the source between two refreshes reaches Alertmanager too.
        cfg_file = source / "alertmanager.yml"
        tmp = cfg_file.with_suffix(".tmp")  # replaced whole: a refresh never reads half a file
        tmp.write_text(cfg_file.read_text().replace("repeat_interval: 12h", "repeat_interval: 11h"))
        tmp.replace(cfg_file)
        wait_for(lambda: "repeat_interval: 11h" in am_config(), 20, 0.2, "Alertmanager reloaded after the refresh")
        assert json.loads((out / amconfig.SCHEDULE_FILE).read_text())["exchanges"] == ["XNYS", "XETR"]
    finally:
        if watch is not None:
            watch.close()
        am.close()
