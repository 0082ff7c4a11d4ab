"""Bounded work per request, and authentication, in front of every trademon HTTP service.

- ``guard(app, ...)``: an ASGI wrapper that checks authentication before anything else
  (once any credential is configured, every path but the health checks asks for one: the
  control/webhook paths the bearer token, every other path the token or basic auth), then
  reads the body itself with a limit: a Content-Length over the limit is refused before one
  byte is read, a chunked body is counted as it arrives and refused when it passes the limit;
  either way the answer is 413 with ``Connection: close``, so the rest is never read. All
  bodies in flight together, each weighed with what its JSON values parse into, stay within a
  ``BodyBudget`` shared by the process's ports: past it the answer is 503 with ``Retry-After``
  (memory bounded however many clients send at once).
- ``GuardedH11Protocol``: uvicorn's h11 protocol with what it lacks against slow clients: a
  request (headers and body) must arrive within ``read_timeout`` of its first byte (or of
  the connection opening), and at most ``max_connections`` connections are kept: a new one
  closes the oldest connection that has not delivered a complete request (one that never
  began one is answered 503 first, as a refused connection is), so a flood of
  idle or slow connections cannot keep /healthz from answering or use up the process's
  file descriptors.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import fcntl
import hmac
import resource
import socket
import struct
import termios
import time
from collections.abc import Iterable
from dataclasses import dataclass

import h11
import uvicorn
from uvicorn.protocols.http.h11_impl import H11Protocol

from trademon.settings.webconfig import WebConfig

# The health checks: they say ok, ready or not ready (with the failing checks' fixed names) and
# nothing else, and container health checks and Kubernetes probes carry no credentials.
OPEN_PATHS = ("/healthz", "/readyz")


@dataclass(frozen=True)
class Limits:
    max_body: int = 1024 * 1024
    read_timeout: float = 10.0  # seconds for a whole request to arrive
    keep_alive: int = 5  # seconds an idle keep-alive connection stays open
    max_header_bytes: int = 16 * 1024  # h11's limit on a request's head
    max_connections: int = 512  # per listening port


def max_connections(listeners: int, soft_limit: int | None = None) -> int:
    """Connections per port so that every port's connections together stay well inside the
    process's file-descriptor limit (the rest is for files, clients and the listening sockets)."""
    if soft_limit is None:
        soft_limit = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
        if soft_limit == resource.RLIM_INFINITY:
            soft_limit = 65536
    return max(8, min(Limits.max_connections, (soft_limit - 64) // (2 * max(1, listeners))))


async def _answer(send, status: int, text: str, headers: Iterable[tuple[bytes, bytes]] = ()) -> None:
    body = text.encode()
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"text/plain; charset=utf-8"), (b"content-length", str(len(body)).encode()),
                            *headers]})
    await send({"type": "http.response.body", "body": body})


CLOSE = [(b"connection", b"close")]


def _header(scope, name: bytes) -> bytes | None:
    for k, v in scope.get("headers", ()):
        if k == name:
            return v
    return None


def is_token_path(path: str, token_paths: tuple[str, ...]) -> bool:
    return any(path == p or path.startswith(p.rstrip("/") + "/") for p in token_paths)


async def _basic(web: WebConfig, auth: str) -> bool:
    scheme, _, encoded = auth.partition(" ")
    try:
        user, _, password = base64.b64decode(encoded.strip(), validate=True).decode("utf-8").partition(":")
    except (binascii.Error, UnicodeDecodeError):
        return False
    return scheme.lower() == "basic" and await web.basic_ok(user, password)


def _bearer_ok(auth: str, token: str) -> bool:
    scheme, _, presented = auth.partition(" ")
    return scheme.lower() == "bearer" and hmac.compare_digest(presented.strip().encode(), token.encode())


async def _denied(web: WebConfig, path: str, token_paths: tuple[str, ...], auth: str,
                  path_token: str | None = None) -> tuple[str, list] | None:
    """Why a request may not pass (the 401's text and headers), or None. Every path but the
    health checks needs a credential once any is configured: the control and webhook paths the
    bearer token (``path_token``, else TRADEMON_API_TOKEN; basic auth when only that is
    configured), every other path either the shared token or basic auth (a Prometheus scrape
    config sends one of the two, never both)."""
    if path in OPEN_PATHS:
        return None
    own = path_token or web.token
    if own is not None and is_token_path(path, token_paths):
        if _bearer_ok(auth, own):
            return None
        return "a bearer token is required (TRADEMON_API_TOKEN)\n", [(b"www-authenticate", b'Bearer realm="trademon"'), *CLOSE]
    if web.token is None and not web.users:
        return None
    if web.token is not None and _bearer_ok(auth, web.token):
        return None
    if web.users and await _basic(web, auth):
        return None
    challenges = ([(b"www-authenticate", b'Bearer realm="trademon"')] if web.token is not None else []) + \
        ([(b"www-authenticate", b'Basic realm="trademon"')] if web.users else [])
    return "unauthorized: send Authorization: Bearer <TRADEMON_API_TOKEN>" + (" or basic auth" if web.users else "") + "\n", challenges


def json_values_at_most(body: bytes) -> int:
    """How many JSON values ``body`` can hold (every value but a container's first follows a
    comma; commas in strings count too: an upper bound), counted in C over its bytes, no parse."""
    return body.count(b",") + body.count(b"[") + body.count(b"{") + 1


VALUE_BYTES = 256  # what one JSON value of a body parses into, about (dicts, lists, pydantic's checks)


def weight(body: bytes) -> int:
    """What a body costs the process until it is answered: its bytes and what its values parse into."""
    return len(body) + VALUE_BYTES * json_values_at_most(body)


class BodyBudget:
    """Bytes of request bodies the process holds at once, across its ports, each weighed with
    what its JSON values parse into (``weight``). A body the budget
    cannot take is refused with 503 (one is always let through, so a body within the
    per-request limit is never refused forever). One event loop: no lock needed."""

    def __init__(self, limit: int):
        self.limit = limit
        self.used = 0

    def take(self, n: int, own: int = 0) -> bool:
        """``n`` bytes more for a request that holds ``own`` already: refused past the limit
        unless that request is the only one holding any."""
        if self.used > own and self.used + n > self.limit:
            return False
        self.used += n
        return True

    def give(self, n: int) -> None:
        self.used -= n


def busy(budget: BodyBudget) -> str:
    return f"busy: {budget.used} bytes of request bodies in flight, the budget is {budget.limit}; try again\n"


def guard(app, web: WebConfig, limits: Limits, token_paths: tuple[str, ...] = (), budget: BodyBudget | None = None,
          path_token: str | None = None):
    """``app`` behind authentication and a body limit (see the module doc). ``path_token``: the
    token_paths' own bearer token instead of TRADEMON_API_TOKEN (the bot's webhook)."""
    budget = budget or BodyBudget(limits.max_body)

    async def guarded(scope, receive, send):
        if scope["type"] != "http":
            return await app(scope, receive, send)
        denied = await _denied(web, scope["path"], token_paths, (_header(scope, b"authorization") or b"").decode("latin-1"), path_token)
        if denied is not None:
            return await _answer(send, 401, *denied)

        length = _header(scope, b"content-length")
        declared = None
        if length is not None:
            try:
                declared = int(length)
            except ValueError:
                return await _answer(send, 400, "Content-Length is not a number\n", CLOSE)
            if declared > limits.max_body:
                return await _answer(send, 413, f"body of {declared} bytes is over the {limits.max_body}-byte limit\n", CLOSE)
        if scope["method"] in ("GET", "HEAD", "DELETE", "OPTIONS") and length is None and _header(scope, b"transfer-encoding") is None:
            return await app(scope, receive, send)

        # Read the body here, counting: memory stays within the limit whatever the client sends,
        # and all bodies in flight together within the process's budget (a 503 past it: the
        # client, Alertmanager too, tries again later).
        held = 0
        try:
            if declared is not None:
                if not budget.take(declared):
                    return await _answer(send, 503, busy(budget), [(b"retry-after", b"1"), *CLOSE])
                held = declared
            chunks, size = [], 0
            while True:
                msg = await receive()
                if msg["type"] == "http.disconnect":
                    return
                chunk = msg.get("body", b"")
                size += len(chunk)
                if size > limits.max_body:
                    return await _answer(send, 413, f"body over the {limits.max_body}-byte limit\n", CLOSE)
                if size > held:
                    if not budget.take(size - held, own=held):
                        return await _answer(send, 503, busy(budget), [(b"retry-after", b"1"), *CLOSE])
                    held = size
                chunks.append(chunk)
                if not msg.get("more_body", False):
                    break
            body = b"".join(chunks)
            del chunks
            # weighed by its values once whole: 1.5 MiB of small objects parse into ~40 MiB
            if (heavy := weight(body)) > held:
                if not budget.take(heavy - held, own=held):
                    return await _answer(send, 503, busy(budget), [(b"retry-after", b"1"), *CLOSE])
                held = heavy
            sent = False

            async def replay():
                nonlocal sent
                if not sent:
                    sent = True
                    return {"type": "http.request", "body": body, "more_body": False}
                return await receive()

            # held until the app has answered: what it parses from the body is in memory till then
            return await app(scope, replay, send)
        finally:
            budget.give(held)

    return guarded


class ConnectionCap:
    """The connections of one port, oldest first. Checked at accept() time (``CappedSocket``),
    not only when a protocol starts: asyncio accepts a burst of connections before any protocol
    sees one, so a check there alone lags behind a flood and lets it reach the file-descriptor
    limit. Past ``limit``, the oldest connection still waiting for its request is closed to make
    room (idle after a request, or slow: a slowloris), unless it is new and has sent nothing yet
    (for ``grace`` seconds: in a burst its request is still on the way); when none can go, the
    new connection is refused with a 503. A burst of fresh requests is answered, never cut."""

    def __init__(self, limit: int, grace: float = 2.0):
        self.limit, self.grace = limit, grace
        self.live: dict[GuardedH11Protocol, None] = {}  # insertion order = age

    def make_room(self, extra: int = 0) -> bool:
        over = len(self.live) + extra - self.limit
        if over <= 0:
            return True
        now = time.monotonic()
        for proto in list(self.live):
            if over <= 0:
                break
            fresh = not proto.got_data and (now - proto.opened < self.grace or proto._unread())
            if proto._waiting() and not fresh and not proto.transport.is_closing():
                # a connection that never began a request is refused as a new one would be (on
                # a loaded host it is a burst's client whose request is still on the way); an
                # idle kept-alive one is just closed: its client retries on a new connection
                proto._drop(busy=proto.cycle is None)
                over -= 1
        return over <= 0


LISTEN_BACKLOG = 4096  # the kernel caps it at net.core.somaxconn (4096 on current Linux)
BUSY = (b"HTTP/1.1 503 Service Unavailable\r\ncontent-type: text/plain; charset=utf-8\r\nretry-after: 1\r\n"
        b"connection: close\r\ncontent-length: 49\r\n\r\nbusy: too many connections at once; try again soon\n")


def refuse(conn: socket.socket) -> None:
    """Answer a connection there is no room for with 503 and close it, without a protocol."""
    try:
        conn.setblocking(False)
        conn.send(BUSY)
        conn.shutdown(socket.SHUT_WR)
    except OSError:
        pass
    finally:
        conn.close()


class CappedSocket(socket.socket):
    """A listening socket whose accept() makes room under the port's ConnectionCap first, and
    refuses with 503 what it cannot make room for."""

    cap: ConnectionCap | None = None

    def listen(self, backlog: int = LISTEN_BACKLOG) -> None:
        """The kernel's queue is always LISTEN_BACKLOG long, whatever asyncio asks for (it passes
        its per-wake-up accept count): a short queue drops a burst's SYNs, and those clients
        wait seconds for their retransmits (234 waited 30 s behind a queue of 64)."""
        super().listen(max(backlog, LISTEN_BACKLOG))

    def accept(self):
        while True:
            conn, addr = super().accept()  # BlockingIOError when none is waiting: asyncio's signal to stop
            if self.cap is None or self.cap.make_room(extra=1):
                return conn, addr
            refuse(conn)


class GuardedConfig(uvicorn.Config):
    """uvicorn's Config plus the limits and the connection cap GuardedH11Protocol reads."""

    def __init__(self, app, limits: Limits, cap: ConnectionCap, **kwargs):
        super().__init__(app, **kwargs)
        self.trademon_limits = limits
        self.trademon_cap = cap


class GuardedH11Protocol(H11Protocol):
    """uvicorn's h11 protocol plus a whole-request deadline and a connection cap (module doc).

    The limits come from ``config.trademon_limits`` and ``config.trademon_cap`` (a GuardedConfig)."""

    def __init__(self, config: GuardedConfig, server_state, app_state, _loop=None):
        super().__init__(config, server_state, app_state, _loop)
        self.limits: Limits = config.trademon_limits
        self.cap: ConnectionCap = config.trademon_cap
        self._deadline: asyncio.TimerHandle | None = None

    def connection_made(self, transport):
        super().connection_made(transport)
        self.opened, self.got_data, self._late = time.monotonic(), False, False  # what the cap's grace looks at
        self._arm()
        self.cap.live[self] = None
        self.cap.make_room()

    def _waiting(self) -> bool:
        """No complete request yet: an idle, slow or silent connection, nothing in progress for it."""
        return self.conn.their_state is not h11.DONE and (self.cycle is None or self.cycle.response_complete)

    def _arm(self) -> None:
        if self._deadline is None:
            self._deadline = self.loop.call_later(self.limits.read_timeout, self._too_slow)

    def _disarm(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None

    def _unread(self) -> bool:
        """Bytes in the kernel's queue this process has not read yet: when nothing was read so far,
        the event loop is behind a burst, not the client slow."""
        try:
            fd = self.transport.get_extra_info("socket").fileno()
            return struct.unpack("i", fcntl.ioctl(fd, termios.FIONREAD, b"\0\0\0\0"))[0] > 0
        except (OSError, AttributeError):
            return False

    def _too_slow(self) -> None:
        self._deadline = None
        if not self.got_data and not self._late and self._unread():
            self._late = True  # once: the request came in time, the loop had not read it yet
            self._arm()
            return
        if self.conn.their_state is not h11.DONE:
            self._drop()

    def _drop(self, busy: bool = False) -> None:
        self._disarm()
        self.cap.live.pop(self, None)  # gone for the count now, not at connection_lost (next loop turn)
        if self.cycle is not None and not self.cycle.response_complete:
            self.cycle.disconnected = True
        if self.transport.is_closing():
            return
        if busy:
            self.transport.write(BUSY)  # a few bytes the socket takes at once; close() then frees it
            self.transport.close()
        else:
            self.transport.abort()  # no lingering: the descriptor is freed on the next loop turn

    def data_received(self, data: bytes) -> None:
        self.got_data = True
        self._arm()  # the first byte of a request starts its clock
        super().data_received(data)
        if self.conn.their_state in (h11.DONE, h11.MUST_CLOSE, h11.CLOSED, h11.ERROR):
            self._disarm()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        self._disarm()  # idle now: uvicorn's keep-alive timeout takes over until the next byte

    def connection_lost(self, exc):
        self._disarm()
        self.cap.live.pop(self, None)
        super().connection_lost(exc)
