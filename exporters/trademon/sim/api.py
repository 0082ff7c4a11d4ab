"""automatictrader-api as the simulator serves it: a real FastAPI order-intent API,
instrumented with ``trademon.instrument``, with the test hooks the synthetic checks use."""

from __future__ import annotations

import json
import logging
import re
from typing import Literal

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from trademon.bounded import BoundedValues
from trademon.instrument import Instrumentation, instrument
from trademon.runtime.service import Probes, basics_app
from trademon.sim.clock import SimClock
from trademon.sim.world import World

log = logging.getLogger("trademon.sim.api")

SYNTHETIC_PREFIX = "synthetic"
_NAME = re.compile(r"^[A-Za-z0-9_.:-]{1,64}$")
# Distinct synthetic-* names (strategies and breakers together) the API accepts: the synthetic
# checks use two; each name becomes series here and on position-manager.
MAX_SYNTHETIC_NAMES = 16


MAX_LIMIT_PRICE = 1e9  # far above any listed price; a bound so a price times a quantity stays finite


class IntentIn(BaseModel):
    # Strict: JSON's true is not a quantity of 1, "5" is not 5; finite: Infinity, NaN or 1e400
    # stored as a price made /state unanswerable and daily_pnl -Inf (a false loss page).
    model_config = ConfigDict(extra="ignore", strict=True, allow_inf_nan=False)
    strategy: str = Field(min_length=1, max_length=64)
    symbol: str = Field(min_length=1, max_length=32)
    side: Literal["buy", "sell"]
    quantity: int = Field(gt=0, le=1_000_000)
    order_type: Literal["market", "limit"]
    limit_price: float | None = Field(default=None, gt=0, le=MAX_LIMIT_PRICE)


def _error(status: int, detail: str, **extra) -> JSONResponse:
    return JSONResponse({"detail": detail, **extra}, status_code=status)


def build_api(world: World, clock: SimClock) -> tuple[FastAPI, Instrumentation]:
    app = FastAPI(title="automatictrader-api (trademon simulator)", docs_url=None, redoc_url=None, openapi_url=None)
    ins = instrument(app)
    ins.track_intent_states(world.intents.counts)
    strategies, symbols = set(world.s.strategies), set(world.s.symbols)
    synthetic_names = BoundedValues(MAX_SYNTHETIC_NAMES)

    def strategy_label(value) -> str:
        """The strategy label of a request: a known or synthetic strategy, else ``unknown``
        (what clients send must not grow the series count)."""
        if isinstance(value, str) and (value in strategies or value in synthetic_names.seen):
            return value
        return "unknown"

    def too_many(name: str) -> str | None:
        if synthetic_names.admit(name):
            return None
        return f"{MAX_SYNTHETIC_NAMES} {SYNTHETIC_PREFIX}* names are in use already; reuse one of them"

    def refuse(strategy: str, reason: str, detail: str, status: int = 422, **extra) -> JSONResponse:
        ins.intent_error(strategy, reason)
        return _error(status, detail, reason=reason, **extra)

    @app.post("/intents")
    async def create_intent(request: Request):
        raw = await request.body()
        try:
            body = json.loads(raw) if raw else None
        except ValueError:
            body = None
        except RecursionError:
            return refuse("unknown", "json_too_deep", "the body is JSON nested too deeply to parse; an intent is one flat object", 400)
        strategy = strategy_label(body.get("strategy") if isinstance(body, dict) else None)
        key = request.headers.get("idempotency-key", "").strip()
        if not key:
            return refuse(strategy, "missing_idempotency_key", "the Idempotency-Key header is required")
        if len(key) > 200:
            return refuse(strategy, "invalid_idempotency_key", "the Idempotency-Key header is longer than 200 characters")
        existing = world.intents.existing(key)
        if existing is not None:
            ins.intent_duplicate(strategy)
            return JSONResponse({"id": existing.id, "detail": "duplicate Idempotency-Key"}, status_code=409)
        if not isinstance(body, dict):
            return refuse(strategy, "invalid_json", "the body must be a JSON object")
        try:
            intent = IntentIn.model_validate(body)
        except ValidationError as e:
            first = e.errors()[0]
            field = str(first["loc"][0]) if first.get("loc") else "body"
            kind = "missing" if first.get("type") == "missing" else "invalid"
            return refuse(strategy, f"{kind}_{field}", f"{field}: {first.get('msg')}")
        synthetic = intent.strategy.startswith(SYNTHETIC_PREFIX)
        if intent.strategy not in strategies and not (synthetic and _NAME.match(intent.strategy)):
            return refuse(strategy, "unknown_strategy", f"unknown strategy; known: {', '.join(world.s.strategies)} or {SYNTHETIC_PREFIX}*")
        if synthetic and (full := too_many(intent.strategy)):
            return refuse(strategy, "too_many_synthetic_names", full)
        strategy = strategy_label(intent.strategy)
        if intent.symbol not in symbols and not synthetic:
            return refuse(strategy, "unknown_symbol", f"unknown symbol; known: {', '.join(world.s.symbols)}")
        if intent.order_type == "limit" and intent.limit_price is None:
            return refuse(strategy, "missing_limit_price", "a limit order needs limit_price")
        breaker = world.refuses(intent.strategy)
        if breaker is not None:
            return refuse(strategy, "circuit_breaker_open", "circuit breaker open: new intents are refused", 423, breaker=breaker)
        account = world.account_of.get(intent.strategy, world.s.accounts[0])
        created = world.intents.create(
            key, clock.now(), strategy=intent.strategy, symbol=intent.symbol, side=intent.side,
            quantity=intent.quantity, order_type=intent.order_type,
            limit_price=intent.limit_price if intent.order_type == "limit" else None, account=account)
        ins.intent_created(intent.strategy)
        return JSONResponse(created.as_json(), status_code=201)

    @app.get("/intents/{id}")
    async def get_intent(id: str):
        intent = world.intents.by_id.get(id)
        if intent is None:
            return _error(404, f"no intent {id!r}")
        return intent.as_json()

    def synthetic_only(breaker: str, admit: bool = True) -> JSONResponse | None:
        if not breaker.startswith(SYNTHETIC_PREFIX) or not _NAME.match(breaker):
            return _error(403, f"test hooks only touch breakers named {SYNTHETIC_PREFIX}*")
        if admit and (full := too_many(breaker)):
            return _error(422, full, reason="too_many_synthetic_names")
        return None

    @app.post("/test/circuit-breaker/{breaker}/trip")
    async def trip(breaker: str):
        if (denied := synthetic_only(breaker)) is not None:
            return denied
        world.trip(breaker, "synthetic_test")
        return {"breaker": breaker, "open": True}

    @app.post("/test/circuit-breaker/{breaker}/reset")
    async def reset(breaker: str):
        if (denied := synthetic_only(breaker)) is not None:
            return denied
        world.reset(breaker)
        return {"breaker": breaker, "open": False}

    @app.get("/test/circuit-breaker/{breaker}")
    async def breaker_state(breaker: str):
        if (denied := synthetic_only(breaker, admit=False)) is not None:  # a GET reads; it takes no name
            return denied
        b = world.breakers.get(breaker)
        return {"breaker": breaker, "open": bool(b and b.open)}

    return app, ins


def api_port_app(world: World, clock: SimClock):
    """The whole automatictrader-api port: probes and /metrics around the API, and the
    api-down switch in front of everything (so Prometheus sees the job down)."""
    app, ins = build_api(world, clock)
    inner = basics_app(ins.registry, Probes(), inner=app)

    async def gate(scope, receive, send):
        if scope["type"] == "http" and world.api_down:
            body = b"service unavailable\n"
            await send({"type": "http.response.start", "status": 503,
                        "headers": [(b"content-type", b"text/plain; charset=utf-8"), (b"content-length", str(len(body)).encode())]})
            await send({"type": "http.response.body", "body": body})
            return
        await inner(scope, receive, send)

    return gate, ins
