"""``trademon thresholds --watch``: keep Prometheus's threshold rules equal to monitoring/config.yml.

Renders the threshold rules (trademon.thresholds.render) at start, again whenever the file
changes (polled every TRADEMON_THRESHOLDS_POLL_SECONDS) or on ``POST /reload``, and asks each
Prometheus (TRADEMON_THRESHOLDS_RELOAD_URL, comma-separated) to reload. A config that must not
go live is refused: the rules in force stay as they are, the log names the key and the fix,
and trademon_thresholds_last_reload_successful drops to 0 (ThresholdsNotLive pages): a config
the trader thinks is live but is not is never silent.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import os
import re
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from collections.abc import Mapping

from prometheus_client import CollectorRegistry
from prometheus_client.core import GaugeMetricFamily

from trademon import contract
from trademon.runtime import http
from trademon.settings import thresholds
from trademon.settings.env import env_float, env_str, job_port, port_variable
from trademon.runtime.service import Listener, Probes, Runner, basics_app
from trademon.thresholds import render

JOB = "thresholds"
log = logging.getLogger("trademon.thresholds")
_USED = re.compile(re.escape(render.PREFIX) + r"([a-z_][a-z0-9_]*)")


@dataclass
class Outcome:
    live: bool  # monitoring/config.yml as it is now is what Prometheus evaluates
    message: str


def required_keys(rules_dir: Path) -> set[str]:
    """The thresholds the alert rules Prometheus loads compare with (a key missing from the
    config would leave them without a threshold: blind)."""
    keys: set[str] = set()
    for f in sorted(rules_dir.glob("*.yml")) if rules_dir.is_dir() else []:
        keys |= set(_USED.findall(f.read_text(encoding="utf-8")))
    return keys


def check_keys(root: Path) -> None:
    """Refuse a config whose numbers and the alert rules' thresholds differ: a key the rules
    compare with taken out (they would be blind), or a number no rule compares with (a misspelt
    key would go "live" and change nothing: the silent failure this service exists to prevent)."""
    rules_dir = root / "monitoring" / "rules"
    used, numbers = required_keys(rules_dir), thresholds.numbers(root)
    missing = sorted(used - set(numbers))
    if missing:
        them = "it" if len(missing) == 1 else "them"
        raise thresholds.ConfigError.in_file(
            thresholds.path(root), f"{', '.join(missing)} missing: the alert rules compare with {them} (monitoring/rules/); "
            f"put {them} back under critical:, warning: or shared:")
    if used:  # no rules at all (a bare render for another Prometheus): nothing to hold the numbers against
        thresholds.refuse_unread(root, set(numbers), used)


class Renderer:
    """Renders into ``out``, reloads Prometheus, and keeps the outcome for /metrics."""

    def __init__(self, root: Path, out: Path, reload_urls: list[str]):
        self.root, self.out, self.reload_urls = root, out, reload_urls
        self.target = out / render.FILE
        self.seen: str | None = None  # digest of the config last acted on
        self.outcome: Outcome | None = None
        self.last_success: float | None = None
        self.reload_failed = False  # retried at the next poll, changed or not
        # The poll and POST /reload render from two threads: one at a time, or both write the
        # one temporary file and one rename finds it gone.
        self._lock = threading.Lock()

    def _digest(self) -> str:
        """Of the config and of what the generated rules were written with (`trademon gen`
        run after a duration's edit makes it live without another edit of the config)."""
        try:
            stamp = json.dumps(render.stamped(self.root / "monitoring" / "rules"), sort_keys=True)
            return hashlib.sha256(thresholds.path(self.root).read_bytes() + stamp.encode()).hexdigest()
        except (OSError, ValueError) as e:
            return f"unreadable: {e}"

    def check(self) -> Outcome | None:
        """Render if the config changed since the last look; the outcome, or None if unchanged."""
        with self._lock:
            digest = self._digest()
            if digest == self.seen and not self.reload_failed:
                return None
            return self._render(digest)

    def render_once(self, digest: str | None = None) -> Outcome:
        with self._lock:
            return self._render(digest)

    def _render(self, digest: str | None) -> Outcome:
        self.seen = digest or self._digest()
        try:
            text = render.render(self.root)
            check_keys(self.root)
        except (thresholds.ConfigError, OSError, ValueError) as e:  # yaml errors are ValueErrors
            return self._done(Outcome(False, f"monitoring/config.yml refused, the thresholds in force are unchanged: {e}"))
        try:
            changed = not self.target.exists() or self.target.read_text(encoding="utf-8") != text
            if changed:
                self.out.mkdir(parents=True, exist_ok=True)
                tmp = self.out / f".{render.FILE}.tmp"  # not *.yml: Prometheus's glob never sees it half written
                tmp.write_text(text, encoding="utf-8")
                os.replace(tmp, self.target)
        except OSError as e:
            return self._done(Outcome(False, f"could not write the threshold rules to {self.target} ({e}); "
                                             "the thresholds in force are unchanged: make the directory writable"))
        failed = self.reload() if changed or not (self.outcome and self.outcome.live) else []
        self.reload_failed = bool(failed)
        if failed:
            return self._done(Outcome(False, "threshold rules rendered, but Prometheus did not reload them: " + "; ".join(failed)))
        try:
            stale = render.not_written_in(self.root, self.root / "monitoring" / "rules")
        except (thresholds.ConfigError, OSError, ValueError) as e:
            stale = [f"the generated rules' record of their durations is unreadable ({e})"]
        if stale:
            return self._done(Outcome(False, "the numbers are live, but not " + "; ".join(stale) + ": durations and the "
                                      "currency are written into monitoring/rules/ by `trademon gen`; run it and reload "
                                      "Prometheus (curl -X POST localhost:9090/-/reload), or put the value back"))
        return self._done(Outcome(True, f"thresholds live: {len(thresholds.numbers(self.root))} series"
                                        f"{' (rendered and reloaded)' if changed else ' (unchanged)'}"))

    def _done(self, outcome: Outcome) -> Outcome:
        self.outcome = outcome
        if outcome.live:
            self.last_success = time.time()
            log.info(outcome.message, extra={"path": str(self.target)})
        else:
            log.error(outcome.message, extra={"path": str(self.target)})
        return outcome

    def reload(self) -> list[str]:
        """Ask each Prometheus to read its rules again; what failed."""
        failed = []
        for url in self.reload_urls:
            try:
                r = http.request("POST", url, timeout=30)
                if not r.is_success:
                    failed.append(f"{url}: HTTP {r.status_code} {r.text.strip()[:200]}")
            except http.Refused:
                # not running yet (the stack is starting): it reads the file when it starts
                log.info("prometheus not answering; it reads the threshold rules when it starts", extra={"url": url})
            except http.Error as e:
                failed.append(f"{url}: {str(e)[:200]}")
        return failed

    def collect(self):
        m = contract.metric
        ok = GaugeMetricFamily(m("trademon_thresholds_last_reload_successful").name,
                               m("trademon_thresholds_last_reload_successful").help)
        if self.outcome is not None:
            ok.add_metric([], 1.0 if self.outcome.live else 0.0)
        yield ok
        ts = GaugeMetricFamily(m("trademon_thresholds_last_reload_success_timestamp_seconds").name,
                               m("trademon_thresholds_last_reload_success_timestamp_seconds").help)
        if self.last_success is not None:
            ts.add_metric([], self.last_success)
        yield ts


def reload_app(renderer: Renderer):
    """POST /reload: render now and answer with the outcome (422 when refused)."""
    async def app(scope, receive, send):
        if scope["type"] != "http":
            return
        body: dict[str, object]
        if scope["path"] != "/reload" or scope["method"] != "POST":
            status, body = 404, {"error": "not found; POST /reload renders monitoring/config.yml now"}
        else:
            outcome = await asyncio.to_thread(renderer.render_once)
            status, body = (200 if outcome.live else 422), {"live": outcome.live, "message": outcome.message}
        data = json.dumps(body).encode()
        await send({"type": "http.response.start", "status": status,
                    "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(data)).encode())]})
        await send({"type": "http.response.body", "body": data})
    return app


async def poll(renderer: Renderer, every: float) -> None:
    while True:
        await asyncio.sleep(every)
        await asyncio.to_thread(renderer.check)


def reload_urls(env: Mapping[str, str]) -> list[str]:
    return [u.strip() for u in (env_str("TRADEMON_THRESHOLDS_RELOAD_URL", env=env) or "").split(",") if u.strip()]


def run(root: Path, out: Path, env: Mapping[str, str]) -> int:
    renderer = Renderer(root, out, reload_urls(env))
    every = env_float("TRADEMON_THRESHOLDS_POLL_SECONDS", 5.0, 0.2, 3600.0, env=env)
    host = env_str("TRADEMON_THRESHOLDS_HOST", "127.0.0.1", env=env)
    registry = CollectorRegistry()
    registry.register(renderer)
    # Ready once a render went live or a previous one is in force (a refused config at start
    # keeps the last rendered file: Prometheus still has thresholds).
    probes = Probes({"rendered": lambda: renderer.target.exists()})
    runner = Runner([Listener(JOB, basics_app(registry, probes, reload_app(renderer)), host, job_port(JOB, env),
                              port_variable(JOB), token_paths=("/reload",))],
                    [lambda: poll(renderer, every)])
    runner.bind_all()
    renderer.check()
    asyncio.run(runner.serve())
    return 0
