"""Run the stack without Docker: real Prometheus and Alertmanager with the project's own
configuration files, and the trademon services, as processes on one host.

``trademon native`` is the command for hosts where Docker is not allowed; the end-to-end
tests use the same functions. Only addresses (compose service names become 127.0.0.1
ports) and, for tests, intervals are rewritten; everything else is the shipped file.
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping

import requests
import yaml

from . import contract, tools
from .config import env_port, job_port

log = logging.getLogger("trademon.native")

# Jobs whose service has no native process here (Grafana, Loki, Promtail, cAdvisor run in
# Docker only); they are left out of the natively rendered prometheus.yml.
NATIVE_JOBS = ("automatictrader-api", "marketdata-stream", "position-manager", "ib-exporter",
               "synthetic", "alert-sink", "prometheus", "alertmanager")


def repo_root() -> Path:
    return Path(__file__).resolve().parents[2]


def render_prometheus_config(root: Path, targets: Mapping[str, str], alertmanager: str | None,
                             scrape_interval: str | None = None, evaluation_interval: str | None = None) -> dict:
    """The project's prometheus.yml with job targets replaced by ``targets`` (job -> host:port);
    jobs not in ``targets`` are dropped. Rule files become absolute paths."""
    src = root / "prometheus" / "prometheus.yml"
    cfg = yaml.safe_load(src.read_text())
    g = cfg.setdefault("global", {})
    if scrape_interval:
        g["scrape_interval"] = scrape_interval
        g["scrape_timeout"] = min(scrape_interval, g.get("scrape_timeout", scrape_interval), key=_seconds)
    if evaluation_interval:
        g["evaluation_interval"] = evaluation_interval
    kept = []
    for sc in cfg.get("scrape_configs", []):
        job = sc["job_name"]
        if job not in targets:
            continue
        sc["static_configs"] = [{"targets": [targets[job]]}]
        if scrape_interval:
            sc.pop("scrape_interval", None)
            sc.pop("scrape_timeout", None)
        kept.append(sc)
    missing = set(targets) - {sc["job_name"] for sc in kept}
    if missing:
        raise ValueError(f"prometheus/prometheus.yml has no job named {', '.join(sorted(missing))}")
    cfg["scrape_configs"] = kept
    cfg["rule_files"] = [str((src.parent / r).resolve()) if not os.path.isabs(r) else r for r in cfg.get("rule_files", [])]
    if alertmanager:
        cfg["alerting"] = {"alertmanagers": [{"static_configs": [{"targets": [alertmanager]}]}]}
    else:
        cfg.pop("alerting", None)
    return cfg


def _seconds(d: str) -> float:
    units = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400}
    for u in ("ms", "s", "m", "h", "d"):
        if d.endswith(u) and d[: -len(u)].replace(".", "", 1).isdigit():
            return float(d[: -len(u)]) * units[u]
    raise ValueError(f"not a duration: {d!r}")


def prometheus_cmd(config: Path, data: Path, port: int, host: str = "127.0.0.1", retention: str = "30d") -> list[str]:
    return [tools.find("prometheus"), f"--config.file={config}", f"--storage.tsdb.path={data}",
            f"--storage.tsdb.retention.time={retention}", f"--web.listen-address={host}:{port}",
            "--web.enable-lifecycle", "--log.format=json"]


def alertmanager_cmd(config: Path, data: Path, port: int, host: str = "127.0.0.1", external_url: str | None = None) -> list[str]:
    cmd = [tools.find("alertmanager"), f"--config.file={config}", f"--storage.path={data}",
           f"--web.listen-address={host}:{port}",
           "--cluster.listen-address=",  # a single instance: no gossip port
           "--log.format=json"]
    if external_url:
        cmd.append(f"--web.external-url={external_url}")
    return cmd


def trademon_cmd(*args: str) -> list[str]:
    return [sys.executable, "-m", "trademon", *args]


@dataclass
class Service:
    name: str
    cmd: list[str]
    health: str  # URL answering 2xx once up
    env: dict = field(default_factory=dict)
    restart: bool = False  # started again when it exits (compose's restart policy, natively)


class Supervisor:
    """Starts services in order, waits for each to be healthy, stops them all in reverse."""

    def __init__(self, log_dir: Path):
        self.log_dir = log_dir
        self.procs: list[tuple[Service, subprocess.Popen, object]] = []
        self._backoff: dict[str, tuple[int, float]] = {}  # restart: name -> (failures in a row, not before)

    def start(self, svc: Service, timeout: float = 30.0) -> None:
        self.log_dir.mkdir(parents=True, exist_ok=True)
        logf = open(self.log_dir / f"{svc.name}.log", "ab")
        env = dict(os.environ)
        env.update(svc.env)
        p = subprocess.Popen(svc.cmd, stdout=logf, stderr=subprocess.STDOUT, env=env, start_new_session=True)
        self.procs.append((svc, p, logf))
        deadline = time.monotonic() + timeout
        while True:
            if p.poll() is not None:
                raise RuntimeError(f"{svc.name} exited with {p.returncode}; see {self.log_dir / (svc.name + '.log')}")
            try:
                if requests.get(svc.health, timeout=2).ok:
                    break
            except requests.RequestException:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"{svc.name} not healthy at {svc.health} after {timeout}s; see {self.log_dir / (svc.name + '.log')}")
            time.sleep(0.2)
        log.info("service up", extra={"svc": svc.name, "health": svc.health})

    def stop(self) -> None:
        for svc, p, logf in reversed(self.procs):
            if p.poll() is None:
                try:
                    os.killpg(p.pid, signal.SIGTERM)
                    p.wait(10)
                except subprocess.TimeoutExpired:
                    os.killpg(p.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            logf.close()
        self.procs.clear()

    def failed(self) -> list[str]:
        return [svc.name for svc, p, _ in self.procs if p.poll() is not None and not svc.restart]

    def restart_exited(self) -> None:
        """Start again the services with ``restart`` that exited (crash, kill -9), backing off
        (1 s doubling to 60 s) while one keeps exiting, as Docker's restart policy does."""
        backoff = self._backoff
        for svc, p, logf in list(self.procs):
            if not svc.restart or p.poll() is None:
                continue
            failures, not_before = backoff.get(svc.name, (0, 0.0))
            if time.monotonic() < not_before:
                continue
            log.warning("service exited; restarting", extra={"svc": svc.name, "returncode": p.returncode})
            logf.close()
            self.procs.remove((svc, p, logf))
            try:
                self.start(svc)
                backoff[svc.name] = (0, 0.0)
            except RuntimeError as e:  # it stays in procs, exited: tried again after the backoff
                backoff[svc.name] = (failures + 1, time.monotonic() + min(2 ** failures, 60))
                log.error("restart failed", extra={"svc": svc.name, "error": str(e)})


def bot_service(host: str, bot_port: int, data: Path, port: Mapping[str, int]) -> Service:
    """`trademon bot`, Telegram's delivery (it idles without TELEGRAM_BOT_TOKEN/TELEGRAM_CHAT_ID);
    restarted when it exits, as compose's restart policy would."""
    return Service("bot", trademon_cmd("bot"), f"http://{host}:{bot_port}/healthz",
                   {"TRADEMON_BOT_HOST": host, "TRADEMON_BOT_PORT": str(bot_port), "TRADEMON_BOT_STATE_DIR": str(data / "bot"),
                    "TRADEMON_BOT_ALERTMANAGER_URL": f"http://{host}:{port['alertmanager']}",
                    "TRADEMON_BOT_PROMETHEUS_URL": f"http://{host}:{port['prometheus']}",
                    "TRADEMON_BOT_ALERT_SINK_URL": f"http://{host}:{port['alert-sink']}/alerts"}, restart=True)


def configure(parser) -> None:
    parser.add_argument("--mode", choices=["demo", "live"], default="demo",
                        help="demo: the simulator stands in for the trading services and the broker; "
                             "live: the IB exporter against TWS/IB Gateway, trading services on their own ports")
    parser.add_argument("--data-dir", default="var/native", help="Prometheus/Alertmanager data, rendered configs and logs (default: var/native)")
    parser.add_argument("--host", default="127.0.0.1", help="address every service listens on (default 127.0.0.1)")
    parser.add_argument("--ha", action="store_true",
                        help="HA layout: two Prometheus replicas, two gossiping Alertmanagers, VictoriaMetrics (README: Scaling out)")


def main(args) -> int:
    if args.ha:  # its own module: the single-host path below stays as it is
        from .native_ha import main as ha_main
        return ha_main(args)
    from . import logs

    logs.setup("native")
    root = repo_root()
    data = Path(args.data_dir).resolve()
    (data / "prometheus").mkdir(parents=True, exist_ok=True)
    (data / "alertmanager").mkdir(parents=True, exist_ok=True)
    host = args.host
    port = {name: job_port(name) for name in contract.JOBS}
    targets = {job: f"{host}:{port[job]}" for job in NATIVE_JOBS}
    prom_cfg = data / "prometheus.yml"
    prom_cfg.write_text(yaml.safe_dump(render_prometheus_config(root, targets, f"{host}:{port['alertmanager']}"), sort_keys=False))

    from . import amconfig

    bot_port = env_port("TRADEMON_BOT_PORT", contract.BOT_PORT)
    am_cfg = amconfig.render_for_native(root, data / "alertmanager-config", os.environ,
                                        alert_sink_url=f"http://{host}:{port['alert-sink']}/alerts",
                                        bot_url=f"http://{host}:{bot_port}/alerts")

    sup = Supervisor(data / "logs")
    stopping = []
    signal.signal(signal.SIGTERM, lambda *_: stopping.append(1))
    try:
        sink_file = data / "alerts.jsonl"
        sup.start(Service("alert-sink", trademon_cmd("alert-sink"), f"http://{host}:{port['alert-sink']}/healthz",
                          {"TRADEMON_ALERT_SINK_FILE": str(sink_file), "TRADEMON_ALERT_SINK_HOST": host}))
        sup.start(bot_service(host, bot_port, data, port))
        sup.start(Service("alertmanager", alertmanager_cmd(am_cfg, data / "alertmanager", port["alertmanager"], host,
                                                           f"http://{host}:{port['alertmanager']}"),
                          f"http://{host}:{port['alertmanager']}/-/ready",
                          # the time zones of the market-hours intervals, for hosts without a tz database
                          {"ZONEINFO": str(am_cfg.parent / "zoneinfo")}))
        if args.mode == "demo":
            control = env_port("TRADEMON_SIM_CONTROL_PORT", contract.SIM_CONTROL_PORT)
            sup.start(Service("sim", trademon_cmd("sim"), f"http://{host}:{control}/healthz",
                              {"TRADEMON_SIM_HOST": host}))
        else:
            sup.start(Service("ib-exporter", trademon_cmd("ib-exporter"), f"http://{host}:{port['ib-exporter']}/healthz",
                              {"TRADEMON_IB_EXPORTER_HOST": host}))
        sup.start(Service("prometheus", prometheus_cmd(prom_cfg, data / "prometheus", port["prometheus"], host),
                          f"http://{host}:{port['prometheus']}/-/ready"))
        sup.start(Service("synthetic", trademon_cmd("synthetic"), f"http://{host}:{port['synthetic']}/healthz",
                          {"TRADEMON_SYNTHETIC_HOST": host,
                           "TRADEMON_SYNTHETIC_PROMETHEUS_URL": f"http://{host}:{port['prometheus']}",
                           "TRADEMON_SYNTHETIC_ALERTMANAGER_URL": f"http://{host}:{port['alertmanager']}"}))
        print(f"trademon native ({args.mode}): Prometheus http://{host}:{port['prometheus']}, "
              f"Alertmanager http://{host}:{port['alertmanager']}; logs in {data / 'logs'}; Ctrl-C stops.", file=sys.stderr)
        while not stopping and not sup.failed():
            sup.restart_exited()
            time.sleep(0.5)
        if sup.failed():
            print(f"trademon native: {', '.join(sup.failed())} exited; see {data / 'logs'}", file=sys.stderr)
            return 1
        return 0
    except KeyboardInterrupt:
        return 0
    except (RuntimeError, tools.ToolMissing) as e:
        print(f"trademon native: {e}", file=sys.stderr)
        return 1
    finally:
        sup.stop()
