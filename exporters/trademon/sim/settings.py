"""The simulator's configuration: environment variables, which the command-line flags override."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from collections.abc import Mapping

from trademon.settings import values
from trademon.settings.env import LOOPBACK, ConfigError, env_choice, env_float, env_int, env_list, env_port, env_str, job_port, port_variable
from trademon.contract import IB, MD, PM, API, SIM_CONTROL_PORT
from trademon.sim.scenarios import SCENARIOS
from trademon.sim.world import Settings

SIM_JOBS = (API, MD, PM, IB)
DEFAULT_HOST = LOOPBACK
DEFAULT_SPEED = 1.0
CONTROL_PORT_VARIABLE = "TRADEMON_SIM_CONTROL_PORT"
_NAME = re.compile(r"^[A-Za-z0-9_.:-]{1,64}$")


@dataclass
class SimConfig:
    host: str
    ports: dict[str, int]  # job -> port, plus "control"
    speed: float
    scenarios: list[str]
    world: Settings
    log_level: str = "info"
    loss_limit_source: str = "default"
    prometheus_url: str | None = None  # where the loss limit in force is read (sim/limits.py), unless set here


def _names(variable: str, default: list[str], env: Mapping[str, str], what: str, reserved: str | None = None) -> list[str]:
    items = env_list(variable, default, env=env)
    allowed = f"a comma-separated list of {what} (letters, digits, _ . : -)"
    if not items:
        raise ConfigError(variable, env.get(variable), "empty list", allowed)
    bad = [x for x in items if not _NAME.match(x) or (reserved and x.startswith(reserved))]
    if bad:
        extra = f", not starting with {reserved!r} (reserved for synthetic checks)" if reserved else ""
        raise ConfigError(variable, env.get(variable), f"bad name(s) {', '.join(bad)}", allowed + extra)
    if len(set(items)) != len(items):
        raise ConfigError(variable, env.get(variable), "a name appears twice", allowed + ", each once")
    return items


def _accounts(env: Mapping[str, str], default: list[str]) -> list[str]:
    """The simulated accounts: the ids the real exporter and monitoring/config.yml take."""
    variable = "TRADEMON_SIM_ACCOUNTS"
    accounts = _names(variable, default, env, "account ids")
    bad = [a for a in accounts if not values.is_account_id(a)]
    if bad:
        raise ConfigError(variable, env.get(variable), f"not account id(s) {', '.join(bad)}",
                          f"IB account ids ({values.ACCOUNT_ID_ALLOWED}) separated by commas")
    return accounts


def daily_loss_limit(env: Mapping[str, str]) -> tuple[float, str]:
    """The limit to start with and where it came from (for the start-up log line): the
    variable, else the world's default until Prometheus's threshold series is read."""
    v = env_float("TRADEMON_SIM_DAILY_LOSS_LIMIT", float("nan"), None, -0.01, env=env)
    if v == v:
        return v, "TRADEMON_SIM_DAILY_LOSS_LIMIT"
    if env_str("TRADEMON_SIM_PROMETHEUS_URL", env=env):
        return Settings().daily_loss_limit, "Prometheus (trademon:threshold:daily_loss_limit), the default until it answers"
    return Settings().daily_loss_limit, "default (set TRADEMON_SIM_PROMETHEUS_URL to follow monitoring/config.yml, or TRADEMON_SIM_DAILY_LOSS_LIMIT)"


def load(env: Mapping[str, str] | None = None) -> SimConfig:
    env = dict(os.environ if env is None else env)
    defaults = Settings()
    loss_limit, loss_limit_source = daily_loss_limit(env)
    ports = {job: job_port(job, env) for job in SIM_JOBS}
    ports["control"] = env_port(CONTROL_PORT_VARIABLE, SIM_CONTROL_PORT, env)
    seen: dict[int, str] = {}
    for name, port in ports.items():
        if port in seen:
            var = CONTROL_PORT_VARIABLE if name == "control" else port_variable(name)
            raise ConfigError(var, str(port), f"the same port as {seen[port]}", "a port no other simulator job uses")
        seen[port] = name
    world = Settings(
        seed=env_int("TRADEMON_SIM_SEED", 1, env=env),
        accounts=_accounts(env, defaults.accounts),
        symbols=_names("TRADEMON_SIM_SYMBOLS", defaults.symbols, env, "symbols"),
        strategies=_names("TRADEMON_SIM_STRATEGIES", defaults.strategies, env, "strategy names", reserved="synthetic"),
        daily_loss_limit=loss_limit,
        exposure_limit=env_float("TRADEMON_SIM_EXPOSURE_LIMIT", defaults.exposure_limit, 1.0, None, env=env),
    )
    return SimConfig(
        host=env_str("TRADEMON_SIM_HOST", DEFAULT_HOST, env=env),
        ports=ports,
        speed=env_float("TRADEMON_SIM_SPEED", DEFAULT_SPEED, 0.01, 1000.0, env=env),
        scenarios=env_list("TRADEMON_SIM_SCENARIOS", (), choices=SCENARIOS, env=env),
        world=world,
        log_level=env_choice("TRADEMON_LOG_LEVEL", "info", ("debug", "info", "warning", "error"), env),
        loss_limit_source=loss_limit_source,
        # followed only where no variable fixes the limit
        prometheus_url=None if loss_limit_source == "TRADEMON_SIM_DAILY_LOSS_LIMIT" else env_str("TRADEMON_SIM_PROMETHEUS_URL", env=env),
    )


def port_env_variable(name: str) -> str:
    return CONTROL_PORT_VARIABLE if name == "control" else port_variable(name)
