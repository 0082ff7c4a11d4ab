"""The one backoff (trademon.runtime.backoff) and the one label-child cache
(trademon.metrics.Children) every loop and every hot path uses."""

from __future__ import annotations

import pytest
from prometheus_client import CollectorRegistry, Counter, Gauge, generate_latest

from tests.support.procs import serve
from trademon.metrics import Children
from trademon.runtime.backoff import Backoff, delay

pytestmark = pytest.mark.unit


def test_backoff_doubles_from_first_to_the_cap():
    assert [delay(n, 0.5, 10) for n in range(1, 8)] == [0.5, 1, 2, 4, 8, 10, 10]
    assert delay(0, 1, 60) == 1 and delay(10**9, 1, 60) == 60  # no overflow however long it fails


def test_backoff_jitter_stays_in_the_top_share_of_each_step():
    waits = [delay(3, 1, 60, jitter=0.2) for _ in range(200)]
    assert all(3.2 <= w <= 4.0 for w in waits) and len(set(waits)) > 1


def test_a_success_starts_the_backoff_again():
    b = Backoff(5, 300)
    assert [b.next() for _ in range(8)] == [5, 10, 20, 40, 80, 160, 300, 300]
    b.reset()
    assert b.next() == 5


def test_children_are_looked_up_once_and_kept_with_their_method():
    reg = CollectorRegistry()
    c = Counter("x_total", "x", ["strategy"], registry=reg)
    inc = Children(c, "inc")
    assert inc("a") is inc("a")  # the same bound method: no second label lookup
    inc("a")()
    inc("a")()
    inc("b")()
    assert b'x_total{strategy="a"} 2.0' in generate_latest(reg) and b'x_total{strategy="b"} 1.0' in generate_latest(reg)


def test_removing_a_child_drops_its_series_and_its_cache():
    reg = CollectorRegistry()
    g = Gauge("y", "y", ["account"], registry=reg)
    kids = Children(g)
    kids("DU1").set(3)
    kids.remove("DU1")
    assert b'y{account="DU1"}' not in generate_latest(reg)
    kids("DU1").set(4)  # a new child, not the cached one of the removed series
    assert b'y{account="DU1"} 4.0' in generate_latest(reg)
    kids.clear()
    assert b'y{' not in generate_latest(reg) and not kids.children


@pytest.fixture
def redirecting_server():
    """A loopback HTTP server that answers every request with a redirect elsewhere and notes
    the headers it got."""
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    seen: list[dict] = []

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):
            seen.append(dict(self.headers))
            self.send_response(302)
            self.send_header("Location", "http://example.invalid/elsewhere")
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    serve(server)
    yield f"http://127.0.0.1:{server.server_address[1]}", seen
    server.shutdown()
    server.server_close()


def test_the_http_client_does_not_follow_redirects(redirecting_server):
    import asyncio

    from trademon.runtime import http

    url, seen = redirecting_server
    r = http.request("GET", f"{url}/healthz", timeout=5)
    assert r.status_code == 302 and not r.is_success

    async def bearer():
        async with http.async_client(5, {"Authorization": "Bearer t0ken"}) as client:
            return await client.get(f"{url}/x")

    assert asyncio.run(bearer()).status_code == 302
    assert seen[-1].get("Authorization") == "Bearer t0ken" and len(seen) == 2  # the token went nowhere else
    with pytest.raises(http.Refused):
        http.request("GET", "http://127.0.0.1:9/", timeout=5)
