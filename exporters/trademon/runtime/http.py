"""The one HTTP client of trademon's processes: httpx, async in the services (the bot, the
synthetic checks, the simulator's load generator) and sync in the command-line steps (native's
health waits, am-config's reload, the demo tour). Redirects are not followed: a health or API URL
that redirects is a wrong URL, and a token must not follow a redirect to another host."""

from __future__ import annotations

import ssl
from collections.abc import Mapping

import httpx

Error = httpx.HTTPError  # anything that went wrong: unreachable, timed out, or an error status raised
Refused = httpx.ConnectError  # nothing listens there (yet)


def async_client(timeout: float, headers: Mapping[str, str] | None = None, base_url: str = "") -> httpx.AsyncClient:
    return httpx.AsyncClient(timeout=timeout, headers=headers, base_url=base_url, follow_redirects=False)


def request(method: str, url: str, *, timeout: float, headers: Mapping[str, str] | None = None,
            verify: ssl.SSLContext | bool = True) -> httpx.Response:
    """One request, no connection kept (the command-line steps ask now and then)."""
    return httpx.request(method, url, timeout=timeout, headers=headers, follow_redirects=False, verify=verify)
