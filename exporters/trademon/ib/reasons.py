"""Why a connection attempt failed, as one of contract.IB_DOWN_REASONS (a bounded label).

ib_async raises what the socket raised: refused, timed out, reset. A timeout is told apart by
whether the TCP connection was made: ib_async sends its "API" greeting only once connected, so
bytes sent means the Gateway accepted the socket and then never completed the handshake (it
waits for a login, a two-factor approval or a dialog), and none means nothing answered at all.
An IB code received during the attempt (326 client id in use) says more than the closed
socket that follows it, so it wins.
"""

from __future__ import annotations

import errno
import socket

_UNREACHABLE = {errno.EHOSTUNREACH, errno.ENETUNREACH, errno.EHOSTDOWN, errno.EADDRNOTAVAIL}


def sent_greeting(ib) -> bool:
    """Whether this attempt got as far as sending the API greeting (the socket was accepted)."""
    conn = getattr(ib.client, "conn", None)
    return bool(getattr(conn, "numBytesSent", 0))


def connect_failure(error: BaseException, accepted: bool, code_reason: str | None) -> str:
    """The reason for a failed connect: ``accepted`` whether the socket was accepted,
    ``code_reason`` the reason an IB error code gave during the attempt, if any."""
    if code_reason is not None:
        return code_reason
    if isinstance(error, ConnectionRefusedError):
        return "socket_refused"
    if isinstance(error, TimeoutError):
        return "handshake_timeout" if accepted else "connect_timeout"
    if isinstance(error, socket.gaierror) or (isinstance(error, OSError) and error.errno in _UNREACHABLE):
        return "unreachable"
    if isinstance(error, ConnectionError):  # reset, or "socket connection broken while connecting"
        return "closed_at_connect" if accepted else "other"
    return "other"
