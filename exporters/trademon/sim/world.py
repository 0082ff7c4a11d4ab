"""The seeded world: market, broker, books per account and strategy, circuit breakers,
the IB session, intents, and the scenarios' effects on all of it.

Same seed, same world: every random draw comes from generators seeded from it (one per
part, so one part's draws never shift another's), and the world moves in fixed simulated
steps whatever the real timing. The market's path is therefore the same on every run of a
seed; the order flow arrives over real HTTP, so which step an order lands in can differ.

The trading "day" is the simulator's run: daily P&L never resets. A reset at midnight
would be a jump of the whole day's P&L, which PnLAnomaly would rightly flag, once per
simulated day (every 24 minutes at speed 60).
"""

from __future__ import annotations

import logging
import random
from collections import Counter
from dataclasses import dataclass, field
from collections.abc import Callable

from trademon.sim.book import Position
from trademon.sim.broker import Broker
from trademon.sim.intents import IntentStore
from trademon.sim.market import Market

log = logging.getLogger("trademon.sim.world")

STEP_S = 0.5
DAILY_LOSS_BREAKER = "daily_loss"
LOSS_BREACH_FACTOR = 1.225  # loss-breach holds daily P&L at about this times the limit (-612 for -500)
# IB data farms: (farm, kind) as the 2104/2106/2158 messages name them.
FARMS = (("usfarm", "market"), ("ushmds", "historical"), ("secdefil", "secdef"))
FARM_OK_CODES = ("2104", "2106", "2158")
# Start-of-day holdings per account, as gross notional spread over the symbols.
START_GROSS = 90_000.0
# Broker-truth scenarios (sim/scenarios.py), in simulated seconds and shares.
FILL_LOST_OUTAGE_S = 10.0  # fill-lost: the 1100 outage during which a fill goes unrecorded (1102 after it)
# fill-lost: market orders that fill during the outage. Several: the rule counts IB's fills up
# to a minute ago against all the trading system recorded, so the fills of that last minute
# (three or four a strategy) hide as many lost ones.
PROBE_ORDERS, PROBE_QTY = 10, 100
DRIFT_QTY = 1000           # position-drift: well beyond what orders in flight could explain
RESTING_ORDERS = 3         # breaker-leak: resting orders the kill switch fails to cancel
OER_TARGET, OER_RUNUP_S = 24.0, 60.0  # oer-runup: amendments enough for this ratio in this long (past 20 in ~50 s)


@dataclass
class Settings:
    seed: int = 1
    accounts: list[str] = field(default_factory=lambda: ["DU1234567"])
    symbols: list[str] = field(default_factory=lambda: ["AAPL", "MSFT", "SPY", "ES"])
    strategies: list[str] = field(default_factory=lambda: ["momentum", "meanrev", "pairs"])
    daily_loss_limit: float = -500.0
    exposure_limit: float = 200_000.0
    start_cash: float = 1_000_000.0


@dataclass
class Breaker:
    open: bool = False
    reason: str = ""
    since: float = 0.0


class World:
    def __init__(self, settings: Settings, now: float):
        self.s = settings
        seed = settings.seed
        self.t = now
        self.market = Market(settings.symbols, random.Random(f"{seed}:market"), now)
        self.broker = Broker(self.market, random.Random(f"{seed}:broker"))
        self.rng = random.Random(f"{seed}:world")
        self.intents = IntentStore()
        self.account_of = {st: settings.accounts[i % len(settings.accounts)] for i, st in enumerate(settings.strategies)}
        # Books per (strategy, symbol): what the broker holds, and what position-manager believes.
        self.positions: dict[tuple[str, str], Position] = {}
        self.book_offset: dict[tuple[str, str], int] = {}  # position-manager's book minus the broker's
        self.trading_offset: dict[tuple[str, str], int] = {}  # (account, symbol): the trading system's position minus IB's
        self.leaking: list = []  # breaker-leak's resting orders
        self.outage_ends: float | None = None  # fill-lost: when the session comes back by itself
        self._amend_carry = 0.0  # oer-runup: the fraction of an amendment not yet made
        self._open_positions()
        self.breakers: dict[str, Breaker] = {DAILY_LOSS_BREAKER: Breaker()}
        self.breaker_trips: Counter = Counter()  # (breaker, reason)
        self.ib_connected = True
        self.ib_disconnects = 0
        self.ib_errors: Counter = Counter({c: 1 for c in FARM_OK_CODES})  # the farm messages of a fresh session
        self.farms = {f: True for f in FARMS}
        self.scenarios: set[str] = set()
        self.api_down = False
        self.workers_stalled = False
        self.loss_shock: dict[str, float] = {}  # strategy -> P&L hit held by loss-breach
        self.on_change: Callable[[], None] = lambda: None  # called after a breaker, session or scenario change

    # ---- books ------------------------------------------------------------------
    def _open_positions(self) -> None:
        per = START_GROSS / max(1, len(self.s.symbols)) / max(1, len(self.s.strategies))
        for st in self.s.strategies:
            for sym in self.s.symbols:
                mid = self.market.mid[sym]
                qty = int(per / mid * self.rng.uniform(0.5, 1.5)) * self.rng.choice((1, 1, 1, -1))
                self.positions[(st, sym)] = Position(qty=qty, avg_cost=mid if qty else 0.0)

    def strategies_of(self, account: str) -> list[str]:
        return [st for st, a in self.account_of.items() if a == account]

    def strategy_pnl(self, strategy: str) -> float:
        m = self.market.mid
        return sum(self.positions[(strategy, sym)].pnl(m[sym]) for sym in self.s.symbols) + self.loss_shock.get(strategy, 0.0)

    def account(self, account: str) -> dict:
        """The account's values as TWS reports them."""
        m = self.market.mid
        realized = unrealized = gross = net = 0.0
        quantities, values = {}, {}
        for sym in self.s.symbols:
            q = 0
            for st in self.strategies_of(account):
                p = self.positions[(st, sym)]
                q += p.qty
                realized += p.realized - p.commissions
                unrealized += p.unrealized(m[sym])
            quantities[sym], values[sym] = q, q * m[sym]
            gross += abs(values[sym])
            net += values[sym]
        realized += sum(self.loss_shock.get(st, 0.0) for st in self.strategies_of(account))
        daily = realized + unrealized
        net_liq = self.s.start_cash + daily
        maint = 0.25 * gross
        excess = net_liq - maint
        return {
            "daily_pnl": daily, "realized_pnl": realized, "unrealized_pnl": unrealized,
            "net_liquidation": net_liq, "gross_position_value": gross, "maint_margin_req": maint,
            "excess_liquidity": excess, "buying_power": 4 * excess, "cushion": excess / net_liq,
            "gross_exposure": gross, "net_exposure": net, "leverage": gross / net_liq,
            "exposure_limit": self.s.exposure_limit, "positions": quantities, "market_values": values,
        }

    def book_quantity(self, strategy: str, symbol: str) -> int:
        return self.positions[(strategy, symbol)].qty

    def trading_position(self, account: str, symbol: str) -> int:
        """The trading system's own position: IB's, but for the fills it lost and a scenario's drift."""
        return sum(self.positions[(st, symbol)].qty for st in self.strategies_of(account)) + self.trading_offset.get((account, symbol), 0)

    def drift(self, account: str, symbol: str, qty: int) -> None:
        key = (account, symbol)
        self.trading_offset[key] = self.trading_offset.get(key, 0) + qty

    def discrepancy(self, account: str, symbol: str) -> int:
        return sum(self.book_offset.get((st, symbol), 0) for st in self.strategies_of(account))

    # ---- breakers -----------------------------------------------------------------
    def trip(self, name: str, reason: str) -> bool:
        b = self.breakers.setdefault(name, Breaker())
        if b.open:
            return False
        b.open, b.reason, b.since = True, reason, self.t
        self.breaker_trips[(name, reason)] += 1
        if not name.startswith("synthetic") and self.broker.kill_switch_works:
            self.broker.cancel_working()  # the kill switch: IB's working orders go
        log.warning("circuit breaker tripped", extra={"breaker": name, "reason": reason})
        self.on_change()
        return True

    def reset(self, name: str) -> bool:
        b = self.breakers.setdefault(name, Breaker())
        if not b.open:
            return False
        b.open = False
        log.info("circuit breaker reset", extra={"breaker": name})
        self.on_change()
        return True

    def refuses(self, strategy: str) -> str | None:
        """The open breaker that refuses this strategy's new intents, if any."""
        for name in (DAILY_LOSS_BREAKER, strategy):
            b = self.breakers.get(name)
            if b is not None and b.open:
                return name
        return None

    def _check_loss_limit(self) -> None:
        limit = self.s.daily_loss_limit
        worst = min(self.account(a)["daily_pnl"] for a in self.s.accounts)
        if worst < limit:
            self.trip(DAILY_LOSS_BREAKER, "daily_loss_limit")
        elif worst > limit / 2 and self.breakers[DAILY_LOSS_BREAKER].open and self.breakers[DAILY_LOSS_BREAKER].reason == "daily_loss_limit":
            # Recovered well above the limit (hysteresis): trading resumes.
            self.reset(DAILY_LOSS_BREAKER)

    # ---- IB session ---------------------------------------------------------------
    def ib_disconnect(self) -> None:
        if self.ib_connected:
            self.ib_connected = False
            self.ib_disconnects += 1
            self.ib_errors["1100"] += 1
            log.warning("IB connectivity lost", extra={"code": 1100})

    def ib_reconnect(self) -> None:
        if not self.ib_connected:
            self.ib_connected = True
            self.ib_errors["1102"] += 1
            log.info("IB connectivity restored, data maintained", extra={"code": 1102})

    # ---- orders -------------------------------------------------------------------
    def send(self, intent, now: float) -> None:
        """The sender worker hands an intent to the broker (synthetic ones are a dry run)."""
        if intent.strategy.startswith("synthetic"):
            return
        if self.refuses(intent.strategy) is not None:
            return  # the kill switch halts the sender too: an intent accepted before the trip never reaches IB
        side = 1 if intent.side == "buy" else -1
        self.broker.submit(intent.account, intent.strategy, intent.symbol, side, intent.quantity,
                           intent.order_type, intent.limit_price, max(now, self.t))

    # ---- time -----------------------------------------------------------------------
    def advance_to(self, now: float) -> None:
        while self.t + STEP_S <= now:
            self.step()

    def step(self) -> None:
        self.t += STEP_S
        self.market.step(self.t, STEP_S)
        for f in self.broker.process(self.t):
            o = f.order
            self.positions[(o.strategy, o.symbol)].fill(o.side, o.qty, f.price)
        self.step_effects()

    def step_effects(self) -> None:
        """What follows from the books at this instant (also run right after a scenario switch)."""
        self._hold_loss_shock()
        self._check_loss_limit()
        if self.outage_ends is not None and self.t >= self.outage_ends:
            self.end_fill_lost_outage()
        if "oer-runup" in self.scenarios:
            self._amend_in_a_loop()

    # ---- broker-truth failures ---------------------------------------------------------
    def start_fill_lost_outage(self) -> None:
        """Market orders go out, the session drops (1100) and they fill meanwhile; the trading
        system records no fill until the session is back (1102), and then not those."""
        st, sym = self.s.strategies[0], self.s.symbols[0]
        for _ in range(PROBE_ORDERS):
            self.broker.place_now(self.account_of[st], st, sym, 1, PROBE_QTY, self.t)
        self.broker.recording = False
        self.outage_ends = self.t + FILL_LOST_OUTAGE_S
        self.ib_disconnect()

    def end_fill_lost_outage(self) -> None:
        self.outage_ends = None
        self.broker.recording = True
        for o in self.broker.lost:  # the trading system's position misses them too
            self.drift(o.account, o.symbol, -o.side * o.qty)
        self.ib_reconnect()

    def recover_lost_fills(self) -> None:
        if self.outage_ends is not None:
            self.end_fill_lost_outage()
        for o in self.broker.recover_lost():
            self.drift(o.account, o.symbol, o.side * o.qty)

    def leak_breaker(self, on: bool) -> None:
        """A strategy's breaker trips, but its kill switch's cancels never reach IB."""
        st = self.s.strategies[0]
        if on:
            self.broker.kill_switch_works = False
            sym = self.s.symbols[0]
            mid = self.market.mid[sym]
            self.leaking = [self.broker.rest(self.account_of[st], st, sym, 1, 10, round(mid * 0.8, 2), self.t)
                            for _ in range(RESTING_ORDERS)]
            self.trip(st, "manual")
        else:
            self.broker.kill_switch_works = True
            self.broker.cancel_working(self.leaking)
            self.leaking = []
            self.reset(st)

    def _amend_in_a_loop(self) -> None:
        """oer-runup: the first strategy amends its working orders so often that today's
        ratio reaches OER_TARGET within OER_RUNUP_S, however busy the day was so far."""
        per_step = (self.broker.today()["execution"] + 1) * OER_TARGET * STEP_S / OER_RUNUP_S
        self._amend_carry += per_step
        n = int(self._amend_carry)
        self._amend_carry -= n
        self.broker.stats.revised[self.s.strategies[0]] += n

    def _hold_loss_shock(self) -> None:
        if "loss-breach" not in self.scenarios or not self.s.strategies:
            return
        account = self.s.accounts[0]
        st = self.strategies_of(account)[0] if self.strategies_of(account) else None
        if st is None:
            return
        self.loss_shock[st] = 0.0
        natural = self.account(account)["daily_pnl"]
        target = self.s.daily_loss_limit * LOSS_BREACH_FACTOR + self.rng.gauss(0.0, 3.0)
        self.loss_shock[st] = target - natural
