"""`trademon native` started the way a user does: from a .env file, on free loopback ports."""

from __future__ import annotations

import sys
from pathlib import Path

import requests

from trademon import contract
from trademon.settings.env import port_variable

from .procs import Proc, free_port, start, wait_for, wait_http


def free_ports_env() -> dict[str, str]:
    ports = {port_variable(job): str(free_port()) for job in contract.JOBS}
    ports["TRADEMON_SIM_CONTROL_PORT"] = str(free_port())
    ports["TRADEMON_BOT_PORT"] = str(free_port())  # trademon bot (Telegram's delivery)
    return ports


def write_env_file(path: Path, values: dict[str, str], comment: str = "written by the test, as a user would") -> Path:
    lines = [f"# {comment}"] + [f"{k}={v}" for k, v in values.items()]
    path.write_text("\n".join(lines) + "\n")
    path.chmod(0o600)
    return path


class NativeStack:
    """`trademon native --mode demo --env-file <.env>`; ports and settings come from the file only."""

    def __init__(self, workdir: Path, env_values: dict[str, str], *args: str):
        self.dir = workdir
        self.values = {**free_ports_env(), **env_values}
        self.env_file = write_env_file(workdir / ".env", self.values)
        self.data = workdir / "native"
        self.prom_url = f"http://127.0.0.1:{self.values[port_variable('prometheus')]}"
        self.am_url = f"http://127.0.0.1:{self.values[port_variable('alertmanager')]}"
        self.control_url = f"http://127.0.0.1:{self.values['TRADEMON_SIM_CONTROL_PORT']}"
        self.record = self.data / "alerts.jsonl"
        # No port in the process environment: what the .env file says is what must be used.
        clean = {k: "" for k in self.values}
        self.proc: Proc = start("native", [sys.executable, "-m", "trademon", "native", "--mode", "demo",
                                           "--env-file", str(self.env_file), "--data-dir", str(self.data), *args],
                                clean, workdir / "native.log", cwd=str(workdir))

    def wait_ready(self, timeout: float = 120) -> None:
        wait_http(f"{self.prom_url}/-/ready", timeout, self.proc)

        def summary_printed():
            if self.proc.popen.poll() is not None:
                raise RuntimeError(f"native exited {self.proc.popen.returncode}:\n{self.proc.tail()}")
            return "is up; Ctrl-C stops it" in self.proc.log_text()
        wait_for(summary_printed, timeout, 0.5, "trademon native's start-up summary")

        def all_up():
            active = requests.get(f"{self.prom_url}/api/v1/targets", timeout=5).json()["data"]["activeTargets"]
            return active and all(t["health"] == "up" for t in active)
        wait_for(all_up, 60, 0.5, "every native target up")

    def close(self) -> int | None:
        return self.proc.close()


def synthetic_breaker_alerts(am_url: str, record: Path) -> list[dict]:
    """The labels of the synthetic check's test breaker alert as Alertmanager has it now, or
    as its notification recorded it (the check resets the breaker as soon as it saw the
    alert, so the alert may come and go between two looks)."""
    import json

    alerts = requests.get(f"{am_url}/api/v2/alerts", params={"filter": "alertname=CircuitBreakerTripped"}, timeout=5).json()
    out = [a["labels"] for a in alerts]
    if record.exists():
        for line in record.read_text().splitlines():
            doc = json.loads(line) if line.strip() else {}
            out += [a["labels"] for a in doc.get("alerts", []) if a["labels"].get("alertname") == "CircuitBreakerTripped"]
    return [labels for labels in out if labels.get("breaker", "").startswith("synthetic")]
