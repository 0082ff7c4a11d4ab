"""Processes and ports for tests: free ports, waiting for HTTP, subprocesses that die with the test."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import threading
import time
from pathlib import Path

import requests


def free_port() -> int:
    """A port the OS says is free now (bind to 0, read it back)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_http(url: str, timeout: float = 20.0, proc: Proc | None = None) -> requests.Response:
    """Poll until ``url`` answers 2xx; raise with the last error (and the process log) if not."""
    deadline = time.monotonic() + timeout
    last = "no attempt"
    while time.monotonic() < deadline:
        if proc is not None and proc.popen.poll() is not None:
            raise RuntimeError(f"{proc.name} exited with {proc.popen.returncode} before {url} answered:\n{proc.tail()}")
        try:
            r = requests.get(url, timeout=2)
            if r.ok:
                return r
            last = f"HTTP {r.status_code}: {r.text[:200]}"
        except requests.RequestException as e:
            last = repr(e)
        time.sleep(0.1)
    extra = f"\n{proc.name} log:\n{proc.tail()}" if proc is not None else ""
    raise TimeoutError(f"{url} did not answer within {timeout}s: {last}{extra}")


def wait_for(predicate, timeout: float, interval: float = 0.2, what: str = "condition"):
    """Poll ``predicate`` until it returns a truthy value; return it, or raise TimeoutError."""
    deadline = time.monotonic() + timeout
    last_exc = None
    while time.monotonic() < deadline:
        try:
            v = predicate()
            if v:
                return v
        except Exception as e:  # noqa: BLE001 - report the last failure if time runs out
            last_exc = e
        time.sleep(interval)
    raise TimeoutError(f"{what} not reached within {timeout}s" + (f" (last error: {last_exc!r})" if last_exc else ""))


class Proc:
    """A subprocess in its own process group, its output in a log file, killed at close."""

    def __init__(self, name: str, cmd: list[str], env: dict | None, log_path: Path, cwd: str | None = None):
        self.name, self.cmd, self.log_path = name, cmd, Path(log_path)
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        self._log = open(self.log_path, "ab")
        full_env = dict(os.environ)
        full_env.update(env or {})
        self.popen = subprocess.Popen(cmd, stdout=self._log, stderr=subprocess.STDOUT, env=full_env, cwd=cwd,
                                      start_new_session=True)

    def tail(self, n: int = 60) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-n:])
        except OSError:
            return ""

    def log_text(self) -> str:
        return self.log_path.read_text(errors="replace")

    def close(self, timeout: float = 10.0) -> int | None:
        if self.popen.poll() is None:
            try:
                os.killpg(self.popen.pid, signal.SIGTERM)
                self.popen.wait(timeout)
            except subprocess.TimeoutExpired:
                os.killpg(self.popen.pid, signal.SIGKILL)
                self.popen.wait(5)
            except ProcessLookupError:
                pass
        self._log.close()
        return self.popen.returncode

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def start(name: str, cmd: list[str], env: dict | None, log_path: Path, cwd: str | None = None) -> Proc:
    return Proc(name, cmd, env, log_path, cwd)


class ClosedPort:
    """A port that refuses connections and stays reserved while open: bound, never listening.

    ``free_port()`` for a dead target races: once its socket closes, another process of the
    parallel suite may bind the port, and the "dead" target answers (a page that never came)."""

    def __init__(self):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.bind(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]

    def close(self):
        self.sock.close()

    def __enter__(self) -> ClosedPort:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


class HangingServer:
    """Accepts connections and never answers: a target that hangs."""

    def __init__(self):
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.conns = []
        self.thread = threading.Thread(target=self._accept, daemon=True)
        self.thread.start()

    def _accept(self):
        while True:
            try:
                self.conns.append(self.sock.accept()[0])
            except OSError:
                return

    def close(self):
        self.sock.close()
        for c in self.conns:
            c.close()
