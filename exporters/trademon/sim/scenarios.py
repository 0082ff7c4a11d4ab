"""The failures the simulator can be told to act out, and what each does to the world."""

from __future__ import annotations

import logging

from trademon.sim.world import DRIFT_QTY, World

log = logging.getLogger("trademon.sim.scenarios")

SCENARIOS = {
    "loss-breach": "an account's daily P&L falls below the loss limit and stays; the daily-loss breaker trips",
    "ib-disconnect": "the IB API session drops (1100); broker data goes stale, orders stop; off: 1102",
    "marketdata-stall": "the feed stays connected but no tick arrives for any symbol",
    "slippage-spike": "one strategy's fills slip about 2 % against the arrival price",
    "rejection-burst": "most orders are rejected (code 201)",
    "intent-backlog": "the workers stall: pending intents pile up, worker lag climbs",
    "api-down": "the automatictrader-api port answers 503 to everything, /metrics included",
    "reconciliation-mismatch": "position-manager's book and the broker differ for one symbol",
    # Broker truth (docs/broker-truth.md): what IB does silently.
    "silent-drop": "IB drops every order placement without a word (no openOrder, no status, ever); "
                   "off: the held orders turn up at IB (a real silent drop stays counted for the window, 1 h)",
    "fill-lost": "10 orders fill during a 10 s IB disconnect (1100, then 1102) and the trading system never records "
                 "those fills, so its position is 1000 shares short too; off: it re-reads its executions "
                 "(reqExecutions) and records them",
    "position-drift": "the trading system's position in one symbol drifts 1000 shares from IB's",
    "breaker-leak": "a strategy's circuit breaker trips but its kill switch's cancels never reach IB: "
                    "3 resting orders keep working",
    "oer-runup": "a strategy amends its working orders in a loop: today's Order Efficiency Ratio passes 20 "
                 "within a minute; off: a new trading day (the counts restart)",
}


class UnknownScenario(KeyError):
    def __init__(self, name: str):
        super().__init__(name)
        self.name = name

    def __str__(self) -> str:
        return f"unknown scenario {self.name!r}; valid names: {', '.join(SCENARIOS)}"


def _apply(world: World, name: str, on: bool) -> None:
    if name == "ib-disconnect":
        world.ib_disconnect() if on else world.ib_reconnect()
    elif name == "marketdata-stall":
        world.market.stalled = on
    elif name == "slippage-spike":
        world.broker.slippage_spike = world.s.strategies[0] if on and world.s.strategies else None
    elif name == "rejection-burst":
        world.broker.rejection_burst = on
    elif name == "intent-backlog":
        world.workers_stalled = on
    elif name == "api-down":
        world.api_down = on
    elif name == "reconciliation-mismatch":
        key = (world.s.strategies[0], world.s.symbols[0]) if world.s.strategies and world.s.symbols else None
        if key is not None:
            # A fill the book saw but the broker did not (or the reverse): 25 shares apart.
            world.book_offset[key] = 25 if on else 0
    elif name == "silent-drop":
        world.broker.drop_placements = on
        if on:  # one order at once, so the page does not wait on the load generator's next one
            st, sym = world.s.strategies[0], world.s.symbols[0]
            world.broker.submit(world.account_of[st], st, sym, 1, 1, "market", None, world.t)
        else:
            world.broker.release_dropped(world.t)
    elif name == "fill-lost":
        world.start_fill_lost_outage() if on else world.recover_lost_fills()
    elif name == "position-drift":
        world.drift(world.s.accounts[0], world.s.symbols[0], DRIFT_QTY if on else -DRIFT_QTY)
    elif name == "breaker-leak":
        world.leak_breaker(on)
    elif name == "oer-runup":
        if not on:
            world.broker.new_day()
    elif name == "loss-breach":
        if not on:
            world.loss_shock.clear()  # the P&L recovers; the breaker resets once it is back above the limit


def switch(world: World, name: str, on: bool) -> bool:
    """Turn a scenario on or off; returns whether anything changed."""
    if name not in SCENARIOS:
        raise UnknownScenario(name)
    if (name in world.scenarios) == on:
        return False
    (world.scenarios.add if on else world.scenarios.discard)(name)
    _apply(world, name, on)
    if name == "loss-breach":
        world.step_effects()
    log.warning("scenario switched", extra={"scenario": name, "active": on, "sim_time": world.t})
    world.on_change()
    return True
