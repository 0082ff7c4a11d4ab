"""``trademon ib-exporter``: serve the broker's truth on /metrics (port 9110 by default)."""

from __future__ import annotations

import argparse
import asyncio
import logging
import os

from .. import logs
from ..service import Listener, Probes, Runner, basics_app
from . import api, config
from .connection import Connection
from .state import BrokerState

log = logging.getLogger("trademon.ib")

# flag -> the variable it overrides (the variable names the setting in every error message)
FLAGS = {
    "--ib-host": "TRADEMON_IB_HOST",
    "--ib-port": "TRADEMON_IB_PORT",
    "--client-id": "TRADEMON_IB_CLIENT_ID",
    "--accounts": "TRADEMON_IB_ACCOUNTS",
    "--symbols": "TRADEMON_IB_SYMBOLS",
    "--exposure-limit": "TRADEMON_IB_EXPOSURE_LIMIT",
    "--host": "TRADEMON_IB_EXPORTER_HOST",
    "--port": config.PORT_VARIABLE,
}


def configure(parser: argparse.ArgumentParser) -> None:
    parser.epilog = "Every flag overrides the variable named in its help; see docs/ib-exporter.md."
    for flag, variable in FLAGS.items():
        parser.add_argument(flag, dest=variable, metavar="VALUE", help=f"overrides {variable}")


def settings(args: argparse.Namespace) -> config.IBConfig:
    env = dict(os.environ)
    env.update({v: str(getattr(args, v)) for v in FLAGS.values() if getattr(args, v, None) is not None})
    return config.load(env)


def scrape_app(state: BrokerState, probes: Probes):
    """basics_app, with the slippage windows aged just before each /metrics answer."""
    inner = basics_app(state.registry, probes)

    async def app(scope, receive, send):
        if scope["type"] == "http" and scope["path"] == "/metrics":
            state.before_scrape()
        await inner(scope, receive, send)

    return app


def main(args: argparse.Namespace) -> int:
    cfg = settings(args)  # a ConfigError here exits 2 with the message (trademon.cli)
    logs.setup("ib-exporter", cfg.log_level)
    # the client library logs every order and position at INFO; keep its warnings and errors.
    logging.getLogger(api.NAME).setLevel(logging.DEBUG if cfg.log_level == "debug" else logging.WARNING)
    state = BrokerState(cfg)
    probes = Probes({"ib_connected": lambda: state.connected})
    runner = Runner([Listener("metrics", scrape_app(state, probes), cfg.listen_host, cfg.listen_port,
                              config.PORT_VARIABLE)])
    runner.bind_all()  # a port in use is one clear error before anything connects

    async def ib_session():
        await Connection(cfg, state).run()

    runner.tasks.append(ib_session)
    log.info("ib-exporter starting", extra={"tws": f"{cfg.host}:{cfg.port}", "client_id": cfg.client_id,
                                            "listen": f"{cfg.listen_host}:{cfg.listen_port}",
                                            "library": api.NAME, "library_version": api.VERSION})
    asyncio.run(runner.serve())
    return 0
