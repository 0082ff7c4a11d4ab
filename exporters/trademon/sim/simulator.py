"""The simulator wired together: the world, the services in front of it (one port per job,
plus the control endpoint) and the tasks that move it."""

from __future__ import annotations

import asyncio
import ipaddress
import logging

from prometheus_client import CollectorRegistry

from trademon.settings.env import LOOPBACK
from trademon.runtime.service import Listener, Probes, Runner, Task, basics_app
from trademon.sim.api import api_port_app
from trademon.sim.clock import SimClock
from trademon.sim.control import build_control
from trademon.sim.exporters import IBExporter, MarketDataExporter, PositionManagerExporter, TradingRecordExporter
from trademon.sim.loadgen import LoadGenerator
from trademon.sim.scenarios import switch
from trademon.sim.settings import API, IB, MD, PM, SimConfig, port_env_variable
from trademon.sim.workers import make_workers
from trademon.sim.world import World

log = logging.getLogger("trademon.sim")

TICK_REAL_S = 0.1  # how often the world catches up with the clock and the metrics follow


def _reachable(host: str) -> str:
    """Where the load generator reaches the API: loopback when the API listens on every address."""
    try:
        unspecified = not host or ipaddress.ip_address(host).is_unspecified
    except ValueError:  # a host name
        unspecified = False
    return LOOPBACK if unspecified else host


class Simulator:
    """The world, the services in front of it and the tasks that move it, wired together."""

    def __init__(self, cfg: SimConfig):
        self.cfg = cfg
        self.clock = SimClock(cfg.speed)
        self.world = World(cfg.world, self.clock.now())
        for name in cfg.scenarios:
            switch(self.world, name, True)
        api_app, self.ins = api_port_app(self.world, self.clock)
        self.md = MarketDataExporter(self.world, self.clock)
        self.pm = PositionManagerExporter(self.world)
        self.ib = IBExporter(self.world, self.clock)
        self.trading = TradingRecordExporter(self.world, self.ins.metrics)
        self.workers = make_workers(self.world, self.clock, self.ins, cfg.world.seed)
        api_host = _reachable(cfg.host)
        self.loadgen = LoadGenerator(self.world, self.clock, f"http://{api_host}:{cfg.ports[API]}", cfg.world.seed)
        w = self.world
        apps = {
            API: api_app,
            MD: basics_app(self.md.m.registry, Probes({"feed": lambda: True})),
            PM: basics_app(self.pm.m.registry),
            IB: basics_app(self.ib.m.registry, Probes({"ib_connected": lambda: w.ib_connected})),
            "control": basics_app(CollectorRegistry(), inner=build_control(self.world, self.clock)),
        }
        # With TRADEMON_API_TOKEN set, the scenario switch and the API's test hooks need it.
        token_paths = {"control": ("/scenarios", "/state"), API: ("/test",)}
        listeners = [Listener(name, app, cfg.host, cfg.ports[name], port_env_variable(name), token_paths.get(name, ()))
                     for name, app in apps.items()]
        # Supervised by the Runner: a task that dies ends the process (not ready, exit 1).
        tasks = [Task(self._tick, "tick"), Task(self.loadgen.run, "loadgen"),
                 *(Task(wk.run, f"worker {wk.name}") for wk in self.workers)]
        if cfg.prometheus_url:  # the loss limit in force (a reload of monitoring/config.yml moves it)
            from trademon.sim.limits import follow

            url = cfg.prometheus_url.rstrip("/")
            tasks.append(Task(lambda: follow(self.world, url), "loss limit"))
        self.runner = Runner(listeners, tasks)
        self.world.on_change = self.refresh  # a switch or a breaker shows in the very next scrape
        self.refresh()

    def refresh(self) -> None:
        for wk in self.workers:
            self.ins.set_worker_lag(wk.name, wk.lag())
        self.md.refresh()
        self.pm.refresh()
        self.ib.refresh()
        self.trading.refresh()

    async def _tick(self) -> None:
        while True:
            before = self.world.t
            self.world.advance_to(self.clock.now())
            if self.world.t != before:
                self.refresh()
            await asyncio.sleep(TICK_REAL_S)
