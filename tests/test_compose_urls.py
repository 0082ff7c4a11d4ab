"""Ports and URLs agree: moving a published port (PROMETHEUS_HOST_PORT, ALERTMANAGER_HOST_PORT,
GRAFANA_HOST_PORT in .env) moves the links in alert messages and Alertmanager's external URL
with it, unless ALERTMANAGER_URL / GRAFANA_URL are set explicitly. Checked with
`docker-compose config` (Compose v2 itself, no engine)."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import pytest

from trademon.stack import tools

ROOT = Path(__file__).resolve().parents[1]


def resolved(tmp_path: Path, **env: str) -> dict:
    env_file = tmp_path / "env"
    lines = [(ROOT / ".env.example").read_text(), "GRAFANA_ADMIN_PASSWORD=test-only-password"]
    lines += [f"{k}={v}" for k, v in env.items()]
    env_file.write_text("\n".join(lines) + "\n")
    r = subprocess.run([tools.find("docker-compose"), "--project-directory", str(ROOT), "-f", str(ROOT / "docker-compose.yml"),
                        "--env-file", str(env_file), "--profile", "demo", "config", "--format", "json"],
                       capture_output=True, text=True, env={"PATH": "/usr/bin:/bin", "HOME": str(tmp_path)}, timeout=60)
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)["services"]


def urls(services: dict) -> dict[str, str]:
    am_cfg = services["alertmanager-config"]["environment"]
    external = [a.split("=", 1)[1] for a in services["alertmanager"]["command"] if a.startswith("--web.external-url=")]
    return {"links.ALERTMANAGER_URL": am_cfg["ALERTMANAGER_URL"], "links.GRAFANA_URL": am_cfg["GRAFANA_URL"],
            "alertmanager --web.external-url": external[0],
            "grafana GF_SERVER_ROOT_URL": services["grafana"]["environment"]["GF_SERVER_ROOT_URL"]}


@pytest.mark.compose
def test_defaults_are_the_default_ports(tmp_path):
    assert urls(resolved(tmp_path)) == {
        "links.ALERTMANAGER_URL": "http://localhost:9093", "links.GRAFANA_URL": "http://localhost:3000",
        "alertmanager --web.external-url": "http://localhost:9093", "grafana GF_SERVER_ROOT_URL": "http://localhost:3000"}


@pytest.mark.compose
def test_moved_host_ports_move_the_urls(tmp_path):
    got = urls(resolved(tmp_path, PROMETHEUS_HOST_PORT="19090", ALERTMANAGER_HOST_PORT="19093", GRAFANA_HOST_PORT="13000"))
    assert got == {
        "links.ALERTMANAGER_URL": "http://localhost:19093", "links.GRAFANA_URL": "http://localhost:13000",
        "alertmanager --web.external-url": "http://localhost:19093", "grafana GF_SERVER_ROOT_URL": "http://localhost:13000"}


@pytest.mark.compose
def test_explicit_urls_win(tmp_path):
    got = urls(resolved(tmp_path, ALERTMANAGER_HOST_PORT="19093", GRAFANA_HOST_PORT="13000",
                        ALERTMANAGER_URL="https://am.example.com", GRAFANA_URL="https://grafana.example.com"))
    assert set(got.values()) == {"https://am.example.com", "https://grafana.example.com"}
    assert got["alertmanager --web.external-url"] == "https://am.example.com"


COMPOSE_FILES = sorted(ROOT.glob("docker-compose*.yml"))


@pytest.mark.parametrize("file", COMPOSE_FILES, ids=lambda p: p.name)
@pytest.mark.parametrize("var", ["ALERTMANAGER_URL", "GRAFANA_URL"])
def test_no_url_default_names_a_fixed_port(var, file):
    # A literal default such as ${GRAFANA_URL:-http://localhost:3000} is how the URLs fell
    # behind a moved port: every default must go through the host-port variable.
    assert re.findall(rf"\$\{{{var}:-http://localhost:\d", file.read_text()) == [], f"{file.name}: ${{{var}}} defaults to a fixed port"
