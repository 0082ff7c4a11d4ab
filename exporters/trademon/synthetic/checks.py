"""The checks. Each ``run()`` raises ``CheckFailed`` (or any error) when the check fails and
sets ``step`` as it goes, so a timeout can say where it stopped. ``cleanup()`` runs after
every run, also after a timeout, to leave the system as the check found it."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any

import httpx

from trademon import contract
from trademon.synthetic.api import Starting, TradingAPI
from trademon.synthetic.config import CIRCUIT_BREAKER_ALERT, WATCHDOG_ALERT, Settings
from trademon.synthetic.observe import active_alerts, exposition_value, prometheus_value

BREAKER_GAUGE = contract.metric("circuit_breaker_open").name


class CheckFailed(Exception):
    pass


class Check:
    name: str
    step: str = "starting"
    # Errors that mean "the stack is still starting" until the check has once run through
    # (runner.py: not run, rather than failed, during the start-up grace).
    not_ready_errors: tuple[type[BaseException], ...] = (httpx.ConnectError, Starting)

    def __init__(self, client: httpx.AsyncClient, settings: Settings):
        self.client, self.settings = client, settings

    async def run(self) -> str:  # returns a short note on success
        raise NotImplementedError

    async def cleanup(self) -> None:
        return None

    async def until(self, what: str, probe: Callable[[], Awaitable[object]]) -> object:
        """Poll ``probe`` until it returns a truthy value; the check's timeout bounds it."""
        self.step = f"waiting for {what}"
        while True:
            v = await probe()
            if v:
                return v
            await asyncio.sleep(self.settings.poll_interval)


class CircuitBreakerCheck(Check):
    """Trip the synthetic breaker through the API's test hook, see its strategy's intents
    refused (423), see circuit_breaker_open == 1 and, with Alertmanager configured, the
    CircuitBreakerTripped alert for that breaker there; then reset it."""

    name = "circuit_breaker"

    def __init__(self, client, settings):
        super().__init__(client, settings)
        self.api = TradingAPI(client, settings.api_url)
        self._tripped = False

    async def _gauge(self) -> float | None:
        s, b = self.settings, self.settings.breaker
        if s.prometheus_url:
            return await prometheus_value(self.client, s.prometheus_url, f'max({BREAKER_GAUGE}{{breaker="{b}"}})')
        return await exposition_value(self.client, f"{s.position_manager_url}/metrics", BREAKER_GAUGE, {"breaker": b},
                                      self.api.auth_headers)  # the same token the API takes

    async def run(self) -> str:
        b = self.settings.breaker
        self.step = "resetting the breaker before the test"
        await self.api.reset(b)
        self.step = "tripping the breaker"
        tripped_at = time.time()
        self._tripped = True
        await self.api.trip(b)
        self.step = "reading the breaker state"
        if not await self.api.breaker_open(b):
            raise CheckFailed(f"GET /test/circuit-breaker/{b} says closed right after the trip")
        self.step = f"submitting an intent of strategy {b}"
        r = await self.api.submit_intent(b, self.settings.symbol)
        if r.status_code != 423:
            raise CheckFailed(f"an intent of strategy {b} with its breaker open answered {TradingAPI.brief(r)}, expected 423")
        source = "Prometheus" if self.settings.prometheus_url else "position-manager /metrics"
        await self.until(f'{BREAKER_GAUGE}{{breaker="{b}"}} == 1 in {source}', lambda: self._is_one())
        note = f"423 while open, {BREAKER_GAUGE} 1 in {source}"
        am = self.settings.alertmanager_url  # set: Settings.alert_step
        if am is not None:
            labels = {"alertname": CIRCUIT_BREAKER_ALERT, "breaker": b}

            async def fresh_alert():
                # Only an alert that started after this trip proves this trip's path.
                alerts = await active_alerts(self.client, am, labels)
                return [a for a in alerts if a["startsAt"] >= tripped_at - 1.0]

            await self.until(f'{CIRCUIT_BREAKER_ALERT}{{breaker="{b}"}} in Alertmanager', fresh_alert)
            note += f", {CIRCUIT_BREAKER_ALERT} in Alertmanager"
        self.step = "resetting the breaker"
        await self.api.reset(b)
        self._tripped = False
        if await self.api.breaker_open(b):
            raise CheckFailed(f"GET /test/circuit-breaker/{b} says open after the reset")
        return note

    async def _is_one(self) -> bool:
        return await self._gauge() == 1

    async def cleanup(self) -> None:
        if self._tripped:
            await self.api.reset(self.settings.breaker)
            self._tripped = False


class PipelineCheck(Check):
    """A synthetic intent (dry run: it never reaches the broker) reaches ``sent``."""

    name = "pipeline"

    def __init__(self, client, settings):
        super().__init__(client, settings)
        self.api = TradingAPI(client, settings.api_url)

    async def run(self) -> str:
        s = self.settings
        self.step = f"submitting an intent of strategy {s.pipeline_strategy}"
        r = await self.api.submit_intent(s.pipeline_strategy, s.symbol)
        if r.status_code != 201:
            raise CheckFailed(f"POST /intents answered {TradingAPI.brief(r)}, expected 201")
        intent_id = r.json()["id"]
        last: dict[str, Any] = {"state": "unknown"}

        async def sent():
            last.update(await self.api.intent(intent_id))
            self.step = f"waiting for intent {intent_id} to reach sent (now {last['state']})"
            return last["state"] == "sent"

        await self.until(f"intent {intent_id} to reach sent", sent)
        return f"intent {intent_id} sent: " + " -> ".join(h.get("state", "?") for h in last.get("history", []))


class HealthCheck(Check):
    """One service's health endpoint answers 2xx."""

    def __init__(self, client, settings, target: str, url: str):
        super().__init__(client, settings)
        self.name, self.url = f"health:{target}", url

    async def run(self) -> str:
        self.step = f"GET {self.url}"
        r = await self.client.get(self.url)
        if not r.is_success:
            raise CheckFailed(f"GET {self.url} answered HTTP {r.status_code} {r.text[:200]!r}")
        return f"HTTP {r.status_code}"


class WatchdogCheck(Check):
    """The always-firing Watchdog alert is in Alertmanager: the alert path works."""

    name = "watchdog"
    # Prometheus sends the Watchdog after its first evaluation and once it has found
    # Alertmanager: until then, no Watchdog is the stack starting, not a broken path.
    not_ready_errors = (httpx.ConnectError, Starting, TimeoutError)

    def __init__(self, client, settings, alertmanager_url: str):
        super().__init__(client, settings)
        self.url = alertmanager_url

    async def run(self) -> str:
        # Polled rather than read once: just after a start Prometheus may not have sent it yet.
        await self.until(f"{WATCHDOG_ALERT} in Alertmanager at {self.url}",
                         lambda: active_alerts(self.client, self.url, {"alertname": WATCHDOG_ALERT}))
        return f"{WATCHDOG_ALERT} present"


def build(client: httpx.AsyncClient, s: Settings) -> tuple[list[Check], list[str]]:
    """The checks the settings ask for, and notes on what is left out and why."""
    checks: list[Check] = []
    notes: list[str] = []
    if "circuit_breaker" in s.checks:
        checks.append(CircuitBreakerCheck(client, s))
        if not s.alert_step:
            notes.append("circuit_breaker: Alertmanager is off, so the check does not wait for the CircuitBreakerTripped alert")
    if "pipeline" in s.checks:
        checks.append(PipelineCheck(client, s))
    if "health" in s.checks:
        checks += [HealthCheck(client, s, t, u) for t, u in s.health_targets.items()]
    if "watchdog" in s.checks:
        if s.alertmanager_url:
            checks.append(WatchdogCheck(client, s, s.alertmanager_url))
        else:
            notes.append("watchdog: left out, Alertmanager is off")
    return checks, notes


def timing_key(check: Check) -> str:
    return check.name.split(":", 1)[0]

