"""Order intents as the automatictrader-api keeps them: idempotency keys, states and
the queues the workers take from."""

from __future__ import annotations

import asyncio
import itertools
import time
from collections import deque
from dataclasses import dataclass, field

STATES = ("pending", "planned", "ready", "sent")
# Sent intents (and their idempotency keys) are kept this long in simulated seconds, like a
# store that archives finished intents: order_intents_sent levels off instead of growing forever.
RETAIN_SENT_S = 3600.0
RETAIN_SENT_MAX = 20_000


def iso(t: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(t)) + f".{int(t % 1 * 1000):03d}Z"


@dataclass
class Intent:
    id: str
    key: str
    strategy: str
    symbol: str
    side: str
    quantity: int
    order_type: str
    limit_price: float | None
    account: str
    state: str
    since: float  # sim time it entered its state
    history: list[tuple[str, float]] = field(default_factory=list)

    def as_json(self) -> dict:
        return {
            "id": self.id, "state": self.state, "strategy": self.strategy, "symbol": self.symbol,
            "side": self.side, "quantity": self.quantity, "order_type": self.order_type,
            "limit_price": self.limit_price, "account": self.account,
            "history": [{"state": s, "at": iso(t)} for s, t in self.history],
        }


class IntentStore:
    def __init__(self):
        self.by_id: dict[str, Intent] = {}
        self.by_key: dict[str, str] = {}
        # Intents waiting in each non-final state, oldest first.
        self.queues: dict[str, deque[Intent]] = {s: deque() for s in STATES[:-1]}
        self._sent: deque[Intent] = deque()
        self._events = {s: asyncio.Event() for s in STATES[:-1]}
        self._ids = itertools.count(1)

    def existing(self, key: str) -> Intent | None:
        i = self.by_key.get(key)
        return self.by_id.get(i) if i else None

    def create(self, key: str, now: float, **fields) -> Intent:
        intent = Intent(id=f"int-{next(self._ids):07d}", key=key, state="pending", since=now, **fields)
        intent.history.append(("pending", now))
        self.by_id[intent.id] = intent
        self.by_key[key] = intent.id
        self._enqueue(intent)
        return intent

    def _enqueue(self, intent: Intent) -> None:
        if intent.state == "sent":
            self._sent.append(intent)
            while len(self._sent) > RETAIN_SENT_MAX or self._sent[0].since < intent.since - RETAIN_SENT_S:
                old = self._sent.popleft()
                self.by_id.pop(old.id, None)
                self.by_key.pop(old.key, None)
        else:
            self.queues[intent.state].append(intent)
            self._events[intent.state].set()

    def advance(self, intent: Intent, now: float) -> None:
        """Move the oldest intent of its state to the next state."""
        q = self.queues[intent.state]
        assert q and q[0] is intent, "workers take intents oldest first"
        q.popleft()
        intent.state = STATES[STATES.index(intent.state) + 1]
        intent.since = now
        intent.history.append((intent.state, now))
        self._enqueue(intent)

    def oldest(self, state: str) -> Intent | None:
        q = self.queues[state]
        return q[0] if q else None

    def lag(self, state: str, now: float) -> float:
        first = self.oldest(state)
        return max(0.0, now - first.since) if first else 0.0

    async def wait(self, state: str, timeout: float) -> None:
        """Until an intent is waiting in ``state`` (or the timeout, in real seconds)."""
        ev = self._events[state]
        if self.queues[state]:
            return
        ev.clear()
        # asyncio.timeout, not wait_for: on Python 3.11 wait_for can swallow a cancellation
        # that races with the event, and the worker would then never stop on SIGTERM.
        try:
            async with asyncio.timeout(timeout):
                await ev.wait()
        except TimeoutError:
            pass

    def counts(self) -> dict[str, int]:
        c = {s: len(q) for s, q in self.queues.items()}
        c["sent"] = len(self._sent)
        return c
