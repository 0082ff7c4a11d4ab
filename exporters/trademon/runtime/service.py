"""What every trademon process has: /healthz, /readyz, /metrics, servers on several
ports in one event loop, a clear error for a port in use, graceful shutdown, supervised
background loops (one that dies is logged, turns /readyz false and ends the process with a
non-zero status, for its supervisor to start it again), and (through httpguard)
authentication when configured and bounded work per request."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import errno
import functools
import logging
import signal
import socket
from dataclasses import dataclass, field
from collections.abc import Callable, Coroutine, Iterable, Iterator
from typing import Any

import uvicorn
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

from trademon.runtime import httpguard
from trademon.settings import webconfig
from trademon.settings.env import LOOPBACK, env_float, env_int

log = logging.getLogger("trademon.service")

LOOPBACK_HOSTS = (LOOPBACK, "::1", "localhost")
DEFAULT_BODY_BUDGET = 16 * 1024 * 1024  # one largest webhook body: the shipped 256Mi limits hold (benchmarks/body_memory.py)


class TaskDied(Exception):
    """A long-lived background loop ended (raised, or returned): the process must exit non-zero
    so that its supervisor (compose's restart policy, ``trademon native``) starts it again."""

    def __init__(self, name: str):
        self.name = name
        super().__init__(f"background task {name!r} died; exiting so that the supervisor starts the process again")


@dataclass(frozen=True)
class Task:
    """A background task of a Runner. Long-lived by default: a loop that must run as long as
    the process, whose end (an exception, a return, a cancel from inside) is the process's end.
    ``once``: a task that finishes by design (a warm-up); its failure is logged, not fatal."""

    fn: Callable[[], Coroutine[Any, Any, None]]
    name: str = ""
    once: bool = False

    @classmethod
    def of(cls, t: Task | Callable[[], Coroutine[Any, Any, None]]) -> Task:
        if isinstance(t, Task):
            return t if t.name else dataclasses.replace(t, name=getattr(t.fn, "__name__", "task"))
        return cls(t, getattr(t, "__name__", "task"))


class PortInUse(Exception):
    def __init__(self, host: str, port: int, variable: str | None):
        hint = f"set {variable} to a free port" if variable else "choose a free port"
        super().__init__(f"cannot listen on {host}:{port}: the port is already in use; stop the other process or {hint}")


def bind(host: str, port: int, variable: str | None = None) -> httpguard.CappedSocket:
    """Bind now, so a port in use is one clear error before anything starts."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # proto IPPROTO_TCP, not 0: asyncio turns Nagle off (TCP_NODELAY) only on such sockets, and
    # with it on, each answer on a kept-alive connection waited ~40 ms for the client's ACK
    sock = httpguard.CappedSocket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as e:
        sock.close()
        if e.errno == errno.EADDRINUSE:
            raise PortInUse(host, port, variable) from None
        raise
    sock.listen(httpguard.LISTEN_BACKLOG)
    sock.setblocking(False)
    return sock


async def send_text(send, status: int, body: bytes, content_type: bytes = b"text/plain; charset=utf-8"):
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", content_type), (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})


@dataclass
class Probes:
    """Readiness is a list of named checks; health is "the process answers"."""

    checks: dict[str, Callable[[], bool]] = field(default_factory=dict)

    def ready(self) -> tuple[bool, str]:
        failed = [name for name, check in self.checks.items() if not check()]
        return (not failed, "ready\n" if not failed else "not ready: " + ", ".join(failed) + "\n")


def basics_app(registry: CollectorRegistry, probes: Probes | None = None, inner=None):
    """An ASGI app answering /metrics, /healthz and /readyz, passing the rest to ``inner``."""
    probes = probes or Probes()

    async def app(scope, receive, send):
        if scope["type"] == "http":
            path = scope["path"]
            if path == "/metrics":
                return await send_text(send, 200, generate_latest(registry), CONTENT_TYPE_LATEST.encode())
            if path == "/healthz":
                return await send_text(send, 200, b"ok\n")
            if path == "/readyz":
                ok, text = probes.ready()
                return await send_text(send, 200 if ok else 503, text.encode())
        if inner is not None:
            return await inner(scope, receive, send)
        if scope["type"] == "http":
            return await send_text(send, 404, b"not found\n")
        if scope["type"] == "lifespan":
            while True:
                msg = await receive()
                if msg["type"] == "lifespan.startup":
                    await send({"type": "lifespan.startup.complete"})
                elif msg["type"] == "lifespan.shutdown":
                    await send({"type": "lifespan.shutdown.complete"})
                    return

    return app


@dataclass
class Listener:
    name: str
    app: object
    host: str
    port: int
    variable: str | None = None  # the env variable that sets the port, for error messages
    token_paths: tuple[str, ...] = ()  # control/webhook paths: the bearer token only (never basic auth) when one is set
    token: str | None = None  # the token_paths' own bearer token instead of TRADEMON_API_TOKEN (the bot's webhook)
    max_body: int = httpguard.Limits.max_body


def exposure(ls: Listener, web: webconfig.WebConfig) -> str | None:
    """What a listener beyond loopback leaves open to anyone who can reach it, said loudly at
    start with the variables that close it; None when nothing is open but the health checks."""
    if ls.host in LOOPBACK_HOSTS or web.users or web.token:
        return None
    if ls.token and ls.token_paths:
        return (f"listening on {ls.host} beyond loopback with only {', '.join(ls.token_paths)} behind its own bearer token: "
                "every other path (/metrics, the API) answers anyone; set TRADEMON_API_TOKEN (bearer token) or "
                "TRADEMON_WEB_CONFIG_FILE (basic auth, TLS), or listen on 127.0.0.1")
    return (f"listening on {ls.host} beyond loopback WITHOUT AUTHENTICATION: every path answers anyone; set "
            "TRADEMON_API_TOKEN (bearer token) or TRADEMON_WEB_CONFIG_FILE (basic auth, TLS), or listen on 127.0.0.1")


class _Server(uvicorn.Server):
    """A uvicorn server that leaves signals to the Runner: it handles them once, for all servers
    (uvicorn's own capture would hand SIGTERM to one server, which re-raises it to the next)."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


class Runner:
    """Serves several ASGI apps on their own ports in one event loop, with background
    tasks, and stops all of it cleanly on SIGTERM/SIGINT."""

    def __init__(self, listeners: list[Listener], tasks: Iterable[Task | Callable[[], Coroutine[Any, Any, None]]] = (),
                 web: webconfig.WebConfig | None = None):
        self.listeners = listeners
        self.tasks: list[Task | Callable[[], Coroutine[Any, Any, None]]] = list(tasks)
        # Seconds between a background loop's death and the exit: /readyz answers 503 meanwhile,
        # so a probe or a watching test sees why the process is going.
        self.exit_grace = env_float("TRADEMON_EXIT_GRACE_SECONDS", 1.0, 0.0, 60.0)
        self.died: str | None = None  # the first long-lived task that ended
        self.web = webconfig.load() if web is None else web
        # Seconds a request may take to arrive, and connections kept per port (default: what the
        # file-descriptor limit allows, at most 512).
        self.read_timeout = env_float("TRADEMON_HTTP_READ_TIMEOUT", httpguard.Limits.read_timeout, 0.1, 3600.0)
        self.max_connections = env_int("TRADEMON_HTTP_MAX_CONNECTIONS", httpguard.max_connections(len(listeners)), 1, 1_000_000)
        # Bytes of request bodies held at once across the ports (what is parsed from them is a few
        # times more): at least the largest body one request may send.
        largest = max((ls.max_body for ls in listeners), default=httpguard.Limits.max_body)
        self.budget = httpguard.BodyBudget(env_int("TRADEMON_HTTP_BODY_BUDGET", max(largest, DEFAULT_BODY_BUDGET), 1, 1 << 40))
        self.stopping: asyncio.Event | None = None
        self._servers: dict[str, uvicorn.Server] = {}
        self._sockets: dict[str, httpguard.CappedSocket] = {}

    def bind_all(self) -> None:
        """Bind every port first: one clear error, nothing half started."""
        try:
            for ls in self.listeners:
                self._sockets[ls.name] = bind(ls.host, ls.port, ls.variable)
        except Exception:
            for s in self._sockets.values():
                s.close()
            raise

    def _server(self, ls: Listener) -> uvicorn.Server:
        limits = httpguard.Limits(max_body=ls.max_body, max_connections=self.max_connections, read_timeout=self.read_timeout)
        cap = self._sockets[ls.name].cap = httpguard.ConnectionCap(limits.max_connections)
        cfg = httpguard.GuardedConfig(httpguard.guard(self._readiness_gate(ls.app), self.web, limits, ls.token_paths, self.budget, ls.token),
                                      limits, cap,
                             ssl_certfile=self.web.cert_file, ssl_keyfile=self.web.key_file,  # None without TLS
                             log_config=None, access_log=False,
                             lifespan="auto", timeout_graceful_shutdown=5, http=httpguard.GuardedH11Protocol,
                             timeout_keep_alive=limits.keep_alive, h11_max_incomplete_event_size=limits.max_header_bytes,
                             # a backstop on requests in progress; the protocol caps the connections themselves
                             limit_concurrency=4 * limits.max_connections,
                             # asyncio accepts up to `backlog` connections per wake-up before any is
                             # seen by the protocol: keep that burst inside the file-descriptor headroom
                             # (the kernel's queue stays LISTEN_BACKLOG long: CappedSocket.listen)
                             backlog=min(64, max(8, limits.max_connections // 8)))
        return _Server(cfg)

    async def serve(self) -> None:
        if not self._sockets:
            self.bind_all()
        self.stopping = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            try:
                loop.add_signal_handler(sig, self.stop)
            except (NotImplementedError, RuntimeError):
                pass
        serving = []
        for ls in self.listeners:
            srv = self._servers[ls.name] = self._server(ls)
            serving.append(asyncio.create_task(srv.serve(sockets=[self._sockets[ls.name]]), name=f"serve:{ls.name}"))
            log.info("listening", extra={"listener": ls.name, "address": f"{ls.host}:{ls.port}", "tls": self.web.tls,
                                         "basic_auth": bool(self.web.users), "bearer": self.web.token is not None,
                                         "token_paths": list(ls.token_paths) if (ls.token or self.web.token) else []})
            if (open_note := exposure(ls, self.web)) is not None:
                log.warning(open_note, extra={"listener": ls.name, "address": f"{ls.host}:{ls.port}"})
        background = []
        for task in map(Task.of, self.tasks):
            running = asyncio.create_task(task.fn(), name=task.name)
            running.add_done_callback(functools.partial(self._ended, task))
            background.append(running)
        await self.stopping.wait()
        log.info("shutting down")
        for srv in self._servers.values():
            srv.should_exit = True
        for t in background:
            t.cancel()
        await asyncio.gather(*serving, *background, return_exceptions=True)
        log.info("stopped")
        if self.died is not None:
            raise TaskDied(self.died)

    def _ended(self, task: Task, running: asyncio.Task) -> None:
        """A background task ended: expected for a ``once`` task that went well or at shutdown;
        otherwise logged with its exception, and a long-lived one stops the process."""
        assert self.stopping is not None
        if self.stopping.is_set():  # cancelled by the shutdown (a signal, or an earlier death)
            return
        error = None if running.cancelled() else running.exception()
        if task.once:
            if error is not None or running.cancelled():
                log.error("one-off background task failed", exc_info=error, extra={"task": task.name})
            return
        how = "cancelled" if running.cancelled() else "raised" if error is not None else "returned"
        log.error("background task died; not ready, exiting for the supervisor to start the process again",
                  exc_info=error, extra={"task": task.name, "ended": how, "exit_in_seconds": self.exit_grace})
        if self.died is None:
            self.died = task.name
            asyncio.get_running_loop().call_later(self.exit_grace, self.stop)

    def _readiness_gate(self, app):
        """/readyz answers 503 once a background loop died, whatever the app's own probes say."""

        async def gated(scope, receive, send):
            if self.died is not None and scope["type"] == "http" and scope["path"] == "/readyz":
                return await send_text(send, 503, f"not ready: background task {self.died} died\n".encode())
            return await app(scope, receive, send)

        return gated

    def stop(self) -> None:
        if self.stopping is not None:
            self.stopping.set()
