"""The bot's settings, from the environment (.env), with errors naming the variable."""

from __future__ import annotations

import hashlib
import hmac
import re
from dataclasses import dataclass
from datetime import time as dtime
from pathlib import Path
from collections.abc import Mapping
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from trademon import contract
from trademon.settings import paths, values
from trademon.settings.env import ConfigError, env_duration, env_float, env_int, env_port, env_str, env_url, secret, url

DEFAULT_STATE_DIR = "/var/lib/trademon-bot"
WEBHOOK_TOKEN_CONTEXT = b"trademon-bot webhook v1"


def derived_webhook_token(bot_token: str) -> str:
    """The shared secret of Alertmanager -> bot when TRADEMON_BOT_WEBHOOK_TOKEN is not set:
    derived from the bot token (one-way), so am-config and the bot agree without one more
    variable and Alertmanager never holds the bot token itself."""
    return hmac.new(bot_token.encode(), WEBHOOK_TOKEN_CONTEXT, hashlib.sha256).hexdigest()


def webhook_token(env: Mapping[str, str]) -> str | None:
    explicit = secret("TRADEMON_BOT_WEBHOOK_TOKEN", env)
    if explicit:
        if len(explicit) < 16:
            raise ConfigError("TRADEMON_BOT_WEBHOOK_TOKEN", "***", "shorter than 16 characters", "a random string of 16+ characters (openssl rand -hex 32)")
        return explicit
    token = secret("TELEGRAM_BOT_TOKEN", env)
    return derived_webhook_token(token) if token else None


def bot_token(env: Mapping[str, str]) -> str:
    token = secret("TELEGRAM_BOT_TOKEN", env)
    if token is None:
        raise ConfigError("TELEGRAM_BOT_TOKEN", None, "not set", "the token BotFather gave (<digits>:<letters>), in .env or via TELEGRAM_BOT_TOKEN_FILE")
    if not values.is_bot_token(token):
        raise ConfigError("TELEGRAM_BOT_TOKEN", "***", "not a bot token", values.BOT_TOKEN_ALLOWED)
    return token


def chat_id(name: str, value: str) -> int:
    try:
        return values.telegram_chat_id(value)
    except ValueError:
        raise ConfigError(name, value, "not a Telegram chat id", values.CHAT_ID_ALLOWED) from None


def id_list(name: str, env: Mapping[str, str]) -> frozenset[int]:
    raw = env_str(name, env=env)
    if raw is None:
        return frozenset()
    return frozenset(chat_id(name, x.strip()) for x in raw.split(",") if x.strip())


def _clock_time(name: str, value: str) -> dtime:
    m = re.fullmatch(r"([01]?\d|2[0-3]):([0-5]\d)", value)
    if not m:
        raise ConfigError(name, value, "not a time of day", "HH:MM, 24-hour, e.g. 16:15")
    return dtime(int(m.group(1)), int(m.group(2)))


def _days(name: str, value: str) -> frozenset[int]:
    try:
        return values.weekdays(value)
    except ValueError:
        raise ConfigError(name, value, "not a list of days", "e.g. mon-fri, or mon,wed,fri, or mon-sun") from None


def _zone(name: str, value: str) -> ZoneInfo:
    try:
        return ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError):
        raise ConfigError(name, value, "unknown time zone", "an IANA zone such as America/New_York or Europe/Berlin") from None


@dataclass
class BotConfig:
    """The bot's settings. Made only by :meth:`from_env`, where each default is written once, as
    the variable's value would be in .env (no dataclass defaults: a second copy could drift)."""

    token: str
    chat_id: int                    # where notifications go
    allowed_chats: frozenset[int]   # chats that may run commands and press buttons
    allowed_users: frozenset[int]   # in a group: the users who may act
    webhook_token: str
    telegram_api_url: str
    host: str
    port: int
    alertmanager_url: str
    alertmanager_external_url: str
    prometheus_url: str
    grafana_url: str
    alert_sink_url: str | None
    alert_sink_token: str | None  # TRADEMON_API_TOKEN, when the alert-sink asks for one
    max_silence_s: float
    summary_at: dtime
    summary_zone: ZoneInfo
    zone: ZoneInfo                  # the trader's: every time the bot shows (the summary's zone unless set)
    summary_days: frozenset[int]
    state_dir: Path
    config_root: Path  # holds monitoring/config.yml and alertmanager/alertmanager.yml
    poll_timeout_s: int
    deliver_within_s: float   # try Telegram this long before answering from the outbox
    # Alertmanager's retry of a notification already taken comes within a group_interval (5m at
    # most on the shipped routes to the bot); the same content on purpose only after its
    # repeat_interval (1h at least): within this window the same content is not sent twice.
    retry_window_s: float
    ack_hold_s: float         # an acknowledgement's silence: this long, then announced and extended while it still fires
    ack_warn_s: float         # how long before its end an acknowledgement still firing is announced
    ack_check_s: float        # how often Alertmanager is asked whether acknowledged alerts still fire
    group_per_minute: int     # Telegram's flood limit in a group, sends and edits alike (trademon.bot.pace)

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> BotConfig:
        token = bot_token(env)
        chat_raw = env_str("TELEGRAM_CHAT_ID", env=env)
        if chat_raw is None:
            raise ConfigError("TELEGRAM_CHAT_ID", None, "not set", "the chat the alerts go to (see docs/telegram.md)")
        chat = chat_id("TELEGRAM_CHAT_ID", chat_raw)
        allowed = id_list("TRADEMON_BOT_ALLOWED_CHAT_IDS", env) | {chat}
        users = id_list("TRADEMON_BOT_ALLOWED_USER_IDS", env)
        sink = env_str("TRADEMON_BOT_ALERT_SINK_URL", env=env)
        state = env_str("TRADEMON_BOT_STATE_DIR", DEFAULT_STATE_DIR, env)
        summary_tz = env_str("TRADEMON_BOT_SUMMARY_TZ", "America/New_York", env)
        return cls(
            token=token, chat_id=chat, allowed_chats=frozenset(allowed), allowed_users=users,
            webhook_token=webhook_token(env) or "",
            telegram_api_url=env_url("TELEGRAM_API_URL", "https://api.telegram.org", env),
            host=env_str("TRADEMON_BOT_HOST", "127.0.0.1", env),
            port=env_port("TRADEMON_BOT_PORT", contract.BOT_PORT, env),
            alertmanager_url=env_url("TRADEMON_BOT_ALERTMANAGER_URL", "http://127.0.0.1:9093", env),
            alertmanager_external_url=env_url("ALERTMANAGER_URL", "http://localhost:9093", env),
            prometheus_url=env_url("TRADEMON_BOT_PROMETHEUS_URL", "http://127.0.0.1:9090", env),
            grafana_url=env_url("GRAFANA_URL", "http://localhost:3000", env),
            alert_sink_url=url("TRADEMON_BOT_ALERT_SINK_URL", sink) if sink else None,
            alert_sink_token=secret("TRADEMON_API_TOKEN", env),
            max_silence_s=env_duration("TRADEMON_BOT_MAX_SILENCE", "24h", env),
            summary_at=_clock_time("TRADEMON_BOT_SUMMARY_AT", env_str("TRADEMON_BOT_SUMMARY_AT", "16:15", env)),
            summary_days=_days("TRADEMON_BOT_SUMMARY_DAYS", env_str("TRADEMON_BOT_SUMMARY_DAYS", "mon-fri", env)),
            summary_zone=_zone("TRADEMON_BOT_SUMMARY_TZ", summary_tz),
            zone=_zone("TRADEMON_BOT_TZ", env_str("TRADEMON_BOT_TZ", summary_tz, env)),
            state_dir=Path(state),
            config_root=Path(env_str("TRADEMON_BOT_CONFIG_ROOT", str(paths.config_root()), env)),
            poll_timeout_s=env_int("TRADEMON_BOT_POLL_TIMEOUT", 25, 1, 50, env),
            deliver_within_s=env_float("TRADEMON_BOT_DELIVER_WITHIN", 8.0, 0.5, 60, env),
            retry_window_s=env_duration("TRADEMON_BOT_RETRY_WINDOW", "15m", env),
            ack_hold_s=env_duration("TRADEMON_BOT_ACK_HOLD", "2h", env),
            ack_warn_s=env_duration("TRADEMON_BOT_ACK_WARN", "10m", env),
            ack_check_s=env_duration("TRADEMON_BOT_ACK_CHECK", "30s", env),
            group_per_minute=env_int("TRADEMON_BOT_GROUP_PER_MINUTE", 20, 1, 1000, env),
        )
