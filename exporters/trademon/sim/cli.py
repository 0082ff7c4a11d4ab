"""``trademon sim``: the demo simulator (see the package doc)."""

from __future__ import annotations

import argparse
import asyncio
import logging

from trademon.runtime import logs
from trademon.settings.env import add_env_flags, environ_with_flags
from trademon.contract import JOBS, SIM_CONTROL_PORT
from trademon.sim import settings as sim_settings
from trademon.sim.scenarios import SCENARIOS
from trademon.sim.settings import DEFAULT_HOST, DEFAULT_SPEED, SIM_JOBS, port_env_variable
from trademon.sim.simulator import Simulator
from trademon.sim.world import Settings

log = logging.getLogger("trademon.sim")

_D = Settings()
# flag -> (environment variable it overrides, what it sets)
FLAGS = {
    "--host": ("TRADEMON_SIM_HOST", f"address to listen on (default {DEFAULT_HOST})"),
    "--seed": ("TRADEMON_SIM_SEED", f"seed of the world: same seed, same market (default {_D.seed})"),
    "--speed": ("TRADEMON_SIM_SPEED", f"simulated seconds per real second (default {DEFAULT_SPEED:g})"),
    "--scenarios": ("TRADEMON_SIM_SCENARIOS", "comma list of scenarios active at start"),
    "--accounts": ("TRADEMON_SIM_ACCOUNTS", f"comma list of account ids (default {','.join(_D.accounts)})"),
    "--symbols": ("TRADEMON_SIM_SYMBOLS", f"comma list of symbols (default {','.join(_D.symbols)})"),
    "--strategies": ("TRADEMON_SIM_STRATEGIES", f"comma list of strategies (default {','.join(_D.strategies)})"),
    "--daily-loss-limit": ("TRADEMON_SIM_DAILY_LOSS_LIMIT",
                           "negative; default: Prometheus's trademon:threshold:daily_loss_limit with TRADEMON_SIM_PROMETHEUS_URL "
                           f"(followed as it is reloaded), else {_D.daily_loss_limit:g}, the shipped config's"),
    "--exposure-limit": ("TRADEMON_SIM_EXPOSURE_LIMIT", f"gross exposure limit per account (default {_D.exposure_limit:g})"),
    "--log-level": ("TRADEMON_LOG_LEVEL", "debug, info, warning or error (default info)"),
    **{f"--{name}-port": (port_env_variable(name), "port" + (f" (default {JOBS[name].port})" if name in JOBS else f" (default {SIM_CONTROL_PORT})"))
       for name in (*SIM_JOBS, "control")},
}


def configure(parser: argparse.ArgumentParser) -> None:
    parser.epilog = "Scenarios: " + ", ".join(SCENARIOS) + ". Every flag overrides the environment variable named in its help."
    add_env_flags(parser, FLAGS)


def main(args: argparse.Namespace) -> int:
    cfg = sim_settings.load(environ_with_flags(args, FLAGS))
    logs.setup("sim", cfg.log_level)
    logging.getLogger("httpx").setLevel(logging.WARNING)  # one line per load-generator request is noise
    sim = Simulator(cfg)
    sim.runner.bind_all()  # a port in use is one clear error before anything starts
    log.info("simulator starting", extra={"ports": cfg.ports, "seed": cfg.world.seed, "speed": cfg.speed,
                                          "scenarios": cfg.scenarios, "daily_loss_limit": cfg.world.daily_loss_limit,
                                          "daily_loss_limit_from": cfg.loss_limit_source})
    asyncio.run(sim.runner.serve())  # a task that dies raises TaskDied: exit 1
    return 0
