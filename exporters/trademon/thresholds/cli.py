"""``trademon thresholds``: render monitoring/config.yml's thresholds into Prometheus rules once,
keep them current (``--watch``, the stack's service), or ask the running service to render now
and say whether the config went live (``--reload``)."""

from __future__ import annotations

import os
import sys
from pathlib import Path

from trademon.runtime import logs
from trademon.settings import paths
from trademon.settings.env import env_choice, job_port

DEFAULT_OUT = "var/thresholds"


def configure(parser) -> None:
    parser.add_argument("--root", default=os.environ.get("TRADEMON_THRESHOLDS_ROOT", str(paths.config_root())),
                        help="the folder holding monitoring/config.yml and monitoring/rules/ (env TRADEMON_THRESHOLDS_ROOT; "
                             "default: the checkout, or /etc/trademon in the image)")
    parser.add_argument("--out", default=os.environ.get("TRADEMON_THRESHOLDS_OUT", DEFAULT_OUT),
                        help=f"folder Prometheus loads the threshold rules from (env TRADEMON_THRESHOLDS_OUT, default {DEFAULT_OUT})")
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--watch", action="store_true",
                      help="keep running: render on every change of monitoring/config.yml, reload Prometheus "
                           "(TRADEMON_THRESHOLDS_RELOAD_URL), serve /metrics and POST /reload on TRADEMON_THRESHOLDS_PORT")
    mode.add_argument("--reload", action="store_true",
                      help="ask the running `trademon thresholds --watch` to render now; prints whether the config is live "
                           "(exit 0) or refused and why (exit 1)")


def ask_reload(env) -> int:
    from trademon.runtime import http
    from trademon.settings import webconfig

    # The service's own TRADEMON_WEB_CONFIG_FILE and TRADEMON_API_TOKEN(_FILE), read as it reads them.
    web = webconfig.load(env)
    to = webconfig.caller(web)
    url = f"{to.scheme}://127.0.0.1:{job_port('thresholds', env)}/reload"
    try:
        r = http.request("POST", url, timeout=60, headers=to.headers, verify=to.verify)
    except http.Error as e:
        print(f"trademon thresholds: no answer from {url} ({e}); is the stack running?", file=sys.stderr)
        return 2
    if r.status_code == 401:
        print(f"trademon thresholds: {url} refused (401) " + (
            "the token sent: set TRADEMON_API_TOKEN (or TRADEMON_API_TOKEN_FILE) to the thresholds service's token" if web.token else
            "a request without the bearer token: set TRADEMON_API_TOKEN (or TRADEMON_API_TOKEN_FILE) for the thresholds service "
            "and this command (POST /reload takes the token; no basic-auth password is sent)"), file=sys.stderr)
        return 2
    try:
        body = r.json()
    except ValueError:
        print(f"trademon thresholds: {url} answered HTTP {r.status_code} {r.text.strip()[:200]!r}, not an outcome; "
              "its log (thresholds) says why", file=sys.stderr)
        return 2
    print(body.get("message", r.text), file=sys.stdout if body.get("live") else sys.stderr)
    return 0 if body.get("live") else 1


def main(args) -> int:
    env = dict(os.environ)
    if args.reload:
        return ask_reload(env)
    logs.setup("thresholds", env_choice("TRADEMON_LOG_LEVEL", "info", ["debug", "info", "warning", "error"]))
    from trademon.thresholds import watch

    if args.watch:
        return watch.run(Path(args.root), Path(args.out), env)
    outcome = watch.Renderer(Path(args.root), Path(args.out), watch.reload_urls(env)).render_once()
    return 0 if outcome.live else 1
