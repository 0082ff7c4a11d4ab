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

from pathlib import Path

import requests
import yaml

from trademon import native

from .amstack import AlertingStack
from .procs import Proc, free_port, start, wait_for, wait_http
from .sim import SIM_JOBS, SimProcess

ROOT = Path(__file__).resolve().parents[2]


def seconds(d: str) -> float:
    return native._seconds(d)


def duration(s: float) -> str:
    return f"{max(int(round(s * 1000)), 1)}ms"


def scaled_rule_files(out: Path, for_scale: float | None) -> list[str]:
    """Copies of prometheus/rules/*.yml with every ``for`` divided by ``for_scale``."""
    files = []
    for src in sorted((ROOT / "prometheus" / "rules").glob("*.yml")):
        if for_scale is None:
            files.append(str(src))
            continue
        doc = yaml.safe_load(src.read_text())
        for group in doc["groups"]:
            for rule in group["rules"]:
                if "for" in rule:
                    rule["for"] = duration(seconds(rule["for"]) / for_scale)
        dst = out / src.name
        dst.write_text(yaml.safe_dump(doc, sort_keys=False, allow_unicode=True))
        files.append(str(dst))
    return files


class E2EStack:
    def __init__(self, workdir: Path, *, speed: float = 30.0, scrape: str = "1s", evaluation: str = "1s",
                 am_intervals: dict[str, str] | None = None, for_scale: float | None = None, seed: int = 7,
                 resend_delay: str | None = None):
        self.dir = workdir
        self.scrape, self.evaluation = scrape, evaluation
        self.procs: list[Proc] = []
        self.alerting = self.sim = None
        try:
            self.alerting = AlertingStack(workdir / "alerting", intervals=am_intervals)
            self.sim = SimProcess.start(workdir / "logs", speed=speed, seed=seed)
            self._start_prometheus(for_scale, resend_delay)
        except BaseException:
            self.close()
            raise

    def _start_prometheus(self, for_scale: float | None, resend_delay: str | None) -> None:
        self.prom_port = free_port()
        targets = {job: f"127.0.0.1:{self.sim.ports[job]}" for job in SIM_JOBS}
        targets["alert-sink"] = f"127.0.0.1:{self.alerting.sink_port}"
        targets["alertmanager"] = f"127.0.0.1:{self.alerting.am_port}"
        targets["prometheus"] = f"127.0.0.1:{self.prom_port}"
        cfg = native.render_prometheus_config(ROOT, targets, f"127.0.0.1:{self.alerting.am_port}", self.scrape, self.evaluation)
        rules_dir = self.dir / "rules"
        rules_dir.mkdir(parents=True, exist_ok=True)
        cfg["rule_files"] = scaled_rule_files(rules_dir, for_scale)
        path = self.dir / "prometheus.yml"
        path.write_text(yaml.safe_dump(cfg, sort_keys=False))
        cmd = native.prometheus_cmd(path, self.dir / "prom-data", self.prom_port)
        if resend_delay:  # how often Prometheus re-sends a firing alert (default 1m)
            cmd.append(f"--rules.alert.resend-delay={resend_delay}")
        self.prom = start("prometheus", cmd, {},
                          self.dir / "logs" / "prometheus.log")
        self.procs.append(self.prom)
        self.prom_url = f"http://127.0.0.1:{self.prom_port}"
        wait_http(f"{self.prom_url}/-/ready", 30, self.prom)

    @property
    def telegram(self):
        return self.alerting.standins.telegram

    def bound(self, group_wait: str) -> float:
        """What the intervals allow between a breach and the notification: one scrape, one
        evaluation, and the route's group_wait."""
        return seconds(self.scrape) + seconds(self.evaluation) + seconds(group_wait)

    def prom_alerts(self) -> list[dict]:
        return requests.get(f"{self.prom_url}/api/v1/alerts", timeout=5).json()["data"]["alerts"]

    def wait_no_group(self, receiver: str, timeout: float = 60) -> None:
        """Until Alertmanager has dropped the receiver's group (it does so some time after
        all its alerts resolved), so the next alert starts a new group with group_wait."""
        def gone():
            groups = requests.get(f"{self.alerting.am_url}/api/v2/alerts/groups", timeout=5).json()
            return not [g for g in groups if g["receiver"]["name"] == receiver and g["alerts"]]
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
