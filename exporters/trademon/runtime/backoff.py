"""Capped exponential backoff, the one rule of every retry loop (the IB reconnect, Telegram's
5xx, the bot's getUpdates, native's restarts): wait ``first``, then twice that, four times ...
up to ``cap``; a success starts again from ``first``."""

from __future__ import annotations

import random


def delay(failures: int, first: float, cap: float, jitter: float = 0.0) -> float:
    """The wait after ``failures`` failures in a row (1 for the first). With ``jitter`` (0 to 1)
    each wait is drawn from the top ``jitter`` share of it (0.2: 80-100 %), so many clients
    that lost the same server do not all come back in the same second."""
    full = min(cap, first * 2 ** min(max(failures - 1, 0), 30))  # the exponent capped: no overflow
    return full * (1 - jitter * random.random())


class Backoff:
    """A retry loop's waits: ``next()`` after each failure, ``reset()`` after a success."""

    def __init__(self, first: float, cap: float, jitter: float = 0.0):
        self.first, self.cap, self.jitter = first, cap, jitter
        self.failures = 0

    def next(self) -> float:
        self.failures += 1
        return delay(self.failures, self.first, self.cap, self.jitter)

    def reset(self) -> None:
        self.failures = 0
