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
from collections.abc import Mapping
from typing import BinaryIO

import requests
import yaml

from trademon import contract
from trademon.settings import paths
from trademon.stack import tools
from trademon.settings.env import env_port, job_port

log = logging.getLogger("trademon.native")

# Jobs whose service has no native process here (Grafana, Loki, Promtail, cAdvisor run in
# Docker only); they are left out of the natively rendered prometheus.yml.
NATIVE_JOBS = ("automatictrader-api", "marketdata-stream", "position-manager", "ib-exporter",
               "synthetic", "alert-sink", "prometheus", "alertmanager", "alertmanager-config", "thresholds")
# prometheus.yml's folder of the threshold rules the thresholds service renders (a volume in
# compose); natively, a folder of the data directory.
THRESHOLDS_RULES = "../monitoring/thresholds/*.yml"


def repo_root() -> Path:
    return paths.require_checkout("native")


def render_prometheus_config(root: Path, targets: Mapping[str, str], alertmanager: str | None,
                             scrape_interval: str | None = None, evaluation_interval: str | None = None,
                             thresholds_dir: Path | None = None) -> dict:
    """The project's prometheus.yml with job targets replaced by ``targets`` (job -> host:port);
    jobs not in ``targets`` are dropped. Rule files become absolute paths; the threshold rules
    are read from ``thresholds_dir`` (where the thresholds service renders them)."""
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
    rule_files = [r for r in cfg.get("rule_files", []) if r != THRESHOLDS_RULES]
    if len(rule_files) == len(cfg.get("rule_files", [])):
        raise ValueError(f"prometheus/prometheus.yml has no rule_files entry {THRESHOLDS_RULES} (the rendered thresholds)")
    cfg["rule_files"] = [str((src.parent / r).resolve()) if not os.path.isabs(r) else r for r in rule_files]
    if thresholds_dir is not None:
        cfg["rule_files"].append(str(thresholds_dir / "*.yml"))
    if alertmanager:  # the address changes; alert relabelling stays as shipped
        cfg.setdefault("alerting", {})["alertmanagers"] = [{"static_configs": [{"targets": [alertmanager]}]}]
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


def _last_words(path: Path) -> str:
    """The last line a service logged (its JSON ``message`` when it has one), for the error."""
    import json

    try:
        lines = [line for line in path.read_text(errors="replace").splitlines() if line.strip()]
    except OSError:
        return ""
    if not lines:
        return ""
    try:
        doc = json.loads(lines[-1])
        last = doc.get("message", lines[-1]) if isinstance(doc, dict) else lines[-1]
    except json.JSONDecodeError:
        last = lines[-1]
    return f"; it said: {last[:300]}"


class Supervisor:
    """Starts services in order, waits for each to be healthy, stops them all in reverse."""

    def __init__(self, log_dir: Path, env: Mapping[str, str] | None = None):
        self.log_dir = log_dir
        self.env = dict(os.environ if env is None else env)
        self.procs: list[tuple[Service, subprocess.Popen, BinaryIO]] = []
        self._backoff: dict[str, tuple[int, float]] = {}  # restart: name -> (failures in a row, not before)

    def start(self, svc: Service, timeout: float = 30.0) -> None:
        self.log_dir.mkdir(parents=True, exist_ok=True)
        logf = open(self.log_dir / f"{svc.name}.log", "ab")
        env = dict(self.env)
        env.update(svc.env)
        p = subprocess.Popen(svc.cmd, stdout=logf, stderr=subprocess.STDOUT, env=env, start_new_session=True)
        self.procs.append((svc, p, logf))
        deadline = time.monotonic() + timeout
        while True:
            if p.poll() is not None:
                raise RuntimeError(f"{svc.name} exited with {p.returncode}; see {self.log_dir / (svc.name + '.log')}"
                                   + _last_words(self.log_dir / f"{svc.name}.log"))
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
        for _svc, p, logf in reversed(self.procs):
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

    def watch(self, stopping: list) -> list[str]:
        """Keep the services up (restarting those with ``restart``) until ``stopping`` gets an
        item (SIGTERM) or one without ``restart`` exits; the names of those that exited."""
        while not stopping and not self.failed():
            self.restart_exited()
            time.sleep(0.5)
        return self.failed()

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
                    # the checkout's monitoring/config.yml, runbooks.md and alertmanager/alertmanager.yml, as compose mounts them
                    "TRADEMON_BOT_CONFIG_ROOT": str(repo_root()),
                    "TRADEMON_BOT_ALERTMANAGER_URL": f"http://{host}:{port['alertmanager']}",
                    "TRADEMON_BOT_PROMETHEUS_URL": f"http://{host}:{port['prometheus']}",
                    "TRADEMON_BOT_ALERT_SINK_URL": f"http://{host}:{port['alert-sink']}/alerts"}, restart=True)


# The simulator's flags native passes on (demo mode), each overriding its variable.
SIM_FLAGS = {
    "--speed": ("TRADEMON_SIM_SPEED", "demo time compression: the simulator and every duration of the alert path "
                                      "(rules' for and windows, scrape/evaluation intervals, Alertmanager's waits) "
                                      "run this many times faster (default 1)"),
    "--scenarios": ("TRADEMON_SIM_SCENARIOS", "comma list of scenarios active at start"),
    "--seed": ("TRADEMON_SIM_SEED", "seed of the simulated world (default 1)"),
}


def am_watch_service(root: Path, out: Path, host: str, port: Mapping[str, int], alert_sink_url: str,
                     timescale: float = 1.0, bot_url: str | None = None) -> Service:
    """`am-config --watch`: renders the market calendar again daily and reloads Alertmanager
    (keeping the demo's time compression)."""
    return Service("alertmanager-config",
                   trademon_cmd("am-config", "--watch", "--source", str(root / "alertmanager"), "--out", str(out),
                                "--alert-sink-url", alert_sink_url, *(["--bot-url", bot_url] if bot_url else [])),
                   f"http://{host}:{port['alertmanager-config']}/readyz",
                   {"TRADEMON_ALERTMANAGER_CONFIG_HOST": host,
                    "TRADEMON_AM_RELOAD_URL": f"http://{host}:{port['alertmanager']}/-/reload",
                    "TRADEMON_AM_TIMESCALE": str(timescale)})


def thresholds_service(root: Path, out: Path, host: str, port: Mapping[str, int]) -> Service:
    """`thresholds --watch`: the checkout's monitoring/config.yml rendered into ``out`` (which
    Prometheus loads) on every change, Prometheus reloaded; restarted when it exits."""
    return Service("thresholds", trademon_cmd("thresholds", "--watch", "--root", str(root), "--out", str(out)),
                   f"http://{host}:{port['thresholds']}/healthz",
                   {"TRADEMON_THRESHOLDS_HOST": host, "TRADEMON_THRESHOLDS_PORT": str(port["thresholds"]),
                    "TRADEMON_THRESHOLDS_RELOAD_URL": f"http://{host}:{port['prometheus']}/-/reload"}, restart=True)


def configure(parser) -> None:
    from trademon.settings.env import add_env_flags

    parser.add_argument("--mode", choices=["demo", "live"], default="demo",
                        help="demo: the simulator stands in for the trading services and the broker; "
                             "live: the IB exporter against TWS/IB Gateway, trading services on their own ports")
    parser.add_argument("--data-dir", default="var/native", help="Prometheus/Alertmanager data, rendered configs and logs (default: var/native)")
    parser.add_argument("--host", default="127.0.0.1", help="address every service listens on (default 127.0.0.1)")
    parser.add_argument("--ha", action="store_true",
                        help="HA layout: two Prometheus replicas, two gossiping Alertmanagers, VictoriaMetrics (README: Scaling out)")
    parser.add_argument("--env-file", default=None,
                        help="variables as for docker compose (default: .env in the repository, if there); "
                             "a variable set in the shell wins")
    add_env_flags(parser, SIM_FLAGS)


def load_env(args, root: Path) -> tuple[dict[str, str], Path | None]:
    """The environment every service gets: the shell, over the .env file, under the flags."""
    from trademon.settings.env import ConfigError, environ_with_env_file

    path = Path(args.env_file) if args.env_file else root / ".env"
    env = dict(os.environ)
    found = path.is_file()
    if found:
        env = environ_with_env_file(path, env)
    elif args.env_file:
        raise ConfigError("--env-file", args.env_file, "no such file", "a file of KEY=VALUE lines, like .env.example")
    for variable, _ in SIM_FLAGS.values():
        value = getattr(args, variable, None)
        if value is not None:
            env[variable] = str(value)
    return env, path if found else None


def planned_ports(mode: str, env: Mapping[str, str]) -> list[tuple[str, str, int]]:
    """(service, variable that moves it, port) of everything native is about to bind."""
    from trademon.settings.env import port_variable

    out = [(j, port_variable(j), job_port(j, env)) for j in ("alert-sink", "alertmanager", "prometheus", "synthetic", "thresholds")]
    out.append(("trademon bot", "TRADEMON_BOT_PORT", env_port("TRADEMON_BOT_PORT", contract.BOT_PORT, env)))
    if mode == "live":
        return out + [("ib-exporter", port_variable("ib-exporter"), job_port("ib-exporter", env))]
    sim_jobs = (contract.API, contract.MD, contract.PM, contract.IB)  # the jobs the simulator answers as
    out += [(f"sim as {j}", port_variable(j), job_port(j, env)) for j in sim_jobs]
    control = "TRADEMON_SIM_CONTROL_PORT"
    return out + [("sim scenario switch", control, env_port(control, contract.SIM_CONTROL_PORT, env))]


def port_busy(host: str, port: int) -> bool:
    import socket

    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as the services bind: TIME_WAIT is not busy
        try:
            s.bind((host, port))
        except OSError:
            return True
    return False


def who_answers(host: str, port: int) -> str:
    """A guess at what holds the port, from what it answers over HTTP."""
    base = f"http://{'[' + host + ']' if ':' in host else host}:{port}"
    try:
        r = requests.get(f"{base}/-/ready", timeout=1)
        if r.ok and "Prometheus" in r.text:
            return "a Prometheus"
        if r.ok and requests.get(f"{base}/api/v2/status", timeout=1).ok:
            return "an Alertmanager"
        if requests.get(f"{base}/healthz", timeout=1).ok:
            return "a trademon service"
        return "an HTTP server"
    except requests.RequestException:
        return "a program"


def busy_ports(mode: str, host: str, env: Mapping[str, str]) -> list[str]:
    """One line per port native needs that something else already holds."""
    return [f"{svc}: {host}:{port} is held by {who_answers(host, port)} (move it with {var})"
            for svc, var, port in planned_ports(mode, env) if port_busy(host, port)]


def ensure_tools(root: Path) -> None:
    """Prometheus and Alertmanager binaries; on first run, fetch them (scripts/install-tools.sh)."""
    try:
        tools.find("prometheus"), tools.find("alertmanager")
        return
    except tools.ToolMissing:
        script = root / "scripts" / "install-tools.sh"
        if not script.is_file():
            raise
    print(f"trademon native: first run: fetching Prometheus and Alertmanager into {tools.tools_dir()} "
          f"(scripts/install-tools.sh)", file=sys.stderr)
    r = subprocess.run([str(script)], cwd=root)
    if r.returncode != 0:
        raise tools.ToolMissing(f"scripts/install-tools.sh failed (exit {r.returncode}); run it by hand to see why")
    tools.find("prometheus"), tools.find("alertmanager")


def where(data: Path, env_file: Path | None, host: str, port: Mapping[str, int], mode: str, speed: float,
          control: int | None) -> str:
    """What a newcomer needs after start: the addresses, and where the record, logs and data are."""
    lines = [f"trademon native ({mode}{f', speed {speed:g}' if speed != 1 else ''}) is up; Ctrl-C stops it.",
             f"  Prometheus    http://{host}:{port['prometheus']}  (alerts: /alerts, targets: /targets)",
             f"  Alertmanager  http://{host}:{port['alertmanager']}"]
    if control is not None:
        lines.append(f"  scenarios     curl -X POST {host}:{control}/scenarios/loss-breach   (guided tour: trademon demo)")
    lines += [f"  notifications {data / 'alerts.jsonl'}  (every notification, one JSON line each)",
              f"  logs          {data / 'logs'}/<service>.log",
              f"  data          {data}/prometheus, {data}/alertmanager; rendered configs in {data}",
              f"  settings from {env_file if env_file else 'the shell only (no .env)'}"]
    return "\n".join(lines)


def main(args) -> int:
    if args.ha:  # its own module: the single-host path below stays as it is
        from trademon.stack.native_ha import main as ha_main
        return ha_main(args)
    from trademon.runtime import logs
    from trademon.settings.env import env_float

    root = repo_root()
    env, env_file = load_env(args, root)
    from trademon.settings.env import read_env_file

    file_values = read_env_file(env_file) if env_file is not None else {}
    logs.setup("native", env.get("TRADEMON_LOG_LEVEL") or "info")
    speed = env_float("TRADEMON_SIM_SPEED", 1.0, 0.01, 1000.0, env=env)
    if args.mode == "live" and speed != 1:
        from trademon.settings.env import ConfigError
        raise ConfigError("TRADEMON_SIM_SPEED", str(speed), "time compression is for the demo only",
                          "leave it unset with --mode live")
    host = args.host
    if args.mode == "demo":
        # The simulator's settings, checked here so a bad value stops everything before it
        # starts, and the error says where the value came from.
        from trademon.settings.env import ConfigError
        from trademon.sim import settings as sim_settings

        try:
            sim_settings.load(env)
        except ConfigError as e:
            if env_file is not None and e.variable in file_values and getattr(args, e.variable, None) is None \
                    and not (os.environ.get(e.variable) or "").strip():
                raise ConfigError(e.variable, e.value, f"{e.problem} (set in {env_file})", e.allowed) from None
            raise
        # The simulator is the broker in the demo: IB's reset schedule does not apply to it, and
        # would hold the TWS page for 15 minutes around midnight New York. Set either to keep it.
        for name in ("TRADEMON_IB_MAINTENANCE", "TRADEMON_IB_GATEWAY_RESTART"):
            if not (env.get(name) or "").strip():
                env[name] = "none"
    # Before anything starts: a second stack would answer the first one's health checks.
    busy = busy_ports(args.mode, host, env)
    if busy:
        print("trademon native: not starting, ports in use (is a trademon stack already running? "
              "another `trademon native`, or `docker compose up`):\n  " + "\n  ".join(busy), file=sys.stderr)
        return 2
    ensure_tools(root)
    data = Path(args.data_dir).resolve()
    (data / "prometheus").mkdir(parents=True, exist_ok=True)
    (data / "alertmanager").mkdir(parents=True, exist_ok=True)
    port = {name: job_port(name, env) for name in contract.JOBS}
    targets = {job: f"{host}:{port[job]}" for job in NATIVE_JOBS}
    compress = args.mode == "demo" and speed > 1
    prom = render_prometheus_config(root, targets, f"{host}:{port['alertmanager']}", thresholds_dir=data / "thresholds")
    if compress:
        from trademon.stack import timescale

        g = prom["global"]
        g["scrape_interval"] = timescale.scaled(g.get("scrape_interval", "1m"), speed, timescale.FLOOR_S)
        g["evaluation_interval"] = timescale.scaled(g.get("evaluation_interval", "1m"), speed, timescale.FLOOR_S)
        g["scrape_timeout"] = min(g["scrape_interval"], g.get("scrape_timeout", "10s"), key=_seconds)
        for sc in prom["scrape_configs"]:
            sc.pop("scrape_interval", None)
            sc.pop("scrape_timeout", None)
        import glob

        # the threshold rules change at run time and hold no duration: loaded as rendered
        generated, rendered = prom["rule_files"][:-1], prom["rule_files"][-1:]
        files = [Path(f) for pattern in generated for f in sorted(glob.glob(pattern))]
        prom["rule_files"] = timescale.scale_rule_files(files, data / "rules", speed) + rendered
    prom_cfg = data / "prometheus.yml"
    prom_cfg.write_text(yaml.safe_dump(prom, sort_keys=False))

    from trademon.alertmanager import amconfig

    bot_port = env_port("TRADEMON_BOT_PORT", contract.BOT_PORT, env)
    am_cfg = amconfig.render_for_native(root, data / "alertmanager-config", env,
                                        alert_sink_url=f"http://{host}:{port['alert-sink']}/alerts",
                                        bot_url=f"http://{host}:{bot_port}/alerts")
    if compress:
        timescale.scale_alertmanager_config(am_cfg, speed)

    sup = Supervisor(data / "logs", env)
    stopping = []
    signal.signal(signal.SIGTERM, lambda *_: stopping.append(1))
    control = None
    try:
        sink_file = data / "alerts.jsonl"
        sup.start(Service("alert-sink", trademon_cmd("alert-sink"), f"http://{host}:{port['alert-sink']}/healthz",
                          {"TRADEMON_ALERT_SINK_FILE": str(sink_file), "TRADEMON_ALERT_SINK_HOST": host,
                           "TRADEMON_ALERT_SINK_PORT": str(port["alert-sink"])}))
        sup.start(bot_service(host, bot_port, data, port))
        sup.start(Service("alertmanager", alertmanager_cmd(am_cfg, data / "alertmanager", port["alertmanager"], host,
                                                           f"http://{host}:{port['alertmanager']}"),
                          f"http://{host}:{port['alertmanager']}/-/ready",
                          # the time zones of the market-hours intervals, for hosts without a tz database
                          {"ZONEINFO": str(am_cfg.parent / "zoneinfo")}))
        sup.start(am_watch_service(root, am_cfg.parent, host, port, f"http://{host}:{port['alert-sink']}/alerts",
                                   speed if compress else 1.0, bot_url=f"http://{host}:{bot_port}/alerts"))
        sup.start(thresholds_service(root, data / "thresholds", host, port))
        if args.mode == "demo":
            control = env_port("TRADEMON_SIM_CONTROL_PORT", contract.SIM_CONTROL_PORT, env)
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
                           "TRADEMON_SYNTHETIC_ALERTMANAGER_URL": f"http://{host}:{port['alertmanager']}",
                           # the trading services where this run put them (ports moved in .env included),
                           # unless .env points the checks elsewhere
                           **{var: f"http://{host}:{port[job]}" for var, job in
                              (("TRADEMON_SYNTHETIC_API_URL", contract.API), ("TRADEMON_SYNTHETIC_POSITION_MANAGER_URL", contract.PM))
                              if not (env.get(var) or "").strip()}}))
        print(where(data, env_file, host, port, args.mode, speed, control), file=sys.stderr, flush=True)
        failed = sup.watch(stopping)
        if failed:
            for name in failed:
                print(f"trademon native: {name} exited; see {data / 'logs' / (name + '.log')}"
                      + _last_words(data / "logs" / f"{name}.log"), file=sys.stderr)
            return 1
        return 0
    except KeyboardInterrupt:
        return 0
    except (RuntimeError, tools.ToolMissing) as e:
        print(f"trademon native: {e}", file=sys.stderr)
        return 1
    finally:
        sup.stop()
