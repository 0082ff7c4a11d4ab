"""The broker: orders, acknowledgements, fills with slippage against the arrival mid,
rejections, cancels. It reports what happened as events for the books and the exporter."""

from __future__ import annotations

import heapq
import itertools
import math
import random
from collections import Counter, deque
from dataclasses import dataclass, field

from trademon.ib.state import SLIPPAGE_WINDOW_SECONDS, SlippageWindow  # the real exporter's window, shared
from trademon.sim.market import Market

# IB error codes that reject orders, with their weight among ordinary rejections.
REJECT_CODES = {"201": 0.6, "110": 0.25, "203": 0.15}
REJECT_RATE = 0.008  # a tested algo: under 1 %
CANCEL_RATE = 0.05          # limit orders the strategy cancels before they fill
# slippage-spike: one strategy's fills slip about 2 %. Against the 15-minute mean of the
# UnusualSlippage rule (0.5 %), 2 % crosses it in under 4 minutes; 1 % took 7-8. One
# strategy, not all: what the spike costs until the page stays well inside the daily loss
# limit, so the scenario means slippage, not a loss breach.
SPIKE_SLIPPAGE = 0.02
BURST_REJECT_RATE = 0.75    # rejection-burst: most orders rejected with code 201
ORDER_ACTION_KINDS = ("submission", "revision", "cancellation", "execution")  # IB's Order Efficiency Ratio terms


@dataclass
class Order:
    id: int
    account: str
    strategy: str
    symbol: str
    side: int  # +1 buy, -1 sell
    qty: int
    order_type: str
    limit_price: float | None
    arrival_mid: float
    submitted_at: float
    state: str = "submitted"


@dataclass
class Fill:
    order: Order
    price: float
    at: float
    slippage_bps: float


@dataclass
class BrokerStats:
    """Cumulative counts since start; the exporter turns them into counters."""

    submitted: Counter = field(default_factory=Counter)           # strategy
    filled: Counter = field(default_factory=Counter)              # strategy
    cancelled: Counter = field(default_factory=Counter)           # strategy
    rejected: Counter = field(default_factory=Counter)            # (strategy, code)
    # Broker truth (docs/broker-truth.md): the trading system's own counts beside IB's.
    sent: Counter = field(default_factory=Counter)                # strategy: orders the trading system sent
    executions: Counter = field(default_factory=Counter)          # strategy: executions IB reported
    filled_qty: Counter = field(default_factory=Counter)          # (account, symbol): quantity IB executed
    recorded: Counter = field(default_factory=Counter)            # strategy: fills the trading system recorded
    revised: Counter = field(default_factory=Counter)             # strategy: amendments of working orders (oer-runup)
    # Observations not yet taken by the exporter: (kind, strategy, value).
    observations: deque = field(default_factory=lambda: deque(maxlen=100_000))


class Broker:
    def __init__(self, market: Market, rng: random.Random):
        self.market = market
        self.rng = rng
        self.stats = BrokerStats()
        self.rejection_burst = False
        self.working: dict[int, Order] = {}  # acknowledged, not yet filled, cancelled or rejected
        self.slippage_spike: str | None = None  # the strategy whose fills slip (slippage-spike)
        self._ids = itertools.count(1)
        self._events: list[tuple[float, int, str, Order]] = []  # (time, seq, kind, order)
        self._seq = itertools.count()
        self._recent: dict[str, SlippageWindow] = {}  # strategy -> slippage of its recent fills
        # Broker-truth failures (sim/scenarios.py): placements IB drops without a word, fills
        # the trading system does not record, a kill switch whose cancels do not reach IB.
        self.drop_placements = False
        self.dropped: list[Order] = []
        self.recording = True
        self.lost: list[Order] = []
        self.kill_switch_works = True
        self._day_base: dict[str, int] = dict.fromkeys(ORDER_ACTION_KINDS, 0)

    def _lognormal(self, median: float, sigma: float) -> float:
        return median * math.exp(sigma * self.rng.gauss(0.0, 1.0))

    def _at(self, t: float, kind: str, order: Order) -> None:
        heapq.heappush(self._events, (t, next(self._seq), kind, order))

    def submit(self, account, strategy, symbol, side, qty, order_type, limit_price, now) -> Order:
        o = Order(next(self._ids), account, strategy, symbol, side, qty, order_type, limit_price, self.market.mid[symbol], now)
        self.stats.sent[strategy] += 1
        if self.drop_placements:  # IB never shows it: no openOrder, no status, no fill
            self.dropped.append(o)
            return o
        self._place(o, now)
        return o

    def release_dropped(self, now: float) -> int:
        """The held placements turn up at IB after all (a late acknowledgement)."""
        held, self.dropped = self.dropped, []
        for o in held:
            self._place(o, now)
        return len(held)

    def rest(self, account: str, strategy: str, symbol: str, side: int, qty: int, price: float, now: float) -> Order:
        """A limit order far from the market: acknowledged, then working until cancelled."""
        o = Order(next(self._ids), account, strategy, symbol, side, qty, "limit", price, self.market.mid[symbol], now)
        self.stats.sent[strategy] += 1
        self.stats.submitted[strategy] += 1
        self._at(now, "ack", o)
        return o

    def _place(self, o: Order, now: float, reject: bool = True) -> None:
        self.stats.submitted[o.strategy] += 1
        order_type = o.order_type
        ack = now + min(self._lognormal(0.03, 0.6), 2.0)
        reject_rate = BURST_REJECT_RATE if self.rejection_burst else REJECT_RATE
        if reject and self.rng.random() < reject_rate:
            self._at(ack, "reject", o)
            return
        self._at(ack, "ack", o)
        if order_type == "limit" and self.rng.random() < CANCEL_RATE:
            self._at(ack + self.rng.uniform(20, 60), "cancel", o)
        elif order_type == "limit":
            self._at(ack + min(self._lognormal(2.0, 1.0), 45.0), "fill", o)
        else:
            self._at(ack + self._lognormal(0.15, 0.5), "fill", o)

    def place_now(self, account: str, strategy: str, symbol: str, side: int, qty: int, now: float) -> Order:
        """A market order that is not rejected: the fill a scenario needs, for certain."""
        o = Order(next(self._ids), account, strategy, symbol, side, qty, "market", None, self.market.mid[symbol], now)
        self.stats.sent[strategy] += 1
        self._place(o, now, reject=False)
        return o

    def process(self, until: float) -> list[Fill]:
        """Everything due by ``until``; returns the fills for the books."""
        fills = []
        while self._events and self._events[0][0] <= until:
            t, _, kind, o = heapq.heappop(self._events)
            if o.state in ("filled", "cancelled", "rejected"):
                continue  # cancelled meanwhile (cancel_working)
            if kind == "ack":
                o.state = "acked"
                self.working[o.id] = o
                self.stats.observations.append(("ack", o.strategy, t - o.submitted_at))
            elif kind == "reject":
                o.state = "rejected"
                code = "201" if self.rejection_burst else self._reject_code()
                self.stats.rejected[(o.strategy, code)] += 1
            elif kind == "cancel":
                self._cancelled(o)
            elif kind == "fill":
                fills.append(self._fill(o, t))
        return fills

    def _cancelled(self, o: Order) -> None:
        o.state = "cancelled"
        self.working.pop(o.id, None)
        self.stats.cancelled[o.strategy] += 1

    def cancel_working(self, orders: list[Order] | None = None) -> int:
        """The kill switch: cancel every working order (a circuit breaker trips), or the given ones,
        including those placed and not yet acknowledged (as reqGlobalCancel does): otherwise an
        order on its way turns up working after the kill switch."""
        if orders is None:
            orders = [*self.working.values(), *(o for _, _, _, o in self._events if o.state == "submitted")]
        orders = [o for o in {o.id: o for o in orders}.values() if o.state in ("submitted", "acked")]
        for o in orders:
            self._cancelled(o)
        return len(orders)

    def recover_lost(self) -> list[Order]:
        """The trading system re-reads its executions (reqExecutions) and records the fills it missed."""
        lost, self.lost = self.lost, []
        for o in lost:
            self.stats.recorded[o.strategy] += 1
        return lost

    def today(self) -> dict[str, int]:
        """Today's order actions (IB's Order Efficiency Ratio terms), since new_day()."""
        st = self.stats
        totals = {"submission": sum(st.submitted.values()), "revision": sum(st.revised.values()),
                  "cancellation": sum(st.cancelled.values()), "execution": sum(st.filled.values())}
        return {k: v - self._day_base[k] for k, v in totals.items()}

    def new_day(self) -> None:
        self._day_base = {k: self._day_base[k] + v for k, v in self.today().items()}

    def _reject_code(self) -> str:
        r, acc = self.rng.random(), 0.0
        for code, w in REJECT_CODES.items():
            acc += w
            if r < acc:
                return code
        return "201"

    def _fill(self, o: Order, t: float) -> Fill:
        mid, half = self.market.mid[o.symbol], self.market.half_spread(o.symbol)
        if self.slippage_spike == o.strategy:
            price = o.arrival_mid * (1 + o.side * SPIKE_SLIPPAGE * self.rng.uniform(0.8, 1.2))
        elif o.order_type == "limit" and o.limit_price is not None:  # the API refuses a limit order without one
            price = o.limit_price  # a passive order fills at its limit
        else:  # crosses the spread at the mid of the moment, with a little impact
            price = mid + o.side * half * (1 + abs(self.rng.gauss(0.0, 0.5)))
        price = round(price, 2)
        slip_bps = o.side * (price - o.arrival_mid) / o.arrival_mid * 1e4
        o.state = "filled"
        self.working.pop(o.id, None)
        self.stats.filled[o.strategy] += 1
        self.stats.executions[o.strategy] += 1
        self.stats.filled_qty[(o.account, o.symbol)] += o.qty
        if self.recording:
            self.stats.recorded[o.strategy] += 1
        else:
            self.lost.append(o)
        self.stats.observations.append(("fill_latency", o.strategy, t - o.submitted_at))
        self.stats.observations.append(("slippage_bps", o.strategy, slip_bps))
        self._recent.setdefault(o.strategy, SlippageWindow()).add(t, slip_bps)
        return Fill(o, price, t, slip_bps)

    def avg_slippage_pct(self, strategy: str, now: float) -> float | None:
        """Mean slippage of the strategy's fills of the last 15 minutes, in percent; None
        without fills (the exporter then shows no sample, as the real ib-exporter does)."""
        w = self._recent.get(strategy)
        if w is None:
            return None
        w.evict(now - SLIPPAGE_WINDOW_SECONDS)
        return w.mean_pct()

