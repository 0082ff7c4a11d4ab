"""Simulated time: runs ``speed`` times faster than real time, starting at the real now.

Sim time is a Unix time, so what the world stamps reads like a date. Timestamps that
Prometheus compares with its own ``time()`` go through :meth:`SimClock.to_wall`: an event
``a`` simulated seconds ago is shown ``a`` real seconds ago, so ages (market-data
staleness, uptime) grow at the simulator's speed, like every other duration it reports.
"""

from __future__ import annotations

import asyncio
import time


class SimClock:
    def __init__(self, speed: float = 1.0, start: float | None = None, wall=time.time, mono=time.monotonic):
        if speed <= 0:
            raise ValueError("speed must be > 0")
        self.speed = speed
        self._wall, self._mono = wall, mono
        self.start = self._wall() if start is None else start
        self._mono0 = self._mono()

    def now(self) -> float:
        """Current simulated Unix time."""
        return self.start + (self._mono() - self._mono0) * self.speed

    def to_wall(self, sim_t: float) -> float:
        """A real Unix time whose age is the simulated age of ``sim_t``."""
        return self._wall() - (self.now() - sim_t)

    def real_seconds(self, sim_seconds: float) -> float:
        return sim_seconds / self.speed

    async def sleep(self, sim_seconds: float) -> None:
        await asyncio.sleep(max(0.0, sim_seconds) / self.speed)
