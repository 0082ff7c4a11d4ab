"""The whole alert path, for real: the simulator, Prometheus with the project's prometheus.yml
and rules, Alertmanager with the project's rendered config, the alert-sink, and the stand-ins.

What is changed from the shipped files, and only that: addresses (127.0.0.1 and free ports),
Prometheus' scrape/evaluation intervals (and alert resend delay), the routes'
group_wait/group_interval, and - when
``for_scale`` is given - every rule's ``for`` divided by it. The simulator's clock runs
``speed`` times faster than real time, so with ``for_scale == speed`` a rule's ``for: 5m``
means five minutes of the simulated market, as in production.
"""

from __future__ import annotations

import re
from pathlib import Path

import requests
import yaml

from trademon.settings.values import seconds
from trademon.stack import native
from trademon.thresholds import render as threshold_rules

from . import described
from .amstack import AlertingStack
from .procs import Proc, free_port, wait_for
from .sim import SIM_JOBS, SimProcess

ROOT = Path(__file__).resolve().parents[2]


def duration(s: float) -> str:
    return f"{max(int(round(s * 1000)), 1)}ms"


def render_thresholds(out: Path, root: Path = ROOT) -> Path:
    """The threshold rules of ``root``'s monitoring/config.yml, as the thresholds service of a
    running stack renders them, in ``out``; the folder (for render_prometheus_config)."""
    out.mkdir(parents=True, exist_ok=True)
    (out / threshold_rules.FILE).write_text(threshold_rules.render(root))
    return out


def compress_ranges(expr: str, scale: float) -> str:
    """``expr`` with every range selector (``[5m]``) divided by ``scale``."""
    return re.sub(r"\[(\d+(?:ms|[smhdwy]))\]", lambda m: f"[{duration(seconds(m.group(1)) / scale)}]", expr)


def scaled_rule_files(out: Path, for_scale: float | None, evaluation: str | None = None, thresholds: bool = True,
                      compress: frozenset[str] = frozenset()) -> list[str]:
    """Copies of monitoring/rules/*.yml with every ``for`` divided by ``for_scale``, and the
    groups with an interval of their own (the money alerts) evaluated every ``evaluation``
    like the rest when the evaluation interval is shortened; and (``thresholds``) the threshold
    rules, rendered from monitoring/config.yml into ``out/thresholds``. The alerts named in
    ``compress`` have their range selectors divided by ``for_scale`` too: those whose window
    is part of their wait (a reload failed for the whole [5m], a node down half of it)."""
    files = [str(render_thresholds(out / "thresholds") / threshold_rules.FILE)] if thresholds else []
    for src in sorted((ROOT / "monitoring" / "rules").glob("*.yml")):
        if for_scale is None and evaluation is None:
            files.append(str(src))
            continue
        doc = yaml.safe_load(src.read_text())
        for group in doc["groups"]:
            if evaluation and "interval" in group:
                group["interval"] = min(group["interval"], evaluation, key=seconds)
            if for_scale is None:
                continue
            for rule in group["rules"]:
                if "for" in rule:
                    rule["for"] = duration(seconds(rule["for"]) / for_scale)
                if rule.get("alert") in compress:
                    rule["expr"] = compress_ranges(rule["expr"], for_scale)
        dst = out / src.name
        dst.write_text(yaml.safe_dump(doc, sort_keys=False, allow_unicode=True))
        files.append(str(dst))
    return files


class E2EStack:
    def __init__(self, workdir: Path, *, speed: float = 30.0, scrape: str = "1s", evaluation: str = "1s",
                 am_intervals: dict[str, str] | None = None, for_scale: float | None = None, seed: int = 7,
                 resend_delay: str | None = None, targets: dict[str, str] | None = None, am_env: dict[str, str] | None = None,
                 standins=None, ports: dict[str, int] | None = None, before_sim=None, bot_env: dict[str, str] | None = None,
                 thresholds_root: Path | None = None, scrape_bot: bool = False, compress: frozenset[str] = frozenset()):
        """``scrape``/``evaluation`` None keep prometheus.yml's (production) intervals;
        ``targets`` replaces a job's target (host:port), e.g. a closed port for a dead exporter;
        ``ports`` fixes ports beforehand ("prometheus", "alertmanager", the simulator's jobs and
        "control"), for a process started before the stack that must know them; ``before_sim``
        (with ``ports``): Prometheus starts first, then this is called, then the simulator (a
        cold start where the trading services come up last); ``thresholds_root`` (a folder with
        monitoring/config.yml and monitoring/rules/): the thresholds come from a running
        `trademon thresholds --watch` on it, which reloads Prometheus when the file changes,
        instead of a copy rendered once; ``scrape_bot``: the bot is a job, as in production;
        ``compress``: alerts whose range selectors are divided by ``for_scale`` too."""
        ports = ports or {}
        self.thresholds_root = thresholds_root
        self.dir = workdir
        self.targets_override = targets or {}
        self.scrape, self.evaluation = scrape, evaluation
        self.scrape_bot, self.compress = scrape_bot, compress
        self.procs: list[Proc] = []
        self.alerting = self.sim = None
        try:
            prom_port = ports.get("prometheus") or free_port()  # chosen first: the bot (started with Alertmanager) queries it
            self.alerting = AlertingStack(workdir / "alerting", intervals=am_intervals, env=am_env, standins=standins,
                                          am_port=ports.get("alertmanager"), prometheus_url=f"http://127.0.0.1:{prom_port}",
                                          bot_env=bot_env)
            sim_ports = {k: v for k, v in ports.items() if k not in ("prometheus", "alertmanager")}
            if before_sim is None:
                self.sim = SimProcess.start(workdir / "logs", speed=speed, seed=seed, ports=sim_ports or None)
                self._start_prometheus(for_scale, resend_delay, prom_port, self.sim.ports)
            else:
                self._start_prometheus(for_scale, resend_delay, prom_port, sim_ports, wait=False)
                before_sim()
                self.sim = SimProcess.start(workdir / "logs", speed=speed, seed=seed, ports=sim_ports)
                self._wait_scraped()
        except BaseException:
            self.close()
            raise

    def _start_prometheus(self, for_scale: float | None, resend_delay: str | None, port: int | None,
                          sim_ports: dict[str, int], wait: bool = True) -> None:
        self.prom_port = port or free_port()
        targets = {job: f"127.0.0.1:{sim_ports[job]}" for job in SIM_JOBS}
        targets["alert-sink"] = f"127.0.0.1:{self.alerting.sink_port}"
        targets["alertmanager"] = f"127.0.0.1:{self.alerting.am_port}"
        targets["prometheus"] = f"127.0.0.1:{self.prom_port}"
        if self.scrape_bot:
            targets["trademon-bot"] = f"127.0.0.1:{self.alerting.bot_port}"
        if self.thresholds_root is not None:
            targets["thresholds"] = f"127.0.0.1:{self._start_thresholds()}"
        targets.update(self.targets_override)
        cfg = native.render_prometheus_config(ROOT, targets, f"127.0.0.1:{self.alerting.am_port}", self.scrape, self.evaluation)
        rules_dir = self.dir / "rules"
        rules_dir.mkdir(parents=True, exist_ok=True)
        cfg["rule_files"] = scaled_rule_files(rules_dir, for_scale, self.evaluation, thresholds=self.thresholds_root is None,
                                              compress=self.compress)
        if self.thresholds_root is not None:
            cfg["rule_files"].append(str(self.dir / "thresholds" / "*.yml"))
        path = self.config_path = self.dir / "prometheus.yml"
        path.write_text(yaml.safe_dump(cfg, sort_keys=False))
        lay = described.layout({"prometheus": self.prom_port, "alertmanager": self.alerting.am_port})
        svc = described.built(lay, self.dir, ("prometheus",), prom_files={"prometheus": path})["prometheus"]
        # how often Prometheus re-sends a firing alert (default 1m)
        self.prom = described.start_service(svc, self.dir / "logs", extra_args=(f"--rules.alert.resend-delay={resend_delay}",)
                                            if resend_delay else ())
        self.procs.append(self.prom)
        self.prom_url = lay.base["prometheus"]
        self.n_targets = len(targets)
        if wait:
            self._wait_scraped()

    def _start_thresholds(self) -> int:
        """`trademon thresholds --watch` on ``thresholds_root``, reloading this Prometheus, as
        native starts it (polling the file every 0.5 s); its port."""
        self.thresholds_port = free_port()
        lay = described.layout({"thresholds": self.thresholds_port, "prometheus": self.prom_port})
        svc = described.built(lay, self.dir, ("thresholds",), root=self.thresholds_root)["thresholds"]
        proc = described.start_service(svc, self.dir / "logs", {"TRADEMON_THRESHOLDS_POLL_SECONDS": "0.5"})
        self.procs.append(proc)
        return self.thresholds_port

    def _wait_scraped(self) -> None:
        # Prometheus starts scraping some seconds after it is ready (its scrape manager applies
        # targets on a 5 s tick); a scenario switched on before would measure that, not alerting.
        def all_scraped():
            active = requests.get(f"{self.prom_url}/api/v1/targets", timeout=5).json()["data"]["activeTargets"]
            return len(active) == self.n_targets and all(t["health"] == "up" for t in active
                                                       if t["labels"]["job"] not in self.targets_override)
        wait_for(all_scraped, 30, 0.2, "every target scraped once")

    @property
    def telegram(self):
        return self.alerting.standins.telegram

    def bound(self, group_wait: str) -> float:
        """What the intervals allow between a breach and the notification: one scrape, one
        evaluation, and the route's group_wait."""
        return seconds(self.scrape) + seconds(self.evaluation) + seconds(group_wait)

    def prom_query(self, q: str) -> list[dict]:
        return requests.get(f"{self.prom_url}/api/v1/query", params={"query": q}, timeout=5).json()["data"]["result"]

    def prom_alerts(self) -> list[dict]:
        return requests.get(f"{self.prom_url}/api/v1/alerts", timeout=5).json()["data"]["alerts"]

    def wait_no_group(self, receiver: str, timeout: float = 60) -> None:
        """Until Alertmanager has dropped the receiver's group, so the next alert starts a new
        group and waits group_wait. After its alerts resolved, an empty group lives on until
        Alertmanager's cleanup (every 30 s); the API no longer lists it, but the
        alertmanager_dispatcher_aggregation_groups gauge still counts it."""
        def gone():
            groups = requests.get(f"{self.alerting.am_url}/api/v2/alerts/groups", timeout=5).json()
            listed = [g for g in groups if g["alerts"]]
            if any(g["receiver"]["name"] == receiver for g in listed):
                return False
            metrics = requests.get(f"{self.alerting.am_url}/metrics", timeout=5).text
            m = re.search(r"^alertmanager_dispatcher_aggregation_groups (\S+)$", metrics, re.M)
            return m is not None and float(m.group(1)) <= len(listed)
        wait_for(gone, timeout, 0.5, f"no {receiver} alert group left in Alertmanager")

    def logs(self) -> str:
        return "\n".join([self.alerting.logs(), self.sim.proc.log_text(), *(p.log_text() for p in self.procs)])

    def close(self) -> None:
        for p in reversed(self.procs):
            p.close()
        if self.sim is not None:
            self.sim.close()
        if self.alerting is not None:
            self.alerting.close()
