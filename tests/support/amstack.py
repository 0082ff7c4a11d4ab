"""A real Alertmanager with the project's rendered configuration, the alert-sink, `trademon bot`
(Telegram's delivery) and the stand-ins, on free loopback ports, for the alerting tests and
the latency benchmark.

Only addresses and the routes' waiting times are changed from what `trademon am-config`
renders (see ``TEST_INTERVALS``); routing, inhibitions, receivers and templates are the
project's own.
"""

from __future__ import annotations

import json
import os
import signal
import time
from datetime import datetime, timedelta, UTC
from pathlib import Path

import requests
import yaml

from trademon.alertmanager import amconfig
from trademon.settings.values import seconds

from . import described
from .procs import Proc, free_port, wait_for
from .standins import StandIns

ROOT = Path(__file__).resolve().parents[2]

# group_wait 10s/30s -> 1s and group_interval 1m/5m -> 2s, so a notification and its update
# come in seconds; repeat_interval keeps its production value (no repeat during a test).
TEST_INTERVALS = {"group_wait": "1s", "group_interval": "2s"}


def shorten(route: dict, intervals: dict[str, str]) -> None:
    for key, value in intervals.items():
        if key in route:
            route[key] = value
    for child in route.get("routes", []):
        shorten(child, intervals)


def iso(t: datetime) -> str:
    return t.astimezone(UTC).isoformat().replace("+00:00", "Z")


class AlertingStack:
    """Stand-ins + alert-sink + Alertmanager. ``post()`` sends alerts as Prometheus would."""

    def __init__(self, workdir: Path, intervals: dict[str, str] | None = None, env: dict[str, str] | None = None,
                 standins: StandIns | None = None, am_port: int | None = None, make_schedule=None,
                 prometheus_url: str = "http://127.0.0.1:9", bot_env: dict[str, str] | None = None):
        self.dir = workdir
        self.procs: list[Proc] = []
        self.standins = standins or StandIns()
        self.sink_file = workdir / "alerts.jsonl"
        self.sink_port, self.am_port, self.bot_port = free_port(), am_port or free_port(), free_port()
        self.bot_url = f"http://127.0.0.1:{self.bot_port}"
        self.prometheus_url = prometheus_url
        self.bot_env = bot_env or {}
        self.bot = None
        self.am_url = f"http://127.0.0.1:{self.am_port}"
        self.render_env = {**self.standins.env(), "GRAFANA_URL": "http://grafana.trademon.test:3000",
                           "ALERTMANAGER_URL": "http://alertmanager.trademon.test:9093", **(env or {})}
        self.intervals = TEST_INTERVALS if intervals is None else intervals
        self.make_schedule = make_schedule  # the market calendar to render (trademon.alertmanager.amconfig.render), None: the real one
        try:
            self._start()
        except BaseException:
            self.close()
            raise

    def _start(self) -> None:
        out = self.dir / "am-config"
        prom_port = int(self.prometheus_url.rsplit(":", 1)[1])
        self.layout = described.layout({"alert-sink": self.sink_port, "alertmanager": self.am_port, "trademon-bot": self.bot_port,
                                        "prometheus": prom_port}, env=self.render_env)
        path = amconfig.render(ROOT / "alertmanager", out, self.render_env, alert_sink_url=f"{self.layout.base['alert-sink']}/alerts",
                               make_schedule=self.make_schedule, bot_url=f"{self.layout.base['trademon-bot']}/alerts")
        cfg = yaml.safe_load(path.read_text())
        shorten(cfg["route"], self.intervals)
        path.write_text(yaml.safe_dump(cfg, sort_keys=False))
        self.config_path = path
        self.services = described.built(self.layout, self.dir, ("alert-sink", "trademon-bot", "alertmanager"), path)
        self.sink = described.start_service(self.services["alert-sink"], self.dir / "logs", timeout=20)
        self.procs.append(self.sink)
        self.start_bot()
        try:
            # debug: the tests read what Alertmanager did with each alert
            self.am = described.start_service(self.services["alertmanager"], self.dir / "logs", extra_args=("--log.level=debug",),
                                              timeout=20)
        except RuntimeError as e:
            log = (self.dir / "logs" / "alertmanager.log").read_text(errors="replace")
            if "default.tmpl" in log:  # Debian's build reads it from a fixed path
                raise RuntimeError("Alertmanager cannot read /usr/share/prometheus/alertmanager/default.tmpl: "
                                   "run scripts/install-tools.sh (it links Debian's template directory there)") from e
            raise
        self.procs.append(self.am)

    def bot_environment(self) -> dict[str, str]:
        """The bot's environment: the stack's variables over what the test sets (the channels,
        who may act, short polls and retries)."""
        # TRADEMON_BOT_GROUP_PER_MINUTE: the stacks run at up to 30x (pages repeat every few
        # seconds) and their Telegram stand-in keeps no flood limit; a storm at Telegram's own
        # limit is tests/test_bot_storm.py's.
        return {**self.render_env, "TRADEMON_BOT_ALLOWED_USER_IDS": str(self.standins.USER_ID),
                "TRADEMON_BOT_POLL_TIMEOUT": "2", "TRADEMON_LOG_LEVEL": "debug", "TRADEMON_BOT_GROUP_PER_MINUTE": "1000",
                **self.retry_window(), **self.bot_env,
                **self.services["trademon-bot"].env}

    def retry_window(self) -> dict[str, str]:
        """With repeat_interval shortened, the bot's retry window goes between it and
        group_interval, as the shipped one is between the shipped intervals."""
        if "repeat_interval" not in self.intervals:
            return {}
        group = seconds(self.intervals.get("group_interval", "5m"))
        repeat = seconds(self.intervals["repeat_interval"])
        return {"TRADEMON_BOT_RETRY_WINDOW": f"{max(int((group + repeat) / 2), 1)}s"}

    def start_bot(self) -> None:
        """`trademon bot` as a process (again after kill_bot: same port, same state directory)."""
        self.bot = described.start_service(self.services["trademon-bot"], self.dir / "logs", self.bot_environment(), name="bot")
        self.procs.append(self.bot)

    def kill_bot(self) -> None:
        """kill -9, as a crash or an OOM kill would."""
        os.killpg(self.bot.popen.pid, signal.SIGKILL)
        self.bot.popen.wait(5)
        self.procs.remove(self.bot)
        self.bot.close()
        self.dead_bots = getattr(self, "dead_bots", []) + [self.bot]

    # Alerts in, as Prometheus sends them (POST /api/v2/alerts).
    def post(self, *alerts: dict, resolved: bool = False) -> None:
        now = datetime.now(UTC)
        body = []
        for a in alerts:
            item = {"labels": a["labels"], "annotations": a.get("annotations", {}), "generatorURL": "http://prometheus.trademon.test/graph",
                    # now, as Prometheus sends a new alert: an older startsAt (by group_wait) makes
                    # Alertmanager flush the group at once, before the rest of the batch is in
                    "startsAt": a.get("startsAt", iso(now))}
            item["endsAt"] = iso(now) if resolved else iso(now + timedelta(minutes=10))
            body.append(item)
        r = requests.post(f"{self.am_url}/api/v2/alerts", json=body, timeout=5)
        assert r.ok, f"Alertmanager refused the alerts: {r.status_code} {r.text}"

    def alerts(self, **filters) -> list[dict]:
        r = requests.get(f"{self.am_url}/api/v2/alerts", params=filters, timeout=5)
        r.raise_for_status()
        return r.json()

    def records(self) -> list[dict]:
        """What the alert-sink wrote (one notification per line)."""
        if not self.sink_file.exists():
            return []
        return [json.loads(line) for line in self.sink_file.read_text().splitlines() if line.strip()]

    def wait(self, predicate, timeout: float = 30, what: str = "condition"):
        try:
            return wait_for(predicate, timeout, 0.1, what)
        except TimeoutError as e:
            # Say what did arrive, so a failure in CI can be read without a rerun.
            raise TimeoutError(f"{e}; alerts in Alertmanager: {self._names()}; sent to the stand-ins: {self._sent()}") from None

    def _names(self) -> list[str]:
        try:
            return sorted(f"{a['labels']['alertname']}({a['status']['state']})" for a in self.alerts())
        except Exception as e:  # noqa: BLE001 - the diagnosis must not hide the timeout
            return [f"unreadable: {e!r}"]

    def _sent(self) -> list[str]:
        try:
            return [str(m.get("text", m))[:200] for m in self.standins.telegram.sent()][-10:]
        except Exception as e:  # noqa: BLE001
            return [f"unreadable: {e!r}"]

    def logs(self) -> str:
        return "\n".join(p.log_text() for p in [*self.procs, *getattr(self, "dead_bots", [])])

    def settle(self, seconds: float) -> None:
        """Let any further notification (a duplicate, a leak) arrive before counting."""
        time.sleep(seconds)

    def close(self) -> None:
        for p in reversed(self.procs):
            p.close()
        self.standins.close()


def alert(name: str, severity: str, summary: str = "", description: str = "", **labels: str) -> dict:
    return {"labels": {"alertname": name, "severity": severity, **labels},
            "annotations": {"summary": summary or f"{name} summary", "description": description or f"{name} description",
                            "runbook_url": f"https://github.com/trademon/trademon/blob/main/monitoring/runbooks.md#{name.lower()}",
                            "dashboard": "/d/trademon-health"}}
