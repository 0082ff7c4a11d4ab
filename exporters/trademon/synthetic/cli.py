"""``trademon synthetic``: run the synthetic checks continuously and serve their metrics
on /metrics, or run every check once (``--once``) and exit 0 only if all passed."""

from __future__ import annotations

import asyncio
import json
import logging
import sys

import httpx

from trademon.runtime import http
from trademon.runtime import logs
from trademon.settings.env import port_variable
from trademon.metrics import JobMetrics
from trademon.runtime.service import Listener, Probes, Runner, Task, basics_app
from trademon.synthetic import checks as checks_mod
from trademon.synthetic.config import load
from trademon.synthetic.runner import CheckRunner

log = logging.getLogger("trademon.synthetic")


def configure(parser) -> None:
    parser.add_argument("--once", action="store_true",
                        help="run every check once, print one JSON line per check, exit 0 if all passed (1 if not)")


def _client(settings) -> httpx.AsyncClient:
    # Each check's own timeout bounds a run; this one only stops a single request hanging longer.
    longest = max(t.timeout for t in settings.timing.values())
    return http.async_client(longest)


async def _once(settings) -> int:
    async with _client(settings) as client:
        checks, notes = checks_mod.build(client, settings)
        for n in notes:
            log.warning(n)
        results = await CheckRunner(checks, settings, JobMetrics("synthetic")).run_all_once()
    for r in results:
        print(json.dumps({"check": r.check, "success": r.success, "duration_seconds": round(r.duration, 3), "detail": r.detail}))
    failed = [r.check for r in results if not r.success]
    print(f"{len(results) - len(failed)} passed, {len(failed)} failed" + (f": {', '.join(failed)}" if failed else ""))
    return 1 if failed else 0


async def _serve(settings) -> int:
    metrics = JobMetrics("synthetic")
    async with _client(settings) as client:
        checks, notes = checks_mod.build(client, settings)
        for n in notes:
            log.warning(n)
        runner = CheckRunner(checks, settings, metrics)
        # Ready once every check has run at least once.
        probes = Probes({"checks ran": lambda: len(runner.last) == len(checks)})
        server = Runner([Listener("synthetic", basics_app(metrics.registry, probes), settings.host, settings.port,
                                  port_variable("synthetic"))], tasks=[Task(runner.run_forever, "checks")])
        server.bind_all()
        log.info("synthetic checks", extra={"checks": [c.name for c in checks],
                                             "timing": {k: vars(v) for k, v in settings.timing.items()}})
        await server.serve()
    return 0


def main(args) -> int:
    settings = load()
    logs.setup("synthetic", settings.log_level, stream=sys.stderr if args.once else None)
    return asyncio.run(_once(settings) if args.once else _serve(settings))
