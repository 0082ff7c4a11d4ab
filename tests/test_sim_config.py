"""Bad configuration stops the simulator at once with exit code 2 and a message naming
the variable, the problem and what is allowed; a good one runs, logs JSON, and stops
cleanly on SIGTERM."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys

import pytest

from tests.support.procs import free_port, wait_for
from tests.support.sim import SIM_JOBS, SimProcess
from trademon.sim.scenarios import SCENARIOS


def run_sim(env: dict, *args: str, timeout: float = 20) -> subprocess.CompletedProcess:
    full = {**os.environ, "TRADEMON_SIM_HOST": "127.0.0.1", **env}
    # Free ports everywhere, so a bad value is the only reason to stop.
    for job in SIM_JOBS:
        full.setdefault(f"TRADEMON_{job.upper().replace('-', '_')}_PORT", str(free_port()))
    full.setdefault("TRADEMON_SIM_CONTROL_PORT", str(free_port()))
    return subprocess.run([sys.executable, "-m", "trademon", "sim", *args], env=full, capture_output=True, text=True, timeout=timeout)


@pytest.mark.parametrize(
    "env, args, fragments",
    [
        ({"TRADEMON_SIM_SCENARIOS": "loss-breach,meteor-strike"}, (), ["TRADEMON_SIM_SCENARIOS", "meteor-strike", *SCENARIOS]),
        ({}, ("--scenarios", "nope"), ["TRADEMON_SIM_SCENARIOS", "nope", "ib-disconnect"]),
        ({"TRADEMON_SIM_SPEED": "fast"}, (), ["TRADEMON_SIM_SPEED='fast'", "not a number", "allowed: number from"]),
        ({"TRADEMON_SIM_SPEED": "0"}, (), ["TRADEMON_SIM_SPEED='0'", "out of range"]),
        ({"TRADEMON_SIM_SEED": "abc"}, (), ["TRADEMON_SIM_SEED='abc'", "not a whole number"]),
        ({"TRADEMON_IB_EXPORTER_PORT": "99999"}, (), ["TRADEMON_IB_EXPORTER_PORT='99999'", "1 to 65535"]),
        ({"TRADEMON_SIM_STRATEGIES": "momentum,synthetic-x"}, (), ["TRADEMON_SIM_STRATEGIES", "synthetic-x", "reserved"]),
        ({"TRADEMON_SIM_SYMBOLS": "AAPL,AAPL"}, (), ["TRADEMON_SIM_SYMBOLS", "twice"]),
        ({"TRADEMON_SIM_DAILY_LOSS_LIMIT": "500"}, (), ["TRADEMON_SIM_DAILY_LOSS_LIMIT='500'", "out of range"]),
    ],
)
def test_bad_configuration_exits_2_with_a_clear_message(env, args, fragments):
    r = run_sim(env, *args)
    assert r.returncode == 2, (r.returncode, r.stderr)
    assert "trademon sim: configuration error:" in r.stderr
    for f in fragments:
        assert f in r.stderr, f"{f!r} not in {r.stderr!r}"


@pytest.mark.parametrize("args, typed, not_typed", [
    (("--speed", "0"), "--speed '0': out of range", "TRADEMON_SIM_SPEED='0'"),
    (("--seed", "abc"), "--seed 'abc': not a whole number", "TRADEMON_SIM_SEED='abc'"),
])
def test_a_bad_flag_is_named_as_typed(args, typed, not_typed):
    """The user typed a flag: the error names the flag (and which variable it sets), not
    a variable the user never saw."""
    r = run_sim({}, *args)
    assert r.returncode == 2, r.stderr
    assert typed in r.stderr and not_typed not in r.stderr, r.stderr


def test_two_jobs_on_one_port_is_refused():
    port = str(free_port())
    r = run_sim({"TRADEMON_MARKETDATA_STREAM_PORT": port, "TRADEMON_POSITION_MANAGER_PORT": port})
    assert r.returncode == 2 and "TRADEMON_POSITION_MANAGER_PORT" in r.stderr and "marketdata-stream" in r.stderr


def test_port_in_use_exits_2_naming_the_variable():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen(1)
        port = s.getsockname()[1]
        r = run_sim({"TRADEMON_POSITION_MANAGER_PORT": str(port)})
    assert r.returncode == 2, r.stderr
    assert f"127.0.0.1:{port}" in r.stderr and "already in use" in r.stderr
    assert "TRADEMON_POSITION_MANAGER_PORT" in r.stderr


def test_runs_logs_json_with_event_context_and_stops_on_sigterm(tmp_path):
    sim = SimProcess.start(tmp_path, speed=50)
    try:
        sim.on("rejection-burst")
        pid = sim.proc.popen.pid
        os.kill(pid, signal.SIGTERM)
        assert sim.proc.popen.wait(15) == 0
    finally:
        sim.close()
    lines = [json.loads(line) for line in sim.proc.log_text().splitlines() if line.strip()]
    for doc in lines:
        assert {"time", "level", "logger", "message", "service"} <= set(doc), doc
    switched = [d for d in lines if d["message"] == "scenario switched"]
    assert switched and switched[0]["scenario"] == "rejection-burst" and switched[0]["active"] is True
    started = next(d for d in lines if d["message"] == "simulator starting")
    assert started["ports"]["control"] == sim.ports["control"] and started["speed"] == 50.0
    assert lines[-1]["message"] == "stopped"
