"""``trademon am-config``: render Alertmanager's config once, or keep it current (``--watch``).

The command's only job is choosing between the two; rendering is trademon.alertmanager.amconfig,
the watch loop trademon.alertmanager.amwatch (which uses the renderer, never the other way).
"""

from __future__ import annotations

import logging
import os
import sys
from pathlib import Path

import yaml

from trademon.alertmanager import amwatch
from trademon.alertmanager.amconfig import DEFAULT_OUT, default_source, log, render
from trademon.runtime import logs
from trademon.settings.env import env_choice


def configure(parser) -> None:
    parser.add_argument("--source", default=os.environ.get("TRADEMON_AM_SOURCE", default_source()),
                        help="the project's alertmanager/ directory (env TRADEMON_AM_SOURCE)")
    parser.add_argument("--out", default=os.environ.get("TRADEMON_AM_OUT", DEFAULT_OUT),
                        help=f"directory to write the rendered config into (env TRADEMON_AM_OUT, default {DEFAULT_OUT}); "
                             "Alertmanager must see it at the same path")
    parser.add_argument("--alert-sink-url", default=os.environ.get("TRADEMON_AM_ALERT_SINK_URL"),
                        help="replace the alert-sink webhook URL (default: keep http://alert-sink:9112/alerts)")
    parser.add_argument("--bot-url", default=os.environ.get("TRADEMON_AM_BOT_URL"),
                        help="replace `trademon bot`'s webhook URL (default: keep http://trademon-bot:9114/alerts)")
    parser.add_argument("--watch", action="store_true",
                        help="keep running: render again every TRADEMON_AM_REFRESH_SECONDS (default 86400) so the market "
                             "calendar never runs out, reload Alertmanager (TRADEMON_AM_RELOAD_URL) on change, and serve "
                             "/metrics (market open, calendar horizon, IB maintenance windows) on TRADEMON_ALERTMANAGER_CONFIG_PORT")


def main(args) -> int:
    logs.setup("am-config", env_choice("TRADEMON_LOG_LEVEL", "info", ["debug", "info", "warning", "error"]))
    if getattr(args, "watch", False):
        return amwatch.run(args)
    path = render(Path(args.source), Path(args.out), os.environ, args.alert_sink_url, bot_url=args.bot_url)
    log.info("alertmanager config rendered", extra={"path": str(path)})
    if log.isEnabledFor(logging.DEBUG):  # what Alertmanager will run; secrets are *_file paths in it
        cfg = yaml.safe_load(path.read_text(encoding="utf-8"))
        for r in cfg.get("receivers", []):
            log.debug("receiver", extra={"receiver": r["name"], "integrations": {k: len(v) for k, v in r.items() if k.endswith("_configs")}})
        log.debug("rendered config", extra={"config": cfg})
    print(path, file=sys.stderr)
    return 0
