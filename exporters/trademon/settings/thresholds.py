"""The monitoring config (monitoring/config.yml): thresholds by severity, per-account limits,
job selectors, the runbook URL pattern and the currency, read and checked for the rule,
dashboard and Kubernetes generators, the bot and the simulator."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml

from trademon.settings.values import ACCOUNT_ID_ALLOWED, is_account_id
from trademon.settings.env import ConfigError

CONFIG_FILE = "monitoring/config.yml"
SECTIONS = ("critical", "warning", "shared")  # thresholds, by the severity of the alerts that use them
TOP_KEYS = {"currency", "runbook_url_pattern", "selectors", "accounts", *SECTIONS}
SELECTOR_KINDS = ("broker", "trading", "trademon", "alertmanager")
ACCOUNT_KEYS = ("daily_loss_limit", "exposure_ratio")  # what may differ per account
CURRENCY = re.compile(r"^[A-Z]{3}$")  # ISO 4217: goes into alert texts and the dashboards' unit
DURATION = re.compile(r"^(?:[0-9]+(?:ms|s|m|h|d|w|y))+$")  # a Prometheus duration: a rule's `for`, a window
NEGATIVE = ("daily_loss_limit",)  # a loss: below 0, or the alert would fire on every profitable day too


def path(root: Path) -> Path:
    return root / CONFIG_FILE


def exists(root: Path) -> bool:
    return path(root).is_file()


def load_config(root: Path) -> dict[str, Any]:
    """The whole config, checked: known sections only, each threshold once, per-account
    overrides of known keys for well-formed account ids."""
    p = path(root)
    try:
        with open(p, encoding="utf-8") as f:
            data = yaml.safe_load(f) or {}
    except yaml.YAMLError as e:
        raise ConfigError.in_file(p, f"not valid YAML ({' '.join(str(e).split())[:300]}); fix the line it names "
                                  "(indentation, an unclosed bracket or quote)") from None
    if not isinstance(data, dict):
        raise ConfigError.in_file(p, f"expected a mapping with the sections {', '.join(sorted(TOP_KEYS))}")
    unknown = sorted(set(data) - TOP_KEYS)
    if unknown:
        raise ConfigError.in_file(p, f"unknown key(s) {', '.join(unknown)}: thresholds go under critical:, warning: or shared: "
                          f"(the severity of the alerts that use them); top-level keys are {', '.join(sorted(TOP_KEYS))}")
    seen: dict[str, str] = {}
    for section in SECTIONS:
        values = data.get(section) or {}
        if not isinstance(values, dict):
            raise ConfigError.in_file(p, f"{section}: expected a mapping of threshold names to values")
        for key, value in values.items():
            if key in seen:
                raise ConfigError.in_file(p, f"{key} is under both {seen[key]}: and {section}:; keep it in one")
            seen[key] = section
            _check_value(p, f"{section}: {key}", key, value)
    pattern = data.get("runbook_url_pattern", "")
    if "{alert}" not in str(pattern):
        raise ConfigError.in_file(p, f"runbook_url_pattern {pattern!r} has no {{alert}} placeholder; "
                          "e.g. https://example.org/runbooks.md#{alert}")
    selectors = data.get("selectors") or {}
    if not isinstance(selectors, dict) or set(selectors) - set(SELECTOR_KINDS):
        raise ConfigError.in_file(p, f"selectors: expected a mapping with some of {', '.join(SELECTOR_KINDS)} "
                          f"(got {sorted(selectors) if isinstance(selectors, dict) else selectors!r})")
    currency = data.get("currency", "USD")
    if not isinstance(currency, str) or not CURRENCY.match(currency):
        raise ConfigError.in_file(p, f"currency {currency!r} is not a currency code: the accounts' base currency as IB reports it, "
                          "three capital letters (ISO 4217), e.g. USD, EUR, CHF")
    accounts = data.get("accounts") or {}
    if not isinstance(accounts, dict):
        raise ConfigError.in_file(p, "accounts: expected a mapping of account ids to their thresholds")
    for account, over in accounts.items():
        if not is_account_id(str(account)):
            raise ConfigError.in_file(p, f"accounts: {account!r} is not an account id ({ACCOUNT_ID_ALLOWED})")
        if not isinstance(over, dict) or not over or set(over) - set(ACCOUNT_KEYS):
            raise ConfigError.in_file(p, f"accounts: {account}: expected some of {', '.join(ACCOUNT_KEYS)} "
                              f"(got {over!r}); other thresholds are the same for every account")
        for key, value in over.items():
            if not is_number(value):
                raise ConfigError.in_file(p, f"accounts: {account}: {key} must be a number, not {value!r}")
            _check_value(p, f"accounts: {account}: {key}", key, value)
    return data


def is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and value == value and abs(value) != float("inf")


def _check_value(p: Path, where: str, key: str, value: Any) -> None:
    """A threshold is a number (compared with a series: it reaches Prometheus as one) or a
    Prometheus duration (a rule's `for`, a window: written into the alert rules)."""
    if not (is_number(value) or (isinstance(value, str) and DURATION.match(value))):
        raise ConfigError.in_file(p, f"{where}: {value!r} is neither a number nor a Prometheus duration; "
                                  "write a number (e.g. -500, 0.05) or a duration (e.g. 90s, 5m, 1h30m)")
    if key in NEGATIVE and is_number(value) and value >= 0:
        raise ConfigError.in_file(p, f"{where}: {value!r} is not a loss: the limit is the daily P&L below which the alert "
                                  f"fires, a negative number (e.g. {key}: -{abs(value) or 500:g})")


def refuse_unread(root: Path, keys: set[str], read: set[str]) -> None:
    """Refuse a key of ``keys`` that nothing of ``read`` (what the alert rules compare with)
    reads: a misspelt key beside the real one would be accepted and change nothing, a config
    the trader believes is in force but is not. The message names the key it resembles."""
    unread = sorted(keys - read)
    if not unread:
        return
    import difflib

    key = unread[0]
    like = difflib.get_close_matches(key, sorted(read), n=1)
    raise ConfigError.in_file(path(root), f"{named(root, key)}: no alert rule compares with it (monitoring/rules/)"
                              + (f"; did you mean {like[0]}?" if like else "; remove it, or write the rule that reads it"))


def named(root: Path, key: str) -> str:
    """``key`` as the trader finds it in the file: ``section: key`` (the currency is top-level)."""
    data = load_config(root)
    return next((f"{section}: {key}" for section in SECTIONS if key in (data.get(section) or {})), key)


def written_in(root: Path) -> dict[str, str]:
    """The thresholds that are not numbers (durations, the currency): `trademon gen` writes
    them into the alert rules, where no reload reaches them."""
    nums = numbers(root)
    return {k: str(v) for k, v in load(root).items() if k not in nums}


def currency(root: Path) -> str:
    """The accounts' base currency (alert texts, the bot, the dashboards' money unit)."""
    return str(load_config(root).get("currency", "USD"))


def numbers(root: Path) -> dict[str, float]:
    """The thresholds that are numbers: each reaches Prometheus as a series
    (trademon.thresholds.render), which the alerts, dashboards and bot read."""
    return {k: v for k, v in load(root).items() if k != "currency" and is_number(v)}


def load(root: Path) -> dict[str, Any]:
    """The thresholds of every section and the currency, as one mapping of name to value
    (the names are unique across sections)."""
    data = load_config(root)
    flat: dict[str, Any] = {}
    for section in SECTIONS:
        flat.update(data.get(section) or {})
    if "currency" in data:
        flat["currency"] = data["currency"]
    return flat


def accounts(root: Path) -> dict[str, dict[str, float]]:
    """Per-account overrides: account id -> {threshold: value}."""
    return {str(a): dict(v) for a, v in (load_config(root).get("accounts") or {}).items()}


def section_of(root: Path) -> dict[str, str]:
    """threshold name -> the section (severity) it is under."""
    data = load_config(root)
    return {key: s for s in SECTIONS for key in (data.get(s) or {})}
