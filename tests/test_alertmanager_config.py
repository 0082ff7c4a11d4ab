"""alertmanager/: amtool check-config, routes test cases for every route, template render
checks, and the facts the config shares with the rest of the project (alert names, the
alert-sink port)."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import pytest
import yaml

from trademon.alertmanager import amconfig
from trademon import contract
from trademon.settings.values import seconds
from trademon.stack import tools

from trademon.bot.render import Links
from trademon.bot.render import render as render_message

from tests.support.standins import TELEGRAM_MAX_CHARS, telegram_visible_length, visible_text

ROOT = Path(__file__).resolve().parents[1]
AM = ROOT / "alertmanager"
SOURCE = AM / "alertmanager.yml"
CASES = yaml.safe_load((AM / "tests" / "routes.yml").read_text())
RULES = [r for f in sorted((ROOT / "monitoring" / "rules").glob("*.yml"))
         for g in yaml.safe_load(f.read_text())["groups"] for r in g["rules"]]
ALERT_NAMES = {r["alert"] for r in RULES if "alert" in r}


def amtool(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([tools.find("amtool"), *args], capture_output=True, text=True, timeout=60)


@pytest.fixture(scope="module")
def rendered(tmp_path_factory):
    """The config as `trademon am-config` writes it with every integration configured."""
    out = tmp_path_factory.mktemp("am")
    env = {"TELEGRAM_BOT_TOKEN": "123456:FAKE_token-for-tests", "TELEGRAM_CHAT_ID": "-100123",
           "SLACK_WEBHOOK_URL": "https://slack.invalid/services/t0/b0/fakefakefake",
           "SMTP_SMARTHOST": "smtp.example.com:587", "SMTP_FROM": "a@example.com", "SMTP_TO": "b@example.com",
           "SMTP_USERNAME": "a@example.com", "SMTP_PASSWORD": "fake-password",
           "GRAFANA_URL": "https://grafana.example.com", "ALERTMANAGER_URL": "https://am.example.com"}
    return amconfig.render(AM, out, env)


@pytest.mark.amtool
@pytest.mark.parametrize("which", ["source", "rendered"])
def test_amtool_check_config(which, rendered):
    path = SOURCE if which == "source" else rendered
    r = amtool("check-config", str(path))
    assert r.returncode == 0, r.stdout + r.stderr
    assert "5 receivers" in r.stdout


@pytest.mark.amtool
def test_rendered_without_any_secret_still_valid(tmp_path):
    path = amconfig.render(AM, tmp_path, {})
    r = amtool("check-config", str(path))
    assert r.returncode == 0, r.stdout + r.stderr
    cfg = yaml.safe_load(path.read_text())
    assert all(set(rc) <= {"name", "webhook_configs"} for rc in cfg["receivers"]), cfg["receivers"]


@pytest.mark.amtool
@pytest.mark.parametrize("case", CASES, ids=[c["name"] for c in CASES])
def test_route(case):
    labels = [f"{k}={v}" for k, v in case["labels"].items()]
    r = amtool("config", "routes", "test", f"--config.file={SOURCE}", f"--verify.receivers={','.join(case['receivers'])}", *labels)
    assert r.returncode == 0, f"{case['name']}: got {r.stdout.strip()!r}, want {case['receivers']}\n{r.stderr}"


# (`routes test --tree` leaves out the "continue: true" the tree shows.)
_ROUTE_LINE = re.compile(r"[└├]── (.*?)(?:\s+continue: true)?\s+receiver: (\S+)")


@pytest.mark.amtool
def test_every_route_has_a_case():
    """Each line of `amtool config routes` (the tree) is where at least one case ends."""
    tree = amtool("config", "routes", f"--config.file={SOURCE}")
    assert tree.returncode == 0, tree.stderr
    all_routes = set(_ROUTE_LINE.findall(tree.stdout))
    assert len(all_routes) == 9, tree.stdout
    hit = set()
    for case in CASES:
        r = amtool("config", "routes", "test", f"--config.file={SOURCE}", "--tree", *[f"{k}={v}" for k, v in case["labels"].items()])
        hit |= set(_ROUTE_LINE.findall(r.stdout))
    assert all_routes - hit == set(), f"routes without a case in alertmanager/tests/routes.yml: {all_routes - hit}"


def test_alert_names_in_the_config_are_alerts_of_the_rules():
    text = SOURCE.read_text()
    cfg = yaml.safe_load(text)
    named = set()
    for m in re.findall(r'alertname=~?"([^"]+)"', text):
        named |= set(m.split("|"))
    named |= {c["labels"]["alertname"] for c in CASES if c["labels"]["alertname"] not in ("SomethingNew", "SomethingInfo")}
    assert named - ALERT_NAMES == set(), f"not an alert of monitoring/rules: {named - ALERT_NAMES}"
    assert cfg["inhibit_rules"]


def test_every_receiver_records_to_the_alert_sink_and_pages_go_through_the_bot():
    cfg = yaml.safe_load(SOURCE.read_text())
    sink = f"http://alert-sink:{contract.JOBS['alert-sink'].port}/alerts"
    bot = f"http://{amconfig.BOT_HOST}:{contract.BOT_PORT}/alerts"
    for rc in cfg["receivers"]:
        if rc["name"] == amconfig.HEARTBEAT_RECEIVER:  # the external dead man's switch: the Watchdog only
            continue
        urls = [w["url"] for w in rc.get("webhook_configs", [])]
        assert urls == ([sink, bot] if rc["name"] in ("critical", "warning") else [sink]), rc["name"]
        if rc["name"] == "pager":  # the pager's own failures: every channel but the bot, which is what failed
            assert {"slack_configs", "email_configs"} <= set(rc), rc
        assert "telegram_configs" not in rc, "Telegram goes through trademon bot: Alertmanager must not hold the bot token"


def test_repeat_and_market_hours():
    cfg = yaml.safe_load(SOURCE.read_text())
    by = {r["matchers"][0]: r for r in cfg["route"]["routes"]}
    assert by['severity="critical"']["repeat_interval"] == "1h"
    assert money_route(cfg)["repeat_interval"] == "1h"
    stale = by['severity="warning"']["routes"][0]
    assert stale["active_time_intervals"] == ["market-open"]
    # the fallback am-config replaces with the exchange calendar (tests/test_markets.py)
    (interval,) = [t for t in cfg["time_intervals"] if t["name"] == "market-open"]
    assert interval["time_intervals"] == [{"weekdays": ["monday:friday"], "times": [{"start_time": "09:30", "end_time": "16:00"}],
                                           "location": "America/New_York"}]


def money_route(cfg: dict) -> dict:
    (route,) = [r for r in cfg["route"]["routes"] if r["matchers"][0].startswith('alertname=~"') and r["receiver"] == "critical"]
    return route


def test_money_route_is_the_money_rule_group_in_groups_of_their_own():
    """Issue 10.8: the alerts of the rules' money group (evaluated every second) leave after a
    short group_wait in a group of their own (by alertname and account/breaker/instance), so a
    new one never waits for an open group's group_interval."""
    from trademon.gen import rules as gen_rules
    cfg = yaml.safe_load(SOURCE.read_text())
    route = money_route(cfg)
    money = {a.name for a in gen_rules.ALERTS if a.fast}
    assert set(re.fullmatch(r'alertname=~"(.*)"', route["matchers"][0]).group(1).split("|")) == money
    assert route["matchers"][1] == 'severity="critical"'
    assert set(route["group_by"]) == {"alertname", "account", "breaker", "instance"}
    assert seconds(route["group_wait"]) <= 1
    names = [r["matchers"][0] for r in cfg["route"]["routes"]]
    # After the synthetic breaker's route (the synthetic check's trips never page), before critical.
    assert names.index('alertname="CircuitBreakerTripped"') < names.index(route["matchers"][0]) < names.index('severity="critical"')


def test_heartbeat_route_pings_every_minute_never_resolved():
    """Issue 10.7: the Watchdog to the external heartbeat every minute (and still on record)."""
    cfg = yaml.safe_load(SOURCE.read_text())
    (route,) = [r for r in cfg["route"]["routes"] if r["receiver"] == amconfig.HEARTBEAT_RECEIVER]
    assert route["matchers"] == ['alertname="Watchdog"'] and route["continue"] is True
    assert route["repeat_interval"] == "1m" and seconds(route["group_interval"]) <= 10
    (rc,) = [r for r in cfg["receivers"] if r["name"] == amconfig.HEARTBEAT_RECEIVER]
    assert [w["send_resolved"] for w in rc["webhook_configs"]] == [False]
    assert "url" not in rc["webhook_configs"][0]  # a file: the URL holds the check's secret


# The Telegram message, rendered by `trademon bot` from the webhook payload (it was
# alertmanager/templates/telegram.tmpl); Telegram's rules checked by the strict stand-in's parser.

LINKS = Links("https://grafana.example.com", "https://am.example.com")


def _data(alerts, status="firing", severity="critical"):
    return {"receiver": severity, "status": status, "alerts": alerts, "groupLabels": {"severity": severity},
            "commonLabels": {"severity": severity}, "commonAnnotations": {}, "externalURL": "http://am.local:9093"}


def _alert(name, summary, description, status="firing", **labels):
    return {"status": status, "labels": {"alertname": name, **labels},
            "annotations": {"summary": summary, "description": description, "dashboard": "/d/trademon-pnl",
                            "runbook_url": f"https://github.com/trademon/trademon/blob/main/monitoring/runbooks.md#{name.lower()}"},
            "startsAt": "2026-03-02T14:31:00Z", "endsAt": "0001-01-01T00:00:00Z", "generatorURL": "", "fingerprint": name}


def test_telegram_message_loss_breach():
    data = _data([_alert("DailyLossLimitBreach", "Daily loss limit breached on DU1234567",
                         "Account DU1234567: daily P&L -612.40 USD, limit -500.", severity="critical", account="DU1234567")])
    (out,) = render_message(data, LINKS)
    telegram_visible_length(out)  # Telegram would accept the markup
    shown = visible_text(out)
    assert shown.startswith("🔴 CRITICAL · 1 firing")
    assert "daily P&L -612.40 USD, limit -500" in shown and "&amp;" in out
    assert '<a href="https://grafana.example.com/d/trademon-pnl">dashboard</a>' in out
    assert ('<a href="https://am.example.com/#/silences/new?filter=%7Balertname%3D%22DailyLossLimitBreach%22%2C'
            'account%3D%22DU1234567%22%7D">silence</a>') in out
    assert "runbooks.md#dailylosslimitbreach" in out


def test_telegram_message_resolved():
    data = _data([_alert("DailyLossLimitBreach", "Daily loss limit breached on DU1234567", "x", status="resolved", severity="critical")],
                 status="resolved")
    (out,) = render_message(data, LINKS)
    shown = visible_text(out)
    assert shown.startswith("✅ RESOLVED · critical") and "resolved: DailyLossLimitBreach" in shown


@pytest.mark.parametrize("n, desc_len", [(1, 100_000), (40, 2_000), (5, 300), (400, 500)])
def test_telegram_message_escapes_and_splits_under_the_limit(n, desc_len):
    nasty = ('<script>&amp;"quote"' + "é€😀" * 10 + "&") * (desc_len // 40 + 1)
    alerts = [_alert("PnLAnomaly", f"summary {i} <b>not bold</b> & {nasty[:500]}", nasty[:desc_len], severity="warning", strategy=f"s{i}<&>")
              for i in range(n)]
    parts = render_message(_data(alerts, severity="warning"), LINKS)
    assert len(parts) == 1  # one message, one buzz, whatever the storm
    for out in parts:
        assert telegram_visible_length(out) <= TELEGRAM_MAX_CHARS
        assert "<script>" not in out and "<b>not bold</b>" not in out
    shown = "\n".join(visible_text(p) for p in parts)
    counted = re.search(r"PnLAnomaly ×(\d+)", shown)
    if counted:  # too many for a line each: counted by name, every one
        assert n >= 40 and counted.group(1) == str(n)
    else:  # in full or a line each: every alert's summary, escaped
        assert "<b>not bold</b> &" in shown
        assert len(re.findall(r"^PnLAnomaly · summary \d+ ", shown, re.M)) == n
    if desc_len > 400 and n == 1:
        assert "…" in shown


def render(rendered: Path, name: str, data: dict, tmp_path: Path, kind: str = "text") -> str:
    f = tmp_path / "data.json"
    f.write_text(json.dumps(data))
    r = amtool("template", "render", f"--template.glob={rendered.parent / 'templates' / '*.tmpl'}",
               f"--template.text={{{{ template \"{name}\" . }}}}", f"--template.data={f}", f"--template.type={kind}")
    assert r.returncode == 0, r.stderr
    return r.stdout.rstrip("\n")


@pytest.mark.amtool
def test_slack_and_email_templates(rendered, tmp_path):
    data = _data([_alert("TWSConnectionLost", "IB API session lost <now>", "no orders & no data", severity="critical")])
    title = render(rendered, "trademon.slack.title", data, tmp_path)
    text = render(rendered, "trademon.slack.text", data, tmp_path)
    subject = render(rendered, "trademon.email.subject", data, tmp_path)
    assert title == "[CRITICAL] 1 firing"
    assert "*TWSConnectionLost* IB API session lost &lt;now&gt;" in text and "no orders &amp; no data" in text
    assert "<https://grafana.example.com|dashboards>" in text
    assert subject == "[trademon CRITICAL] TWSConnectionLost"
