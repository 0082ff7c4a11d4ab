"""Processes and ports for tests: free ports, waiting for HTTP, subprocesses that die with the test."""

from __future__ import annotations

import os
import random
import signal
import socket
import subprocess
import threading
import time
from pathlib import Path

import requests


def _port_block() -> range:
    """This pytest worker's own ports: below the kernel's ephemeral range, where the suite's
    outgoing connections take their local ports (bind(0) handed out a port that a connection
    of another process then held, and a service failed to listen on it), and split between
    the xdist workers so two never pick the same one."""
    try:
        ephemeral_low = int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        ephemeral_low = 32768
    low = 20000  # above the stack's own default ports (3000 ... 9114)
    workers = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1") or 1)
    worker = int(os.environ.get("PYTEST_XDIST_WORKER", "gw0").removeprefix("gw") or 0)
    size = (ephemeral_low - low) // max(workers, 1)
    return range(low + worker * size, low + (worker + 1) * size)


# Where in the block this process starts: random, so that two test sessions run side by side
# (a developer's and another's) do not walk the same ports in step.
_next_port = [random.randrange(1 << 16)]
_port_lock = threading.Lock()


def free_port() -> int:
    """A port free now, from this worker's block, never the same one twice in a row (a port
    handed out is taken by a process started later)."""
    block = _port_block()
    if len(block) < 100:  # an unusual port range: let the OS choose
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            s.bind(("127.0.0.1", 0))
            return s.getsockname()[1]
    for _ in range(len(block)):
        with _port_lock:
            port = block[_next_port[0] % len(block)]
            _next_port[0] += 1
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise RuntimeError(f"no free port in {block}")


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


def serve(server) -> threading.Thread:
    """Runs a socketserver's ``serve_forever`` in a daemon thread, looking for ``shutdown()``
    every 50 ms: at the default 0.5 s every close of a test's HTTP server cost half a second."""
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    return thread


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
