"""docker-compose.ha.yml, the HA and store override of docker-compose.yml, checked by Docker
Compose itself (`docker-compose config` on both files) and against what it must say: the
generated HA Prometheus config, every Prometheus and Alertmanager doubled, the gossip peers,
the store's pinned version and retention, and Grafana's store datasource. The engines
themselves run with the same configuration in tests/test_ha_alerting.py and
tests/test_store_live.py.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
import yaml

from trademon.gen import ha as gen_ha
from trademon.stack import scaleout, tools

from tests.test_versions import versions

pytestmark = pytest.mark.compose  # every test reads `docker-compose config` of the HA files

ROOT = Path(__file__).resolve().parents[1]
HA = ROOT / "docker-compose.ha.yml"


@pytest.fixture(scope="module")
def resolved(tmp_path_factory) -> dict:
    tmp = tmp_path_factory.mktemp("compose-ha")
    env_file = tmp / "env"
    env_file.write_text((ROOT / ".env.example").read_text() + "\nGRAFANA_ADMIN_PASSWORD=test-only-password\n")
    cmd = [tools.find("docker-compose"), "--project-directory", str(ROOT), "-f", str(ROOT / "docker-compose.yml"),
           "-f", str(HA), "--env-file", str(env_file), "--profile", "demo", "config", "--format", "json"]
    r = subprocess.run(cmd, check=False, capture_output=True, text=True, env={"PATH": "/usr/bin:/bin", "HOME": str(tmp)}, timeout=60)
    assert r.returncode == 0, f"docker-compose config rejected docker-compose.ha.yml:\n{r.stderr}"
    return json.loads(r.stdout)


def flag(cmd: list[str], name: str) -> list[str]:
    return [c.split("=", 1)[1] for c in cmd if c.startswith(f"{name}=")]


def test_every_prometheus_runs_the_ha_config_as_its_own_replica(resolved):
    s = resolved["services"]
    replicas = {}
    for name in ("prometheus", "prometheus-b"):
        cmd = s[name]["command"]
        assert flag(cmd, "--config.file") == ["/etc/prometheus/prometheus.ha.yml"]
        assert "--enable-feature=expand-external-labels" in cmd
        replicas[name] = s[name]["environment"]["TRADEMON_REPLICA"]
        assert s[name]["environment"]["TRADEMON_HOST"] == "trading-1"
    assert len(set(replicas.values())) == 2


def test_ha_prometheus_config_sends_to_every_alertmanager_and_targets_exist(resolved):
    cfg = yaml.safe_load((ROOT / "prometheus" / "prometheus.ha.yml").read_text())
    ams = cfg["alerting"]["alertmanagers"][0]["static_configs"][0]["targets"]
    names = set(resolved["services"])
    assert {a.split(":")[0] for a in ams} == {n for n in names if n.startswith("alertmanager") and n != "alertmanager-config"}
    shipped = yaml.safe_load((ROOT / "prometheus" / "prometheus.yml").read_text())["alerting"]["alert_relabel_configs"]
    # prometheus.yml's relabelling (the synthetic breaker is a self-test), then the replica label dropped
    assert cfg["alerting"]["alert_relabel_configs"] == [*shipped, {"action": "labeldrop", "regex": scaleout.REPLICA_LABEL}]
    assert cfg["global"]["external_labels"] == {"replica": "${TRADEMON_REPLICA}", "host": "${TRADEMON_HOST}"}
    store = cfg["remote_write"][0]
    assert store["url"].split("/")[2].split(":")[0] in names
    assert store["write_relabel_configs"] == [{"action": "labeldrop", "regex": scaleout.REPLICA_LABEL}]
    for sc in cfg["scrape_configs"]:
        for t in sc["static_configs"][0]["targets"]:
            host = t.split(":")[0]
            aliases = {a for svc in resolved["services"].values() for net in (svc.get("networks") or {}).values()
                       for a in ((net or {}).get("aliases") or [])}
            assert host in names | aliases, f"{sc['job_name']}: {t} is no service of docker-compose.yml + docker-compose.ha.yml"


def test_alertmanagers_gossip_with_each_other(resolved):
    s = resolved["services"]
    for name in ("alertmanager", "alertmanager-b"):
        cmd = s[name]["command"]
        assert flag(cmd, "--cluster.listen-address") == [f"0.0.0.0:{scaleout.ALERTMANAGER_CLUSTER_PORT}"]
        assert {p.split(":")[0] for p in flag(cmd, "--cluster.peer")} == {"alertmanager", "alertmanager-b"}
        assert flag(cmd, "--config.file") == ["/alertmanager-config/alertmanager.yml"]
        assert not s[name].get("ports") or name == "alertmanager"  # the second node is reached through the first's UI


def test_store_is_the_pinned_victoriametrics_with_a_year_and_dedup_at_the_scrape_interval(resolved):
    vm = resolved["services"]["victoriametrics"]
    assert vm["image"] == f"victoriametrics/victoria-metrics:v{versions()['VICTORIA_METRICS_VERSION']}.0"
    cmd = vm["command"]
    assert flag(cmd, "-retentionPeriod") == [scaleout.VICTORIAMETRICS_RETENTION]
    scrape = yaml.safe_load((ROOT / "prometheus" / "prometheus.yml").read_text())["global"]["scrape_interval"]
    assert flag(cmd, "-dedup.minScrapeInterval") == [scrape]
    assert all(p["host_ip"] == "127.0.0.1" for p in vm["ports"])


def test_grafana_gets_the_store_datasource(resolved):
    mounts = {v["target"]: v["source"] for v in resolved["services"]["grafana"]["volumes"] if v["type"] == "bind"}
    assert mounts["/etc/grafana/provisioning"].endswith(gen_ha.STORE_PROVISIONING)
    ds = yaml.safe_load((ROOT / gen_ha.STORE_PROVISIONING / "datasources" / "trademon.yml").read_text())["datasources"]
    vm = next(d for d in ds if d["uid"] == gen_ha.VICTORIAMETRICS_DATASOURCE["uid"])
    assert vm["type"] == "prometheus" and vm["url"].split("//")[1].split(":")[0] in resolved["services"]
    default = yaml.safe_load((ROOT / "grafana" / "provisioning" / "datasources" / "trademon.yml").read_text())["datasources"]
    assert ds[: len(default)] == default  # the single-host datasources, unchanged


def test_second_nodes_run_the_same_images_as_the_first(resolved):
    s = resolved["services"]
    assert s["prometheus-b"]["image"] == s["prometheus"]["image"]
    assert s["alertmanager-b"]["image"] == s["alertmanager"]["image"]


def test_both_alertmanagers_wait_for_the_render_and_are_reloaded_by_it(resolved):
    """alertmanager-config keeps running (the market calendar is rendered daily): the second
    node waits for it to be healthy, not to exit, and each render reloads both nodes."""
    s = resolved["services"]
    for name in ("alertmanager", "alertmanager-b"):
        assert s[name]["depends_on"]["alertmanager-config"]["condition"] == "service_healthy", name
    urls = s["alertmanager-config"]["environment"]["TRADEMON_AM_RELOAD_URL"].split(",")
    assert sorted(urls) == ["http://alertmanager-b:9093/-/reload", "http://alertmanager:9093/-/reload"]
