"""Label values chosen by clients, bounded: the first ``limit`` distinct values are kept as
they are, any later new value becomes the overflow value, so no client can grow the series
count of a /metrics page without bound."""

from __future__ import annotations

from trademon.contract import OVERFLOW  # the one overflow value of every bounded label (ib-exporter's too)


class BoundedValues:
    def __init__(self, limit: int, overflow: str = OVERFLOW):
        self.limit, self.overflow = limit, overflow
        self.seen: set[str] = set()

    def admit(self, value: str) -> bool:
        """True if ``value`` is (now) one of the kept values."""
        if value in self.seen:
            return True
        if len(self.seen) >= self.limit:
            return False
        self.seen.add(value)
        return True

    def __call__(self, value: str) -> str:
        return value if self.admit(value) else self.overflow
