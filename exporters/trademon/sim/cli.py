"""``trademon sim``: the demo simulator (see the package doc)."""

from __future__ import annotations

import argparse
import asyncio
import logging
import os

from prometheus_client import CollectorRegistry

from .. import logs
from ..contract import JOBS, SIM_CONTROL_PORT
from ..service import Listener, Probes, Runner, basics_app
from . import settings as sim_settings
from .api import api_port_app
from .clock import SimClock
from .control import build_control
from .exporters import IBExporter, MarketDataExporter, PositionManagerExporter
from .loadgen import LoadGenerator
from .scenarios import SCENARIOS, switch
from .settings import SIM_JOBS, SimConfig, port_env_variable
from .workers import make_workers
from .world import Settings, World

log = logging.getLogger("trademon.sim")

TICK_REAL_S = 0.1  # how often the world catches up with the clock and the metrics follow

_D = Settings()
# flag dest -> (environment variable it overrides, what it sets)
FLAGS = {
    "host": ("TRADEMON_SIM_HOST", "address to listen on (default 0.0.0.0)"),
    "seed": ("TRADEMON_SIM_SEED", f"seed of the world: same seed, same market (default {_D.seed})"),
    "speed": ("TRADEMON_SIM_SPEED", "simulated seconds per real second (default 1)"),
    "scenarios": ("TRADEMON_SIM_SCENARIOS", "comma list of scenarios active at start"),
    "accounts": ("TRADEMON_SIM_ACCOUNTS", f"comma list of account ids (default {','.join(_D.accounts)})"),
    "symbols": ("TRADEMON_SIM_SYMBOLS", f"comma list of symbols (default {','.join(_D.symbols)})"),
    "strategies": ("TRADEMON_SIM_STRATEGIES", f"comma list of strategies (default {','.join(_D.strategies)})"),
    "daily_loss_limit": ("TRADEMON_SIM_DAILY_LOSS_LIMIT", "negative; default: daily_loss_limit of prometheus/thresholds.yml"),
    "exposure_limit": ("TRADEMON_SIM_EXPOSURE_LIMIT", f"gross exposure limit per account (default {_D.exposure_limit:g})"),
    "log_level": ("TRADEMON_LOG_LEVEL", "debug, info, warning or error (default info)"),
    **{f"{name.replace('-', '_')}_port": (port_env_variable(name), "port" + (f" (default {JOBS[name].port})" if name in JOBS else f" (default {SIM_CONTROL_PORT})"))
       for name in (*SIM_JOBS, "control")},
}


def configure(parser: argparse.ArgumentParser) -> None:
    parser.epilog = "Scenarios: " + ", ".join(SCENARIOS) + ". Every flag overrides the environment variable named in its help."
    for dest, (var, help_) in FLAGS.items():
        parser.add_argument("--" + dest.replace("_", "-"), dest=dest, default=None, metavar="VALUE", help=f"{help_}; overrides {var}")


def _env(args: argparse.Namespace) -> dict[str, str]:
    env = dict(os.environ)
    for dest, (var, _) in FLAGS.items():
        v = getattr(args, dest, None)
        if v is not None:
            env[var] = str(v)
    return env


def main(args: argparse.Namespace) -> int:
    cfg = sim_settings.load(_env(args))
    logs.setup("sim", cfg.log_level)
    logging.getLogger("httpx").setLevel(logging.WARNING)  # one line per load-generator request is noise
    sim = Simulator(cfg)
    sim.runner.bind_all()  # a port in use is one clear error before anything starts
    log.info("simulator starting", extra={"ports": cfg.ports, "seed": cfg.world.seed, "speed": cfg.speed,
                                          "scenarios": cfg.scenarios, "daily_loss_limit": cfg.world.daily_loss_limit,
                                          "daily_loss_limit_from": cfg.loss_limit_source})
    asyncio.run(sim.runner.serve())
    return 1 if sim.crashed else 0


class Simulator:
    """The world, the services in front of it and the tasks that move it, wired together."""

    def __init__(self, cfg: SimConfig):
        self.cfg = cfg
        self.clock = SimClock(cfg.speed)
        self.world = World(cfg.world, self.clock.now())
        for name in cfg.scenarios:
            switch(self.world, name, True)
        self.crashed = False
        api_app, self.ins = api_port_app(self.world, self.clock)
        self.md = MarketDataExporter(self.world, self.clock)
        self.pm = PositionManagerExporter(self.world)
        self.ib = IBExporter(self.world, self.clock)
        self.workers = make_workers(self.world, self.clock, self.ins, cfg.world.seed)
        api_host = "127.0.0.1" if cfg.host in ("0.0.0.0", "::", "") else cfg.host
        self.loadgen = LoadGenerator(self.world, self.clock, f"http://{api_host}:{cfg.ports[sim_settings.API]}", cfg.world.seed)
        w = self.world
        apps = {
            sim_settings.API: api_app,
            sim_settings.MD: basics_app(self.md.m.registry, Probes({"feed": lambda: True})),
            sim_settings.PM: basics_app(self.pm.m.registry),
            sim_settings.IB: basics_app(self.ib.m.registry, Probes({"ib_connected": lambda: w.ib_connected})),
            "control": basics_app(CollectorRegistry(), inner=build_control(self.world, self.clock)),
        }
        listeners = [Listener(name, app, cfg.host, cfg.ports[name], port_env_variable(name)) for name, app in apps.items()]
        tasks = [self._tick, self.loadgen.run, *(wk.run for wk in self.workers)]
        self.runner = Runner(listeners, [self._guard(t) for t in tasks])
        self.world.on_change = self.refresh  # a switch or a breaker shows in the very next scrape
        self.refresh()

    def refresh(self) -> None:
        for wk in self.workers:
            self.ins.set_worker_lag(wk.name, wk.lag())
        self.md.refresh()
        self.pm.refresh()
        self.ib.refresh()

    async def _tick(self) -> None:
        while True:
            self.world.advance_to(self.clock.now())
            self.refresh()
            await asyncio.sleep(TICK_REAL_S)

    def _guard(self, fn):
        async def guarded():
            try:
                await fn()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("simulator task failed; stopping", extra={"task": getattr(fn, "__qualname__", str(fn))})
                self.crashed = True
                self.runner.stop()
        guarded.__name__ = getattr(fn, "__qualname__", "task")
        return guarded
