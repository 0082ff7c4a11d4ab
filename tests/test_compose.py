"""docker-compose.yml, synthetic-tests.yml, the Dockerfile and .env.example, checked
statically (no Docker engine runs here).

The Compose schema check is Docker Compose v2 itself (`docker-compose config`, from
Debian's package, fetched into .tools/bin by scripts/install-tools.sh): it validates
against the compose-spec JSON schema it embeds, interpolates variables and resolves
`extends`, and needs no engine.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import os
from pathlib import Path

import pytest
import yaml

from trademon import contract
from trademon.stack import tools
from trademon.synthetic import config as syn_config

ROOT = Path(__file__).resolve().parents[1]
COMPOSE = ROOT / "docker-compose.yml"
SYNTHETIC_TESTS = ROOT / "synthetic-tests.yml"
PROFILES = ("demo", "live", "promtail")
SIM_JOBS = ("automatictrader-api", "marketdata-stream", "position-manager", "ib-exporter")
# Services not in the contract's JOBS, and the port each listens on.
OTHER_PORTS = {"promtail": 9080, "trademon-bot": contract.BOT_PORT}
# Scrape targets that may live outside the compose file, documented in README.md.
HOST_TARGET = "host.docker.internal"
VAR_RE = re.compile(r"\$\{([A-Z0-9_]+)(?::?[-?][^}]*)?\}")


def raw(path: Path = COMPOSE) -> dict:
    return yaml.safe_load(path.read_text())


def env_example() -> dict[str, str]:
    values = {}
    for line in (ROOT / ".env.example").read_text().splitlines():
        if line and not line.startswith("#"):
            name, _, value = line.partition("=")
            values[name] = value
    return values


@pytest.fixture(scope="module")
def compose_bin() -> str:
    return tools.find("docker-compose")


def compose_config(compose_bin: str, tmp_path: Path, *args: str, file: Path = COMPOSE, extra_env: dict | None = None) -> subprocess.CompletedProcess:
    """`docker-compose config` with .env.example (plus a password) as the env file, so a
    developer's own .env plays no part."""
    env_file = tmp_path / "env"
    env_file.write_text((ROOT / ".env.example").read_text() + "\nGRAFANA_ADMIN_PASSWORD=test-only-password\n")
    cmd = [compose_bin, "--project-directory", str(ROOT), "-f", str(file), "--env-file", str(env_file)]
    for p in PROFILES:
        cmd += ["--profile", p]
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), **(extra_env or {})}
    return subprocess.run(cmd + list(args), capture_output=True, text=True, env=env, timeout=60)


@pytest.fixture(scope="module")
def resolved(compose_bin, tmp_path_factory) -> dict:
    r = compose_config(compose_bin, tmp_path_factory.mktemp("compose"), "config", "--format", "json")
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)


# --- schema ---------------------------------------------------------------------------------

@pytest.mark.compose
@pytest.mark.parametrize("file", [COMPOSE, SYNTHETIC_TESTS], ids=lambda p: p.name)
def test_valid_against_the_compose_schema(compose_bin, tmp_path, file):
    r = compose_config(compose_bin, tmp_path, "config", "--quiet", file=file)
    assert r.returncode == 0, f"docker-compose config rejected {file.name}:\n{r.stderr}"


@pytest.mark.compose
def test_the_schema_check_can_fail(compose_bin, tmp_path):
    bad = tmp_path / "bad.yml"
    bad.write_text(COMPOSE.read_text().replace("    restart: unless-stopped\n", "    restart: unless-stopped\n    restrat: always\n", 1))
    r = compose_config(compose_bin, tmp_path, "config", "--quiet", file=bad)
    assert r.returncode != 0 and "restrat" in r.stderr


def test_no_version_key():
    assert "version" not in raw()


@pytest.mark.compose
def test_a_fresh_clone_without_env_file_resolves_to_a_safe_demo(compose_bin, tmp_path):
    """`docker compose --profile demo up -d` on a fresh clone: no .env, every variable has a
    default, ports on 127.0.0.1, Grafana with its own first-login flow (admin/admin, then a
    new password), behind the exposure check."""
    clone = tmp_path / "clone"
    clone.mkdir()
    shutil.copy(COMPOSE, clone / "docker-compose.yml")
    assert not (clone / ".env").exists()
    r = subprocess.run([compose_bin, "--profile", "demo", "config", "--format", "json"], cwd=clone, capture_output=True,
                       text=True, env={"PATH": "/usr/bin:/bin", "HOME": str(tmp_path)}, timeout=60)
    assert r.returncode == 0, r.stderr
    assert "variable is not set" not in r.stderr, r.stderr
    svcs = json.loads(r.stdout)["services"]
    assert "sim" in svcs and "ib-exporter" not in svcs
    assert {p["host_ip"] for s in svcs.values() for p in s.get("ports", [])} == {"127.0.0.1"}
    assert svcs["grafana"]["environment"]["GF_SECURITY_ADMIN_PASSWORD"] == "admin"
    assert svcs["grafana"]["depends_on"]["exposure-check"]["condition"] == "service_completed_successfully"
    check = svcs["exposure-check"]
    assert check["command"] == ["check-exposure"]
    assert check["environment"] == {"TRADEMON_BIND_ADDRESS": "127.0.0.1", "GRAFANA_ADMIN_PASSWORD": ""}


def run_exposure_check(env: dict) -> subprocess.CompletedProcess:
    """The exposure-check service's command, run as its container would."""
    full = {k: v for k, v in os.environ.items() if k not in ("TRADEMON_BIND_ADDRESS", "GRAFANA_ADMIN_PASSWORD")}
    return subprocess.run([sys.executable, "-m", "trademon", "check-exposure"], env={**full, **env},
                          capture_output=True, text=True, timeout=30)


@pytest.mark.parametrize("bind, password, ok", [
    ("127.0.0.1", "", True), ("::1", "", True), ("localhost", "admin", True),
    ("0.0.0.0", "", False), ("192.168.1.5", "admin", False), ("0.0.0.0", "a-Long-own-passw0rd", True),
])
def test_exposure_check_stops_a_wide_bind_without_a_password(bind, password, ok):
    r = run_exposure_check({"TRADEMON_BIND_ADDRESS": bind, "GRAFANA_ADMIN_PASSWORD": password})
    assert (r.returncode == 0) == ok, r.stderr
    if not ok:
        assert f"TRADEMON_BIND_ADDRESS={bind}" in r.stderr and "GRAFANA_ADMIN_PASSWORD" in r.stderr, r.stderr
    if password:
        assert password not in r.stderr.replace("admin/admin", "").replace("as admin", "") or password == "admin"


@pytest.mark.compose
def test_synthetic_tests_runs_the_checks_once_on_the_stack_network(compose_bin, tmp_path):
    r = compose_config(compose_bin, tmp_path, "config", "--format", "json", file=SYNTHETIC_TESTS)
    assert r.returncode == 0, r.stderr
    cfg = json.loads(r.stdout)
    svc = cfg["services"]["synthetic-tests"]
    assert svc["command"] == ["synthetic", "--once"]
    assert svc["restart"] == "no"
    net = cfg["networks"]["default"]
    assert net["name"] == raw()["networks"]["default"]["name"] and net["external"] is True
    # The checks' settings are the stack's synthetic service's own.
    assert svc["environment"] == resolved_service(compose_bin, tmp_path, "synthetic")["environment"]


def resolved_service(compose_bin, tmp_path, name):
    r = compose_config(compose_bin, tmp_path, "config", "--format", "json")
    return json.loads(r.stdout)["services"][name]


# --- services ---------------------------------------------------------------------------------

@pytest.mark.compose
def test_the_stack_has_every_part(resolved):
    want = {"prometheus", "alertmanager", "alertmanager-config", "grafana", "loki", "promtail", "alloy", "cadvisor",
            "alert-sink", "synthetic", "sim", "ib-exporter", "trademon-bot"}
    assert want <= set(resolved["services"])


@pytest.mark.compose
def test_profiles_make_demo_and_live_one_command_each(resolved):
    svcs = resolved["services"]
    assert svcs["sim"]["profiles"] == ["demo"]
    assert svcs["ib-exporter"]["profiles"] == ["live"]
    # Alloy is the log shipper; Promtail (end of life upstream since 2026-03-02) only on request.
    assert "profiles" not in svcs["alloy"]
    assert svcs["promtail"]["profiles"] == ["promtail"]
    # Everything else runs in both modes.
    assert [n for n, s in svcs.items() if s.get("profiles") and n not in ("sim", "ib-exporter", "promtail")] == []
    # The simulator answers under the names prometheus.yml scrapes.
    assert set(svcs["sim"]["networks"]["default"]["aliases"]) == set(SIM_JOBS)
    assert "host.docker.internal=host-gateway" in svcs["ib-exporter"]["extra_hosts"] or \
           "host.docker.internal:host-gateway" in svcs["ib-exporter"]["extra_hosts"]


@pytest.mark.compose
def test_every_image_is_pinned(resolved):
    for name, svc in resolved["services"].items():
        image = svc["image"]
        repo, _, tag = image.rpartition(":")
        assert repo and "/" not in tag, f"{name}: image {image!r} has no tag"
        assert tag != "latest" and re.match(r"^v?\d+(\.\d+)+", tag), f"{name}: image {image!r} is not pinned to a version"


@pytest.mark.compose
def test_built_image_tag_is_the_package_version(resolved):
    version = re.search(r'^version = "([^"]+)"', (ROOT / "pyproject.toml").read_text(), re.M).group(1)
    built = {s["image"] for s in resolved["services"].values() if "build" in s}
    assert built == {f"trademon:{version}"}


@pytest.mark.compose
def test_long_running_services_have_healthcheck_and_restart_policy(resolved):
    for name, svc in resolved["services"].items():
        if svc.get("restart") == "no":  # one-shot steps
            assert name in ("alertmanager-config", "exposure-check")
            continue
        assert svc.get("restart") == "unless-stopped", name
        hc = svc.get("healthcheck") or {}
        assert hc.get("test") and not hc.get("disable"), f"{name} has no healthcheck"


@pytest.mark.compose
def test_trademon_healthchecks_point_at_their_own_port(resolved):
    for name, svc in resolved["services"].items():
        url = svc.get("environment", {}).get("TRADEMON_HEALTH_URL")
        if url is None:
            continue
        port = int(re.search(r":(\d+)/", url).group(1))
        expected = contract.SIM_CONTROL_PORT if name == "sim" else OTHER_PORTS.get(name) or contract.JOBS[name].port
        assert port == expected, f"{name}: health URL {url} is not on its port {expected}"


@pytest.mark.compose
def test_persistent_data_is_in_named_volumes(resolved):
    wanted = {"prometheus": "/prometheus", "grafana": "/var/lib/grafana", "loki": "/loki", "alertmanager": "/alertmanager"}
    for name, target in wanted.items():
        vols = [v for v in resolved["services"][name]["volumes"] if v["target"] == target]
        assert vols and vols[0]["type"] == "volume", f"{name}: {target} is not a named volume"


@pytest.mark.compose
def test_prometheus_flags(resolved):
    cmd = resolved["services"]["prometheus"]["command"]
    assert "--config.file=/etc/prometheus/prometheus.yml" in cmd
    assert "--storage.tsdb.retention.time=30d" in cmd
    assert "--web.enable-lifecycle" in cmd


@pytest.mark.compose
def test_grafana_signup_off_and_password_from_env(resolved):
    env = resolved["services"]["grafana"]["environment"]
    assert env["GF_USERS_ALLOW_SIGN_UP"] == "false"
    assert env["GF_SECURITY_ADMIN_PASSWORD"] == "test-only-password"


@pytest.mark.compose
def test_alertmanager_runs_the_rendered_config(resolved):
    am, init = resolved["services"]["alertmanager"], resolved["services"]["alertmanager-config"]
    # healthy = the first render is done (it keeps running to render the calendar daily)
    assert am["depends_on"]["alertmanager-config"]["condition"] == "service_healthy"
    assert init["command"] == ["am-config", "--watch"]
    assert init["environment"]["TRADEMON_AM_RELOAD_URL"] == f"http://alertmanager:{contract.JOBS['alertmanager'].port}/-/reload"
    out = init["environment"]["TRADEMON_AM_OUT"]
    assert f"--config.file={out}/alertmanager.yml" in am["command"]
    shared = {v["source"] for v in am["volumes"] if v["target"] == out} & {v["source"] for v in init["volumes"] if v["target"] == out}
    assert shared, "Alertmanager must see the rendered directory at the path am-config wrote it"
    # What the rendered config points at (secret files, templates) lives under that path.
    assert out in (ROOT / "alertmanager" / "alertmanager.yml").read_text()


# --- mounts --------------------------------------------------------------------------------

@pytest.mark.compose
def test_every_mounted_file_and_folder_exists(resolved):
    checked = 0
    for name, svc in resolved["services"].items():
        for v in svc.get("volumes", []):
            if v["type"] != "bind" or not v["source"].startswith(str(ROOT)):
                continue  # named volumes, and host paths (docker.sock, /sys) of the machine
            assert Path(v["source"]).exists(), f"{name} mounts {v['source']}, which is not in the repository"
            checked += 1
        if "build" in svc:
            ctx = Path(svc["build"]["context"])
            assert (ctx / svc["build"]["dockerfile"]).is_file()
    assert checked >= 6


@pytest.mark.compose
def test_config_files_named_in_commands_are_in_the_mounted_folders(resolved):
    """loki.yml, promtail.yml, config.alloy: the file each command names is in the folder
    mounted there."""
    for name, svc in resolved["services"].items():
        binds = {v["target"]: Path(v["source"]) for v in svc.get("volumes", []) if v["type"] == "bind"}
        for arg in svc.get("command") or []:
            m = re.search(r"(?:config\.file=)?(/etc/[\w/.-]+\.(?:ya?ml|alloy))$", arg)
            if not m:
                continue
            path = m.group(1)
            for target, source in binds.items():
                if path.startswith(target + "/"):
                    assert (source / path[len(target) + 1:]).is_file(), f"{name}: {path} -> {source / path[len(target) + 1:]} missing"


# --- ports ----------------------------------------------------------------------------------

@pytest.mark.compose
def test_no_port_is_published_on_all_interfaces(resolved):
    for name, svc in resolved["services"].items():
        for p in svc.get("ports", []):
            assert p.get("host_ip") == "127.0.0.1", f"{name} publishes {p} on {p.get('host_ip') or 'every interface'}"


def test_published_ports_use_the_bind_address_variable():
    for name, svc in raw()["services"].items():
        for p in svc.get("ports", []):
            assert isinstance(p, str) and p.startswith("${TRADEMON_BIND_ADDRESS:-127.0.0.1}:"), f"{name}: {p!r}"


@pytest.mark.compose
def test_bind_address_variable_moves_them(compose_bin, tmp_path):
    r = compose_config(compose_bin, tmp_path, "config", "--format", "json", extra_env={"TRADEMON_BIND_ADDRESS": "10.1.2.3"})
    ips = {p["host_ip"] for s in json.loads(r.stdout)["services"].values() for p in s.get("ports", [])}
    assert ips == {"10.1.2.3"}, r.stderr


def listening_ports(svc: dict, name: str) -> set[int]:
    return {int(p) for p in svc.get("expose", [])}


@pytest.mark.compose
def test_services_listen_on_the_contract_ports(resolved):
    for name, svc in resolved["services"].items():
        exposed = listening_ports(svc, name)
        if name in contract.JOBS:
            assert exposed == {contract.JOBS[name].port}, f"{name} exposes {exposed}, the contract says {contract.JOBS[name].port}"
        elif name == "sim":
            assert exposed == {contract.JOBS[j].port for j in SIM_JOBS} | {contract.SIM_CONTROL_PORT}
        elif name in OTHER_PORTS:
            assert exposed == {OTHER_PORTS[name]}
        for p in svc.get("ports", []):
            assert int(p["target"]) in exposed, f"{name} publishes {p['target']}, which it does not listen on"


@pytest.mark.compose
def test_every_scrape_target_is_a_service_on_its_port(resolved):
    prom = yaml.safe_load((ROOT / "prometheus" / "prometheus.yml").read_text())
    names: dict[str, set[int]] = {}
    for name, svc in resolved["services"].items():
        ports = listening_ports(svc, name)
        names.setdefault(name, set()).update(ports)
        for net in (svc.get("networks") or {}).values():
            for alias in (net or {}).get("aliases", []):
                # An alias stands for the job of that name: its contract port.
                names.setdefault(alias, set()).add(contract.JOBS[alias].port if alias in contract.JOBS else -1)
    docs = (ROOT / "README.md").read_text()
    seen = 0
    for sc in prom["scrape_configs"]:
        for sc_static in sc.get("static_configs", []):
            for target in sc_static["targets"]:
                host, port = target.rsplit(":", 1)
                seen += 1
                if host == HOST_TARGET:
                    assert f"{host}:{port}" in docs, f"job {sc['job_name']}: {target} is a host service, not documented in README.md"
                    continue
                assert host in names, f"job {sc['job_name']}: {host} is no service or alias of docker-compose.yml"
                assert int(port) in names[host], f"job {sc['job_name']}: {host} listens on {sorted(names[host])}, not {port}"
                if sc["job_name"] in contract.JOBS:
                    assert int(port) == contract.JOBS[sc["job_name"]].port
    for alerting in prom.get("alerting", {}).get("alertmanagers", []):
        for s in alerting.get("static_configs", []):
            for target in s["targets"]:
                host, port = target.rsplit(":", 1)
                assert int(port) in names.get(host, set()), f"alerting target {target} is not a service port"
    assert seen >= len(contract.JOBS) - 1


@pytest.mark.compose
def test_service_addresses_in_the_mounted_configs_are_compose_services(resolved):
    """Grafana's datasources, Promtail's and Alloy's Loki, Alertmanager's webhook: each
    http://name:port they name is a service of the compose file listening on that port."""
    files = [*(ROOT / "grafana" / "provisioning").rglob("*.yml"), ROOT / "alertmanager" / "alertmanager.yml",
             *(ROOT / "promtail").glob("*.yml"), *(ROOT / "alloy").glob("*.alloy")]
    seen = 0
    for f in files:
        for host, port in re.findall(r"https?://([a-z][a-z0-9-]*):(\d+)", f.read_text()):
            if host == "localhost":
                continue
            seen += 1
            assert host in resolved["services"], f"{f.relative_to(ROOT)} names {host}, which is no compose service"
            assert int(port) in listening_ports(resolved["services"][host], host), f"{f.relative_to(ROOT)}: {host} does not listen on {port}"
    assert seen >= 4


# --- .env.example -------------------------------------------------------------------------------

def compose_variables() -> set[str]:
    return set(VAR_RE.findall(COMPOSE.read_text())) | set(VAR_RE.findall(SYNTHETIC_TESTS.read_text()))


def test_env_example_lists_every_variable_with_a_comment():
    lines = (ROOT / ".env.example").read_text().splitlines()
    values = env_example()
    missing = compose_variables() - set(values)
    assert not missing, f".env.example lacks {sorted(missing)}"
    for i, line in enumerate(lines):
        if line and not line.startswith("#"):
            assert i > 0 and lines[i - 1].startswith("#"), f".env.example: {line!r} has no comment above it"
    unused = set(values) - compose_variables()
    assert not unused, f".env.example lists variables no compose file uses: {sorted(unused)}"


def test_env_example_fills_in_no_secret():
    for name, value in env_example().items():
        if re.search(r"TOKEN|PASSWORD|SECRET|WEBHOOK|KEY", name):
            assert value == "", f".env.example must leave {name} empty"


def test_env_example_states_the_synthetic_defaults():
    text = (ROOT / ".env.example").read_text()
    for check, (interval, timeout) in syn_config.TIMING_DEFAULTS.items():
        for kind, value in (("INTERVAL", interval), ("TIMEOUT", timeout)):
            var = f"TRADEMON_SYNTHETIC_{check.upper()}_{kind}"
            block = text[:text.index(f"\n{var}=")].rsplit("\n\n", 1)[-1].rsplit("=", 1)[-1]
            assert f"default {value:g}" in block, f".env.example: the comment of {var} must say its default {value:g}"


# --- Dockerfile -----------------------------------------------------------------------------------

def dockerfile_stages() -> list[list[str]]:
    stages: list[list[str]] = []
    text = (ROOT / "Dockerfile").read_text().replace("\\\n", " ")
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        if line.upper().startswith("FROM "):
            stages.append([])
        if stages:
            stages[-1].append(line)
    return stages


def test_dockerfile_is_multi_stage_and_pinned():
    stages = dockerfile_stages()
    assert len(stages) >= 2
    args = dict(re.findall(r"^ARG (\w+)=(\S+)", (ROOT / "Dockerfile").read_text(), re.M))
    for stage in stages:
        image = stage[0].split()[1]
        image = re.sub(r"\$\{(\w+)\}", lambda m: args[m.group(1)], image)
        assert re.match(r"^[\w./-]+:\d+(\.\d+)+[\w.-]*$", image), f"base image {image!r} is not pinned to a version"


def test_final_stage_is_not_root_and_has_no_build_tools():
    final = dockerfile_stages()[-1]
    users = [line.split()[1] for line in final if line.upper().startswith("USER ")]
    assert users, "the final stage sets no USER: it would run as root"
    assert users[-1].split(":")[0] not in ("root", "0"), users[-1]
    body = "\n".join(final)
    for tool in ("apt-get install", "apk add", "gcc", "build-essential", "pip install", "make "):
        assert tool not in body, f"the final stage runs {tool!r}: build tools belong in the build stage"
    assert any(line.upper().startswith("HEALTHCHECK ") for line in final)
    assert any(line.startswith("COPY --from=") for line in final)


def test_dockerignore_lets_in_only_the_package():
    lines = [line for line in (ROOT / ".dockerignore").read_text().splitlines() if line and not line.startswith("#")]
    assert lines[0] == "*"
    allowed = {line[1:].rstrip("/") for line in lines if line.startswith("!")}
    assert allowed == {"pyproject.toml", "README.md", "exporters"}
    copied = re.findall(r"^COPY (?!--from)(.+) \S+$", (ROOT / "Dockerfile").read_text(), re.M)
    for c in copied:
        for src in c.split():
            assert src.rstrip("/") in allowed, f"the Dockerfile copies {src}, which .dockerignore leaves out"


# --- README.md ---------------------------------------------------------------------------

@pytest.mark.compose
def test_operations_doc_ports_table_matches_the_contract_and_compose(resolved):
    rows = {}
    for line in (ROOT / "README.md").read_text().splitlines():
        m = re.match(r"^\| `([\w-]+)` \| ([^|]+) \|", line)
        if m:
            rows[m.group(1)] = {int(p) for p in re.findall(r"\b(\d{4,5})\b", m.group(2))}
    for name, svc in resolved["services"].items():
        assert name in rows, f"README.md's services table lacks {name}"
        assert rows[name] == listening_ports(svc, name), f"README.md: {name} ports {rows[name]} != {listening_ports(svc, name)}"
    for job in contract.JOBS.values():
        if job.name in rows:
            assert job.port in rows[job.name]
    trading = next(line for line in (ROOT / "README.md").read_text().splitlines() if line.startswith("| the trader's services"))
    for job in contract.jobs_of_kind("trading"):
        assert f"`{job}` {contract.JOBS[job].port}" in trading


def test_nothing_autoheals_a_gateway_into_a_2fa_storm():
    """docs/ib-gateway.md's restart policy: no autoheal container, no restart on a health check.
    Each gateway start is a login, and after IB's weekly re-authentication each login a 2FA push."""
    for path in (COMPOSE, ROOT / "docker-compose.ha.yml", SYNTHETIC_TESTS):
        text = path.read_text().lower()
        assert "autoheal" not in text, f"{path.name}: an autoheal container restarts on health checks"
        for name, svc in (raw(path).get("services") or {}).items():
            assert not any("autoheal" in str(k).lower() for k in (svc.get("labels") or {})), f"{path.name}: {name}"
    doc = (ROOT / "docs" / "ib-gateway.md").read_text()
    assert "restart: on-failure:3" in doc and "livenessProbe" in doc and "ib_gateway_2fa_required" in doc
