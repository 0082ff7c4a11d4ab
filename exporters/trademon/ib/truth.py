"""Broker truth: what IB says about orders, to be held against what the trading system says.

Working orders per contract and side (IB allows 20) and per account and symbol (the quantity
in flight that position drift may be), today's Order Efficiency Ratio, executions counted once
each (live, or recovered with reqExecutions after a disconnect), and whether this client sees
other clients' orders at all (TWS's Master API client ID). Fed by ``BrokerState``.
"""

from __future__ import annotations

import datetime as dt
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

from prometheus_client.metrics_core import GaugeMetricFamily

from trademon.contract import ORDER_ACTION_KINDS, metric
from trademon.ib.bounds import Bound

# Statuses of an order that is working at IB (IB's "active" orders).
WORKING = frozenset({"PendingSubmit", "ApiPending", "PreSubmitted", "Submitted"})
START_MARGIN_SECONDS = 2.0
MAX_EXEC_IDS = 100_000  # execIds remembered, so an execution is counted once
# Unlabelled gauges that must be absent while the session is down (unknown is not 0): served by
# a collector, not as prometheus_client Gauges (which cannot be absent).
SESSION_GAUGES = ("ib_master_client", "ib_working_orders", "ib_strategy_working_orders")


@dataclass(slots=True)
class Working:
    contract: str  # the symbol label (bounded)
    side: str  # BUY or SELL
    account: str
    remaining: float
    strategy: str  # the strategy label (bounded)


def side_of(action: str) -> str:
    return "BUY" if action == "BUY" else "SELL"  # SELL, SSHORT, SLONG: all sell


class DayCounts:
    """Today's order actions (IB's Order Efficiency Ratio), reset at midnight of ``tz``."""

    def __init__(self, gauge_kinds, ratio_gauge, tz: dt.tzinfo, now: Callable[[], float]):
        self.kinds, self.ratio, self.tz, self.now = gauge_kinds, ratio_gauge, tz, now
        self.day: dt.date | None = None
        self.counts = dict.fromkeys(ORDER_ACTION_KINDS, 0)
        self._roll()

    def _roll(self) -> None:
        today = dt.datetime.fromtimestamp(self.now(), self.tz).date()
        if today != self.day:
            self.day = today
            self.counts = dict.fromkeys(ORDER_ACTION_KINDS, 0)
            self._export()

    def add(self, kind: str) -> None:
        self._roll()
        self.counts[kind] += 1
        self._export()

    def before_scrape(self) -> None:
        self._roll()

    def _export(self) -> None:
        c = self.counts
        for kind, n in c.items():
            self.kinds.labels(kind).set(n)
        self.ratio.set((c["submission"] + c["revision"] + c["cancellation"]) / (c["execution"] + 1))


class OrderBook:
    """Working orders and executions as IB reports them, and the metrics they move."""

    def __init__(self, metrics, client_id: int, contracts: Bound, tz: dt.tzinfo,
                 now: Callable[[], float], started: float):
        m = metrics
        self.client_id = client_id
        self.contracts = contracts
        self.started = started  # executions before this (wall clock) are not counted
        self.active = m["ib_active_orders"]
        self.in_flight = m["ib_working_order_quantity"]
        self.executions = m["ib_executions_total"]
        self.filled_qty = m["ib_filled_quantity_total"]
        self.day = DayCounts(m["ib_order_actions_today"], m["ib_order_efficiency_ratio"], tz, now)
        self.working: dict[object, Working] = {}
        self.per_side: dict[tuple[str, str], int] = {}
        self.per_symbol: dict[tuple[str, str], float] = {}
        self.per_strategy: dict[str, int] = {}
        self.exec_ids: OrderedDict[str, None] = OrderedDict()
        self.exec_strategies: set[str] = set()  # strategies with an ib_executions_total series
        self.other_clients: set[int] = set()  # other API clients whose orders this session saw live
        self.session = False
        metrics.registry.register(SessionCollector(self))

    # ---- session ----------------------------------------------------------------------

    def session_up(self) -> None:
        self.session = True

    def session_down(self) -> None:
        """Working orders are unknown until the snapshot of the next session: absent, not stale."""
        self.session = False
        self.other_clients.clear()
        for key in list(self.working):
            self._drop(key)
        self.active.clear()
        self.in_flight.clear()
        self.per_side.clear()
        self.per_symbol.clear()
        self.per_strategy.clear()
        self.contracts.clear()

    @property
    def sees_other_clients(self) -> bool:
        return bool(self.other_clients)

    def seen_live(self, client_id: int) -> None:
        """An order event that came as it happened (not in a snapshot) for ``client_id``."""
        if client_id != self.client_id:
            self.other_clients.add(client_id)

    # ---- orders -----------------------------------------------------------------------

    def update(self, key, trade, symbol: str, strategy: str) -> None:
        """An order's current status: working (with its remaining quantity) or not."""
        status = trade.orderStatus.status
        if status in WORKING:
            remaining = trade.orderStatus.remaining
            if not remaining or remaining != remaining or remaining > 1e300:
                remaining = trade.order.totalQuantity - (trade.orderStatus.filled or 0.0)
            remaining = abs(remaining) if remaining == remaining and abs(remaining) < 1e300 else 0.0
            w = self.working.get(key)
            if w is None:
                w = Working(self.contracts(symbol), side_of(trade.order.action), trade.order.account or "", 0.0, strategy)
                self.working[key] = w
                self._count(w, 1)
            self._quantity(w, remaining - w.remaining)
            w.remaining = remaining
        elif key in self.working:
            self._drop(key)

    def _drop(self, key) -> None:
        w = self.working.pop(key)
        self._count(w, -1)
        self._quantity(w, -w.remaining)

    def _count(self, w: Working, d: int) -> None:
        s = self.per_strategy.get(w.strategy, 0) + d
        if s > 0:
            self.per_strategy[w.strategy] = s
        else:
            self.per_strategy.pop(w.strategy, None)
        k = (w.contract, w.side)
        n = self.per_side.get(k, 0) + d
        if n > 0:
            self.per_side[k] = n
            self.active.labels(*k).set(n)
        elif self.per_side.pop(k, None) is not None:
            self.active.remove(*k)

    def _quantity(self, w: Working, d: float) -> None:
        if not w.account or d == 0:
            return
        k = (w.account, w.contract)
        q = self.per_symbol.get(k, 0.0) + d
        if q > 1e-9:
            self.per_symbol[k] = q
            self.in_flight.labels(*k).set(q)
        elif self.per_symbol.pop(k, None) is not None:
            self.in_flight.remove(*k)

    # ---- executions -------------------------------------------------------------------

    def execution(self, exec_id: str, when: float | None, strategy: Callable[[], str],
                  account: str = "", symbol: str = "", shares: float = 0.0) -> bool:
        """Count an execution once; False if seen before or older than the exporter."""
        if not exec_id or exec_id in self.exec_ids:
            return False
        self.exec_ids[exec_id] = None
        if len(self.exec_ids) > MAX_EXEC_IDS:
            self.exec_ids.popitem(last=False)
        # Before the exporter started: the trading system counted it then, and a counter that
        # took the whole day at once would look like executions it never recorded. IB's
        # execution times have whole seconds: a margin keeps those of the starting second.
        if when is not None and when < self.started - START_MARGIN_SECONDS:
            return False
        label = strategy()
        self.exec_strategies.add(label)
        self.executions.labels(label).inc()
        if account and symbol and shares == shares and 0 < abs(shares) < 1e300:
            self.filled_qty.labels(account, self.contracts(symbol)).inc(abs(shares))
        return True

    def forget_strategy(self, strategy: str) -> None:
        """An idle strategy's series go (trademon.ib.bounds)."""
        if strategy in self.exec_strategies:
            self.exec_strategies.discard(strategy)
            self.executions.remove(strategy)


class SessionCollector:
    """ib_master_client and the working orders (in all, per strategy), present only while the
    session is up."""

    def __init__(self, book: OrderBook):
        self.book = book

    def describe(self):
        return [GaugeMetricFamily(name, metric(name).help) for name in SESSION_GAUGES]

    def collect(self):
        book = self.book
        master = GaugeMetricFamily("ib_master_client", metric("ib_master_client").help)
        working = GaugeMetricFamily("ib_working_orders", metric("ib_working_orders").help)
        per = metric("ib_strategy_working_orders")
        by_strategy = GaugeMetricFamily(per.name, per.help, labels=per.labels)
        if book.session:
            master.add_metric([], 1.0 if book.sees_other_clients else 0.0)
            working.add_metric([], float(len(book.working)))
            for strategy, n in book.per_strategy.items():
                by_strategy.add_metric([strategy], float(n))
        yield master
        yield working
        yield by_strategy
