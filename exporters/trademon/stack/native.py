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
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from collections.abc import Collection, Mapping
from typing import BinaryIO

import yaml

from trademon.runtime import http, logs
from trademon.runtime.backoff import delay
from trademon.settings import paths
from trademon.settings.env import port_variable
from trademon.settings.values import seconds
from trademon.stack import services, tools

log = logging.getLogger("trademon.native")

# The jobs scraped natively (the demo's); those whose service runs in Docker only (Grafana,
# Loki, Promtail, cAdvisor) are left out of the natively rendered prometheus.yml.
NATIVE_JOBS = tuple(services.jobs("demo", ha=False))
# prometheus.yml's folder of the threshold rules the thresholds service renders (a volume in
# compose); natively, a folder of the data directory.
THRESHOLDS_RULES = "../monitoring/thresholds/*.yml"


def repo_root() -> Path:
    return paths.require_checkout("native")


def render_prometheus_config(root: Path, targets: Mapping[str, str | list[str]], alertmanager: str | None,
                             scrape_interval: str | None = None, evaluation_interval: str | None = None,
                             thresholds_dir: Path | None = None, token_file: Path | None = None) -> dict:
    """The project's prometheus.yml with job targets replaced by ``targets`` (job -> host:port);
    jobs not in ``targets`` are dropped. Rule files become absolute paths; the threshold rules
    are read from ``thresholds_dir`` (where the thresholds service renders them), last. The jobs
    that send TRADEMON_API_TOKEN read it from ``token_file``; without one they send nothing."""
    src = root / "prometheus" / "prometheus.yml"
    cfg = yaml.safe_load(src.read_text())
    g = cfg.setdefault("global", {})
    if scrape_interval:
        g["scrape_interval"] = scrape_interval
        g["scrape_timeout"] = min(scrape_interval, g.get("scrape_timeout", scrape_interval), key=seconds)
    if evaluation_interval:
        g["evaluation_interval"] = evaluation_interval
    kept = []
    for sc in cfg.get("scrape_configs", []):
        job = sc["job_name"]
        if job not in targets:
            continue
        t = targets[job]
        sc["static_configs"] = [{"targets": [t] if isinstance(t, str) else list(t)}]
        if "authorization" in sc:
            if token_file is None:
                del sc["authorization"]
            else:
                sc["authorization"]["credentials_file"] = str(token_file)
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


def prometheus_cmd(config: Path, data: Path, port: int, host: str = "127.0.0.1", retention: str = "30d") -> list[str]:
    return [tools.find("prometheus"), f"--config.file={config}", f"--storage.tsdb.path={data}",
            f"--storage.tsdb.retention.time={retention}", f"--web.listen-address={host}:{port}",
            "--web.enable-lifecycle", "--log.format=json"]


def alertmanager_cmd(config: Path, data: Path, port: int, host: str = "127.0.0.1", external_url: str | None = None) -> list[str]:
    cmd = [tools.find("alertmanager"), f"--config.file={config}", f"--storage.path={data}",
           f"--web.listen-address={host}:{port}",
           "--cluster.listen-address=",  # a single instance: no gossip port
           "--log.format=json"]
    if external_url:  # the UI and API stay at / whatever path the external URL has, as in compose
        cmd += [f"--web.external-url={external_url}", "--web.route-prefix=/"]
    return cmd


def trademon_cmd(*args: str) -> list[str]:
    return [sys.executable, "-m", "trademon", *args]


@dataclass
class Service:
    name: str
    cmd: list[str]
    health: str  # URL answering 2xx once up
    env: dict = field(default_factory=dict)
    # started again when it exits, as compose's `restart: unless-stopped` does for every service: a
    # trademon service whose loop died exits 1 for exactly this (runtime/service.py, Runner)
    restart: bool = True
    together: bool = False  # may stop at once with the others so marked (nothing waits on it to leave)


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
                if http.request("GET", svc.health, timeout=2).is_success:
                    break
            except http.Error:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"{svc.name} not healthy at {svc.health} after {timeout}s; see {self.log_dir / (svc.name + '.log')}")
            time.sleep(0.2)
        log.info("service up", extra={"svc": svc.name, "health": svc.health, **logs.DISTINCT})

    def stop(self, timeout: float = 10.0) -> None:
        """Stop every service: those that may stop ``together`` all at once (so that takes as
        long as the slowest, not the sum), then the others one by one, the last started
        first (a Prometheus flushes into the store before the store stops; an Alertmanager
        leaves the gossip while its peer still listens). SIGKILL after ``timeout``."""
        def term(p: subprocess.Popen) -> None:
            if p.poll() is None:
                try:
                    os.killpg(p.pid, signal.SIGTERM)
                except ProcessLookupError:
                    pass

        def wait(p: subprocess.Popen) -> None:
            try:
                p.wait(timeout)
            except subprocess.TimeoutExpired:
                try:
                    os.killpg(p.pid, signal.SIGKILL)
                    p.wait(5)
                except ProcessLookupError:
                    pass

        together = [p for svc, p, _ in self.procs if svc.together]
        for p in together:
            term(p)
        for p in together:
            wait(p)
        for svc, p, _ in reversed(self.procs):
            if not svc.together:
                term(p)
                wait(p)
        for _svc, _p, logf in self.procs:
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
                backoff[svc.name] = (failures + 1, time.monotonic() + delay(failures + 1, 1.0, 60.0))
                log.error("restart failed", extra={"svc": svc.name, "error": str(e)})


# The simulator's flags native passes on (demo mode), each overriding its variable.
SIM_FLAGS = {
    "--speed": ("TRADEMON_SIM_SPEED", "demo time compression: the simulator and every duration of the alert path "
                                      "(rules' for and windows, scrape/evaluation intervals, Alertmanager's waits) "
                                      "run this many times faster (default 1)"),
    "--scenarios": ("TRADEMON_SIM_SCENARIOS", "comma list of scenarios active at start"),
    "--seed": ("TRADEMON_SIM_SEED", "seed of the simulated world (default 1)"),
}


def configure(parser) -> None:
    from trademon.settings.env import add_env_flags

    parser.add_argument("--mode", choices=["demo", "live"], default="demo",
                        help="demo: the simulator stands in for the trading services and the broker; "
                             "live: the IB exporter against TWS/IB Gateway, trading services on their own ports")
    parser.add_argument("--data-dir", default="var/native", help="Prometheus/Alertmanager data, rendered configs and logs (default: var/native)")
    parser.add_argument("--host", default="127.0.0.1", help="address every service listens on (default 127.0.0.1)")
    parser.add_argument("--ha", action="store_true",
                        help="HA layout: two Prometheus replicas, two gossiping Alertmanagers, VictoriaMetrics (docs/scaling-out.md)")
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


def planned_ports(mode: str, env: Mapping[str, str], ha: bool = False) -> list[tuple[str, str, int]]:
    """(service, variable that moves it, port) of everything native is about to bind."""
    return services.planned(mode, ha, env)


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
        r = http.request("GET", f"{base}/-/ready", timeout=1)
        if r.is_success and "Prometheus" in r.text:
            return "a Prometheus"
        if r.is_success and http.request("GET", f"{base}/api/v2/status", timeout=1).is_success:
            return "an Alertmanager"
        if http.request("GET", f"{base}/healthz", timeout=1).is_success:
            return "a trademon service"
        return "an HTTP server"
    except http.Error:
        return "a program"


def busy_ports(mode: str, host: str, env: Mapping[str, str], ha: bool = False) -> list[str]:
    """One line per port native needs that something else already holds."""
    return [f"{svc}: {host}:{port} is held by {who_answers(host, port)} (move it with {var})"
            for svc, var, port in planned_ports(mode, env, ha) if port_busy(host, port)]


def ensure_tools(root: Path, ha: bool = False) -> None:
    """Prometheus and Alertmanager binaries (and VictoriaMetrics for HA); on first run, fetch
    them (scripts/install-tools.sh)."""
    needed = ("prometheus", "alertmanager", *(("victoria-metrics",) if ha else ()))
    try:
        for b in needed:
            tools.find(b)
        return
    except tools.ToolMissing:
        script = root / "scripts" / "install-tools.sh"
        if not script.is_file():
            raise
    print(f"trademon native: first run: fetching Prometheus and Alertmanager into {tools.tools_dir()} "
          f"(scripts/install-tools.sh)", file=sys.stderr)
    r = subprocess.run([str(script)], cwd=root)
    if r.returncode != 0:
        raise tools.ToolMissing(f"scripts/install-tools.sh failed (exit {r.returncode}) fetching {', '.join(needed)}; "
                                f"run it by hand where the network is reachable, or put the binaries in {tools.tools_dir()}")
    for b in needed:
        tools.find(b)


def where(data: Path, env_file: Path | None, layout: services.Layout, speed: float) -> str:
    """What a newcomer needs after start: the addresses, and where the record, logs and data are."""
    mode, base = layout.mode, layout.base
    pair = lambda n: base[n] + (f" and {base[n + '-b']}" if n + "-b" in base else "")  # noqa: E731
    lines = [f"trademon native{' --ha' if layout.ha else ''} ({mode}{f', speed {speed:g}' if speed != 1 else ''}) is up; "
             "Ctrl-C stops it.",
             f"  Prometheus    {pair('prometheus')}  (alerts: /alerts, targets: /targets)",
             f"  Alertmanager  {pair('alertmanager')}"]
    if "victoriametrics" in base:
        lines.append(f"  store         {base['victoriametrics']}  (VictoriaMetrics, both replicas write here)")
    if "sim" in base:
        lines.append(f"  scenarios     curl -X POST {base['sim'].removeprefix('http://')}/scenarios/loss-breach   "
                     "(guided tour: trademon demo)")
    lines += [f"  notifications {data / 'alerts.jsonl'}  (every notification, one JSON line each)",
              f"  logs          {data / 'logs'}/<service>.log",
              f"  data          {', '.join(f'{data}/{p.name}' for p in layout.parts if p.engine)}; rendered configs in {data}",
              f"  settings from {env_file if env_file else 'the shell only (no .env)'}"]
    return "\n".join(lines)


def _compress(prom: dict, speed: float, rules_out: Path) -> None:
    """The demo's time compression of a rendered prometheus.yml: intervals and rules."""
    import glob

    from trademon.stack import timescale

    g = prom["global"]
    g["scrape_interval"] = timescale.scaled(g.get("scrape_interval", "1m"), speed, timescale.FLOOR_S)
    g["evaluation_interval"] = timescale.scaled(g.get("evaluation_interval", "1m"), speed, timescale.FLOOR_S)
    g["scrape_timeout"] = min(g["scrape_interval"], g.get("scrape_timeout", "10s"), key=seconds)
    for sc in prom["scrape_configs"]:
        sc.pop("scrape_interval", None)
        sc.pop("scrape_timeout", None)
    # the threshold rules (last) change at run time and hold no duration: loaded as rendered
    generated, rendered = prom["rule_files"][:-1], prom["rule_files"][-1:]
    files = [Path(f) for pattern in generated for f in sorted(glob.glob(pattern))]
    prom["rule_files"] = timescale.scale_rule_files(files, rules_out, speed) + rendered


def prometheus_configs(root: Path, data: Path, layout: services.Layout, speed: float | None) -> dict[str, Path]:
    """The rendered prometheus.yml of each Prometheus of the layout (the HA pair: one replica
    each, sending to both Alertmanagers and writing into the store), time-compressed when
    ``speed`` is given."""
    from trademon.alertmanager import amconfig
    from trademon.stack import scaleout

    port, host = layout.port, layout.host
    targets = services.scrape_targets(layout.mode, layout.ha, host, port, layout.env)
    out = {}
    for i, p in enumerate(pr for pr in layout.parts if pr.engine == "prometheus"):
        # the token file am-config renders beside alertmanager.yml (main() renders both before starting)
        cfg = render_prometheus_config(root, targets, f"{host}:{port['alertmanager']}", thresholds_dir=data / "thresholds",
                                       token_file=amconfig.token_file(data / "alertmanager-config"))
        if layout.ha:
            cfg = scaleout.ha_prometheus_config(
                cfg, alertmanagers=[f"{host}:{port[a.name]}" for a in layout.parts if a.engine == "alertmanager"],
                replica="ab"[i], host=(layout.env.get("TRADEMON_HOST") or "").strip() or socket.gethostname(),
                remote_write=f"{layout.base['victoriametrics']}{scaleout.REMOTE_WRITE_PATH}")
        if speed is not None:
            _compress(cfg, speed, data / "rules")
        path = data / ("prometheus.yml" if not layout.ha else f"{p.name}.yml")
        path.write_text(yaml.safe_dump(cfg, sort_keys=False))
        out[p.name] = path
    return out


def native_paths(root: Path, data: Path, am_out: Path) -> dict[str, str]:
    """Where the description's files and directories are natively (compose mounts volumes there)."""
    return {"TRADEMON_ALERT_SINK_FILE": str(data / "alerts.jsonl"), "TRADEMON_BOT_STATE_DIR": str(data / "bot"),
            # the checkout's monitoring/config.yml, runbooks.md and alertmanager/alertmanager.yml, as compose mounts them
            "TRADEMON_BOT_CONFIG_ROOT": str(root), "TRADEMON_AM_SOURCE": str(root / "alertmanager"),
            "TRADEMON_AM_OUT": str(am_out),
            # the checkout's monitoring/config.yml and rules; the threshold rules Prometheus loads
            "TRADEMON_THRESHOLDS_ROOT": str(root), "TRADEMON_THRESHOLDS_OUT": str(data / "thresholds"),
            # the time zones of the market-hours intervals, for hosts without a tz database
            "ZONEINFO": str(am_out / "zoneinfo")}


def native_services(layout: services.Layout, root: Path, data: Path, am_cfg: Path, prom_files: Mapping[str, Path],
                    timescale: float = 1.0, names: Collection[str] | None = None) -> list[Service]:
    """The description's services (those in ``names``, default all) as processes on this
    host, in start order."""
    from trademon.stack import scaleout

    host, port, base = layout.host, layout.port, layout.base
    files = native_paths(root, data, am_cfg.parent)
    gossip = [f"{host}:{port[p.name + ':cluster']}" for p in layout.parts if p.name + ":cluster" in port]
    # Alertmanager's links point where the user reaches it (ALERTMANAGER_URL), as in compose.
    external = (layout.env.get("ALERTMANAGER_URL") or "").strip()
    out = []
    for p in layout.parts:
        if names is not None and p.name not in names:
            continue
        env = {var: files[var] for var in p.paths}
        if p.engine == "prometheus":
            cmd = prometheus_cmd(prom_files[p.name], data / p.name, port[p.name], host)
            if timescale != 1:
                from trademon.stack.timescale import prometheus_args

                cmd += prometheus_args(timescale)
        elif p.engine == "alertmanager":
            cmd = alertmanager_cmd(am_cfg, data / p.name, port[p.name], host, external or base[p.name])
            if layout.ha:
                cmd = scaleout.clustered(cmd, f"{host}:{port[p.name + ':cluster']}", gossip)
        elif p.engine == "victoria-metrics":
            cmd = scaleout.victoriametrics_cmd(data / p.name, port[p.name], host, dedup_interval=scrape_interval(root))
        else:
            cmd = trademon_cmd(*p.command)
            env.update({p.listen: host, p.port_var: str(port[p.name])} if p.listen and p.port_var else {})
            env.update({port_variable(job): str(port[job]) for job in p.answers_as})  # the simulator's other ports
            env.update(layout.wiring(p))
            if p.name == "alertmanager-config":
                env["TRADEMON_AM_TIMESCALE"] = str(timescale)  # keeps the demo's compression in every render
        # trademon's own services hand nothing over on the way out: they stop together
        out.append(Service(p.name, cmd, p.health_url(base[p.name]), env, restart=p.restart, together=not p.engine))
    return out


def main(args) -> int:
    from trademon.alertmanager import amconfig
    from trademon.settings.env import ConfigError, env_float, read_env_file

    root = repo_root()
    env, env_file = load_env(args, root)
    file_values = read_env_file(env_file) if env_file is not None else {}
    logs.setup("native", env.get("TRADEMON_LOG_LEVEL") or "info")
    speed = env_float("TRADEMON_SIM_SPEED", 1.0, 0.01, 1000.0, env=env)
    name = "trademon native" + (" --ha" if args.ha else "")
    if args.mode == "live" and speed != 1:
        raise ConfigError("TRADEMON_SIM_SPEED", str(speed), "time compression is for the demo only",
                          "leave it unset with --mode live")
    host = args.host
    if args.mode == "demo":
        # The simulator's settings, checked here so a bad value stops everything before it
        # starts, and the error says where the value came from.
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
        for variable in ("TRADEMON_IB_MAINTENANCE", "TRADEMON_IB_GATEWAY_RESTART"):
            if not (env.get(variable) or "").strip():
                env[variable] = "none"
    # Before anything starts: a second stack would answer the first one's health checks.
    busy = busy_ports(args.mode, host, env, args.ha)
    if busy:
        print(f"{name}: not starting, ports in use (is a trademon stack already running? "
              "another `trademon native`, or `docker compose up`):\n  " + "\n  ".join(busy), file=sys.stderr)
        return 2
    try:
        ensure_tools(root, args.ha)
    except tools.ToolMissing as e:
        print(f"{name}: {e}", file=sys.stderr)
        return 1
    data = Path(args.data_dir).resolve()
    data.mkdir(parents=True, exist_ok=True)
    layout = services.Layout(args.mode, args.ha, host, env)
    compress = args.mode == "demo" and speed > 1
    prom_files = prometheus_configs(root, data, layout, speed if compress else None)
    am_cfg = amconfig.render_for_native(root, data / "alertmanager-config", env,
                                        alert_sink_url=f"{layout.base['alert-sink']}/alerts",
                                        bot_url=f"{layout.base['trademon-bot']}/alerts")
    if compress:
        from trademon.stack import timescale

        timescale.scale_alertmanager_config(am_cfg, speed)
    todo = native_services(layout, root, data, am_cfg, prom_files, speed if compress else 1.0)
    sup = Supervisor(data / "logs", env)
    stopping: list = []
    signal.signal(signal.SIGTERM, lambda *_: stopping.append(1))
    try:
        for svc in todo:
            sup.start(svc)
        print(where(data, env_file, layout, speed), file=sys.stderr, flush=True)
        failed = sup.watch(stopping)
        if failed:
            for svc_name in failed:
                print(f"{name}: {svc_name} exited; see {data / 'logs' / (svc_name + '.log')}"
                      + _last_words(data / "logs" / f"{svc_name}.log"), file=sys.stderr)
            return 1
        return 0
    except KeyboardInterrupt:
        return 0
    except (RuntimeError, tools.ToolMissing) as e:
        print(f"{name}: {e}", file=sys.stderr)
        return 1
    finally:
        sup.stop()


def scrape_interval(root: Path) -> str:
    """VictoriaMetrics deduplicates at the scrape interval of prometheus.yml."""
    return yaml.safe_load((root / "prometheus" / "prometheus.yml").read_text())["global"]["scrape_interval"]
