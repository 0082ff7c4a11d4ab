"""The simulator's daily loss limit, followed from Prometheus: the series DailyLossLimitBreach
compares with (trademon.thresholds), so the demo's breaker and its loss-breach scenario move with
a reload of monitoring/config.yml like the alert does. Until Prometheus answers (it scrapes the
simulator, so it may start later), and when it does not, the limit in use stays."""

from __future__ import annotations

import asyncio
import logging
import math

from trademon.runtime import http
from trademon.sim.world import World
from trademon.thresholds import render as threshold_rules

log = logging.getLogger("trademon.sim")
QUERY = threshold_rules.default("daily_loss_limit")  # the default: the simulator's breaker is one for all accounts


async def fetch(client, url: str) -> float | None:
    try:
        r = await client.get(f"{url}/api/v1/query", params={"query": QUERY})
        r.raise_for_status()
        result = r.json()["data"]["result"]
        limit = float(result[0]["value"][1]) if len(result) == 1 else None
        return limit if limit is not None and math.isfinite(limit) else None  # -Inf never trips, NaN never compares
    except (http.Error, ValueError, KeyError, IndexError):
        return None


async def follow(world: World, url: str, every: float = 5.0) -> None:
    async with http.async_client(5.0) as client:
        while True:
            limit = await fetch(client, url)
            if limit is not None and limit < 0 and limit != world.s.daily_loss_limit:
                log.info("daily loss limit from Prometheus", extra={"daily_loss_limit": limit, "was": world.s.daily_loss_limit})
                world.s.daily_loss_limit = limit
            await asyncio.sleep(every)
