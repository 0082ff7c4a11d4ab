"""Positions and P&L accounting: average cost, realized and unrealized P&L, commissions."""

from __future__ import annotations

from dataclasses import dataclass

COMMISSION_PER_SHARE = 0.0035  # IBKR Pro tiered, per share (the minimum is left out on purpose: tiny demo orders)


@dataclass
class Position:
    qty: int = 0
    avg_cost: float = 0.0
    realized: float = 0.0
    commissions: float = 0.0

    def fill(self, side: int, qty: int, price: float) -> None:
        """Apply a fill; ``side`` is +1 (buy) or -1 (sell)."""
        self.commissions += qty * COMMISSION_PER_SHARE
        signed = side * qty
        if self.qty == 0 or (self.qty > 0) == (side > 0):
            total = abs(self.qty) + qty
            self.avg_cost = (self.avg_cost * abs(self.qty) + price * qty) / total
            self.qty += signed
            return
        closing = min(qty, abs(self.qty))
        direction = 1 if self.qty > 0 else -1
        self.realized += closing * (price - self.avg_cost) * direction
        self.qty += signed
        if self.qty == 0:
            self.avg_cost = 0.0
        elif (self.qty > 0) != (direction > 0):  # flipped: the rest opens at the fill price
            self.avg_cost = price

    def unrealized(self, mid: float) -> float:
        return self.qty * (mid - self.avg_cost)

    def pnl(self, mid: float) -> float:
        return self.realized + self.unrealized(mid) - self.commissions
