"""`trademon native`: the documented way to run the stack without Docker, tried for real."""

import os
import signal
import sys
from pathlib import Path

import pytest
import yaml

from support.procs import free_port, start, wait_for, wait_http
from trademon import contract
from trademon.config import port_variable
from trademon.native import NATIVE_JOBS, render_prometheus_config

import requests

ROOT = Path(__file__).resolve().parents[1]


def test_rendered_config_keeps_the_shipped_file_but_addresses():
    shipped = yaml.safe_load((ROOT / "prometheus" / "prometheus.yml").read_text())
    targets = {job: f"127.0.0.1:{10000 + i}" for i, job in enumerate(NATIVE_JOBS)}
    cfg = render_prometheus_config(ROOT, targets, "127.0.0.1:19093")
    assert cfg["global"] == shipped["global"]
    assert [sc["job_name"] for sc in cfg["scrape_configs"]] == [sc["job_name"] for sc in shipped["scrape_configs"] if sc["job_name"] in targets]
    for sc in cfg["scrape_configs"]:
        assert sc["static_configs"] == [{"targets": [targets[sc["job_name"]]]}]
    assert all(Path(r).is_absolute() for r in cfg["rule_files"])
    assert cfg["alerting"]["alertmanagers"][0]["static_configs"][0]["targets"] == ["127.0.0.1:19093"]


def test_rendered_config_refuses_an_unknown_job():
    with pytest.raises(ValueError, match="no job named nope"):
        render_prometheus_config(ROOT, {"nope": "127.0.0.1:1"}, None)


def bot_pids(port: str) -> list[int]:
    """The `trademon bot` processes started with this port (read from /proc)."""
    pids = []
    for d in Path("/proc").iterdir():
        try:
            cmd = (d / "cmdline").read_bytes().split(b"\0")
            env = (d / "environ").read_bytes().split(b"\0")
        except (OSError, ValueError):
            continue
        if b"bot" in cmd and f"TRADEMON_BOT_PORT={port}".encode() in env:
            pids.append(int(d.name))
    return sorted(pids)


def test_native_demo_brings_up_the_stack_with_every_target_up(tmp_path):
    ports = {port_variable(job): str(free_port()) for job in contract.JOBS}
    ports["TRADEMON_SIM_CONTROL_PORT"] = str(free_port())
    ports["TRADEMON_BOT_PORT"] = str(free_port())
    prom = f"http://127.0.0.1:{ports[port_variable('prometheus')]}"
    proc = start("native", [sys.executable, "-m", "trademon", "native", "--data-dir", str(tmp_path / "native")],
                 ports, tmp_path / "native.log")
    try:
        wait_http(f"{prom}/-/ready", timeout=90, proc=proc)

        def all_up():
            active = requests.get(f"{prom}/api/v1/targets", timeout=5).json()["data"]["activeTargets"]
            health = {t["labels"]["job"]: t["health"] for t in active}
            return health if set(health) == set(NATIVE_JOBS) and all(h == "up" for h in health.values()) else None

        # The shipped 15 s scrape interval: every target is scraped within one interval.
        health = wait_for(all_up, timeout=60, interval=1, what="every native target up")
        assert set(health) == set(NATIVE_JOBS)
        rules = requests.get(f"{prom}/api/v1/rules", timeout=5).json()["data"]["groups"]
        assert rules, "Prometheus loaded no rule groups from prometheus/rules"
        # trademon bot runs too, and comes back after kill -9 (the restart policy, natively)
        bot = f"http://127.0.0.1:{ports['TRADEMON_BOT_PORT']}/healthz"
        assert requests.get(bot, timeout=5).ok
        first = bot_pids(ports["TRADEMON_BOT_PORT"])
        assert len(first) == 1, first
        os.kill(first[0], signal.SIGKILL)
        wait_for(lambda: bot_pids(ports["TRADEMON_BOT_PORT"]) not in ([], first) and requests.get(bot, timeout=2).ok, 30, 0.5,
                 "trademon bot restarted")
    finally:
        rc = proc.close()
    assert rc == 0, proc.tail()
