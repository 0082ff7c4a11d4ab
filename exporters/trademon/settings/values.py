"""The syntax of setting values, one parser each: durations, http(s) URLs, weekdays, account ids
and Telegram's chat ids and bot tokens. Each raises ValueError saying what is allowed; the settings that use them (settings.env's
``env_duration``, ``env_url``, the config files' readers) turn that into a ConfigError naming
the variable, the value and the fix."""

from __future__ import annotations

import re
from collections.abc import Iterable
from urllib.parse import urlsplit

# --- durations: Prometheus' syntax (1h30m, 500ms, 15s), as Alertmanager and Prometheus read it --

DURATION_UNITS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800, "y": 31536000}
DURATION_PATTERN = r"(?:\d+(?:ms|s|m|h|d|w|y))+"  # for expressions that find durations in PromQL
DURATION_ALLOWED = "a duration such as 90s, 15m, 12h or 1h30m (units ms, s, m, h, d, w, y)"
_DURATION_PART = re.compile(r"(\d{1,9})(ms|s|m|h|d|w|y)")


def seconds(text: str) -> float:
    """A duration (``1h30m``, ``500ms``, ``24h``) in seconds."""
    parts = _DURATION_PART.findall(text)
    if not parts or "".join(n + u for n, u in parts) != text:
        raise ValueError(f"not a duration: {text!r}; allowed: {DURATION_ALLOWED}")
    return float(sum(int(n) * DURATION_UNITS[u] for n, u in parts))


# --- URLs ---------------------------------------------------------------------------------

URL_ALLOWED = "http://host[:port][/path]"


def http_url(text: str) -> str:
    """An http(s) URL with a host, without the characters that would break the YAML and
    templates it goes into; the trailing ``/`` dropped (paths are appended to it)."""
    try:
        parts = urlsplit(text)
    except ValueError:
        parts = None
    if parts is None or parts.scheme not in ("http", "https") or not parts.hostname or re.search(r'[\s"<>{}]', text):
        raise ValueError(f"not an http(s) URL; allowed: {URL_ALLOWED}")
    return text.rstrip("/")


def is_http_url(text: str) -> bool:
    try:
        http_url(text)
    except ValueError:
        return False
    return True


# --- weekdays: the bot's mon-fri and Alertmanager's monday:friday -------------------------

WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")


def weekday(name: str) -> int:
    """0 for Monday: the full English name or its first three letters, any case."""
    n = name.strip().lower()
    for i, day in enumerate(WEEKDAYS):
        if n in (day, day[:3]):
            return i
    raise ValueError(f"not a weekday: {name!r}")


def weekdays(items: str | Iterable[str], through: str = "-") -> frozenset[int]:
    """Days (0 = Monday) from ``mon-fri,sun`` (a string: comma-separated) or Alertmanager's
    ``["monday:friday"]`` (``through=":"``): single days and ranges running forward."""
    days: set[int] = set()
    for item in items.split(",") if isinstance(items, str) else items:
        first, sep, last = item.strip().partition(through)
        lo = weekday(first)
        hi = weekday(last) if sep else lo
        if hi < lo:
            raise ValueError(f"{item.strip()!r} runs backwards: a range goes forward, e.g. mon{through}fri")
        days |= set(range(lo, hi + 1))
    return frozenset(days)


# --- account ids --------------------------------------------------------------------------

# IB's account ids are letters and digits (U1234567, DU1234567, F1234567); they go into label
# values, PromQL strings and Go templates, where nothing else is safe.
ACCOUNT_ID = re.compile(r"[A-Za-z0-9]{1,32}")
ACCOUNT_ID_ALLOWED = "letters and digits, as IB shows it, e.g. DU1234567"


def is_account_id(text: str) -> bool:
    return ACCOUNT_ID.fullmatch(text) is not None


# --- Telegram (the bot and am-config's telegram receiver read the same two variables) --------

CHAT_ID_ALLOWED = "a non-zero whole number such as 123456789 or -1001234567890"
BOT_TOKEN_ALLOWED = "<digits>:<letters>, as BotFather gives it"


def telegram_chat_id(text: str) -> int:
    if not re.fullmatch(r"-?\d{1,20}", text) or int(text) == 0:
        raise ValueError(f"not a Telegram chat id; allowed: {CHAT_ID_ALLOWED}")
    return int(text)


def is_bot_token(text: str) -> bool:
    return re.fullmatch(r"[0-9]+:[A-Za-z0-9_-]+", text) is not None


# --- phone numbers (the bot's SMS and voice escalation) -------------------------------------

PHONE_ALLOWED = "E.164: a + then the country code and number, digits only, e.g. +14155550123"


def is_phone_number(text: str) -> bool:
    """E.164, as Twilio-style APIs take To and From: ``+`` and 8 to 15 digits, no leading 0."""
    return re.fullmatch(r"\+[1-9]\d{7,14}", text) is not None
