"""A threshold tuned at run time, end to end: the simulator, the real Prometheus and Alertmanager
(the project's rules), `trademon thresholds --watch` on a copy of monitoring/, the bot as its own
process with the Telegram stand-in. The config is edited while the stack runs and applied with
the documented command (`trademon thresholds --reload`): the loss alert fires at the new limit,
the bot's /status, /pnl and daily summary and the P&L dashboard's limit line show it, the
simulator follows it; a refused edit changes nothing and pages ThresholdsNotLive.

Shortened as in test_e2e_alerting.py (simulator 30x, rules' `for` / 30, scrape and evaluation 1 s).
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

from trademon.bot.charts import png_series
from trademon.gen import dashboard_queries as dq
from trademon.settings import thresholds

from tests.support.e2estack import E2EStack
from tests.support.sim import SimProcess
from tests.support.standins import StandIns, visible_text

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[1]
SPEED = 30
GROUP, USER = int(StandIns.CHAT_ID), StandIns.USER_ID


@pytest.fixture(scope="module")
def e2e(tmp_path_factory):
    root = tmp_path_factory.mktemp("checkout")
    (root / "monitoring").mkdir()
    shutil.copy(ROOT / thresholds.CONFIG_FILE, root / thresholds.CONFIG_FILE)
    shutil.copytree(ROOT / "monitoring" / "rules", root / "monitoring" / "rules")
    stack = E2EStack(tmp_path_factory.mktemp("thresholds-e2e"), speed=SPEED, scrape="1s", evaluation="1s", for_scale=SPEED,
                     am_intervals={"group_wait": "3s", "group_interval": "3s", "repeat_interval": "1h"}, thresholds_root=root)
    stack.root = root
    yield stack
    stack.close()


def set_loss_limit(e2e, value) -> subprocess.CompletedProcess:
    """Edit the running stack's monitoring/config.yml, then the documented command."""
    path = e2e.root / thresholds.CONFIG_FILE
    text = path.read_text()
    path.write_text(re.sub(r"(?m)^(  daily_loss_limit:) [^ ]+", rf"\g<1> {value}", text, count=1))
    return subprocess.run([sys.executable, "-m", "trademon", "thresholds", "--reload"], capture_output=True, text=True, timeout=60,
                          env={**os.environ, "TRADEMON_THRESHOLDS_PORT": str(e2e.thresholds_port)})


def loss_alerts(e2e) -> list[dict]:
    return [a for a in e2e.prom_alerts() if a["labels"]["alertname"] == "DailyLossLimitBreach" and a["state"] == "firing"]


def limit_series(e2e) -> float:
    (s,) = e2e.prom_query('trademon:threshold:daily_loss_limit{account=""}')
    return float(s["value"][1])


def dashboard_limit_lines(e2e) -> dict[str, float]:
    """The P&L board's "limit {{account}}" query, sent as Grafana would (variables at All)."""
    doc = next(d for d in dq.load(ROOT) if d.get("uid") == "trademon-pnl")
    expr = next(t["expr"] for p in doc["panels"] for sub in [p, *p.get("panels", [])] for t in sub.get("targets", [])
                if t.get("legendFormat") == "limit {{account}}")
    expr = expr.replace("$host", ".*").replace("$account", ".*")
    return {s["metric"]["account"]: float(s["value"][1]) for s in e2e.prom_query(expr)}


def status(e2e) -> str:
    tg = e2e.telegram
    last = max([m["message_id"] for m in tg.snapshot()] or [0])
    tg.command("/status", GROUP, USER)

    def reply():
        msgs = [m for m in tg.snapshot() if m["message_id"] > last and m["from"]["is_bot"] and "Status" in visible_text(m.get("text", ""))]
        return msgs[-1] if msgs else None
    return visible_text(e2e.alerting.wait(reply, 20, "the /status answer")["text"])


def pnl_chart_lines(e2e) -> list:
    """The limit lines of /pnl's account panel (the chart carries what it draws)."""
    tg = e2e.telegram
    last = max([m["message_id"] for m in tg.snapshot()] + [p["message_id"] for p in tg.photos] or [0])
    tg.command("/pnl 2m", GROUP, USER)
    photo = e2e.alerting.wait(lambda: next((p for p in tg.photos if p["message_id"] > last), None), 30, "the /pnl chart")
    lines = png_series(photo["png"])["lines"]
    return next(v for title, v in lines.items() if title.startswith("Daily P&L per account"))


def summary_text(e2e) -> str:
    """The daily summary's text as the bot writes it now (in-process, against this stack)."""
    from trademon.bot.cli import Bot
    from trademon.bot.config import BotConfig

    async def text() -> str:
        bot = Bot(BotConfig.from_env({**e2e.alerting.bot_environment(), "TRADEMON_BOT_STATE_DIR": str(e2e.dir / "summary-bot")}))
        try:
            return await bot.summary.text(time.time())
        finally:
            await bot.close()
    return visible_text(asyncio.run(text()))


def test_an_edit_and_a_reload_move_the_alert_the_bot_and_the_dashboard(e2e):
    # Looser than the loss-breach's hold (about 1.225 x the simulator's -500: -612): quiet.
    r = set_loss_limit(e2e, -700)
    assert r.returncode == 0 and "thresholds live" in r.stdout, r.stdout + r.stderr
    e2e.alerting.wait(lambda: limit_series(e2e) == -700, 15, "the -700 series in Prometheus")
    e2e.sim.on("loss-breach")
    try:
        e2e.alerting.wait(lambda: min(float(s["value"][1]) for s in e2e.prom_query("daily_pnl")) < -600, 60, "P&L held near -612")
        assert not loss_alerts(e2e), "fired at the shipped -500 although the limit in force is -700"
        # Tighter than the hold: fires, at the new limit, with it in its text.
        r = set_loss_limit(e2e, -600)
        assert r.returncode == 0, r.stdout + r.stderr
        e2e.alerting.wait(lambda: limit_series(e2e) == -600, 15, "the -600 series in Prometheus")
        live_at = time.time()
        fired = e2e.alerting.wait(lambda: loss_alerts(e2e), 20, "DailyLossLimitBreach at the -600 limit")
        assert all(float(a["value"]) < -600 for a in fired), fired
        assert all(a["annotations"]["description"].split("limit ")[1].startswith("-600.") for a in fired), fired
        # The bot's /status: each account against the limit in force.
        shown = status(e2e)
        accounts = {s["metric"]["account"] for s in e2e.prom_query("daily_pnl")}
        for account in accounts:
            assert re.search(rf"P&L {account}: -?[\d,]+\.\d\d USD \(limit -600\.00\)", shown), shown
        # /pnl's chart and the daily summary: the same limit (the chart's is as of its end, a second ago).
        time.sleep(max(0.0, live_at + 2 - time.time()))
        assert pnl_chart_lines(e2e) == [["loss limit -600.00", -600.0]]
        summary = summary_text(e2e)
        for account in accounts:
            assert re.search(rf"{account} -?[\d,]+\.\d\d USD \(limit -600\.00\)", summary), summary
        # The P&L dashboard's limit line: the same value, for every account shown.
        assert dashboard_limit_lines(e2e) == {a: -600.0 for a in accounts}
        # A simulator told where Prometheus is follows it too (the demo's breaker and loss-breach).
        follower = SimProcess.start(e2e.dir / "follower", extra_env={"TRADEMON_SIM_PROMETHEUS_URL": e2e.prom_url})
        try:
            e2e.alerting.wait(lambda: follower.state()["daily_loss_limit"] == -600,
                              20, "the simulator's limit at -600")
        finally:
            follower.close()
    finally:
        e2e.sim.off("loss-breach")


def test_a_refused_edit_changes_nothing_and_pages(e2e):
    before = set_loss_limit(e2e, -600)
    assert before.returncode == 0, before.stderr
    rendered = (e2e.dir / "thresholds" / "trademon.thresholds.yml").read_text()
    r = set_loss_limit(e2e, 600)
    assert r.returncode == 1, r.stdout + r.stderr
    assert "daily_loss_limit: 600 is not a loss" in r.stderr and "thresholds in force are unchanged" in r.stderr, r.stderr
    assert (e2e.dir / "thresholds" / "trademon.thresholds.yml").read_text() == rendered
    # Prometheus still compares with -600; the service says the file on disk is not live, and it pages.
    e2e.alerting.wait(lambda: e2e.prom_query("trademon_thresholds_last_reload_successful == 0"), 15, "the refusal scraped")
    assert limit_series(e2e) == -600 and set(dashboard_limit_lines(e2e).values()) == {-600.0}
    page = e2e.alerting.wait(lambda: [a for a in e2e.prom_alerts() if a["labels"]["alertname"] == "ThresholdsNotLive"
                                      and a["state"] == "firing"], 30, "ThresholdsNotLive firing")
    assert page[0]["labels"]["severity"] == "critical" and page[0]["labels"]["job"] == "thresholds"
    log = (e2e.dir / "logs" / "thresholds.log").read_text()
    assert any("daily_loss_limit: 600 is not a loss" in json.loads(line).get("message", "") for line in log.splitlines() if line.startswith("{"))
    # Fixed: live again, the page resolves.
    assert set_loss_limit(e2e, -600).returncode == 0
    e2e.alerting.wait(lambda: e2e.prom_query("trademon_thresholds_last_reload_successful == 1"), 15, "live again")
    metrics = requests.get(f"http://127.0.0.1:{e2e.thresholds_port}/metrics", timeout=5).text
    assert "trademon_thresholds_last_reload_successful 1.0" in metrics
