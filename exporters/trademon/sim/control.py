"""The control endpoint: scenarios on and off at run time, and a snapshot of the world."""

from __future__ import annotations

from fastapi import FastAPI
from fastapi.responses import JSONResponse

from trademon.sim.clock import SimClock
from trademon.sim.scenarios import SCENARIOS, switch
from trademon.sim.workers import WORKERS
from trademon.sim.world import World


def snapshot(world: World, clock: SimClock) -> dict:
    now = clock.now()
    accounts = {}
    for a in world.s.accounts:
        acct = world.account(a)
        accounts[a] = {k: v for k, v in acct.items() if k not in ("market_values",)}
    return {
        "sim_time": now,
        "speed": clock.speed,
        "seed": world.s.seed,
        "scenarios": sorted(world.scenarios),
        "ib_connected": world.ib_connected,
        "marketdata_connected": True,
        "marketdata_stalled": world.market.stalled,
        "api_down": world.api_down,
        "daily_loss_limit": world.s.daily_loss_limit,
        "accounts": accounts,
        "strategies": {st: {"account": world.account_of[st], "pnl": world.strategy_pnl(st)} for st in world.s.strategies},
        "breakers": {name: b.open for name, b in world.breakers.items()},
        "mids": dict(world.market.mid),
        "intents": world.intents.counts(),
        "worker_lag_seconds": {name: world.intents.lag(state, now) for name, (state, _) in WORKERS.items()},
        "orders": {
            "submitted": sum(world.broker.stats.submitted.values()),
            "filled": sum(world.broker.stats.filled.values()),
            "cancelled": sum(world.broker.stats.cancelled.values()),
            "rejected": sum(world.broker.stats.rejected.values()),
        },
    }


def build_control(world: World, clock: SimClock) -> FastAPI:
    app = FastAPI(title="trademon simulator control", docs_url=None, redoc_url=None, openapi_url=None)

    def listing() -> dict:
        return {"active": sorted(world.scenarios), "available": list(SCENARIOS)}

    def unknown(name: str) -> JSONResponse:
        return JSONResponse({"detail": f"unknown scenario {name!r}", "available": list(SCENARIOS)}, status_code=404)

    @app.get("/scenarios")
    async def scenarios():
        return listing()

    @app.post("/scenarios/{name}")
    async def scenario_on(name: str):
        if name not in SCENARIOS:
            return unknown(name)
        switch(world, name, True)
        return listing()

    @app.delete("/scenarios/{name}")
    async def scenario_off(name: str):
        if name not in SCENARIOS:
            return unknown(name)
        switch(world, name, False)
        return listing()

    @app.get("/state")
    async def state():
        return snapshot(world, clock)

    return app
