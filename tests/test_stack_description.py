"""The stack is described once (trademon.stack.services); docker-compose.yml,
docker-compose.ha.yml, prometheus/prometheus.ha.yml and the Kubernetes base are checked
against that description here: a service, port, variable or relabelling present in one and
not the others fails. (The YAML is read directly; `docker compose config` runs in
tests/test_compose.py.)"""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from trademon import contract
from trademon.stack import native, scaleout, services
from trademon.stack.services import BY_NAME, DOCKER_ONLY, PARTS, render

ROOT = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.unit


def compose(name: str = "docker-compose.yml") -> dict:
    return yaml.safe_load((ROOT / name).read_text())["services"]


# In compose every service is reached by its name on its contract port.
COMPOSE_BASE = {**{p.name: f"http://{p.name}:{p.port}" for p in PARTS},
                **{j: f"http://{j}:{contract.JOBS[j].port}" for j in contract.JOBS}}


def _env(svc: dict) -> dict[str, str]:
    env = svc.get("environment") or {}
    return dict(e.split("=", 1) for e in env) if isinstance(env, list) else {k: str(v) for k, v in env.items()}


def _depends(svc: dict) -> dict[str, str]:
    dep = svc.get("depends_on") or {}
    return {d: "service_started" for d in dep} if isinstance(dep, list) else {k: v.get("condition", "service_started")
                                                                                for k, v in dep.items()}


def test_compose_has_the_described_services_and_no_other():
    single, ha = compose(), compose("docker-compose.ha.yml")
    assert set(single) == {p.name for p in PARTS if not p.ha} | set(DOCKER_ONLY)
    assert {p.name for p in PARTS if p.ha} <= set(ha)
    assert set(ha) - {p.name for p in PARTS} <= set(DOCKER_ONLY), "the HA override adds a service not described"


@pytest.mark.parametrize("part", [p for p in PARTS if p.command], ids=lambda p: p.name)
def test_a_trademon_service_in_compose_is_the_description(part):
    svc = compose()[part.name]
    assert svc["command"] == list(part.command)
    assert str(part.port) in svc["expose"]
    assert svc.get("profiles", [None]) == [part.profile]
    env = _env(svc)
    assert env.pop("TRADEMON_HEALTH_URL") == f"http://127.0.0.1:{part.port}{part.health}"
    assert env.pop(part.listen) == "0.0.0.0"
    for var, template in part.wiring.items():
        want = render(template, COMPOSE_BASE)
        assert env.pop(var, None) == (f"${{{var}:-{want}}}" if var in part.overridable else want), var
    for var in part.paths:
        assert env.pop(var, "").startswith("/"), var
    for var in part.settings:
        assert env.pop(var, "").startswith(f"${{{var}:-"), f"{var}: a setting of .env, passed through"
    assert env == {}, f"in docker-compose.yml and not in the description: {sorted(env)}"


@pytest.mark.parametrize("part", PARTS, ids=lambda p: p.name)
def test_ports_restart_and_order_in_compose(part):
    single, ha = compose(), compose("docker-compose.ha.yml")
    svc = {**single.get(part.name, {}), **ha.get(part.name, {})} if part.ha else single[part.name]
    assert str(part.port) in svc["expose"]
    assert (svc.get("restart") == "unless-stopped") == part.restart
    assert {k: v for k, v in _depends(svc).items() if k in BY_NAME} == dict(part.depends_on)
    if part.name in ha and "depends_on" in ha[part.name] and not part.ha:
        assert {k: v for k, v in _depends(ha[part.name]).items() if k in BY_NAME} == {**part.depends_on, **part.ha_depends_on}
    assert set(svc.get("networks", {}).get("default", {}).get("aliases", [])) == set(part.answers_as)
    for job in part.answers_as:
        assert str(contract.JOBS[job].port) in svc["expose"]
    for var in part.paths:
        assert var in _env(svc)
    before = [p.name for p in PARTS[:PARTS.index(part)]]
    assert all(d in before for d in part.depends_on), "natively the description's order is the start order"


def test_the_ha_override_is_the_description():
    ha = compose("docker-compose.ha.yml")
    for part in PARTS:
        if part.ha_wiring:
            env = _env(ha[part.name])
            assert env == {v: render(t, COMPOSE_BASE) for v, t in part.ha_wiring.items()}
        if part.cluster_port:
            svc = {**compose(), **ha}[part.name]
            cmd = svc.get("command") or ha[part.name]["command"]
            assert f"--cluster.listen-address=0.0.0.0:{part.cluster_port}" in cmd
            # the same cluster timings as natively (scaleout.alertmanager_cluster_args)
            native_flags = [a for a in scaleout.alertmanager_cluster_args("h:1", ["h:1", "h:2"])
                            if not a.startswith(("--cluster.listen-address", "--cluster.advertise-address", "--cluster.peer="))]
            assert [a for a in cmd if a.startswith("--cluster.") and a.split("=")[0] not in
                    ("--cluster.listen-address", "--cluster.peer")] == native_flags
            assert str(part.cluster_port) in ha[part.name]["expose"]


def _relabel(cfg: dict) -> list:
    return (cfg.get("alerting") or {}).get("alert_relabel_configs", [])


def test_every_prometheus_config_keeps_the_alert_relabelling():
    shipped = yaml.safe_load((ROOT / "prometheus" / "prometheus.yml").read_text())
    assert _relabel(shipped), "prometheus.yml relabels the synthetic breaker"
    ha = yaml.safe_load((ROOT / "prometheus" / "prometheus.ha.yml").read_text())
    assert _relabel(ha)[:len(_relabel(shipped))] == _relabel(shipped)


@pytest.mark.parametrize("ha", [False, True], ids=["single", "ha"])
def test_native_configs_keep_the_relabelling_and_scrape_every_node(tmp_path, ha):
    shipped = yaml.safe_load((ROOT / "prometheus" / "prometheus.yml").read_text())
    layout = services.Layout("demo", ha, "127.0.0.1", {})
    files = native.prometheus_configs(ROOT, tmp_path, layout, speed=30)
    assert len(files) == (2 if ha else 1)
    for path in files.values():
        cfg = yaml.safe_load(path.read_text())
        assert _relabel(cfg)[:len(_relabel(shipped))] == _relabel(shipped)
        jobs = {sc["job_name"]: sc["static_configs"][0]["targets"] for sc in cfg["scrape_configs"]}
        for job in ("prometheus", "alertmanager"):
            nodes = [n for n in (job, f"{job}-b") if n in layout.port]
            assert jobs[job] == [f"127.0.0.1:{layout.port[n]}" for n in nodes]
        sent_to = cfg["alerting"]["alertmanagers"][0]["static_configs"][0]["targets"]
        assert sent_to == [f"127.0.0.1:{layout.port[n]}" for n in ("alertmanager", "alertmanager-b") if n in layout.port]


def test_the_ha_compose_prometheus_scrapes_every_node():
    ha = yaml.safe_load((ROOT / "prometheus" / "prometheus.ha.yml").read_text())
    jobs = {sc["job_name"]: sc["static_configs"][0]["targets"] for sc in ha["scrape_configs"]}
    for p in PARTS:
        job = p.name.removesuffix("-b")
        if job in contract.JOBS and p.engine:
            assert f"{p.name}:{p.port}" in jobs[job], p.name


def test_the_kubernetes_base_is_the_description():
    from trademon.gen import kubernetes

    docs = list(yaml.safe_load_all((ROOT / kubernetes.BASE / "trademon.yaml").read_text()))
    base = {**COMPOSE_BASE, "prometheus": kubernetes.PROMETHEUS_URL, "alertmanager": kubernetes.ALERTMANAGER_URL}
    deployed = [d for d in docs if d["kind"] == "Deployment"]
    assert deployed
    for d in deployed:
        part = BY_NAME[d["metadata"]["name"]]
        (c,) = d["spec"]["template"]["spec"]["containers"]
        assert c["args"] == list(part.command)
        assert [p["containerPort"] for p in c["ports"]] == [part.port]
        assert c["livenessProbe"]["httpGet"]["path"] == part.health
        assert c["readinessProbe"]["httpGet"]["path"] == kubernetes.READY_PATH
        env = {e["name"]: e["value"] for e in c["env"] if "value" in e}
        from_secrets = {e["name"] for e in c["env"] if "valueFrom" in e}  # the bot's Telegram settings
        assert from_secrets <= set(part.settings), sorted(from_secrets - set(part.settings))
        assert env.pop(part.listen) == "0.0.0.0" and env.pop(part.port_var) == str(part.port)
        for var, template in part.wiring.items():
            assert env.pop(var, None) == render(template, base), var
        for var in part.paths:
            assert env.pop(var, "").startswith("/"), var
        unknown = set(env) - set(part.settings)
        assert not unknown, f"in the Kubernetes base and not in the description: {sorted(unknown)}"


def test_the_kubernetes_base_runs_every_described_service_or_says_why_not():
    """A trademon service added to the description is deployed on Kubernetes too, or the
    generator says why not (kubernetes.LEFT_OUT); the engines are the Operator's."""
    from trademon.gen import kubernetes

    docs = yaml.safe_load_all((ROOT / kubernetes.BASE / "trademon.yaml").read_text())
    deployed = {d["metadata"]["name"] for d in docs if d["kind"] == "Deployment"}
    described = {p.name for p in PARTS if p.command}
    assert deployed == described - set(kubernetes.LEFT_OUT)
    assert set(kubernetes.LEFT_OUT) <= described, "a reason kept for a service the description no longer has"


def test_the_kubernetes_prometheus_keeps_the_alert_relabelling():
    """The Operator's Prometheus gets prometheus.yml's alert relabelling (kube-prometheus-stack's
    values): without it the synthetic check's test breaker reached Alertmanager as a critical
    CircuitBreakerTripped, without self_test."""
    from trademon.gen import kubernetes

    shipped = yaml.safe_load((ROOT / "prometheus" / "prometheus.yml").read_text())
    values = yaml.safe_load((ROOT / kubernetes.VALUES).read_text())
    assert values["prometheus"]["prometheusSpec"]["additionalAlertRelabelConfigs"] == _relabel(shipped)
