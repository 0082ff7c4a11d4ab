"""The synthetic checks' configuration, from environment variables, with clear errors."""

from __future__ import annotations

from dataclasses import dataclass, field
from collections.abc import Mapping
from urllib.parse import urlsplit

from trademon import contract
from trademon.runtime.logs import register_secret
from trademon.settings.env import LOOPBACK, ConfigError, env_choice, env_float, env_list, env_str, job_port, url
from trademon.settings import values
from trademon.settings.values import URL_ALLOWED

PREFIX = "TRADEMON_SYNTHETIC_"
CHECKS = ("circuit_breaker", "pipeline", "health", "watchdog")
# check -> (interval, timeout) in seconds. The circuit-breaker check waits for a scrape
# (15 s), a rule evaluation (30 s) and Alertmanager, so it gets minutes, not seconds.
TIMING_DEFAULTS = {
    "circuit_breaker": (300.0, 180.0),
    "pipeline": (60.0, 30.0),
    "health": (30.0, 5.0),
    "watchdog": (60.0, 10.0),
}
OFF = "off"
# Health endpoint of each job; a job not listed answers /healthz (every trademon process,
# and the trader's services per docs/synthetic-checks.md).
HEALTH_PATHS = {
    "prometheus": "/-/healthy",
    "alertmanager": "/-/healthy",
    "grafana": "/api/health",
    "loki": "/ready",
    "alloy": "/-/ready",
    "promtail": "/ready",
}
# Checked by default: what runs natively as well as in Docker (Grafana, Loki and Alloy
# run in Docker only; docker-compose.yml lists them in TRADEMON_SYNTHETIC_HEALTH_TARGETS).
DEFAULT_HEALTH_JOBS = ("automatictrader-api", "marketdata-stream", "position-manager", "ib-exporter",
                       "alert-sink", "prometheus", "alertmanager")
# The alerts the checks look for in Alertmanager (monitoring/rules; a test keeps them in line).
CIRCUIT_BREAKER_ALERT = "CircuitBreakerTripped"
WATCHDOG_ALERT = "Watchdog"
SYNTHETIC_PREFIX = "synthetic"  # the API's test hooks and dry-run strategies start with this


@dataclass(frozen=True)
class Timing:
    interval: float
    timeout: float


@dataclass(frozen=True)
class Settings:
    host: str
    port: int
    checks: tuple[str, ...]
    timing: dict[str, Timing]
    api_url: str | None
    position_manager_url: str | None
    prometheus_url: str | None
    alertmanager_url: str | None
    health_targets: dict[str, str] = field(default_factory=dict)
    breaker: str = "synthetic"
    pipeline_strategy: str = "synthetic-pipeline"
    symbol: str = "SPY"
    poll_interval: float = 1.0
    log_level: str = "info"
    # Seconds after start during which a check that cannot connect yet is not run rather than
    # failed (the services start beside it); see runner.py.
    startup_grace: float = 300.0

    @property
    def alert_step(self) -> bool:
        """The circuit-breaker check also waits for its alert when Alertmanager is configured."""
        return self.alertmanager_url is not None


def _url(name: str, default: str | None, env: Mapping[str, str] | None, allow_off: bool = True) -> str | None:
    v = env_str(name, default, env)
    if v is None or (allow_off and v.lower() == OFF):
        return None
    checked = url(name, v, URL_ALLOWED + (f", or {OFF} to leave it out" if allow_off else ""))
    _hide_password(v)
    return checked


def _hide_password(url: str) -> None:
    """A URL may carry basic-auth credentials (http://user:pass@host): never log the password."""
    register_secret(urlsplit(url).password)


def default_health_targets(host: str = "127.0.0.1", env: Mapping[str, str] | None = None) -> dict[str, str]:
    return {job: f"http://{host}:{job_port(job, env)}{HEALTH_PATHS.get(job, '/healthz')}" for job in DEFAULT_HEALTH_JOBS}


def _health_targets(env: Mapping[str, str] | None) -> dict[str, str]:
    name = PREFIX + "HEALTH_TARGETS"
    raw = env_list(name, env=env)
    if not raw:
        return default_health_targets(env=env)
    out: dict[str, str] = {}
    for item in raw:
        target, sep, url = item.partition("=")
        target, url = target.strip(), url.strip()
        if not sep or not target or not values.is_http_url(url):
            raise ConfigError(name, item, "not a name=URL pair",
                              "a comma list of name=http://host:port/path, e.g. prometheus=http://prometheus:9090/-/healthy")
        if target in out:
            raise ConfigError(name, item, f"the name {target!r} appears twice", "each service once")
        _hide_password(url)
        out[target] = url
    return out


def _synthetic_name(name: str, default: str, env) -> str:
    v = env_str(name, default, env)
    if not v.startswith(SYNTHETIC_PREFIX):
        raise ConfigError(name, v, f"does not start with {SYNTHETIC_PREFIX!r}",
                          f"a name starting with {SYNTHETIC_PREFIX!r}: the API's test hooks only touch those, and their intents never reach the broker")
    return v


def load(env: Mapping[str, str] | None = None) -> Settings:
    checks = tuple(env_list(PREFIX + "CHECKS", CHECKS, choices=CHECKS, env=env))
    if not checks:
        raise ConfigError(PREFIX + "CHECKS", "", "no check chosen", ", ".join(CHECKS))
    timing = {}
    for check, (interval_d, timeout_d) in TIMING_DEFAULTS.items():
        var = PREFIX + check.upper()
        interval = env_float(var + "_INTERVAL", interval_d, 0.1, 86400.0, env)
        timeout = env_float(var + "_TIMEOUT", timeout_d, 0.1, 86400.0, env)
        if timeout > interval:
            raise ConfigError(var + "_TIMEOUT", f"{timeout:g}", f"longer than the check's interval ({var}_INTERVAL={interval:g})",
                              "a timeout no longer than the interval, in seconds")
        timing[check] = Timing(interval, timeout)
    s = Settings(
        host=env_str(PREFIX + "HOST", LOOPBACK, env),
        port=job_port("synthetic", env),
        checks=checks,
        timing=timing,
        api_url=_url(PREFIX + "API_URL", f"http://127.0.0.1:{contract.JOBS['automatictrader-api'].port}", env, allow_off=False),
        position_manager_url=_url(PREFIX + "POSITION_MANAGER_URL", f"http://127.0.0.1:{contract.JOBS['position-manager'].port}", env),
        prometheus_url=_url(PREFIX + "PROMETHEUS_URL", f"http://127.0.0.1:{contract.JOBS['prometheus'].port}", env),
        alertmanager_url=_url(PREFIX + "ALERTMANAGER_URL", f"http://127.0.0.1:{contract.JOBS['alertmanager'].port}", env),
        health_targets=_health_targets(env),
        breaker=_synthetic_name(PREFIX + "BREAKER", "synthetic", env),
        pipeline_strategy=_synthetic_name(PREFIX + "PIPELINE_STRATEGY", "synthetic-pipeline", env),
        symbol=env_str(PREFIX + "SYMBOL", "SPY", env),
        poll_interval=env_float(PREFIX + "POLL_INTERVAL", 1.0, 0.01, 60.0, env),
        startup_grace=env_float(PREFIX + "STARTUP_GRACE", 300.0, 0.0, 86400.0, env),
        log_level=env_choice("TRADEMON_LOG_LEVEL", "info", ["debug", "info", "warning", "error"], env),
    )
    if s.breaker == s.pipeline_strategy:
        raise ConfigError(PREFIX + "PIPELINE_STRATEGY", s.pipeline_strategy,
                          f"the same as {PREFIX}BREAKER, so the circuit-breaker check would block the pipeline check",
                          "another name starting with 'synthetic'")
    if "circuit_breaker" in checks and s.prometheus_url is None and s.position_manager_url is None:
        raise ConfigError(PREFIX + "POSITION_MANAGER_URL", OFF,
                          f"the circuit-breaker check needs circuit_breaker_open from Prometheus or position-manager, and {PREFIX}PROMETHEUS_URL is off too",
                          "a URL for one of them")
    return s

