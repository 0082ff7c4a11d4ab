"""The intent workers: planner (pending -> planned), risk (planned -> ready) and sender
(ready -> sent, handing the order to the broker). One intent at a time each, oldest first,
so bursts of intents queue up and show as lag."""

from __future__ import annotations

import asyncio
import logging
import math
import random

from trademon.instrument import Instrumentation
from trademon.sim.clock import SimClock
from trademon.sim.world import World

log = logging.getLogger("trademon.sim.workers")

# worker: (state it takes from, median service time in simulated seconds)
WORKERS = {"planner": ("pending", 0.12), "risk": ("planned", 0.05), "sender": ("ready", 0.08)}
ERROR_RATE = 0.004  # transient failures: the intent stays where it is and is retried
IDLE_WAIT_S = 0.25  # real seconds between checks while there is nothing to do (or stalled)


class TransientError(Exception):
    pass


class Worker:
    def __init__(self, name: str, world: World, clock: SimClock, ins: Instrumentation, rng: random.Random):
        self.name = name
        self.state, self.median = WORKERS[name]
        self.world, self.clock, self.ins, self.rng = world, clock, ins, rng

    def blocked(self) -> bool:
        # intent-backlog stalls the planner (so pending climbs); a lost IB session stops the sender.
        if self.name == "planner" and self.world.workers_stalled:
            return True
        return self.name == "sender" and not self.world.ib_connected

    def lag(self) -> float:
        return self.world.intents.lag(self.state, self.clock.now())

    async def run(self) -> None:
        store = self.world.intents
        while True:
            intent = store.oldest(self.state)
            if intent is None or self.blocked():
                if intent is None:
                    await store.wait(self.state, IDLE_WAIT_S)
                else:
                    await asyncio.sleep(IDLE_WAIT_S)
                continue
            try:
                with self.ins.processing(self.name):
                    await self.clock.sleep(self.median * math.exp(0.5 * self.rng.gauss(0.0, 1.0)))
                    if self.rng.random() < ERROR_RATE:
                        raise TransientError(f"{self.name}: transient failure")
                    if store.oldest(self.state) is not intent or self.blocked():
                        continue  # the world changed while we worked; look again
                    if self.name == "sender":
                        self.world.send(intent, self.clock.now())
                    store.advance(intent, self.clock.now())
            except TransientError:
                log.debug("intent processing failed, will retry", extra={"worker": self.name, "intent": intent.id})


def make_workers(world: World, clock: SimClock, ins: Instrumentation, seed: int) -> list[Worker]:
    return [Worker(n, world, clock, ins, random.Random(f"{seed}:worker:{n}")) for n in WORKERS]
