"""Labels from outside, bounded: orderRef (strategy), data-farm names and IB error codes.

Every distinct label value makes series (47 per strategy: three counters, three histograms),
so a broker where each order carries its own orderRef would grow the exposition without end.
A ``Bound`` admits at most ``cap`` distinct values; any further value is counted under
``__overflow__`` and in ``ib_label_overflow_total{label}``. With an idle time, values not used
for that long are handed back by ``expire`` (their series are removed and their place freed).
"""

from __future__ import annotations

import re
from collections import OrderedDict

from trademon.contract import OVERFLOW

# Longer label values are cut: an orderRef is the trader's text, not ours to store in full.
MAX_LABEL_LENGTH = 100
NO_ORDER_REF = "unknown"  # the order has no orderRef
NO_MATCH = "unmatched"  # the orderRef does not match TRADEMON_IB_STRATEGY_PATTERN


def strategy_of(order_ref: str | None, pattern: re.Pattern | None) -> str:
    """The strategy an orderRef names: the whole orderRef, or the pattern's group ``strategy``."""
    if not order_ref:
        return NO_ORDER_REF
    if pattern is not None:
        m = pattern.search(order_ref)
        order_ref = m.group("strategy") if m else None
        if not order_ref:
            return NO_MATCH
    return order_ref[:MAX_LABEL_LENGTH]


class Bound:
    """At most ``cap`` distinct values of one label, the most recently used last."""

    __slots__ = ("cap", "idle", "clock", "overflowed", "seen")

    def __init__(self, cap: int, overflowed, clock=None, idle: float | None = None):
        self.cap, self.idle, self.clock = cap, idle, clock
        self.overflowed = overflowed  # the ib_label_overflow_total child of this label
        self.seen: OrderedDict[str, float] = OrderedDict()  # value -> last use (with an idle time)

    def __call__(self, value: str) -> str:
        """The label to use for ``value``: itself while there is room, else ``__overflow__``."""
        seen = self.seen
        if value not in seen and value != OVERFLOW and len(seen) - (OVERFLOW in seen) >= self.cap:
            self.overflowed.inc()
            value = OVERFLOW
        if self.idle is not None:
            seen[value] = self.clock()
            seen.move_to_end(value)
        else:
            seen.setdefault(value, 0.0)
        return value

    def touch(self, value: str) -> None:
        """``value`` is in use (if it is still admitted): not idle."""
        if self.idle is not None and value in self.seen:
            self.seen[value] = self.clock()
            self.seen.move_to_end(value)

    def expire(self) -> list[str]:
        """The values unused for longer than the idle time, forgotten (oldest first)."""
        if self.idle is None:
            return []
        before, seen, out = self.clock() - self.idle, self.seen, []
        while seen:
            value, last = next(iter(seen.items()))
            if last >= before:
                break
            del seen[value]
            out.append(value)
        return out

    def clear(self) -> None:
        self.seen.clear()
