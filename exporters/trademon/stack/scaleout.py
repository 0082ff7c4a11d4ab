"""Past one machine, on the engines the Prometheus world runs: Prometheus replicas and an
Alertmanager gossip cluster for a pager without a single point of failure, and remote_write
into VictoriaMetrics for a long-term store shared by several trading hosts.

Everything here derives from the single-host files (prometheus/prometheus.yml, the rendered
Alertmanager config): the HA layout adds labels, peers and a remote_write, nothing else, so
the two can never disagree on a job, a rule or a route. ``trademon native --ha``, the tests
and the generator of the HA compose files (trademon.gen.ha) use these functions.
"""

from __future__ import annotations

import copy
from pathlib import Path

from trademon.stack import tools

# The external label that tells Prometheus replicas apart. It must not reach Alertmanager
# (the replicas' copies of an alert would differ by it and page twice) nor the store (the
# replicas' samples would be two series instead of one to deduplicate).
REPLICA_LABEL = "replica"
# The external label naming the trading host a Prometheus watches; it does reach alerts and
# the store, so a page and a dashboard say which host.
HOST_LABEL = "host"

# Defaults of the engines themselves, named once.
ALERTMANAGER_CLUSTER_PORT = 9094  # Alertmanager's gossip port
VICTORIAMETRICS_PORT = 8428  # VictoriaMetrics' HTTP port (ingest, query, /metrics)
VICTORIAMETRICS_RETENTION = "1y"
REMOTE_WRITE_PATH = "/api/v1/write"


def ha_prometheus_config(cfg: dict, *, alertmanagers: list[str], replica: str | None,
                         host: str | None = None, remote_write: str | None = None) -> dict:
    """``cfg`` (a rendered prometheus.yml, alerting included or not) as one replica of an HA pair.

    - ``external_labels``: ``replica`` (and ``host`` when given; ``${VAR}`` works with
      ``--enable-feature=expand-external-labels``, so one file serves every replica);
    - every Alertmanager listed directly (never behind a load balancer: each must get every
      alert, the cluster deduplicates the notifications), with the replica label dropped
      from alerts so both replicas' alerts are one alert to Alertmanager;
    - ``remote_write`` into the store with the replica label dropped, so both replicas write
      the same series and the store keeps one sample per interval.
    """
    out = copy.deepcopy(cfg)
    labels = out.setdefault("global", {}).setdefault("external_labels", {})
    if replica is not None:
        labels[REPLICA_LABEL] = replica
    if host is not None:
        labels[HOST_LABEL] = host
    def drop():
        return [{"action": "labeldrop", "regex": REPLICA_LABEL}]
    if alertmanagers:  # prometheus.yml's alert relabelling stays (the synthetic breaker is a self-test), then the replica goes
        kept = (out.get("alerting") or {}).get("alert_relabel_configs", [])
        out["alerting"] = {"alert_relabel_configs": [*kept, *drop()],
                           "alertmanagers": [{"static_configs": [{"targets": list(alertmanagers)}]}]}
    if remote_write:
        out["remote_write"] = [{"url": remote_write, "write_relabel_configs": drop()}]
    return out


# How long a node waits per position in the cluster for the earlier nodes' notification log
# entries before it sends itself (Alertmanager's default: 15 s). A node that died is counted
# until gossip declares it dead (about 5.5 s: probe interval 1 s, probe timeout 0.5 s,
# suspicion 4 probe intervals), so a group flushed meanwhile waited one whole peer timeout
# on the survivor: a page 17.5-18.9 s after the breach instead of about 6. 5 s still covers
# what the first node's sending takes (the alert-sink and the bot answer in milliseconds;
# the bot also takes a notification it already has once; Slack and SMTP in a second or
# two) plus the gossip of its log entry (200 ms interval); a slower one is sent twice,
# never lost (Alertmanager fails open).
PEER_TIMEOUT = "5s"


def alertmanager_cluster_args(listen: str, peers: list[str], peer_timeout: str | None = PEER_TIMEOUT) -> list[str]:
    """Gossip flags: listen on ``listen`` (host:port), join every other node in ``peers``.
    Loopback needs the advertise address said explicitly (Alertmanager looks for a private
    address otherwise and refuses to start without one)."""
    args = [f"--cluster.listen-address={listen}", f"--cluster.advertise-address={listen}"]
    args += [f"--cluster.peer={p}" for p in peers if p != listen]
    if peer_timeout:
        args.append(f"--cluster.peer-timeout={peer_timeout}")
    return args


def clustered(am_cmd: list[str], listen: str, peers: list[str], peer_timeout: str | None = PEER_TIMEOUT) -> list[str]:
    """An Alertmanager command line (trademon.stack.native.alertmanager_cmd) with gossip on."""
    cmd = [a for a in am_cmd if not a.startswith("--cluster.")]
    return cmd + alertmanager_cluster_args(listen, peers, peer_timeout)


def victoriametrics_cmd(data: Path, port: int, host: str = "127.0.0.1", *, dedup_interval: str = "15s",
                        retention: str = VICTORIAMETRICS_RETENTION) -> list[str]:
    """Single-node VictoriaMetrics. ``dedup_interval`` must equal the scrape interval: the
    replicas' samples of one series within it are kept once."""
    return [tools.find("victoria-metrics"), f"-storageDataPath={data}", f"-retentionPeriod={retention}",
            f"-httpListenAddr={host}:{port}", f"-dedup.minScrapeInterval={dedup_interval}",
            "-loggerFormat=json"]
