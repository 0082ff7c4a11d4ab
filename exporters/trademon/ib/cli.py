"""``trademon ib-exporter``: serve the broker's truth on /metrics (port 9110 by default)."""

from __future__ import annotations

import argparse
import asyncio
import json
import logging

from trademon.runtime import logs
from trademon.settings.env import add_env_flags, environ_with_flags
from trademon.runtime.service import Listener, Probes, Runner, Task, basics_app, send_text
from trademon.ib import api, config
from trademon.ib.connection import Connection
from trademon.ib.controller import ControllerPoller
from trademon.ib.state import BrokerState
from trademon.ib.week import GatewayWeek

log = logging.getLogger("trademon.ib")

# flag -> (the variable it overrides, what it sets); the variable names the setting in every error message
FLAGS = {
    "--ib-host": ("TRADEMON_IB_HOST", "TWS / IB Gateway host"),
    "--ib-port": ("TRADEMON_IB_PORT", "TWS / IB Gateway API port (4001/4002, 7496/7497)"),
    "--client-id": ("TRADEMON_IB_CLIENT_ID", "the exporter's own API client id"),
    "--accounts": ("TRADEMON_IB_ACCOUNTS", "comma list of accounts (default: all managed)"),
    "--symbols": ("TRADEMON_IB_SYMBOLS", "comma list of symbols to keep quotes for"),
    "--exposure-limit": ("TRADEMON_IB_EXPOSURE_LIMIT", "gross exposure limit per account"),
    "--strategy-pattern": ("TRADEMON_IB_STRATEGY_PATTERN",
                           "regular expression with a named group (?P<strategy>...) applied to orderRef"),
    "--max-strategies": ("TRADEMON_IB_MAX_STRATEGIES", "distinct strategy labels at most; the rest is __overflow__"),
    "--strategy-idle-seconds": ("TRADEMON_IB_STRATEGY_IDLE_SECONDS",
                                "a strategy's series go after this long without activity"),
    "--controller-url": ("TRADEMON_IB_CONTROLLER_URL", "the gateway controller (ibg-controller) to poll: /health and /ready"),
    "--host": ("TRADEMON_IB_EXPORTER_HOST", "address /metrics listens on"),
    "--port": (config.PORT_VARIABLE, "port /metrics listens on"),
}


def configure(parser: argparse.ArgumentParser) -> None:
    parser.epilog = "Every flag overrides the variable named in its help; see docs/ib-exporter.md."
    add_env_flags(parser, FLAGS)


def settings(args: argparse.Namespace) -> config.IBConfig:
    return config.load(environ_with_flags(args, FLAGS))


def scrape_app(state: BrokerState, probes: Probes, week: GatewayWeek | None = None):
    """basics_app, with the slippage windows aged and the gateway's week set just before each
    /metrics answer, and /status: the session and whether other clients' orders are visible, as JSON."""
    inner = basics_app(state.registry, probes)

    async def app(scope, receive, send):
        if scope["type"] == "http" and scope["path"] == "/metrics":
            state.before_scrape()
            if week is not None:
                week.update()
        if scope["type"] == "http" and scope["path"] == "/status":
            body = json.dumps(state.status(), indent=1).encode() + b"\n"
            return await send_text(send, 200, body, b"application/json")
        await inner(scope, receive, send)

    return app


def main(args: argparse.Namespace) -> int:
    cfg = settings(args)  # a ConfigError here exits 2 with the message (trademon.cli)
    logs.setup("ib-exporter", cfg.log_level)
    # the client library logs every order and position at INFO; keep its warnings and errors.
    logging.getLogger(api.NAME).setLevel(logging.DEBUG if cfg.log_level == "debug" else logging.WARNING)
    state = BrokerState(cfg)
    probes = Probes({"ib_connected": lambda: state.connected})
    controller = (ControllerPoller(cfg.controller_url, cfg.controller_interval, cfg.controller_timeout, state.metrics)
                  if cfg.controller_url else None)
    week = GatewayWeek(state.metrics, lambda: state.connected, lambda: state.down_cause,
                       controller.checks if controller else dict)
    runner = Runner([Listener("metrics", scrape_app(state, probes, week), cfg.listen_host, cfg.listen_port,
                              config.PORT_VARIABLE)])
    runner.bind_all()  # a port in use is one clear error before anything connects

    async def ib_session():
        await Connection(cfg, state).run()

    runner.tasks.append(Task(ib_session, "ib connection"))  # supervised: if it dies, the exporter exits 1
    if controller is not None:
        runner.tasks.append(Task(controller.run, "gateway controller poll"))
    log.info("ib-exporter starting", extra={"tws": f"{cfg.host}:{cfg.port}", "client_id": cfg.client_id,
                                            "listen": f"{cfg.listen_host}:{cfg.listen_port}",
                                            "library": api.NAME, "library_version": api.VERSION})
    asyncio.run(runner.serve())
    return 0
