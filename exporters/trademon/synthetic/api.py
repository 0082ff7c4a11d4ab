"""Client of the automatictrader-api HTTP contract (docs/synthetic-checks.md): intents and
the circuit-breaker test hooks."""

from __future__ import annotations

import uuid

import httpx

from trademon.settings import webconfig


class Unexpected(Exception):
    """An answer the contract does not allow at this step."""


class Starting(Unexpected):
    """HTTP 503 from Prometheus: it listens but is not ready yet (it answers 503 while it loads
    its storage and rules at a start); after the start-up grace, a failure like any other."""


def _brief(r: httpx.Response) -> str:
    return f"HTTP {r.status_code} {r.text[:200]!r}"


class TradingAPI:
    def __init__(self, client: httpx.AsyncClient, base_url: str, token: str | None = None):
        self.client, self.base = client, base_url
        # With TRADEMON_API_TOKEN set, every path of the API but its health checks asks for it;
        # only the API gets it (and position-manager's /metrics), never Prometheus or Alertmanager.
        if token is None:
            token = webconfig.load().token
        self.auth_headers = webconfig.bearer(token)

    async def _breaker(self, breaker: str, action: str) -> None:
        r = await self.client.post(f"{self.base}/test/circuit-breaker/{breaker}/{action}", headers=self.auth_headers)
        if not r.is_success:
            raise Unexpected(f"POST /test/circuit-breaker/{breaker}/{action} answered {_brief(r)}, expected 2xx")

    async def trip(self, breaker: str) -> None:
        await self._breaker(breaker, "trip")

    async def reset(self, breaker: str) -> None:
        await self._breaker(breaker, "reset")

    async def breaker_open(self, breaker: str) -> bool:
        r = await self.client.get(f"{self.base}/test/circuit-breaker/{breaker}", headers=self.auth_headers)
        if not r.is_success:
            raise Unexpected(f"GET /test/circuit-breaker/{breaker} answered {_brief(r)}, expected 200 {{\"open\": bool}}")
        try:
            return bool(r.json()["open"])
        except (ValueError, KeyError, TypeError):
            raise Unexpected(f"GET /test/circuit-breaker/{breaker} answered {_brief(r)}, expected {{\"open\": bool}}") from None

    async def submit_intent(self, strategy: str, symbol: str) -> httpx.Response:
        """A one-share market buy; a fresh Idempotency-Key so it is never a duplicate."""
        body = {"strategy": strategy, "symbol": symbol, "side": "buy", "quantity": 1, "order_type": "market"}
        return await self.client.post(f"{self.base}/intents", json=body,
                                      headers={"Idempotency-Key": f"synthetic-{uuid.uuid4()}", **self.auth_headers})

    async def intent(self, intent_id: str) -> dict:
        r = await self.client.get(f"{self.base}/intents/{intent_id}", headers=self.auth_headers)
        if not r.is_success:
            raise Unexpected(f"GET /intents/{intent_id} answered {_brief(r)}, expected 200")
        return r.json()

    brief = staticmethod(_brief)
