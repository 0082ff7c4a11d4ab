"""The built-in load generator: the strategies' order intents, sent as real HTTP requests
to the simulated automatictrader-api, with the duplicates and bad requests real clients send.

Each strategy trades toward a target position: its opening holding, leaning against the
price's distance from the open (buy low, sell high), in small lots. That keeps positions,
exposure and P&L bounded, as a risk-managed book would be.
"""

from __future__ import annotations

import asyncio
import logging
import random
import uuid

import httpx

from trademon.runtime import http
from trademon.sim.clock import SimClock
from trademon.sim.world import World

log = logging.getLogger("trademon.sim.loadgen")

INTENTS_PER_S = 0.2        # simulated seconds; intents per strategy book change, bursts on top
MAX_REQUESTS_PER_REAL_S = 25.0  # keeps CPU modest at high speeds
BURST_P, BURST_SIZE = 0.04, (3, 8)  # a rebalance now and then: intents arrive together
DUPLICATE_P = 0.02
BAD_P = 0.005
LIMIT_ORDER_P = 0.7
LEAN = {"meanrev": 1.0, "pairs": 0.6, "momentum": 0.4}  # target shares per sd of price move, in units
UNIT_NOTIONAL = 3000.0
LOT_NOTIONAL = (200.0, 600.0)
BAD_KINDS = ("zero_quantity", "bad_side", "no_key", "limit_without_price", "unknown_symbol")
STATUS_CHECK_P = 0.3  # after an accepted intent, the strategy sometimes asks how an earlier one is doing


class Strategies:
    """Decides the next intent from the world (no I/O: the same seed gives the same intents)."""

    def __init__(self, world: World, rng: random.Random):
        self.world, self.rng = world, rng
        self.base = {k: p.qty for k, p in world.positions.items()}
        m = world.market
        # Expensive contracts are traded rarely: one lot of them is a lot of money.
        self.weights = [min(1.0, (LOT_NOTIONAL[1] / m.open[s]) ** 2) for s in m.symbols]

    def next_intent(self) -> dict:
        w, rng, m = self.world, self.rng, self.world.market
        strategy = rng.choice(w.s.strategies)
        symbol = rng.choices(m.symbols, self.weights)[0]
        price = m.mid[symbol]
        unit = max(1, round(UNIT_NOTIONAL / price))
        target = self.base[(strategy, symbol)] - round(LEAN.get(strategy, 0.5) * m.deviation(symbol) * unit)
        diff = target - w.book_quantity(strategy, symbol)
        lot = max(1, round(rng.uniform(*LOT_NOTIONAL) / price))
        side = (1 if diff > 0 else -1) if diff else rng.choice((1, -1))
        qty = min(abs(diff), lot) if diff else lot
        body: dict[str, object] = {"strategy": strategy, "symbol": symbol, "side": "buy" if side > 0 else "sell", "quantity": qty}
        if rng.random() < LIMIT_ORDER_P:
            body.update(order_type="limit", limit_price=round(price - side * m.half_spread(symbol), 2))
        else:
            body["order_type"] = "market"
        return body

    def bad_request(self, body: dict, kind: str) -> tuple[dict, bool]:
        """A malformed variant of ``body``; returns (body, whether to send the key)."""
        body = dict(body)
        if kind == "zero_quantity":
            body["quantity"] = 0
        elif kind == "bad_side":
            body["side"] = "hold"
        elif kind == "limit_without_price":
            body.update(order_type="limit", limit_price=None)
        elif kind == "unknown_symbol":
            body["symbol"] = "XYZ"
        return body, kind != "no_key"


class LoadGenerator:
    def __init__(self, world: World, clock: SimClock, base_url: str, seed: int):
        self.world, self.clock, self.base_url = world, clock, base_url
        self.rng = random.Random(f"{seed}:loadgen")
        self.strategies = Strategies(world, random.Random(f"{seed}:strategies"))
        self.sent = 0
        self._last: tuple[str, dict] | None = None
        self._last_id: str | None = None
        self._api_up = True

    def _key(self) -> str:
        return str(uuid.UUID(int=self.rng.getrandbits(128)))

    async def run(self) -> None:
        async with http.async_client(5.0, base_url=self.base_url) as client:
            while True:
                n = self.rng.randint(*BURST_SIZE) if self.rng.random() < BURST_P else 1
                for _ in range(n):
                    await self.send_one(client)
                gap = self.rng.expovariate(INTENTS_PER_S)
                await asyncio.sleep(max(self.clock.real_seconds(gap), 1.0 / MAX_REQUESTS_PER_REAL_S))

    async def send_one(self, client: httpx.AsyncClient) -> None:
        self.sent += 1
        # The first requests include one duplicate and one bad request, so every series exists early.
        r = self.rng.random()
        if self._last is not None and (self.sent == 3 or r < DUPLICATE_P):
            key, body = self._last
            send_key = True
        elif self.sent == 4 or r < DUPLICATE_P + BAD_P:
            body, send_key = self.strategies.bad_request(self.strategies.next_intent(), self.rng.choice(BAD_KINDS))
            key = self._key()
        else:
            key, body, send_key = self._key(), self.strategies.next_intent(), True
        headers = {"Idempotency-Key": key} if send_key else {}
        resp = await self._request(client, "POST", "/intents", json=body, headers=headers)
        if resp is None or resp.status_code != 201:
            return
        self._last = (key, body)
        if self._last_id is not None and self.rng.random() < STATUS_CHECK_P:
            await self._request(client, "GET", f"/intents/{self._last_id}")
        self._last_id = resp.json()["id"]

    async def _request(self, client: httpx.AsyncClient, method: str, url: str, **kw) -> httpx.Response | None:
        """The response, or None when the API cannot be reached (then wait a little)."""
        try:
            resp = await client.request(method, url, **kw)
        except httpx.HTTPError as e:
            self._note_api(False, repr(e))
            await asyncio.sleep(0.5)
            return None
        self._note_api(resp.status_code != 503, f"HTTP {resp.status_code}")
        return resp

    def _note_api(self, up: bool, detail: str) -> None:
        if up != self._api_up:
            self._api_up = up
            (log.info if up else log.warning)("load generator: API " + ("reachable again" if up else "unreachable"), extra={"detail": detail})
