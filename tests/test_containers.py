"""The container layer: the stack as the trader runs it, `docker compose` under a real Docker engine.

Images are built locally under this run's own names, never upstream's, and removed at the end
(tests/support/containers.py; tests/images/README.md says what stands in for what); compose
runs them through its image settings (TRADEMON_IMAGE, PROMETHEUS_IMAGE, ALERTMANAGER_IMAGE). The project's own docker-compose.yml runs with one override,
tests/images/compose.not-run.yml, that leaves out the services whose images cannot be had
here (NOT_RUN). Commands quoted from README.md and docs/operations.md are run as written, with only the published
ports (free ports, since others share this machine) and `<name>` placeholders filled in.

Select with `-m containers`, leave out with `-m "not containers"`. A missing engine fails:
scripts/test starts one when the machine allows it (tests must never hide a missing tool).
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
import requests
import yaml

from tests.support import containers
from tests.support.procs import free_port
from tests.test_thresholds import DOCKER_GEN_ROW
from trademon.stack import tools

pytestmark = pytest.mark.containers

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()
OPERATIONS = (ROOT / "docs" / "operations.md").read_text()
THRESHOLDS_DOC = (ROOT / "docs" / "thresholds.md").read_text()
NOT_RUN = ("grafana", "loki", "promtail", "alloy", "cadvisor")  # no image here: not run, never faked
TRADEMON_UID, NOBODY = "10001", "65534"


def compose_services() -> dict:
    return yaml.safe_load((ROOT / "docker-compose.yml").read_text())["services"]


# What `--profile demo up` starts, less NOT_RUN: a service added to docker-compose.yml joins the layer.
RUN = tuple(n for n, svc in compose_services().items() if n not in NOT_RUN and svc.get("profiles") in (None, ["demo"]))
assert {"alertmanager-config", "alertmanager", "prometheus", "alert-sink", "synthetic", "sim"} <= set(RUN), RUN


def health_targets_without_not_run() -> str:
    """The synthetic service's default health targets, minus the services not run here."""
    default = re.search(r"\$\{TRADEMON_SYNTHETIC_HEALTH_TARGETS:-([^}]*)\}",
                        compose_services()["synthetic"]["environment"]["TRADEMON_SYNTHETIC_HEALTH_TARGETS"]).group(1)
    return ",".join(p for p in default.split(",") if p.split("=", 1)[0] not in NOT_RUN)


def readme_block(after: str, index: int = 0, doc: str = README) -> str:
    """The index-th ```sh block after the line starting with `after` in README.md (or `doc`)."""
    start = doc.index(after)
    blocks = re.findall(r"```sh\n(.*?)```", doc[start:], re.S)
    return blocks[index]


class Stack:
    def __init__(self, tmp: Path, images: containers.Built):
        self.project = f"trademon-test-{uuid.uuid4().hex[:8]}"
        self.cwd = tmp / "cwd"
        self.cwd.mkdir()
        plugins = tmp / "docker-config" / "cli-plugins"
        plugins.mkdir(parents=True)
        # `docker compose` as README writes it: the pinned Compose v2 as the CLI's plugin.
        (plugins / "docker-compose").symlink_to(tools.find("docker-compose"))
        self.ports = {"PROMETHEUS_HOST_PORT": free_port(), "ALERTMANAGER_HOST_PORT": free_port(),
                      "GRAFANA_HOST_PORT": free_port(), "SIM_CONTROL_HOST_PORT": free_port()}
        settings = {**{k: str(v) for k, v in self.ports.items()}, "GRAFANA_ADMIN_PASSWORD": "test-only-password",
                    "TRADEMON_SYNTHETIC_HEALTH_TARGETS": health_targets_without_not_run(), **images.compose_settings()}
        env_file = tmp / "env"
        env_file.write_text((ROOT / ".env.example").read_text() + "".join(f"\n{k}={v}" for k, v in settings.items()) + "\n")
        self.env = {**os.environ, **settings, "DOCKER_CONFIG": str(plugins.parent), "COMPOSE_PROJECT_NAME": self.project,
                    "COMPOSE_FILE": os.pathsep.join([str(ROOT / "docker-compose.yml"), str(ROOT / "tests" / "images" / "compose.not-run.yml")]),
                    "COMPOSE_ENV_FILES": str(env_file)}
        self.env.pop("DOCKER_BUILDKIT", None)
        self.prom = f"http://127.0.0.1:{self.ports['PROMETHEUS_HOST_PORT']}"
        self.am = f"http://127.0.0.1:{self.ports['ALERTMANAGER_HOST_PORT']}"
        self.sim = f"http://127.0.0.1:{self.ports['SIM_CONTROL_HOST_PORT']}"

    def sh(self, script: str, cwd: Path | None = None, timeout: float = 180, check: bool = True, **env) -> subprocess.CompletedProcess:
        """A README command, with the published default ports moved to this run's."""
        script = (script.replace("localhost:9090", f"localhost:{self.ports['PROMETHEUS_HOST_PORT']}")
                        .replace("localhost:9093", f"localhost:{self.ports['ALERTMANAGER_HOST_PORT']}")
                        .replace("localhost:9119", f"localhost:{self.ports['SIM_CONTROL_HOST_PORT']}"))
        r = subprocess.run(["bash", "-euo", "pipefail", "-c", script], cwd=cwd or self.cwd, env={**self.env, **env},
                           capture_output=True, text=True, timeout=timeout)
        if check:
            assert r.returncode == 0, f"{script}\n-> exit {r.returncode}\n{r.stdout[-4000:]}\n{r.stderr[-4000:]}"
        return r

    def containers(self) -> list[dict]:
        out = self.sh("docker compose --profile demo ps -a --format json").stdout
        rows = [json.loads(line) for line in out.splitlines() if line.strip()]
        return rows[0] if len(rows) == 1 and isinstance(rows[0], list) else rows

    def leftovers(self) -> dict[str, list[str]]:
        label = f"label=com.docker.compose.project={self.project}"
        found = {}
        for kind, cmd in (("containers", ["docker", "ps", "-aq", "--filter", label]), ("volumes", ["docker", "volume", "ls", "-q", "--filter", label]),
                          ("networks", ["docker", "network", "ls", "-q", "--filter", label])):
            found[kind] = subprocess.run(cmd, capture_output=True, text=True, timeout=30).stdout.split()
        return found

    def cleanup(self) -> None:
        for args in (["--profile", "demo", "down", "-v", "--remove-orphans"],):
            subprocess.run(["docker", "compose", *args], env=self.env, cwd=self.cwd, capture_output=True, timeout=180)
        left = self.leftovers()
        if left["containers"]:
            subprocess.run(["docker", "rm", "-f", "-v", *left["containers"]], capture_output=True, timeout=120)
        if left["volumes"]:
            subprocess.run(["docker", "volume", "rm", "-f", *left["volumes"]], capture_output=True, timeout=120)
        if left["networks"]:
            subprocess.run(["docker", "network", "rm", *left["networks"]], capture_output=True, timeout=120)


def wait_for(what: str, probe, timeout: float, every: float = 2.0):
    deadline, last = time.monotonic() + timeout, None
    while time.monotonic() < deadline:
        try:
            ok, last = probe()
        except (requests.RequestException, ValueError, KeyError) as e:
            ok, last = False, repr(e)
        if ok:
            return last
        time.sleep(every)
    raise AssertionError(f"{what} not within {timeout:.0f}s; last seen: {str(last)[:3000]}")


@pytest.fixture(scope="module")
def engine() -> str:
    try:
        return containers.engine_version()
    except containers.EngineMissing as e:
        pytest.fail(str(e))


@pytest.fixture(scope="module")
def tags_before(engine) -> dict[str, str]:
    return containers.image_tags()


@pytest.fixture(scope="module")
def images(engine, tags_before):
    built = containers.build_all()
    print(f"\ncontainer images (s): {json.dumps({k: round(v, 1) for k, v in built.seconds.items()})}", file=sys.stderr)
    try:
        yield built
    finally:
        containers.remove(built)


@pytest.fixture(scope="module")
def stack(images, tmp_path_factory):
    s = Stack(tmp_path_factory.mktemp("containers"), images)
    # docker-compose.yml fixes the network's name (synthetic-tests.yml and the trader's own
    # containers join it): a trademon stack already on this engine would be joined and torn down.
    network = yaml.safe_load((ROOT / "docker-compose.yml").read_text())["networks"]["default"]["name"]
    if subprocess.run(["docker", "network", "inspect", network], capture_output=True, timeout=30).returncode == 0:
        pytest.fail(f"network {network!r} exists on this engine: a trademon stack runs here; stop it "
                    "(docker compose --profile demo --profile live down) before the container layer")
    # The README's quick start, demo profile.
    try:
        up = next(line for line in readme_block("## Quick start").splitlines() if line.startswith("docker compose --profile demo up -d"))
        s.sh(up.split("#")[0], timeout=300)
        yield s
    finally:
        s.cleanup()


# --- the images ------------------------------------------------------------------------------

def test_stand_ins_carry_the_pinned_versions_and_upstream_layout(images):
    v = containers.versions()
    for tag, want, binaries in ((images.tags["prometheus"], v["PROMETHEUS_VERSION"], ("/bin/prometheus", "/bin/promtool")),
                                (images.tags["alertmanager"], v["ALERTMANAGER_VERSION"], ("/bin/alertmanager", "/bin/amtool"))):
        assert tag.startswith(images.namespace + "/") and tag.endswith(f":v{want}")
        # One container per image: each binary's version, the user, busybox wget for the healthchecks.
        script = "; ".join(f"{b} --version 2>&1 | head -n1" for b in binaries) + "; id -u; which wget"
        out = subprocess.run(["docker", "run", "--rm", "--entrypoint", "sh", tag, "-c", script], capture_output=True, text=True, timeout=60)
        lines = out.stdout.splitlines()
        assert len(lines) == 4, out
        for line in lines[:2]:
            assert re.search(rf"version {re.escape(want)}\b", line), (tag, line)
        assert lines[2:] == [NOBODY, "/bin/wget"], out


def test_trademon_image_runs_as_its_non_root_user(images):
    tag = images.tags["trademon"]
    user = subprocess.run(["docker", "image", "inspect", "--format", "{{.Config.User}}", tag], capture_output=True, text=True, timeout=30).stdout.strip()
    assert user == f"{TRADEMON_UID}:{TRADEMON_UID}"
    out = subprocess.run(["docker", "run", "--rm", "--entrypoint", "id", tag, "-u"], capture_output=True, text=True, timeout=60)
    assert out.stdout.strip() == TRADEMON_UID


def test_dockerfile_builds_offline_with_the_classic_builder():
    dockerfile = (ROOT / "Dockerfile").read_text()
    # A `# syntax=` line makes BuildKit fetch its frontend image from a registry: no build offline.
    assert not re.search(r"^#\s*syntax\s*=", dockerfile, re.M | re.I)
    assert re.search(r"^ARG PYTHON_IMAGE=python:3\.\d+\.\d+-slim-bookworm$", dockerfile, re.M), "users' default base changed"


# --- the stack -------------------------------------------------------------------------------

def one_shot(service: str) -> bool:
    """A start-up step (restart "no"): it must have exited 0, not be healthy."""
    return str(compose_services()[service].get("restart")) == "no"


def test_every_service_that_can_run_is_up_and_healthy(stack):
    def probe():
        rows = {c["Service"]: c for c in stack.containers()}
        ok = set(rows) == set(RUN) and all(
            (c["State"] == "exited" and "(0)" in c["Status"]) if one_shot(name) else c["Health"] == "healthy"
            for name, c in rows.items())
        return ok, {n: (c["State"], c.get("Health"), c["Status"]) for n, c in rows.items()}
    wait_for("every container healthy", probe, timeout=150)
    assert not set(NOT_RUN) & {c["Service"] for c in stack.containers()}


def test_every_target_of_the_services_run_is_up(stack):
    jobs = [j["job_name"] for j in yaml.safe_load((ROOT / "prometheus" / "prometheus.yml").read_text())["scrape_configs"]]
    want = [j for j in jobs if j not in NOT_RUN]
    assert {"prometheus", "alertmanager", "alert-sink", "synthetic", "automatictrader-api", "ib-exporter"} <= set(want)

    def probe():
        targets = requests.get(f"{stack.prom}/api/v1/targets", timeout=5).json()["data"]["activeTargets"]
        health = {t["labels"]["job"]: t["health"] for t in targets}
        return all(health.get(j) == "up" for j in want), health
    health = wait_for("every target up", probe, timeout=90)
    # The services not run here are scraped and down: listed, not hidden.
    assert {j for j, h in health.items() if h != "up"} <= set(NOT_RUN)


def test_processes_run_as_their_users_and_volumes_have_their_owners(stack):
    services = compose_services()
    for service in RUN:
        if one_shot(service):
            continue  # exited: alertmanager-config's user shows in the files it wrote (below)
        image = services[service].get("image", "")
        uid = str(services[service]["user"]).split(":")[0] if "user" in services[service] else \
            TRADEMON_UID if "TRADEMON_IMAGE" in image else NOBODY
        got = stack.sh(f"docker compose exec -T {service} id -u").stdout.strip()
        assert got == uid, f"{service} runs as {got}, want {uid}"
    # python's os.stat, as busybox's stat in the Prometheus images: owner of each named volume's mount.
    owner = {
        "alert-sink-data": stack.sh("docker compose exec -T alert-sink python -c "
                                    "\"import os; s=os.stat('/var/lib/trademon'); print(s.st_uid, s.st_gid)\"").stdout.split(),
        "prometheus-data": stack.sh("docker compose exec -T prometheus stat -c '%u %g' /prometheus").stdout.split(),
        "alertmanager-data": stack.sh("docker compose exec -T alertmanager stat -c '%u %g' /alertmanager").stdout.split(),
        "alertmanager-config": stack.sh("docker compose exec -T alertmanager stat -c '%u %g' "
                                        "/alertmanager-config /alertmanager-config/alertmanager.yml").stdout.split(),
    }
    assert owner == {"alert-sink-data": [TRADEMON_UID] * 2, "prometheus-data": [NOBODY] * 2,
                     "alertmanager-data": [NOBODY] * 2, "alertmanager-config": [NOBODY] * 4}


def test_prometheus_reads_the_scrape_token_am_config_wrote_not_the_checkouts_placeholder(stack):
    """prometheus.yml's token file is relative (the checkout's empty placeholder, so promtool
    passes as shipped); compose mounts the alertmanager-config volume over that folder. The
    file Prometheus reads is am-config's: 0600, its owner Prometheus's user, beside the
    rendered alertmanager.yml that the checkout does not have."""
    got = stack.sh("docker compose exec -T prometheus stat -c '%u %a' /etc/prometheus/scrape-token/secrets/api_token "
                   "/etc/prometheus/scrape-token/alertmanager.yml").stdout.split()
    assert got[:2] == [NOBODY, "600"] and got[2] == NOBODY, got


def test_synthetic_tests_pass_as_the_readme_runs_them(stack):
    # The watchdog check looks for the Watchdog alert: wait for the first rule evaluation to reach Alertmanager.
    wait_for("Watchdog in Alertmanager", lambda: (any(a["labels"]["alertname"] == "Watchdog" for a in requests.get(
        f"{stack.am}/api/v2/alerts", timeout=5).json()), None), timeout=90)
    command = re.search(r"`(docker compose -f synthetic-tests\.yml up)` \(add `(--exit-code-from \S+)`", README)
    script = f"{command.group(1)} {command.group(2)}"
    synthetic_project = f"{stack.project}-synthetic"
    try:
        r = stack.sh(script, cwd=ROOT, check=False, timeout=180, COMPOSE_PROJECT_NAME=synthetic_project)
    finally:
        stack.sh("docker compose -f synthetic-tests.yml down", cwd=ROOT, check=False, COMPOSE_PROJECT_NAME=synthetic_project)
    assert r.returncode == 0, r.stdout[-4000:] + r.stderr[-2000:]
    assert re.search(r"synthetic-tests\S* +\| \d+ passed", r.stdout), r.stdout[-2000:]


def test_loss_breach_reaches_alertmanager_and_the_alert_sink(stack):
    stack.sh("curl -fsS -X POST localhost:9119/scenarios/loss-breach")
    try:
        wait_for("DailyLossLimitBreach in Alertmanager", lambda: (any(
            a["labels"]["alertname"] == "DailyLossLimitBreach" for a in requests.get(f"{stack.am}/api/v2/alerts", timeout=5).json()), None), timeout=150)

        def in_sink():
            lines = stack.sh("docker compose exec -T alert-sink cat /var/lib/trademon/alerts.jsonl", check=False).stdout.splitlines()
            # The loss page itself: the breaker's page, its own group, may name the loss in its text.
            found = [r for r in (json.loads(line) for line in lines if "DailyLossLimitBreach" in line)
                     if "DailyLossLimitBreach" in {a["labels"]["alertname"] for a in r["alerts"]}]
            return bool(found), found or lines[-3:]
        record = wait_for("DailyLossLimitBreach in the alert-sink file", in_sink, timeout=90)[0]
        assert "DailyLossLimitBreach" in {a["labels"]["alertname"] for a in record["alerts"]}
        # Alertmanager's external URL (the silence links) followed the moved ALERTMANAGER_HOST_PORT.
        assert record["externalURL"] == f"http://localhost:{stack.ports['ALERTMANAGER_HOST_PORT']}"
        sink_file = stack.sh("docker compose exec -T alert-sink stat -c '%u %a' /var/lib/trademon/alerts.jsonl", check=False)
        if sink_file.returncode == 0:  # the trademon image has GNU stat
            assert sink_file.stdout.split()[0] == TRADEMON_UID
    finally:
        stack.sh("curl -fsS -X DELETE localhost:9119/scenarios/loss-breach", check=False)


def metric(url: str, name: str) -> float:
    for line in requests.get(f"{url}/metrics", timeout=5).text.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[1])
    raise KeyError(name)


def test_readme_reload_and_rerender_commands_work(stack):
    section = OPERATIONS[OPERATIONS.index("## Reload without restart"):OPERATIONS.index("## Troubleshooting")]
    rows = dict(re.findall(r"^\| `?([^|]+?)`? .*?\| `([^`]+)`", section, re.M))
    prom_reload = next(cmd for cmd in rows.values() if cmd.endswith("localhost:9090/-/reload"))
    am_rerender = next(cmd for cmd in rows.values() if "alertmanager-config" in cmd)
    check = re.search(r"Check before reloading: `([^`]+)`", OPERATIONS).group(1)

    before = (metric(stack.prom, "prometheus_config_last_reload_success_timestamp_seconds"),
              metric(stack.am, "alertmanager_config_last_reload_success_timestamp_seconds"))
    time.sleep(1.1)  # the timestamps have a resolution of one second
    assert "is valid prometheus config file syntax" in stack.sh(check).stdout
    stack.sh(prom_reload)
    assert metric(stack.prom, "prometheus_config_last_reload_success_timestamp_seconds") > before[0], "Prometheus did not reload"
    # A change the row lists (an .env alerting variable: email settings, pointing nowhere), so
    # the rendered alertmanager.yml differs; the watcher reloads Alertmanager only on a change,
    # possibly after the command returns.
    stack.sh(am_rerender, SMTP_SMARTHOST="smtp.invalid:25", SMTP_FROM="trademon@example.invalid", SMTP_TO="trader@example.invalid")
    wait_for("Alertmanager reloading the re-rendered config", lambda: (
        metric(stack.am, "alertmanager_config_last_reload_success_timestamp_seconds") > before[1], None), timeout=90)
    assert metric(stack.prom, "prometheus_config_last_reload_successful") == 1
    assert metric(stack.am, "alertmanager_config_last_reload_successful") == 1


def test_thresholds_reload_command_works_as_documented(stack):
    """docs/thresholds.md's Docker command, as written (no Python on the host: it runs in the
    thresholds container): live, and Prometheus holds monitoring/config.yml's loss limit as a series."""
    command = re.search(r"^\| Docker \| `([^`]+)` \|", THRESHOLDS_DOC, re.M).group(1)
    r = stack.sh(command, timeout=90)
    assert r.stdout.startswith("thresholds live: "), r.stdout + r.stderr
    limit = yaml.safe_load((ROOT / "monitoring" / "config.yml").read_text())["critical"]["daily_loss_limit"]

    def probe():
        result = requests.get(f"{stack.prom}/api/v1/query", params={"query": 'trademon:threshold:daily_loss_limit{account=""}'},
                              timeout=5).json()["data"]["result"]
        return [float(s["value"][1]) for s in result] == [float(limit)], result
    wait_for("the loss limit series in Prometheus", probe, timeout=60)
    assert metric(stack.prom, "prometheus_config_last_reload_successful") == 1


def test_gen_command_for_a_duration_runs_in_the_image_as_documented(stack, tmp_path):
    """docs/thresholds.md's Docker command for a duration or the currency, as written, from the
    top folder of a copy of the checkout (the stack mounts the repository's own monitoring/, which a
    test must not edit): an edited `for` reaches the copy's generated rules, written by the image's
    generators as the host's user and agreeing with every generated file (`gen --check`), nothing
    of Python on the host; then the documented Prometheus reload."""
    import shutil

    from trademon import gen as generators

    command, prom_reload = re.search(DOCKER_GEN_ROW, THRESHOLDS_DOC, re.M).groups()
    copy = tmp_path / "checkout"
    shutil.copytree(ROOT, copy, symlinks=True, ignore=shutil.ignore_patterns(
        ".git", ".tools", ".cache", "node_modules", "var", "__pycache__", ".*_cache", ".benchmarks"))
    config, rules = copy / "monitoring" / "config.yml", copy / "monitoring" / "rules" / "trademon.alerts.yml"
    edited = re.sub(r"^(  tws_lost_for: )1m ", r"\g<1>7m ", config.read_text(), count=1, flags=re.M)
    assert edited != config.read_text(), "the shipped tws_lost_for moved: edit another duration"
    config.write_text(edited)
    before = rules.read_text()
    r = stack.sh(command, cwd=copy, timeout=120)
    assert "wrote monitoring/rules/trademon.alerts.yml" in r.stdout, r.stdout + r.stderr
    assert rules.read_text() != before and "for: 7m" in rules.read_text()
    assert rules.stat().st_uid == os.getuid(), "written as the host's user"
    assert generators.check(copy) == [], "the image wrote what the generators give"
    stack.sh(prom_reload)
    assert metric(stack.prom, "prometheus_config_last_reload_successful") == 1


def test_readme_snapshot_backup_and_restore_work(stack):
    backup, restore = readme_block("**Prometheus** (snapshot API", doc=OPERATIONS), readme_block("**Prometheus** (snapshot API", 1, OPERATIONS)
    snapshot_cmd, rest = backup.split("\n", 1)
    out = stack.sh(snapshot_cmd).stdout
    name = json.loads(out)["data"]["name"]
    taken_at = time.time()
    stack.sh(rest.replace("<name>", name))
    saved = stack.cwd / "backup" / f"prometheus-{name}"
    blocks = sorted(p.name for p in saved.iterdir() if p.is_dir())
    assert blocks, f"the snapshot copied to {saved} holds no block"

    stack.sh(restore.replace("<name>", name))
    wait_for("Prometheus healthy after the restore", lambda: (requests.get(f"{stack.prom}/-/ready", timeout=5).ok, None), timeout=90)
    listing = stack.sh("docker compose exec -T prometheus ls -ln /prometheus").stdout
    for block in blocks:
        line = next((line for line in listing.splitlines() if line.endswith(block)), None)
        assert line and line.split()[2:4] == [NOBODY, NOBODY], listing
    # The restored block answers for the time before the snapshot.
    r = requests.get(f"{stack.prom}/api/v1/query", params={"query": 'up{job="prometheus"}', "time": taken_at - 5}, timeout=10).json()
    assert r["data"]["result"], r


def test_down_v_leaves_nothing(stack):
    clean_up = next(line for line in readme_block("## Clean-up", doc=OPERATIONS).splitlines() if re.search(r"\bdown -v\b", line)).split("#")[0]
    stack.sh(clean_up)
    assert stack.leftovers() == {"containers": [], "volumes": [], "networks": []}
    network = yaml.safe_load((ROOT / "docker-compose.yml").read_text())["networks"]["default"]["name"]
    assert subprocess.run(["docker", "network", "inspect", network], capture_output=True, timeout=30).returncode != 0


def test_images_have_names_of_their_own_and_are_removed(images, tags_before, stack):
    """The last of the layer (file order): no upstream tag made or moved, and nothing left."""
    def changed() -> set[str]:
        return {t for t, image_id in containers.image_tags().items() if tags_before.get(t) != image_id}
    made = changed()
    assert made and all(t.startswith(images.namespace + "/") for t in made), sorted(made)
    assert set(images.tags.values()) <= made
    stack.cleanup()
    assert containers.remove(images) == []
    assert changed() == set()


def test_not_run_is_what_the_override_leaves_out():
    override = yaml.safe_load((ROOT / "tests" / "images" / "compose.not-run.yml").read_text())["services"]
    profiles = {name: s.get("profiles") for name, s in compose_services().items()}
    # Only profile changes, and only for NOT_RUN; promtail is already in a profile the test never enables.
    assert all(set(s) == {"profiles"} for s in override.values())
    assert set(override) | {n for n, p in profiles.items() if p == ["promtail"]} == set(NOT_RUN)
    assert not set(override) & set(RUN)

