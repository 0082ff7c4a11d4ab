"""What every trademon process has: /healthz, /readyz, /metrics, servers on several
ports in one event loop, a clear error for a port in use, graceful shutdown, and (through
httpguard) authentication when configured and bounded work per request."""

from __future__ import annotations

import asyncio
import contextlib
import errno
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


class PortInUse(Exception):
    def __init__(self, host: str, port: int, variable: str | None):
        hint = f"set {variable} to a free port" if variable else "choose a free port"
        super().__init__(f"cannot listen on {host}:{port}: the port is already in use; stop the other process or {hint}")


def bind(host: str, port: int, variable: str | None = None) -> httpguard.CappedSocket:
    """Bind now, so a port in use is one clear error before anything starts."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = httpguard.CappedSocket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as e:
        sock.close()
        if e.errno == errno.EADDRINUSE:
            raise PortInUse(host, port, variable) from None
        raise
    sock.listen(2048)
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
    token_paths: tuple[str, ...] = ()  # control/webhook paths: bearer token when TRADEMON_API_TOKEN is set
    max_body: int = httpguard.Limits.max_body


class _Server(uvicorn.Server):
    """A uvicorn server that leaves signals to the Runner: it handles them once, for all servers
    (uvicorn's own capture would hand SIGTERM to one server, which re-raises it to the next)."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


class Runner:
    """Serves several ASGI apps on their own ports in one event loop, with background
    tasks, and stops all of it cleanly on SIGTERM/SIGINT."""

    def __init__(self, listeners: list[Listener], tasks: Iterable[Callable[[], Coroutine[Any, Any, None]]] = (),
                 web: webconfig.WebConfig | None = None):
        self.listeners = listeners
        self.tasks = list(tasks)
        self.web = webconfig.load() if web is None else web
        # Seconds a request may take to arrive, and connections kept per port (default: what the
        # file-descriptor limit allows, at most 512).
        self.read_timeout = env_float("TRADEMON_HTTP_READ_TIMEOUT", httpguard.Limits.read_timeout, 0.1, 3600.0)
        self.max_connections = env_int("TRADEMON_HTTP_MAX_CONNECTIONS", httpguard.max_connections(len(listeners)), 1, 1_000_000)
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
        cfg = httpguard.GuardedConfig(httpguard.guard(ls.app, self.web, limits, ls.token_paths), limits, cap,
                             ssl_certfile=self.web.cert_file, ssl_keyfile=self.web.key_file,  # None without TLS
                             log_config=None, access_log=False,
                             lifespan="auto", timeout_graceful_shutdown=5, http=httpguard.GuardedH11Protocol,
                             timeout_keep_alive=limits.keep_alive, h11_max_incomplete_event_size=limits.max_header_bytes,
                             # a backstop on requests in progress; the protocol caps the connections themselves
                             limit_concurrency=4 * limits.max_connections,
                             # asyncio accepts up to `backlog` connections per wake-up before any is
                             # seen by the protocol: keep that burst inside the file-descriptor headroom
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
                                         "basic_auth": bool(self.web.users), "token_paths": list(ls.token_paths) if self.web.token else []})
            if ls.host not in LOOPBACK_HOSTS and not (self.web.users or (self.web.token and ls.token_paths)):
                log.warning("listening beyond loopback without authentication; set TRADEMON_WEB_CONFIG_FILE "
                            "(basic auth, TLS) and TRADEMON_API_TOKEN, or listen on 127.0.0.1",
                            extra={"listener": ls.name, "address": f"{ls.host}:{ls.port}"})
        background = [asyncio.create_task(t(), name=getattr(t, "__name__", "task")) for t in self.tasks]
        await self.stopping.wait()
        log.info("shutting down")
        for srv in self._servers.values():
            srv.should_exit = True
        for t in background:
            t.cancel()
        await asyncio.gather(*serving, *background, return_exceptions=True)
        log.info("stopped")

    def stop(self) -> None:
        if self.stopping is not None:
            self.stopping.set()
