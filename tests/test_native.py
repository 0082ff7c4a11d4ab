"""`trademon native`: the documented way to run the stack without Docker, tried for real."""

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.support.procs import free_port, start, wait_for, wait_http
from trademon import contract
from trademon.settings.env import port_variable
from trademon.stack.native import NATIVE_JOBS, render_prometheus_config

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
    assert not any("authorization" in sc for sc in cfg["scrape_configs"])  # no token file: no token sent


def test_rendered_config_sends_the_token_from_the_given_file_to_every_trademon_job(tmp_path):
    targets = {job: f"127.0.0.1:{10000 + i}" for i, job in enumerate(NATIVE_JOBS)}
    cfg = render_prometheus_config(ROOT, targets, None, token_file=tmp_path / "api_token")
    sent = {sc["job_name"] for sc in cfg["scrape_configs"]
            if sc.get("authorization") == {"type": "Bearer", "credentials_file": str(tmp_path / "api_token")}}
    served = set(contract.jobs_of_kind("trademon")) | set(contract.jobs_of_kind("trading"))  # the simulator stands in for the trading ones
    assert sent == {job for job in targets if job in served}, sorted(sent)


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


TOKEN = "tok-" + "7a3e91c0" * 6


def test_native_demo_brings_up_the_stack_with_every_target_up(tmp_path):
    """With TRADEMON_API_TOKEN set: every trademon service asks for it, and Prometheus sends it
    (the other native tests run without one: the empty token file)."""
    ports = {port_variable(job): str(free_port()) for job in contract.JOBS}
    ports["TRADEMON_SIM_CONTROL_PORT"] = str(free_port())
    ports["TRADEMON_BOT_PORT"] = str(free_port())
    prom = f"http://127.0.0.1:{ports[port_variable('prometheus')]}"
    proc = start("native", [sys.executable, "-m", "trademon", "native", "--data-dir", str(tmp_path / "native")],
                 {**ports, "TRADEMON_API_TOKEN": TOKEN}, tmp_path / "native.log")
    try:
        wait_http(f"{prom}/-/ready", timeout=90, proc=proc)

        def all_up():
            active = requests.get(f"{prom}/api/v1/targets", timeout=5).json()["data"]["activeTargets"]
            health = {t["labels"]["job"]: t["health"] for t in active}
            return health if set(health) == set(NATIVE_JOBS) and all(h == "up" for h in health.values()) else None

        # The shipped 15 s scrape interval: every target is scraped within one interval.
        health = wait_for(all_up, timeout=60, interval=1, what="every native target up")
        assert set(health) == set(NATIVE_JOBS)
        sink = f"http://127.0.0.1:{ports[port_variable('alert-sink')]}/metrics"
        assert requests.get(sink, timeout=5).status_code == 401  # so "up" above means the token was sent
        rules = requests.get(f"{prom}/api/v1/rules", timeout=5).json()["data"]["groups"]
        assert rules, "Prometheus loaded no rule groups from monitoring/rules"
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


# ---- first-class: .env, flags, busy ports, where things are ---------------------------------

from tests.support.native import NativeStack, free_ports_env, synthetic_breaker_alerts, write_env_file  # noqa: E402
from tests.support.standins import StandIns  # noqa: E402
from trademon.settings.env import ConfigError, read_env_file  # noqa: E402


def test_env_file_is_read_as_compose_reads_it(tmp_path):
    f = tmp_path / ".env"
    f.write_text("# comment\n\nA=1\nexport B=two words\nC='quoted # not a comment'\nD=\"x\"\nE=v # trailing comment\nF=\n")
    assert read_env_file(f) == {"A": "1", "B": "two words", "C": "quoted # not a comment", "D": "x", "E": "v", "F": ""}
    f.write_text("A=1\nthis is not an assignment\n")
    with pytest.raises(ConfigError, match=r"\.env:2"):
        read_env_file(f)


def test_native_from_env_file_delivers_to_the_telegram_set_there(tmp_path):
    """The Telegram settings of .env are used: a page reaches the Telegram stand-in.
    (Whether Alertmanager or a companion service talks to Telegram is not this test's business.)"""
    with StandIns() as standins:
        telegram = {k: v for k, v in standins.env().items() if k.startswith("TELEGRAM_")}
        stack = NativeStack(tmp_path, telegram, "--speed", "30")
        try:
            stack.wait_ready()
            out = stack.proc.log_text()
            assert "TELEGRAM_BOT_TOKEN not set" not in out, out
            for shown in ("alerts.jsonl", "logs", f"settings from {stack.env_file}"):
                assert shown in out, (shown, out)
            # The synthetic check's test breaker is in Alertmanager as what it is: a self-test, info.
            for labels in wait_for(lambda: synthetic_breaker_alerts(stack.am_url, stack.record), 60, 0.5,
                                   "the synthetic breaker's CircuitBreakerTripped in Alertmanager or its record"):
                assert labels["severity"] == "info" and labels["self_test"] == "true", labels
            requests.post(f"{stack.control_url}/scenarios/loss-breach", timeout=5).raise_for_status()
            msgs = wait_for(lambda: [m for m in standins.telegram.sent() if "DailyLossLimitBreach" in m["text"]], 90, 0.5,
                            "the DailyLossLimitBreach page at the Telegram stand-in")
            assert msgs
            assert not any("synthetic" in m["text"] for m in standins.telegram.sent())
            assert all(s not in stack.proc.log_text() for s in standins.secrets())
        finally:
            rc = stack.close()
    assert rc == 0, stack.proc.tail()


@pytest.mark.parametrize("job", ["prometheus", "alertmanager-config"])  # 9113 was not checked: three services started first
def test_native_refuses_to_start_on_a_busy_port_and_names_it(tmp_path, job):
    import socket

    env = free_ports_env()
    with socket.socket() as held:
        held.bind(("127.0.0.1", 0))
        held.listen(1)
        port = held.getsockname()[1]
        env[port_variable(job)] = str(port)
        write_env_file(tmp_path / ".env", env)
        r = subprocess.run([sys.executable, "-m", "trademon", "native", "--env-file", str(tmp_path / ".env"),
                            "--data-dir", str(tmp_path / "native")], capture_output=True, text=True, timeout=60,
                           env={**os.environ, **{k: "" for k in env}})
    assert r.returncode == 2, r.stderr
    assert f"{job}: 127.0.0.1:{port}" in r.stderr and port_variable(job) in r.stderr, r.stderr
    assert "service up" not in r.stderr  # nothing was started
    assert not (tmp_path / "native" / "logs").exists()


def test_native_bad_speed_names_the_flag(tmp_path):
    r = subprocess.run([sys.executable, "-m", "trademon", "native", "--speed", "0", "--data-dir", str(tmp_path / "n")],
                       capture_output=True, text=True, timeout=60, env={**os.environ, **free_ports_env()})
    assert r.returncode == 2 and "--speed '0': out of range" in r.stderr, r.stderr


def test_a_bad_value_in_env_file_stops_native_before_anything_starts_and_says_where(tmp_path):
    env = {**free_ports_env(), "TRADEMON_SIM_SEED": "abc"}
    write_env_file(tmp_path / ".env", env)
    r = subprocess.run([sys.executable, "-m", "trademon", "native", "--env-file", str(tmp_path / ".env"),
                        "--data-dir", str(tmp_path / "native")], capture_output=True, text=True, timeout=60,
                       env={**os.environ, **{k: "" for k in env}})
    assert r.returncode == 2, r.stderr
    assert "TRADEMON_SIM_SEED='abc': not a whole number" in r.stderr and f"set in {tmp_path / '.env'}" in r.stderr, r.stderr
    assert not (tmp_path / "native" / "logs").exists()  # nothing was started


def test_first_run_fetches_the_binaries_once(tmp_path, monkeypatch):
    """`trademon native` on a fresh clone runs scripts/install-tools.sh when the binaries are
    missing, and not again once they are there (a stand-in script here: no network in tests)."""
    from trademon.stack import native, tools

    bin_dir, root = tmp_path / "bin", tmp_path / "clone"
    (root / "scripts").mkdir(parents=True)
    script = root / "scripts" / "install-tools.sh"
    script.write_text(f"#!/bin/sh\nPATH=/usr/bin:/bin\necho run >> {tmp_path}/runs\nmkdir -p {bin_dir}\n"
                      f"for b in prometheus alertmanager; do printf '#!/bin/sh\\n' > {bin_dir}/$b; chmod +x {bin_dir}/$b; done\n")
    script.chmod(0o755)
    monkeypatch.setenv("TRADEMON_TOOLS_DIR", str(bin_dir))
    monkeypatch.setenv("PATH", "/nonexistent")
    with pytest.raises(tools.ToolMissing):
        tools.find("prometheus")
    native.ensure_tools(root)
    native.ensure_tools(root)
    assert (tmp_path / "runs").read_text() == "run\n"
    assert tools.find("alertmanager") == str(bin_dir / "alertmanager")


_SERVES_THEN_EXITS = """
import sys, threading, time
from http.server import BaseHTTPRequestHandler, HTTPServer
class H(BaseHTTPRequestHandler):
    def do_GET(self):
        self.send_response(200); self.end_headers()
    def log_message(self, *a):
        pass
threading.Thread(target=HTTPServer(("127.0.0.1", int(sys.argv[1])), H).serve_forever, daemon=True).start()
time.sleep(float(sys.argv[2]))
sys.exit(3)
"""


def test_the_supervisor_watches_until_a_service_exits_or_a_stop(tmp_path):
    """native's and native-ha's loop: a service that exits ends it, named; one with restart
    is started again instead; a stop ends it with nothing failed."""
    from trademon.stack.native import Service, Supervisor

    def svc(name, lives, restart=False):
        port = free_port()
        return Service(name, [sys.executable, "-c", _SERVES_THEN_EXITS, str(port), str(lives)], f"http://127.0.0.1:{port}/", restart=restart)

    sup = Supervisor(tmp_path / "logs")
    try:
        sup.start(svc("keeps-restarting", 1.0, restart=True))
        sup.start(svc("dies", 2.5))
        assert sup.watch([]) == ["dies"]
    finally:
        sup.stop()
    sup = Supervisor(tmp_path / "logs2")
    try:
        sup.start(svc("lives", 30))
        assert sup.watch([1]) == []  # SIGTERM already came
    finally:
        sup.stop()


def test_every_port_native_binds_is_checked_before_anything_starts():
    """The busy-port check covers each port of each layout (9113 and the HA nodes included)."""
    from trademon.stack import native, services

    for mode in ("demo", "live"):
        for ha in (False, True):
            planned = {port for _, _, port in native.planned_ports(mode, {}, ha)}
            layout = services.Layout(mode, ha, "127.0.0.1", {})
            binds = {port for name, port in layout.port.items()
                     if name in services.BY_NAME or name.endswith(":cluster") or mode == "demo"}
            assert binds <= planned, (mode, ha, sorted(binds - planned))
            assert 9113 in planned and (not ha or {9190, 9193, 9094, 9194, 8428} <= planned)


def test_a_first_native_without_the_binaries_fails_in_one_line_saying_what_to_fetch(tmp_path, monkeypatch, capsys):
    """No network: scripts/install-tools.sh fails (a stand-in script here); native says so in
    one line naming the script, exit 1, no traceback."""
    import argparse

    from trademon.stack import native

    root = tmp_path / "clone"
    (root / "scripts").mkdir(parents=True)
    (root / "scripts" / "install-tools.sh").write_text("#!/bin/sh\necho 'apt-get download: network unreachable' >&2\nexit 100\n")
    (root / "scripts" / "install-tools.sh").chmod(0o755)
    monkeypatch.setattr(native, "repo_root", lambda: root)
    monkeypatch.setenv("TRADEMON_TOOLS_DIR", str(tmp_path / "bin"))
    monkeypatch.setenv("PATH", "/nonexistent")
    for k, v in free_ports_env().items():
        monkeypatch.setenv(k, v)
    parser = argparse.ArgumentParser()
    native.configure(parser)
    rc = native.main(parser.parse_args(["--data-dir", str(tmp_path / "native")]))
    err = capsys.readouterr().err
    assert rc == 1, err
    last = err.strip().splitlines()[-1]
    assert last.startswith("trademon native: ") and "scripts/install-tools.sh" in last and "prometheus" in last, err
    assert "Traceback" not in err
    assert not (tmp_path / "native" / "logs").exists()


def test_a_cold_start_at_speed_30_fires_no_alert(tmp_path):
    """At --speed 30 a rule's `for: 2m` is 4 s: a service still starting when Prometheus first
    scrapes it (synthetic, started after Prometheus) was paged as ExporterDown. Nothing but
    the info alerts (Watchdog, the synthetic self-test) may fire in the first ten demo minutes."""
    import time

    stack = NativeStack(tmp_path, {}, "--speed", "30")
    try:
        stack.wait_ready()
        time.sleep(20)  # ten minutes of the demo's time: every shortened `for` has run out
        q = 'max_over_time(ALERTS{alertstate="firing",severity=~"warning|critical",breaker!~"synthetic.*"}[10m])'
        fired = requests.get(f"{stack.prom_url}/api/v1/query", params={"query": q}, timeout=5).json()["data"]["result"]
        assert fired == [], [r["metric"] for r in fired]
    finally:
        rc = stack.close()
    assert rc == 0, stack.proc.tail()
