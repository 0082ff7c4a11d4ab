"""The one backoff of trademon's long-lived loops: how long to wait after the n-th failure in a row."""

from __future__ import annotations

import random


def backoff(failures: int, lo: float, hi: float) -> float:
    """Capped exponential backoff with jitter: lo, 2lo, 4lo ... hi (each 80-100 %)."""
    full = min(hi, lo * 2 ** min(max(failures - 1, 0), 30))
    return full * (0.8 + 0.2 * random.random())
