"""Per-request cost of trademon.instrument, against the same FastAPI app uninstrumented and
instrumented with prometheus-fastapi-instrumentator, in one run, two ways: with its defaults
(five metrics, as its README shows) and set up like for like (the one request-duration
histogram with the same labels, buckets and excluded ``/metrics``).

Not a test: it prints figures. Target (issue 2): trademon's added time at most one third of
the instrumentator's defaults. Needs the bench extra: ``pip install -e '.[bench]'``.

    python benchmarks/instrument_overhead.py [--rounds 40] [--requests 400]

The apps are driven in-process by direct ASGI calls (no sockets, no client library), so the
figures are the app and its middleware only. Each round times every variant on the same
request mix, in a shuffled order; the per-request time of a variant is the median of its
rounds, which keeps a noisy neighbour or a GC pause in one round out of the result.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import os
import platform
import random
import statistics
import sys
import timeit
from time import perf_counter

from fastapi import FastAPI, Header, HTTPException
from pydantic import BaseModel


class IntentIn(BaseModel):
    strategy: str
    symbol: str
    side: str
    quantity: float
    order_type: str = "market"
    limit_price: float | None = None


def order_api() -> FastAPI:
    """A small order-intent API shaped like automatictrader-api (DESIGN.md)."""
    app = FastAPI()
    intents: dict[str, dict] = {f"i{n}": {"id": f"i{n}", "state": "pending"} for n in range(100)}
    keys: dict[str, str] = {}

    @app.get("/healthz")
    async def healthz():
        return {"status": "ok"}

    @app.post("/intents", status_code=201)
    async def create(body: IntentIn, idempotency_key: str = Header()):
        if idempotency_key in keys:
            raise HTTPException(409, {"id": keys[idempotency_key]})
        intent_id = f"i{len(intents)}"
        intents[intent_id] = {"id": intent_id, "state": "pending", **body.model_dump()}
        keys[idempotency_key] = intent_id
        return intents[intent_id]

    @app.get("/intents/{intent_id}")
    async def get_intent(intent_id: str):
        try:
            return intents[intent_id]
        except KeyError:
            raise HTTPException(404, "no such intent") from None

    @app.post("/test/circuit-breaker/{breaker}/trip")
    async def trip(breaker: str):
        return {"open": True}

    @app.get("/test/circuit-breaker/{breaker}")
    async def breaker_state(breaker: str):
        return {"open": False}

    return app


DEFAULTS = "instrumentator, defaults"
LIKE_FOR_LIKE = "instrumentator, one histogram"


def variants() -> dict[str, FastAPI]:
    from prometheus_client import CollectorRegistry
    from prometheus_fastapi_instrumentator import Instrumentator, metrics

    from trademon.contract import metric
    from trademon.instrument import instrument

    plain = order_api()
    ours = order_api()
    instrument(ours)
    theirs = order_api()
    Instrumentator(registry=CollectorRegistry()).instrument(theirs).expose(theirs)  # defaults, as its README shows
    # Like for like: trademon's one histogram, its buckets, labels endpoint (the route
    # template: `handler` there), method and status (not grouped into 2xx), /metrics not timed.
    spec = metric("api_request_duration_seconds")
    registry = CollectorRegistry()
    lean = order_api()
    (Instrumentator(should_group_status_codes=False, excluded_handlers=["/metrics"], registry=registry)
     .add(metrics.latency(metric_name=spec.name, buckets=spec.buckets, registry=registry))
     .instrument(lean).expose(lean))
    return {"uninstrumented": plain, "trademon.instrument": ours, DEFAULTS: theirs, LIKE_FOR_LIKE: lean}


def _scope(method: str, path: str, headers: list[tuple[bytes, bytes]]) -> dict:
    return {
        "type": "http", "asgi": {"version": "3.0", "spec_version": "2.4"}, "http_version": "1.1",
        "method": method, "scheme": "http", "path": path, "raw_path": path.encode(), "query_string": b"",
        "root_path": "", "headers": headers, "client": ("127.0.0.1", 50000), "server": ("127.0.0.1", 8080),
    }


def request_mix(n: int) -> list[tuple[str, str, list, bytes, int]]:
    """Mostly reads of one intent, some creations, a health check: (method, path, headers, body, status)."""
    rng = random.Random(7)
    mix = []
    for i in range(n):
        r = rng.random()
        if r < 0.6:
            mix.append(("GET", f"/intents/i{rng.randrange(100)}", [], b"", 200))
        elif r < 0.9:
            body = json.dumps({"strategy": "momentum", "symbol": "AAPL", "side": "buy", "quantity": 10}).encode()
            headers = [(b"content-type", b"application/json"), (b"idempotency-key", f"k{i}-{rng.random()}".encode())]
            mix.append(("POST", "/intents", headers, body, 201))
        else:
            mix.append(("GET", "/healthz", [], b"", 200))
    return mix


async def call(app, method: str, path: str, headers: list, body: bytes) -> int:
    status = 0
    delivered = False

    async def receive():
        nonlocal delivered
        if delivered:
            return {"type": "http.disconnect"}
        delivered = True
        return {"type": "http.request", "body": body, "more_body": False}

    async def send(message):
        nonlocal status
        if message["type"] == "http.response.start":
            status = message["status"]

    await app(_scope(method, path, headers), receive, send)
    return status


def fresh_keys(mix: list, tag: str) -> list:
    """POSTs need unused idempotency keys in every round, or they turn into 409s."""
    out = []
    for i, (method, path, headers, body, expect) in enumerate(mix):
        if method == "POST":
            headers = [headers[0], (b"idempotency-key", f"{tag}-{i}".encode())]
        out.append((method, path, headers, body, expect))
    return out


async def time_round(app, mix: list) -> float:
    """Mean seconds per request over the mix (the warm-up checked every status, so no
    error path is timed)."""
    gc.collect()
    start = perf_counter()
    for method, path, headers, body, _ in mix:
        await call(app, method, path, headers, body)
    return (perf_counter() - start) / len(mix)


async def run(rounds: int, n: int) -> dict[str, list[float]]:
    apps = variants()
    mix = request_mix(n)
    for name, app in apps.items():  # warm-up: build middleware stacks, bind label children
        for method, path, headers, body, expect in fresh_keys(mix, f"warm-{name}"):
            got = await call(app, method, path, headers, body)
            if got != expect:
                sys.exit(f"{name}: {method} {path} answered {got}, expected {expect}; the benchmark app is broken")
    samples: dict[str, list[float]] = {name: [] for name in apps}
    order = list(apps)
    for r in range(rounds):
        random.shuffle(order)
        for name in order:
            samples[name].append(await time_round(apps[name], fresh_keys(mix, f"r{r}-{name}")))
    return samples


def helper_costs() -> list[tuple[str, float]]:
    """The per-call cost of the intent and worker helpers, for docs/instrumenting.md."""
    from trademon.instrument import instrument

    ins = instrument(FastAPI())
    ins.intent_created("momentum")

    def processing():
        with ins.processing("planner"):
            pass

    n = 200_000
    rows = [
        ("ins.intent_created(strategy)", lambda: ins.intent_created("momentum")),
        ("with ins.processing(worker): pass", processing),
        ("ins.set_worker_lag(worker, s)", lambda: ins.set_worker_lag("planner", 0.5)),
    ]
    return [(label, min(timeit.repeat(fn, number=n, repeat=5)) / n) for label, fn in rows]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=40, help="interleaved rounds (default 40)")
    parser.add_argument("--requests", type=int, default=400, help="requests per variant per round (default 400)")
    args = parser.parse_args()

    samples = asyncio.run(run(args.rounds, args.requests))
    med = {name: statistics.median(s) * 1e6 for name, s in samples.items()}
    base = med["uninstrumented"]
    ours = med["trademon.instrument"] - base
    theirs = med[DEFAULTS] - base
    lean = med[LIKE_FOR_LIKE] - base

    print(f"machine: {os.cpu_count()} cores, {platform.machine()}, Python {platform.python_version()}, "
          f"{args.rounds} rounds x {args.requests} requests per variant (60% GET /intents/{{id}}, "
          f"30% POST /intents, 10% GET /healthz)")
    print()
    print(f"{'variant':36} {'us/request':>11} {'added us':>9} {'x baseline':>11}")
    for name, us in med.items():
        added = us - base
        print(f"{name:36} {us:11.1f} {added:9.1f} {us / base:11.3f}")
    print()
    print(f"trademon added time / instrumentator (defaults) added time: {ours / theirs:.3f} "
          f"(target <= 0.333: {'met' if ours <= theirs / 3 else 'NOT met'})")
    print(f"trademon added time / instrumentator (one histogram, same labels) added time: {ours / lean:.3f}")
    if ours > 0:
        print(f"instrumentator overhead is {theirs / ours:.1f}x trademon's with its defaults, "
              f"{lean / ours:.1f}x like for like")
    print()
    print(f"{'helper':36} {'us/call':>11}")
    for label, seconds in helper_costs():
        print(f"{label:36} {seconds * 1e6:11.2f}")


if __name__ == "__main__":
    main()
