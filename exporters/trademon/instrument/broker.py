"""What the trading system says it did with the broker: orders sent, fills recorded (by
strategy) and its own positions (by account and symbol). The ib-exporter says what IB did;
the broker-truth rules hold one against the other (docs/broker-truth.md)."""

from __future__ import annotations

import math
from collections.abc import Callable


class BrokerRecord:
    """Counters with label children bound once per value; positions as gauges."""

    def __init__(self, sent, fills, positions):
        self._sent, self._fills, self._positions = sent, fills, positions
        self._sent_by: dict[str, Callable[..., None]] = {}
        self._fills_by: dict[str, Callable[..., None]] = {}

    def order_sent(self, strategy: str) -> None:
        """One order handed to IB (placeOrder), under the strategy the ib-exporter derives from
        its orderRef, so the two counts meet in one series."""
        inc = self._sent_by.get(strategy)
        if inc is None:
            inc = self._sent_by[strategy] = self._sent.labels(strategy).inc
        inc()

    def fill_recorded(self, strategy: str) -> None:
        """One execution written to the trading system's own book (one per IB execId)."""
        inc = self._fills_by.get(strategy)
        if inc is None:
            inc = self._fills_by[strategy] = self._fills.labels(strategy).inc
        inc()

    def set_position(self, account: str, symbol: str, quantity: float) -> None:
        """The book's signed position; ``None`` or NaN (not known) removes it: unknown is absent."""
        if quantity is None or math.isnan(quantity):
            try:
                self._positions.remove(account, symbol)
            except KeyError:
                pass
            return
        self._positions.labels(account, symbol).set(quantity)
