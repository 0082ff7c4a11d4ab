"""``trademon native --ha``: the HA layout without Docker, on one host (to try it, or on two
hosts with the peers' addresses): two Alertmanagers gossiping, two Prometheus replicas
sending to both and writing into VictoriaMetrics, plus the services of ``trademon native``.

The same functions (trademon.stack.scaleout) make the tested layout (tests/test_ha_alerting.py,
tests/test_store_live.py). Ports of the second nodes and the store move with variables like
every other port: TRADEMON_PROMETHEUS_B_PORT, TRADEMON_ALERTMANAGER_B_PORT,
TRADEMON_ALERTMANAGER_CLUSTER_PORT, TRADEMON_ALERTMANAGER_B_CLUSTER_PORT,
TRADEMON_VICTORIAMETRICS_PORT.
"""

from __future__ import annotations

import os
import signal
import socket
import sys
from pathlib import Path

import yaml

from trademon.alertmanager import amconfig
from trademon import contract
from trademon.stack import scaleout, tools
from trademon.settings.env import env_port, env_str, job_port
from trademon.stack.native import (NATIVE_JOBS, Service, Supervisor, alertmanager_cmd, am_watch_service, bot_service, prometheus_cmd,
                                   render_prometheus_config, repo_root, thresholds_service, trademon_cmd)

# Second nodes: the first node's port + 100, so the pair reads as one (9090/9190, 9093/9193).
SECOND = 100


def ports(env=None) -> dict[str, int]:
    env = os.environ if env is None else env
    p = {job: job_port(job, env) for job in contract.JOBS}
    p["prometheus-b"] = env_port("TRADEMON_PROMETHEUS_B_PORT", contract.JOBS["prometheus"].port + SECOND, env)
    p["alertmanager-b"] = env_port("TRADEMON_ALERTMANAGER_B_PORT", contract.JOBS["alertmanager"].port + SECOND, env)
    p["gossip"] = env_port("TRADEMON_ALERTMANAGER_CLUSTER_PORT", scaleout.ALERTMANAGER_CLUSTER_PORT, env)
    p["gossip-b"] = env_port("TRADEMON_ALERTMANAGER_B_CLUSTER_PORT", scaleout.ALERTMANAGER_CLUSTER_PORT + SECOND, env)
    p["victoriametrics"] = env_port("TRADEMON_VICTORIAMETRICS_PORT", scaleout.VICTORIAMETRICS_PORT, env)
    return p


def main(args) -> int:
    from trademon.runtime import logs

    logs.setup("native")
    root = repo_root()
    data = Path(args.data_dir).resolve()
    host = args.host
    port = ports()
    trading_host = env_str("TRADEMON_HOST", socket.gethostname())
    ams = [f"{host}:{port['alertmanager']}", f"{host}:{port['alertmanager-b']}"]
    gossip = [f"{host}:{port['gossip']}", f"{host}:{port['gossip-b']}"]
    scrape = scrape_interval(root)

    targets = {job: f"{host}:{port[job]}" for job in NATIVE_JOBS}
    proms = []
    for replica, pport in (("a", port["prometheus"]), ("b", port["prometheus-b"])):
        cfg = render_prometheus_config(root, {**targets, "prometheus": f"{host}:{pport}"}, None, thresholds_dir=data / "thresholds")
        cfg = scaleout.ha_prometheus_config(cfg, alertmanagers=ams, replica=replica, host=trading_host,
                                            remote_write=f"http://{host}:{port['victoriametrics']}{scaleout.REMOTE_WRITE_PATH}")
        path = data / f"prometheus-{replica}.yml"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(yaml.safe_dump(cfg, sort_keys=False))
        proms.append((replica, pport, path))
    bot_port = env_port("TRADEMON_BOT_PORT", contract.BOT_PORT)
    am_cfg = amconfig.render_for_native(root, data / "alertmanager-config", os.environ,
                                        alert_sink_url=f"http://{host}:{port['alert-sink']}/alerts",
                                        bot_url=f"http://{host}:{bot_port}/alerts")
    zoneinfo = {"ZONEINFO": str(am_cfg.parent / "zoneinfo")}

    services = [Service("victoriametrics", scaleout.victoriametrics_cmd(data / "victoriametrics", port["victoriametrics"], host,
                                                                       dedup_interval=scrape),
                        f"http://{host}:{port['victoriametrics']}/health"),
                Service("alert-sink", trademon_cmd("alert-sink"), f"http://{host}:{port['alert-sink']}/healthz",
                        {"TRADEMON_ALERT_SINK_FILE": str(data / "alerts.jsonl"), "TRADEMON_ALERT_SINK_HOST": host}),
                bot_service(host, bot_port, data, port)]
    for name, web, listen in (("alertmanager", port["alertmanager"], gossip[0]), ("alertmanager-b", port["alertmanager-b"], gossip[1])):
        cmd = alertmanager_cmd(am_cfg, data / name, web, host, f"http://{host}:{web}")
        services.append(Service(name, scaleout.clustered(cmd, listen, gossip), f"http://{host}:{web}/-/ready", zoneinfo))
    watch = am_watch_service(root, am_cfg.parent, host, port, f"http://{host}:{port['alert-sink']}/alerts",
                             bot_url=f"http://{host}:{bot_port}/alerts")
    watch.env["TRADEMON_AM_RELOAD_URL"] = ",".join(f"http://{a}/-/reload" for a in ams)  # both nodes read the file
    services.append(watch)
    thresholds = thresholds_service(root, data / "thresholds", host, port)
    thresholds.env["TRADEMON_THRESHOLDS_RELOAD_URL"] = ",".join(f"http://{host}:{p}/-/reload" for _, p, _ in proms)  # both replicas
    services.append(thresholds)
    if args.mode == "demo":
        control = env_port("TRADEMON_SIM_CONTROL_PORT", contract.SIM_CONTROL_PORT)
        services.append(Service("sim", trademon_cmd("sim"), f"http://{host}:{control}/healthz", {"TRADEMON_SIM_HOST": host}))
    else:
        services.append(Service("ib-exporter", trademon_cmd("ib-exporter"), f"http://{host}:{port['ib-exporter']}/healthz",
                                {"TRADEMON_IB_EXPORTER_HOST": host}))
    services += [Service(f"prometheus-{replica}", prometheus_cmd(path, data / f"prometheus-{replica}", pport, host),
                         f"http://{host}:{pport}/-/ready") for replica, pport, path in proms]
    # The synthetic checks watch the first node of each pair (its partner is scraped and alerted on).
    services.append(Service("synthetic", trademon_cmd("synthetic"), f"http://{host}:{port['synthetic']}/healthz",
                            {"TRADEMON_SYNTHETIC_HOST": host, "TRADEMON_SYNTHETIC_PROMETHEUS_URL": f"http://{host}:{port['prometheus']}",
                             "TRADEMON_SYNTHETIC_ALERTMANAGER_URL": f"http://{host}:{port['alertmanager']}"}))
    banner = (f"trademon native --ha ({args.mode}, host={trading_host}): Prometheus http://{host}:{port['prometheus']} and "
              f"http://{host}:{port['prometheus-b']}, Alertmanager http://{host}:{port['alertmanager']} and "
              f"http://{host}:{port['alertmanager-b']} (gossip {', '.join(gossip)}), VictoriaMetrics "
              f"http://{host}:{port['victoriametrics']}; logs in {data / 'logs'}; Ctrl-C stops.")
    return run(services, data / "logs", banner)


def run(services: list[Service], log_dir: Path, banner: str, name: str = "trademon native --ha") -> int:
    """Start ``services`` in order, each once healthy, until SIGTERM/Ctrl-C or one exits."""
    sup = Supervisor(log_dir)
    stopping = []
    signal.signal(signal.SIGTERM, lambda *_: stopping.append(1))
    try:
        for svc in services:
            sup.start(svc)
        print(banner, file=sys.stderr)
        failed = sup.watch(stopping)
        if failed:
            print(f"{name}: {', '.join(failed)} exited; see {log_dir}", file=sys.stderr)
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
