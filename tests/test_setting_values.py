"""One parser each for the syntax of setting values (trademon.settings.values), and the errors
they become where a setting uses them: the variable, the value (credentials masked) and the fix."""

from __future__ import annotations

import pytest

from trademon.settings import values
from trademon.settings.env import ConfigError, env_duration, env_url, url

pytestmark = pytest.mark.unit


@pytest.mark.parametrize("text, want", [
    ("15s", 15), ("15m", 900), ("24h", 86400), ("7d", 604800), ("1w", 604800), ("1y", 31536000),
    ("500ms", 0.5), ("1h30m", 5400), ("1m500ms", 60.5), ("0s", 0),
])
def test_durations(text, want):
    assert values.seconds(text) == want


@pytest.mark.parametrize("text", ["", "15", "s", "1.5s", "-1s", "1h 30m", " 1h", "1H", "1x", "9999999999s"])
def test_what_is_not_a_duration(text):
    with pytest.raises(ValueError, match="not a duration.*allowed: a duration such as 90s"):
        values.seconds(text)


def test_a_duration_setting_names_the_variable_the_value_and_the_fix():
    assert env_duration("TRADEMON_BOT_MAX_SILENCE", "24h", env={}) == 86400
    assert env_duration("TRADEMON_BOT_MAX_SILENCE", "24h", env={"TRADEMON_BOT_MAX_SILENCE": "90m"}) == 5400
    with pytest.raises(ConfigError, match=r"TRADEMON_BOT_MAX_SILENCE='a day': not a duration; allowed: a duration such as"):
        env_duration("TRADEMON_BOT_MAX_SILENCE", "24h", env={"TRADEMON_BOT_MAX_SILENCE": "a day"})


@pytest.mark.parametrize("text, want", [
    ("http://127.0.0.1:9093/", "http://127.0.0.1:9093"), ("https://api.telegram.org", "https://api.telegram.org"),
    ("http://prometheus:9090/-/healthy", "http://prometheus:9090/-/healthy"), ("https://u:p@h/x", "https://u:p@h/x"),
])
def test_urls(text, want):
    assert values.http_url(text) == want and values.is_http_url(text)


@pytest.mark.parametrize("text", ["", "localhost:9093", "ftp://h/x", "http://", "http:///x", "http://h/a b",
                                  'http://h/"x', "http://h/{{x}}", "http://[::1/x"])
def test_what_is_not_an_http_url(text):
    assert not values.is_http_url(text)
    with pytest.raises(ValueError, match=r"not an http\(s\) URL"):
        values.http_url(text)


def test_a_url_setting_masks_credentials_in_its_error():
    assert env_url("GRAFANA_URL", "http://localhost:3000", env={}) == "http://localhost:3000"
    with pytest.raises(ConfigError) as e:
        # a made-up path, split so that no scan for real Slack webhook URLs flags this file
        url("SLACK_WEBHOOK_URL", "hooks.slack.com/services/" + "T000/B000/s3cretpart s")
    assert "SLACK_WEBHOOK_URL=" in str(e.value) and "not an http(s) URL; allowed: http://host[:port][/path]" in str(e.value)
    with pytest.raises(ConfigError) as e:
        url("X_URL", "http://user:hunter22@h/ x")
    assert "hunter22" not in str(e.value) and "X_URL=" in str(e.value)
    with pytest.raises(ConfigError, match="longer than 20 characters"):
        url("X_URL", "http://h/" + "a" * 20, max_len=20)


@pytest.mark.parametrize("items, through, want", [
    ("mon-fri", "-", {0, 1, 2, 3, 4}), ("mon,wed,fri", "-", {0, 2, 4}), ("sat-sun", "-", {5, 6}),
    ("Mon-Tue, sun", "-", {0, 1, 6}), ("monday-wednesday", "-", {0, 1, 2}),
    (["monday:friday"], ":", {0, 1, 2, 3, 4}), (["saturday", "sunday"], ":", {5, 6}),
])
def test_weekdays_in_both_syntaxes(items, through, want):
    assert values.weekdays(items, through=through) == frozenset(want)


@pytest.mark.parametrize("items", ["fri-mon", "weekdays", "mon-", "mon:fri", ""])
def test_what_is_not_a_list_of_weekdays(items):
    with pytest.raises(ValueError):
        values.weekdays(items)


@pytest.mark.parametrize("text, ok", [
    ("DU1234567", True), ("U7654321", True), ("F1234567", True), ("a" * 32, True),
    ("", False), ("a" * 33, False), ("DU1.2", False), ("DU_1", False), ("DU-1", False), ('DU1"}) or vector(1', False),
])
def test_account_ids_are_letters_and_digits(text, ok):
    assert values.is_account_id(text) is ok


def test_the_exporter_and_the_monitoring_config_take_the_same_account_ids(tmp_path):
    """The rule the ib-exporter applies to TRADEMON_IB_ACCOUNTS is the one monitoring/config.yml's
    accounts: and the simulator's TRADEMON_SIM_ACCOUNTS are checked with (they disagreed: the
    config took '.', '_' and '-', the simulator ':' too)."""
    from trademon.ib import config as ib_config
    from trademon.settings import thresholds
    from trademon.sim import settings as sim_settings

    (tmp_path / "monitoring").mkdir()
    cfg = tmp_path / "monitoring" / "config.yml"
    for account in ("DU1234567", "DU-1"):
        cfg.write_text(f"runbook_url_pattern: https://example.org/r.md#{{alert}}\naccounts: {{{account}: {{daily_loss_limit: -1}}}}\n")
        try:
            thresholds.load_config(tmp_path)
            config_ok = True
        except ConfigError:
            config_ok = False
        try:
            ib_config.load({"TRADEMON_IB_ACCOUNTS": account})
            exporter_ok = True
        except ConfigError:
            exporter_ok = False
        try:
            sim_settings.load({"TRADEMON_SIM_ACCOUNTS": account})
            sim_ok = True
        except ConfigError:
            sim_ok = False
        assert config_ok is exporter_ok is sim_ok is values.is_account_id(account), account


@pytest.mark.parametrize("text, ok", [("123456789", True), ("-1001234567890", True), ("0", False), ("12a", False),
                                      ("1" * 21, False), ("", False)])
def test_telegram_chat_ids(text, ok):
    if ok:
        assert values.telegram_chat_id(text) == int(text)
    else:
        with pytest.raises(ValueError, match="not a Telegram chat id"):
            values.telegram_chat_id(text)


def test_telegram_bot_tokens():
    assert values.is_bot_token("123456:ABC-def_1") and not values.is_bot_token("ABC:123") and not values.is_bot_token("123456:")
