"""The HA alert path, for real: two Prometheus replicas (the project's prometheus.yml and
rules, as trademon.stack.scaleout makes a replica of them) and two Alertmanagers in a gossip
cluster (the project's rendered config), every Prometheus sending to every Alertmanager,
the simulator, one alert-sink and the stand-ins shared by both Alertmanagers (so a
notification sent by both nodes is seen twice: that is what is counted).

Shortened as in tests/support/e2estack.py (intervals, ``for``, group_wait/interval); the
cluster's own timings are the stack's (trademon.stack.scaleout: --cluster.peer-timeout 5 s,
gossip at Alertmanager's defaults); ``peer_timeout`` replaces that one, for the benchmark's
baseline (benchmarks/ha_failover.py).
Any node can be killed with SIGKILL and started again on its old data.
"""

from __future__ import annotations

from pathlib import Path

import requests
import yaml
from trademon.alertmanager import amconfig
from trademon.stack import native, scaleout

from . import described
from .amstack import shorten
from .e2estack import scaled_rule_files
from .procs import Proc, free_port, start, wait_for, wait_http
from .sim import SIM_JOBS, SimProcess
from .standins import StandIns

ROOT = Path(__file__).resolve().parents[2]


class Node:
    """One engine process that can be killed -9 and restarted with the same command and data."""

    def __init__(self, name: str, cmd: list[str], env: dict, log: Path, ready: str):
        self.name, self.cmd, self.env, self.log, self.ready = name, cmd, env, log, ready
        self.proc: Proc | None = None

    def start(self, timeout: float = 30) -> None:
        self.proc = start(self.name, self.cmd, self.env, self.log)
        wait_http(self.ready, timeout, self.proc)

    def kill9(self) -> None:
        self.proc.popen.kill()
        self.proc.popen.wait(5)
        self.proc.close()

    def alive(self) -> bool:
        return self.proc is not None and self.proc.popen.poll() is None

    def close(self) -> None:
        if self.proc is not None:
            self.proc.close()


class HAStack:
    def __init__(self, workdir: Path, *, speed: float = 30.0, intervals: dict[str, str] | None = None,
                 resend_delay: str = "2s", scrape: str = "1s", peer_timeout: str | None = None,
                 for_scale: float | None = None, compress: frozenset[str] = frozenset()):
        """Each rule's ``for`` divided by ``for_scale`` (default: ``speed``), and the range
        selectors of the alerts in ``compress`` too (tests/support/e2estack.py)."""
        self.dir = workdir
        self.for_scale, self.compress = for_scale or speed, compress
        self.peer_timeout = peer_timeout
        self.standins = StandIns()
        self.sim = self.sink = self.bot = None
        self.ams: list[Node] = []
        self.proms: list[Node] = []
        self.env = {**self.standins.env(), "GRAFANA_URL": "http://grafana.trademon.test:3000",
                    "ALERTMANAGER_URL": "http://alertmanager.trademon.test:9093"}
        self.layout = described.layout({name: free_port() for name in (
            "alert-sink", "trademon-bot", "alertmanager", "alertmanager-b", "alertmanager:cluster", "alertmanager-b:cluster",
            "prometheus", "prometheus-b")}, ha=True, env=self.env)
        try:
            self._start_sink_and_bot()
            self._start_alertmanagers(intervals or {"group_wait": "3s", "group_interval": "3s"})
            self.sim = SimProcess.start(workdir / "logs", speed=speed, seed=7)
            self._start_prometheus(speed, resend_delay, scrape)
        except BaseException:
            self.close()
            raise

    def _start_sink_and_bot(self) -> None:
        """The alert-sink and `trademon bot` (Telegram goes through it: both Alertmanagers post
        to the one bot), as native --ha starts them."""
        built = described.built(self.layout, self.dir, ("alert-sink", "trademon-bot"), self.dir / "am-config" / "alertmanager.yml")
        self.sink_port = self.layout.port["alert-sink"]
        self.sink_file = Path(built["alert-sink"].env["TRADEMON_ALERT_SINK_FILE"])
        self.sink = described.start_service(built["alert-sink"], self.dir / "logs", timeout=20)
        # a short poll; compressed time and a stand-in with no flood limit: as the other stacks (amstack.py)
        self.bot = described.start_service(built["trademon-bot"], self.dir / "logs", {
            **self.env, "TRADEMON_BOT_POLL_TIMEOUT": "2", "TRADEMON_BOT_GROUP_PER_MINUTE": "1000"}, name="bot")

    def _start_alertmanagers(self, intervals: dict[str, str]) -> None:
        out = self.dir / "am-config"
        path = amconfig.render(ROOT / "alertmanager", out, self.env, alert_sink_url=f"{self.layout.base['alert-sink']}/alerts",
                               bot_url=f"{self.layout.base['trademon-bot']}/alerts")
        cfg = yaml.safe_load(path.read_text())
        shorten(cfg["route"], intervals)
        path.write_text(yaml.safe_dump(cfg, sort_keys=False))
        self.am_config = path
        built = described.built(self.layout, self.dir, ("alertmanager", "alertmanager-b"), path)
        for name, svc in zip(("am-a", "am-b"), built.values()):
            cmd = [a for a in svc.cmd if not (self.peer_timeout and a.startswith("--cluster.peer-timeout="))]
            cmd += [f"--cluster.peer-timeout={self.peer_timeout}"] if self.peer_timeout else []
            node = Node(name, [*cmd, "--log.level=debug"], svc.env, self.dir / "logs" / f"{name}.log", svc.health)
            node.url = self.layout.base[svc.name]
            node.start()
            self.ams.append(node)
        wait_for(lambda: all(len(self.cluster(am)["peers"]) == 2 for am in self.ams), 30, 0.2, "both Alertmanagers see each other")

    def _start_prometheus(self, speed: float, resend_delay: str, scrape: str) -> None:
        nodes = ("prometheus", "prometheus-b")
        targets: dict[str, str | list[str]] = {job: f"127.0.0.1:{self.sim.ports[job]}" for job in SIM_JOBS}
        targets["alert-sink"] = f"127.0.0.1:{self.sink_port}"
        # every node scraped by every replica, as `trademon native --ha` and compose do
        targets["prometheus"] = [self.layout.base[n].removeprefix("http://") for n in nodes]
        targets["alertmanager"] = [am.url.removeprefix("http://") for am in self.ams]
        rules_dir = self.dir / "rules"
        rules_dir.mkdir(parents=True, exist_ok=True)
        rule_files = scaled_rule_files(rules_dir, self.for_scale, compress=self.compress)
        files = {}
        for node, replica in zip(nodes, ("a", "b")):
            base = native.render_prometheus_config(ROOT, targets, self.ams[0].url.removeprefix("http://"), scrape, scrape)
            base["rule_files"] = rule_files
            cfg = scaleout.ha_prometheus_config(base, alertmanagers=[am.url.removeprefix("http://") for am in self.ams],
                                                replica=replica)
            files[node] = self.dir / f"prometheus-{replica}.yml"
            files[node].write_text(yaml.safe_dump(cfg, sort_keys=False))
        built = described.built(self.layout, self.dir, nodes, prom_files=files)
        for node, replica in zip(nodes, ("a", "b")):
            svc = built[node]
            p = Node(f"prom-{replica}", [*svc.cmd, f"--rules.alert.resend-delay={resend_delay}"], svc.env,
                     self.dir / "logs" / f"prom-{replica}.log", svc.health)
            p.url = self.layout.base[node]
            p.start()
            self.proms.append(p)
        for p in self.proms:  # as in e2estack: scraping starts some seconds after ready
            wait_for(lambda p=p: all(t["health"] == "up" for t in
                                 requests.get(f"{p.url}/api/v1/targets", timeout=5).json()["data"]["activeTargets"]),
                     30, 0.2, f"{p.name} scraped every target")

    def cluster(self, am: Node) -> dict:
        return requests.get(f"{am.url}/api/v2/status", timeout=5).json()["cluster"]

    def first_sender(self) -> Node:
        """The Alertmanager that notifies first: peers sort by name, position 0 sends at
        once, position n waits n x --cluster.peer-timeout for the others' log entries."""
        names = {self.cluster(am)["name"]: am for am in self.ams}
        return names[min(names)]

    def records(self) -> list[dict]:
        import json

        if not self.sink_file.exists():
            return []
        return [json.loads(line) for line in self.sink_file.read_text().splitlines() if line.strip()]

    def logs(self) -> str:
        parts = [n.proc.log_text() for n in (*self.ams, *self.proms) if n.proc is not None]
        return "\n".join(parts)

    def close(self) -> None:
        for n in (*self.proms, *self.ams):
            n.close()
        if self.sim is not None:
            self.sim.close()
        if self.sink is not None:
            self.sink.close()
        if self.bot is not None:
            self.bot.close()
        self.standins.close()
