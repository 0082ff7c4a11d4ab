"""Hardening, round two: what a hostile or unlucky input broke, each break as a test against
the real services on loopback (the Telegram Bot API is a stand-in)."""

from __future__ import annotations

import json
from pathlib import Path

import bcrypt
import pytest
import requests
import yaml

from tests.support.procs import Proc, free_port, wait_http
from tests.test_security import PAYLOAD, SIM_JOBS, TOKEN, trademon
from trademon.settings.env import port_variable

PASSWORD = "basic-Passw0rd-xyz"


def web_config(tmp_path: Path) -> Path:
    """Basic auth only (no TLS, no token): the case that left the write paths open."""
    web = tmp_path / "web.yml"
    web.write_text(yaml.safe_dump({"basic_auth_users": {"prometheus": bcrypt.hashpw(PASSWORD.encode(), bcrypt.gensalt(4)).decode()}}))
    return web


def start_sink(tmp_path: Path, env: dict | None = None, host: str = "127.0.0.1") -> tuple[str, Proc, Path]:
    port, path = free_port(), tmp_path / "alerts.jsonl"
    e = {"TRADEMON_ALERT_SINK_PORT": str(port), "TRADEMON_ALERT_SINK_FILE": str(path), "TRADEMON_ALERT_SINK_HOST": host, **(env or {})}
    p = trademon("alert-sink", ["alert-sink"], e, tmp_path / f"alert-sink-{port}.log")
    wait_http(f"http://127.0.0.1:{port}/healthz", 20, p)
    return f"http://127.0.0.1:{port}", p, path


def start_sim(tmp_path: Path, env: dict | None = None) -> tuple[dict[str, str], Proc]:
    ports = {job: free_port() for job in (*SIM_JOBS, "control")}
    e = {port_variable(j): str(p) for j, p in ports.items() if j != "control"}
    e.update({"TRADEMON_SIM_CONTROL_PORT": str(ports["control"]), "TRADEMON_SIM_SPEED": "1", "TRADEMON_SIM_HOST": "127.0.0.1", **(env or {})})
    p = trademon("sim", ["sim"], e, tmp_path / f"sim-{ports['control']}.log")
    urls = {j: f"http://127.0.0.1:{port}" for j, port in ports.items()}
    for u in urls.values():
        wait_http(f"{u}/healthz", 30, p)
    return urls, p


# --- 1. authentication covers every path but the health check ----------------------------

def test_basic_auth_alone_covers_the_notification_record(tmp_path):
    url, p, path = start_sink(tmp_path, {"TRADEMON_WEB_CONFIG_FILE": str(web_config(tmp_path))})
    try:
        assert requests.post(f"{url}/alerts", json=PAYLOAD, timeout=5).status_code == 401
        assert requests.post(f"{url}/alerts", json=PAYLOAD, auth=("prometheus", "wrong"), timeout=5).status_code == 401
        assert not path.exists()
        assert requests.get(f"{url}/metrics", timeout=5).status_code == 401
        assert requests.get(f"{url}/healthz", timeout=5).status_code == 200
        assert requests.post(f"{url}/alerts", json=PAYLOAD, auth=("prometheus", PASSWORD), timeout=5).status_code == 200
        assert len(path.read_text().splitlines()) == 1
    finally:
        p.close()
    assert PASSWORD not in p.log_text()


def test_basic_auth_alone_covers_the_scenario_switch_and_the_test_hooks(tmp_path):
    urls, p = start_sim(tmp_path, {"TRADEMON_WEB_CONFIG_FILE": str(web_config(tmp_path))})
    try:
        calls = [("POST", f"{urls['control']}/scenarios/api-down"), ("GET", f"{urls['control']}/scenarios"),
                 ("GET", f"{urls['control']}/state"), ("POST", f"{urls['automatictrader-api']}/test/circuit-breaker/synthetic/trip"),
                 ("POST", f"{urls['automatictrader-api']}/intents")]
        for method, url in calls:
            r = requests.request(method, url, timeout=5)
            assert r.status_code == 401 and r.headers["www-authenticate"].startswith("Basic"), (method, url, r.status_code)
        authed = requests.get(f"{urls['control']}/state", auth=("prometheus", PASSWORD), timeout=5)
        assert authed.status_code == 200 and authed.json()["api_down"] is False  # the refused switch did nothing
    finally:
        p.close()


@pytest.mark.parametrize("env", [{}, {"TRADEMON_API_TOKEN": TOKEN}], ids=["nothing", "token-only"])
def test_listening_beyond_loopback_with_paths_open_says_so_naming_the_variable(tmp_path, env):
    url, p, _ = start_sink(tmp_path, env, host="0.0.0.0")
    p.close()
    warnings = [json.loads(line) for line in p.log_text().splitlines() if line.startswith("{") and '"warning"' in line]
    assert any("TRADEMON_WEB_CONFIG_FILE" in w["message"] and "0.0.0.0" in w["message"] for w in warnings), p.log_text()


def test_with_basic_auth_beyond_loopback_no_warning(tmp_path):
    url, p, _ = start_sink(tmp_path, {"TRADEMON_WEB_CONFIG_FILE": str(web_config(tmp_path))}, host="0.0.0.0")
    p.close()
    assert "beyond loopback" not in p.log_text()
