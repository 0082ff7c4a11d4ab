"""Market data: a mid price per symbol and the ticks the feed delivers.

Log mid prices follow an Ornstein-Uhlenbeck process around the opening price: they move
like a quiet trading day but stay within a few tenths of a percent, so the demo account's
P&L wanders without drifting into the loss limit on its own.
"""

from __future__ import annotations

import math
import random

# Opening prices of the usual demo symbols; others get a price from their name.
OPENING_PRICES = {"AAPL": 190.0, "MSFT": 410.0, "SPY": 520.0, "QQQ": 445.0, "ES": 5250.0, "NVDA": 880.0, "TSLA": 175.0}

REVERSION_PER_S = 1 / 1800  # half the gap to the opening price closes in about 20 minutes
STATIONARY_SD = 0.001       # typical distance from the opening price: 0.1 %
TICKS_PER_S = 4.0


def opening_price(symbol: str) -> float:
    if symbol in OPENING_PRICES:
        return OPENING_PRICES[symbol]
    return 20.0 + sum(map(ord, symbol)) % 480


class Market:
    def __init__(self, symbols: list[str], rng: random.Random, now: float):
        self.symbols = list(symbols)
        self.rng = rng
        self.open = {s: opening_price(s) for s in self.symbols}
        self.mid = dict(self.open)
        self.spread_bps = {s: 1.0 + rng.random() * 2.0 for s in self.symbols}
        self._x = {s: 0.0 for s in self.symbols}  # log(mid / open)
        self.ticks = {s: 0 for s in self.symbols}
        self.last_tick = {s: now for s in self.symbols}
        # IB's own market data lines (what the ib-exporter watches): they tick on through a
        # stall of the trading system's feed, which is a fault of that feed, not of IB's.
        self.ib_last_tick = {s: now for s in self.symbols}
        self._tick_frac = {s: rng.random() for s in self.symbols}
        self.connected_since = now
        self.stalled = False  # marketdata-stall: the feed stays up but delivers nothing

    def step(self, t: float, dt: float) -> None:
        sd = STATIONARY_SD * math.sqrt(2 * REVERSION_PER_S * dt)
        for s in self.symbols:
            x = self._x[s]
            x += -REVERSION_PER_S * x * dt + sd * self.rng.gauss(0.0, 1.0)
            self._x[s] = x
            self.mid[s] = self.open[s] * math.exp(x)
            # Whole ticks at TICKS_PER_S on average, carrying the fraction over.
            f = self._tick_frac[s] + TICKS_PER_S * dt * (0.5 + self.rng.random())
            n = int(f)
            self._tick_frac[s] = f - n
            if n:
                self.ib_last_tick[s] = t
            if n and not self.stalled:
                self.ticks[s] += n
                self.last_tick[s] = t

    def half_spread(self, symbol: str) -> float:
        return self.mid[symbol] * self.spread_bps[symbol] / 2e4

    def deviation(self, symbol: str) -> float:
        """How far the mid is from the opening price, in stationary standard deviations."""
        return self._x[symbol] / STATIONARY_SD
