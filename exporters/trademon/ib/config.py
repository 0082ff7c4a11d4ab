"""The exporter's settings, from TRADEMON_IB_* variables, with errors that say what to fix."""

from __future__ import annotations

import datetime as dt
import re
import zoneinfo
from dataclasses import dataclass, field
from collections.abc import Mapping
from typing import TYPE_CHECKING

from trademon.settings import values
from trademon.settings.env import LOOPBACK, ConfigError, env_choice, env_float, env_int, env_list, env_str, job_port, port_variable

if TYPE_CHECKING:
    from trademon.ib.api import Contract

JOB = "ib-exporter"

# reqMarketDataType values by name (delayed data works on paper accounts without a subscription).
MARKET_DATA_TYPES = {"live": 1, "frozen": 2, "delayed": 3, "delayed-frozen": 4}

_SECTYPES = ("STK", "FUT", "CASH", "OPT", "FOP", "IND", "CFD", "CRYPTO", "BOND", "WAR")
_SYMBOL_FORMAT = "SYMBOL or SYMBOL:SECTYPE:EXCHANGE:CURRENCY[:EXPIRY], e.g. AAPL, ES:FUT:CME:USD:202612"


@dataclass(frozen=True)
class WatchedSymbol:
    """A symbol whose quotes the exporter keeps (arrival mid prices for slippage)."""

    symbol: str
    sec_type: str = "STK"
    exchange: str = "SMART"
    currency: str = "USD"
    expiry: str = ""

    def contract(self) -> Contract:
        # The client library only where a contract is made: the simulator reads these settings
        # (and shares ib.state's windows) without ib_async installed.
        from trademon.ib.api import Contract

        return Contract(symbol=self.symbol, secType=self.sec_type, exchange=self.exchange,
                        currency=self.currency, lastTradeDateOrContractMonth=self.expiry)


@dataclass(frozen=True)
class IBConfig:
    host: str = "127.0.0.1"
    port: int = 4002
    client_id: int = 9110
    accounts: tuple[str, ...] = ()  # empty: every account TWS manages
    exposure_limits: Mapping[str, float] = field(default_factory=dict)  # account ("*" = any) -> limit
    symbols: tuple[WatchedSymbol, ...] = ()
    market_data_type: int = 1
    listen_host: str = LOOPBACK
    listen_port: int = 9110
    connect_timeout: float = 10.0
    heartbeat_interval: float = 10.0
    heartbeat_timeout: float = 5.0
    reconnect_min: float = 1.0
    reconnect_max: float = 60.0
    max_auto_symbols: int = 100
    # label bounds (labels from outside are bounded): see trademon.ib.bounds
    strategy_pattern: re.Pattern | None = None  # None: the strategy is the whole orderRef
    max_strategies: int = 50
    strategy_idle_seconds: float = 86_400.0
    max_farms: int = 50
    max_error_codes: int = 100
    # the gateway controller (ibg-controller) to poll: its base URL, or None
    controller_url: str | None = None
    controller_interval: float = 15.0
    controller_timeout: float = 5.0
    max_order_contracts: int = 200  # distinct contracts in ib_active_orders / ib_working_order_quantity
    max_subscriptions: int = 200  # distinct market data lines in the ib_market_data_* series
    # the trading day of the Order Efficiency Ratio ends at midnight here
    day_timezone: dt.tzinfo = field(default_factory=lambda: zoneinfo.ZoneInfo("America/New_York"))
    log_level: str = "info"

    def exposure_limit(self, account: str) -> float | None:
        return self.exposure_limits.get(account, self.exposure_limits.get("*"))

    def watches(self, account: str) -> bool:
        return not self.accounts or account in self.accounts


def _symbols(name: str, env) -> tuple[WatchedSymbol, ...]:
    out = []
    for item in env_list(name, env=env):
        parts = [p.strip() for p in item.split(":")]
        if not parts[0] or len(parts) not in (1, 4, 5) or any(not p for p in parts[:4]):
            raise ConfigError(name, item, "not a symbol specification", _SYMBOL_FORMAT)
        if len(parts) > 1 and parts[1].upper() not in _SECTYPES:
            raise ConfigError(name, item, f"unknown security type {parts[1]!r}", ", ".join(_SECTYPES))
        out.append(WatchedSymbol(parts[0].upper(), *(p.upper() for p in parts[1:])))
    return tuple(out)


def _exposure_limits(name: str, env) -> dict[str, float]:
    """``100000`` (every account) or ``DU111=100000,DU222=50000``."""
    allowed = "a positive number for every account, or ACCOUNT=NUMBER pairs separated by commas"
    limits: dict[str, float] = {}
    for item in env_list(name, env=env):
        account, sep, value = item.rpartition("=")
        account = account.strip() if sep else "*"
        if sep and not values.is_account_id(account):
            raise ConfigError(name, item, f"{account!r} is not an account id", allowed)
        try:
            limit = float(value)
        except ValueError:
            raise ConfigError(name, item, "not a number", allowed) from None
        if not limit > 0 or limit == float("inf"):
            raise ConfigError(name, item, "the limit must be a positive finite number", allowed)
        limits[account] = limit
    return limits


_PATTERN_ALLOWED = ("a Python regular expression with a named group (?P<strategy>...) that picks the strategy "
                    "out of the orderRef, e.g. ^(?P<strategy>[A-Za-z]+)- for momentum-123456")


def _strategy_pattern(name: str, env) -> re.Pattern | None:
    text = env_str(name, None, env)
    if text is None:
        return None
    try:
        pattern = re.compile(text)
    except re.error as e:
        raise ConfigError(name, text, f"not a regular expression ({e})", _PATTERN_ALLOWED) from None
    if "strategy" not in pattern.groupindex:
        raise ConfigError(name, text, "has no named group (?P<strategy>...)", _PATTERN_ALLOWED)
    return pattern


def _controller_url(name: str, env) -> str | None:
    url = env_str(name, None, env)
    if url is not None and not re.fullmatch(r"https?://[^\s/?#]+(/[^\s?#]*)?", url):
        raise ConfigError(name, url, "not an http(s) base URL",
                          "the gateway controller's base URL, e.g. http://ib-gateway:8080 (it serves /health and /ready)")
    return url


def _timezone(name: str, env) -> dt.tzinfo:
    text = env_str(name, "America/New_York", env)
    try:
        return zoneinfo.ZoneInfo(text)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        raise ConfigError(name, text, "not a time zone", "an IANA time zone name, e.g. America/New_York, Europe/Zurich") from None


def load(env: Mapping[str, str] | None = None) -> IBConfig:
    accounts = tuple(env_list("TRADEMON_IB_ACCOUNTS", env=env))
    for a in accounts:
        if not values.is_account_id(a):
            raise ConfigError("TRADEMON_IB_ACCOUNTS", a, "not an account id", f"IB account ids ({values.ACCOUNT_ID_ALLOWED}) separated by commas")
    cfg = IBConfig(
        host=env_str("TRADEMON_IB_HOST", "127.0.0.1", env),
        port=env_int("TRADEMON_IB_PORT", 4002, 1, 65535, env),
        client_id=env_int("TRADEMON_IB_CLIENT_ID", 9110, 0, 2**31 - 1, env),
        accounts=accounts,
        exposure_limits=_exposure_limits("TRADEMON_IB_EXPOSURE_LIMIT", env),
        symbols=_symbols("TRADEMON_IB_SYMBOLS", env),
        market_data_type=MARKET_DATA_TYPES[env_choice("TRADEMON_IB_MARKET_DATA_TYPE", "live", MARKET_DATA_TYPES, env)],
        listen_host=env_str("TRADEMON_IB_EXPORTER_HOST", LOOPBACK, env),
        listen_port=job_port(JOB, env),
        connect_timeout=env_float("TRADEMON_IB_CONNECT_TIMEOUT_SECONDS", 10.0, 0.1, 600, env),
        heartbeat_interval=env_float("TRADEMON_IB_HEARTBEAT_SECONDS", 10.0, 0.05, 3600, env),
        heartbeat_timeout=env_float("TRADEMON_IB_HEARTBEAT_TIMEOUT_SECONDS", 5.0, 0.05, 600, env),
        reconnect_min=env_float("TRADEMON_IB_RECONNECT_MIN_SECONDS", 1.0, 0.01, 3600, env),
        reconnect_max=env_float("TRADEMON_IB_RECONNECT_MAX_SECONDS", 60.0, 0.01, 86400, env),
        max_auto_symbols=env_int("TRADEMON_IB_MAX_AUTO_SYMBOLS", 100, 0, 10000, env),
        strategy_pattern=_strategy_pattern("TRADEMON_IB_STRATEGY_PATTERN", env),
        max_strategies=env_int("TRADEMON_IB_MAX_STRATEGIES", 50, 1, 10_000, env),
        strategy_idle_seconds=env_float("TRADEMON_IB_STRATEGY_IDLE_SECONDS", 86_400.0, 0.1, 366 * 86_400, env),
        max_farms=env_int("TRADEMON_IB_MAX_FARMS", 50, 1, 10_000, env),
        max_error_codes=env_int("TRADEMON_IB_MAX_ERROR_CODES", 100, 1, 10_000, env),
        controller_url=_controller_url("TRADEMON_IB_CONTROLLER_URL", env),
        controller_interval=env_float("TRADEMON_IB_CONTROLLER_INTERVAL_SECONDS", 15.0, 0.05, 3600, env),
        controller_timeout=env_float("TRADEMON_IB_CONTROLLER_TIMEOUT_SECONDS", 5.0, 0.05, 600, env),
        max_order_contracts=env_int("TRADEMON_IB_MAX_ORDER_CONTRACTS", 200, 1, 10_000, env),
        max_subscriptions=env_int("TRADEMON_IB_MAX_SUBSCRIPTIONS", 200, 1, 10_000, env),
        day_timezone=_timezone("TRADEMON_IB_DAY_TIMEZONE", env),
        log_level=env_choice("TRADEMON_LOG_LEVEL", "info", ("debug", "info", "warning", "error"), env),
    )
    if cfg.reconnect_max < cfg.reconnect_min:
        raise ConfigError("TRADEMON_IB_RECONNECT_MAX_SECONDS", cfg.reconnect_max,
                          "smaller than TRADEMON_IB_RECONNECT_MIN_SECONDS", f"a number >= {cfg.reconnect_min}")
    return cfg


PORT_VARIABLE = port_variable(JOB)
