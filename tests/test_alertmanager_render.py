"""`trademon am-config`: secrets into 0600 files referenced by *_file fields, an integration
without its settings left out with a log line (never a crash), links filled in."""

from __future__ import annotations

import io
import json
import logging
import stat
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from trademon.alertmanager import amconfig
from trademon.runtime import logs
from trademon.bot.config import derived_webhook_token

ROOT = Path(__file__).resolve().parents[1]
AM = ROOT / "alertmanager"
TOKEN = "111222:AAtokenTOKENtoken_-x"
FULL = {"TELEGRAM_BOT_TOKEN": TOKEN, "TELEGRAM_CHAT_ID": "-1009876", "SLACK_WEBHOOK_URL": "https://slack.invalid/services/t1/b1/slackSECRETpath",
        "SMTP_SMARTHOST": "smtp.example.com:587", "SMTP_FROM": "a@example.com", "SMTP_TO": "b@example.com",
        "SMTP_USERNAME": "a@example.com", "SMTP_PASSWORD": "pw-SECRET-42",
        "HEARTBEAT_URL": "https://hc-ping.invalid/0c4f-HEARTBEAT-secret-uuid"}


@pytest.fixture
def log_lines():
    buf = io.StringIO()
    logs.setup("am-config", stream=buf)
    yield lambda: [json.loads(line) for line in buf.getvalue().splitlines()]
    logging.getLogger().handlers[:] = []


def receivers(path: Path) -> dict[str, dict]:
    return {r["name"]: r for r in yaml.safe_load(path.read_text())["receivers"]}


def test_full_environment(tmp_path, log_lines):
    path = amconfig.render(AM, tmp_path, {**FULL, "GRAFANA_URL": "https://grafana.example.com/", "ALERTMANAGER_URL": "https://am.example.com"})
    rc = receivers(path)
    assert set(rc["critical"]) == {"name", "slack_configs", "email_configs", "webhook_configs"}
    bot = rc["critical"]["webhook_configs"][1]
    assert bot["url"] == "http://trademon-bot:9114/alerts"
    token_file = Path(bot["http_config"]["authorization"]["credentials_file"])
    assert token_file.read_text() == derived_webhook_token(TOKEN) and TOKEN not in token_file.read_text()
    assert Path(rc["warning"]["slack_configs"][0]["api_url_file"]).read_text() == FULL["SLACK_WEBHOOK_URL"]
    email = rc["critical"]["email_configs"][0]
    assert Path(email["auth_password_file"]).read_text() == FULL["SMTP_PASSWORD"]
    assert (email["smarthost"], email["from"], email["to"], email["auth_username"]) == (
        "smtp.example.com:587", "a@example.com", "b@example.com", "a@example.com")
    secrets = tmp_path / "secrets"
    assert stat.S_IMODE(secrets.stat().st_mode) == 0o700
    assert {p.name: stat.S_IMODE(p.stat().st_mode) for p in secrets.iterdir()} == {
        "bot_webhook_token": 0o600, "slack_webhook_url": 0o600, "smtp_password": 0o600, "heartbeat_url": 0o600,
        "api_token": 0o600}  # always written, empty without TRADEMON_API_TOKEN: Prometheus's scrapes read it
    assert (secrets / "api_token").read_text() == ""
    hb = rc["heartbeat"]["webhook_configs"][0]
    assert "url" not in hb and Path(hb["url_file"]).read_text() == FULL["HEARTBEAT_URL"] and hb["send_resolved"] is False
    text = path.read_text()
    for secret in (TOKEN, FULL["SLACK_WEBHOOK_URL"], FULL["SMTP_PASSWORD"], FULL["HEARTBEAT_URL"], derived_webhook_token(TOKEN)):
        assert secret not in text
    assert not any(TOKEN in p.read_text() for p in secrets.iterdir()), "Alertmanager must not get the bot token"
    tmpl = (tmp_path / "templates" / "slack_email.tmpl").read_text()
    assert '$grafana_url := "https://grafana.example.com" -}}' in tmpl
    assert (tmp_path / "zoneinfo" / "America" / "New_York").is_file()
    assert [line for line in log_lines() if line["level"] != "info"] == []


def test_missing_settings_leave_integrations_out_with_a_log_line(tmp_path, log_lines):
    env = {"TELEGRAM_BOT_TOKEN": TOKEN}  # no chat id, no Slack, no SMTP
    path = amconfig.render(AM, tmp_path, env)
    rc = receivers(path)
    assert all(set(r) == {"name", "webhook_configs"} for n, r in rc.items() if n != "heartbeat"), rc
    assert rc["heartbeat"] == {"name": "heartbeat"}  # no URL: the dead man's switch sends nothing
    assert all(len(r["webhook_configs"]) == 1 for n, r in rc.items() if n != "heartbeat"), "the bot's webhook is left out with Telegram"
    lines = log_lines()
    left = {(r, line["integration"]) for line in lines if line["message"] == "receiver integration left out" for r in line["receivers"]}
    assert left == {("critical", "telegram"), ("critical", "slack"), ("critical", "email"), ("warning", "telegram"), ("warning", "slack"),
                    ("pager", "slack"), ("pager", "email")}
    hb = next(line for line in lines if line["message"] == "dead man's switch left out")
    assert "HEARTBEAT_URL not set" in hb["reason"] and hb["level"] == "warning"
    tg = next(line for line in lines if line.get("integration") == "telegram")
    assert "TELEGRAM_CHAT_ID not set" in tg["reason"] and tg["level"] == "warning"
    assert TOKEN not in json.dumps(lines)


@pytest.mark.parametrize("env, fragment", [
    ({"TELEGRAM_CHAT_ID": "@mychannel"}, "TELEGRAM_CHAT_ID='@mychannel': not a Telegram chat id"),
    ({"TELEGRAM_BOT_TOKEN": "nocolon"}, "TELEGRAM_BOT_TOKEN: not a bot token"),
    ({"SLACK_WEBHOOK_URL": "hooks.slack.com/x"}, "SLACK_WEBHOOK_URL: not an http(s) URL"),
    ({"SMTP_SMARTHOST": "smtp.example.com"}, "SMTP_SMARTHOST='smtp.example.com': not host:port"),
    ({"SMTP_PASSWORD": ""}, "SMTP_USERNAME and SMTP_PASSWORD: set both"),
    ({"HEARTBEAT_URL": "hc-ping.com/SECRET-uuid"}, "HEARTBEAT_URL: not an http(s) URL; allowed: https://hc-ping.com/<uuid>"),
])
def test_bad_values_are_named_and_left_out(tmp_path, log_lines, env, fragment):
    amconfig.render(AM, tmp_path, {**FULL, **env})
    reasons = [line["reason"] for line in log_lines() if line["message"] in ("receiver integration left out", "dead man's switch left out")]
    assert any(fragment in r for r in reasons), reasons
    for name in ("TELEGRAM_BOT_TOKEN", "HEARTBEAT_URL"):  # even a malformed secret is never logged
        if name in env:
            assert env[name] not in json.dumps(log_lines())


def test_prometheus_gets_the_api_token_as_a_file_always_there(tmp_path):
    """prometheus.yml's trademon jobs send TRADEMON_API_TOKEN from this file; Prometheus refuses
    a config naming a missing one, so it is there (empty) without a token too."""
    token = "tok-" + "5f1c0e9a" * 6
    amconfig.render(AM, tmp_path, {"TRADEMON_API_TOKEN": token})
    assert amconfig.token_file(tmp_path).read_text() == token
    assert stat.S_IMODE(amconfig.token_file(tmp_path).stat().st_mode) == 0o600
    amconfig.render(AM, tmp_path, {})
    assert amconfig.token_file(tmp_path).read_text() == ""


def test_rerender_removes_secrets_no_longer_configured(tmp_path):
    amconfig.render(AM, tmp_path, FULL)
    amconfig.render(AM, tmp_path, {k: v for k, v in FULL.items() if k != "SMTP_PASSWORD"} | {"SMTP_USERNAME": ""})
    assert sorted(p.name for p in (tmp_path / "secrets").iterdir()) == ["api_token", "bot_webhook_token", "heartbeat_url", "slack_webhook_url"]


def test_secret_from_file(tmp_path):
    f = tmp_path / "token"
    f.write_text(TOKEN + "\n")
    env = {k: v for k, v in FULL.items() if k != "TELEGRAM_BOT_TOKEN"} | {"TELEGRAM_BOT_TOKEN_FILE": str(f)}
    path = amconfig.render(AM, tmp_path / "out", env)
    bot = receivers(path)["critical"]["webhook_configs"][1]
    assert Path(bot["http_config"]["authorization"]["credentials_file"]).read_text() == derived_webhook_token(TOKEN)


def test_explicit_webhook_token_and_bot_url(tmp_path):
    env = {**FULL, "TRADEMON_BOT_WEBHOOK_TOKEN": "an-explicit-webhook-token-0123456789"}
    path = amconfig.render(AM, tmp_path, env, bot_url="http://127.0.0.1:5556/alerts")
    for name in ("critical", "warning"):
        bot = receivers(path)[name]["webhook_configs"][1]
        assert bot["url"] == "http://127.0.0.1:5556/alerts"
        assert Path(bot["http_config"]["authorization"]["credentials_file"]).read_text() == env["TRADEMON_BOT_WEBHOOK_TOKEN"]


def test_unreadable_secret_file_is_left_out_not_a_crash(tmp_path, log_lines):
    env = {**{k: v for k, v in FULL.items() if k != "SMTP_PASSWORD"}, "SMTP_PASSWORD_FILE": str(tmp_path / "missing")}
    path = amconfig.render(AM, tmp_path / "out", env)
    assert "email_configs" not in receivers(path)["critical"]
    assert any("SMTP_PASSWORD_FILE" in line.get("reason", "") and line["level"] == "error" for line in log_lines())


def test_alert_sink_url_and_bad_link_url(tmp_path, log_lines):
    path = amconfig.render(AM, tmp_path, {"GRAFANA_URL": "javascript:alert(1)"}, alert_sink_url="http://127.0.0.1:5555/alerts")
    assert all(r["webhook_configs"][0]["url"] == "http://127.0.0.1:5555/alerts" for n, r in receivers(path).items() if n != "heartbeat")
    assert '$grafana_url := "http://localhost:3000"' in (tmp_path / "templates" / "slack_email.tmpl").read_text()
    assert any(line["message"] == "link URL ignored" and "GRAFANA_URL" in line["reason"] for line in log_lines())


@pytest.mark.e2e
def test_cli_writes_into_the_volume(tmp_path):
    """As the compose init step runs it: `trademon am-config --out DIR`, exit 0 even with no secrets."""
    r = subprocess.run([sys.executable, "-m", "trademon", "am-config", "--out", str(tmp_path / "vol")],
                       capture_output=True, text=True, timeout=60, env={"PATH": "/usr/bin:/bin", "TELEGRAM_BOT_TOKEN": TOKEN})
    assert r.returncode == 0, r.stderr
    assert (tmp_path / "vol" / "alertmanager.yml").is_file()
    assert TOKEN not in r.stdout + r.stderr
    assert '"integration": "telegram"' in r.stdout


@pytest.mark.parametrize("name, integration", [
    ("SMTP_SMARTHOST", "email_configs"),  # a plain setting: read from NAME only, never from NAME_FILE
    ("SLACK_WEBHOOK_URL", "slack_configs"),  # a secret whose file is empty
])
def test_a_setting_require_accepts_but_that_has_no_value_is_left_out_not_a_crash(tmp_path, log_lines, name, integration):
    f = tmp_path / "value"
    f.write_text("smtp.example.com:587" if name == "SMTP_SMARTHOST" else "\n")
    env = {k: v for k, v in FULL.items() if k != name} | {f"{name}_FILE": str(f)}
    path = amconfig.render(AM, tmp_path / "out", env)
    assert integration not in receivers(path)["critical"]
    assert any(f"{name} not set" in line.get("reason", "") for line in log_lines()), log_lines()
