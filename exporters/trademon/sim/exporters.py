"""The metrics of marketdata-stream, position-manager and ib-exporter, read from the world.

``refresh()`` runs after every advance of the world (a few times a real second): counters
move by what happened since the last refresh, histograms take the broker's observations,
gauges take the current values. While the IB session is down, the broker-state series are
dropped (contract.BROKER_GAUGES, as the real ib-exporter does): stale broker data is not current data.
"""

from __future__ import annotations

from trademon.contract import BROKER_GAUGES, IB, IB_BOUNDED_LABELS, IB_CONTROLLER_CHECKS, IB_DOWN_REASONS, MD, PM
from trademon.ib.config import IBConfig
from trademon.ib.week import GatewayWeek
from trademon.metrics import JobMetrics
from trademon.sim.broker import REJECT_CODES
from trademon.sim.clock import SimClock
from trademon.sim.world import FARMS, World

# ib-exporter gauges that carry broker state, by the account() key that feeds them.
ACCOUNT_GAUGES = {
    "daily_pnl": "daily_pnl", "unrealized_pnl": "unrealized_pnl", "realized_pnl": "realized_pnl",
    "account_net_liquidation": "net_liquidation", "account_gross_position_value": "gross_position_value",
    "account_maint_margin_req": "maint_margin_req", "account_excess_liquidity": "excess_liquidity",
    "account_buying_power": "buying_power", "account_cushion": "cushion",
    "risk_gross_exposure": "gross_exposure", "risk_net_exposure": "net_exposure",
    "risk_leverage": "leverage", "risk_gross_exposure_limit": "exposure_limit",
}


class _Deltas:
    """Turns the world's cumulative counts into counter increments."""

    def __init__(self):
        self._seen: dict[tuple[int, object], float] = {}  # (counter, key) -> the total already counted

    def inc(self, counter, key, total: float, labels=None) -> None:
        d = total - self._seen.get((id(counter), key), 0.0)
        if d > 0:
            (counter.labels(*labels) if labels is not None else counter).inc(d)
            self._seen[(id(counter), key)] = total


class MarketDataExporter:
    def __init__(self, world: World, clock: SimClock):
        self.world, self.clock = world, clock
        self.m = JobMetrics(MD)
        self._d = _Deltas()
        for s in world.market.symbols:
            self.m["marketdata_ticks_total"].labels(s)

    def refresh(self) -> None:
        mk, m, wall = self.world.market, self.m, self.clock.to_wall
        m["marketdata_connected"].set(1)
        m["marketdata_connected_since_timestamp_seconds"].set(wall(mk.connected_since))
        for s in mk.symbols:
            self._d.inc(m["marketdata_ticks_total"], s, mk.ticks[s], (s,))
            m["marketdata_last_tick_timestamp_seconds"].labels(s).set(wall(mk.last_tick[s]))


class PositionManagerExporter:
    def __init__(self, world: World):
        self.world = world
        self.m = JobMetrics(PM)
        self._d = _Deltas()
        self.m["circuit_breaker_trips_total"].labels("daily_loss", "daily_loss_limit")

    def refresh(self) -> None:
        w, m = self.world, self.m
        for st in w.s.strategies:
            m["strategy_pnl"].labels(st).set(w.strategy_pnl(st))
        for a in w.s.accounts:
            for sym in w.s.symbols:
                m["position_reconciliation_discrepancy"].labels(a, sym).set(w.discrepancy(a, sym))
        for name, b in w.breakers.items():
            m["circuit_breaker_open"].labels(name).set(1 if b.open else 0)
        for (name, reason), n in w.breaker_trips.items():
            self._d.inc(m["circuit_breaker_trips_total"], (name, reason), n, (name, reason))


class TradingRecordExporter:
    """What the trading system says it did (trademon.instrument's broker record on the API job):
    orders sent, fills recorded, its own positions."""

    def __init__(self, world: World, metrics: JobMetrics):
        self.world, self.m = world, metrics
        self._d = _Deltas()
        for st in world.s.strategies:
            self.m["trading_orders_sent_total"].labels(st)
            self.m["trading_fills_recorded_total"].labels(st)

    def refresh(self) -> None:
        w, m, d, st = self.world, self.m, self._d, self.world.broker.stats
        for s, n in st.sent.items():
            d.inc(m["trading_orders_sent_total"], s, n, (s,))
        for s, n in st.recorded.items():
            d.inc(m["trading_fills_recorded_total"], s, n, (s,))
        for a in w.s.accounts:
            for sym in w.s.symbols:
                m["trading_position_quantity"].labels(a, sym).set(w.trading_position(a, sym))


# What the real ib-exporter drops with its session (trademon.ib.subscriptions).
IB_LINE_GAUGES = ("ib_market_data_tick_age_seconds", "ib_market_data_in_session", "ib_market_data_type")


class IBExporter:
    def __init__(self, world: World, clock: SimClock):
        self.world, self.clock = world, clock
        self.m = JobMetrics(IB)
        self._d = _Deltas()
        m = self.m
        # Every strategy's series exist from the start, at zero.
        for st in world.s.strategies:
            for name in ("orders_submitted_total", "orders_filled_total", "orders_cancelled_total",
                         "order_ack_latency_seconds", "order_fill_latency_seconds", "order_slippage_bps"):
                m[name].labels(st)
            for code in REJECT_CODES:
                m["orders_rejected_total"].labels(st, code)
        self._slippage_shown: set[str] = set()
        self._working_shown: set[tuple] = set()  # label sets of the working-order gauges
        for st in world.s.strategies:
            m["ib_executions_total"].labels(st)
        # the simulated strategies, farms and codes are few: nothing overflows
        for label in IB_BOUNDED_LABELS:
            m["ib_label_overflow_total"].labels(label)
        m["ib_client_id"].set(IBConfig().client_id)
        m["ib_market_data_type_requested"].set(IBConfig().market_data_type)
        m["ib_market_data_lines_lost"].set(0)  # the simulated outage (1100) loses no line
        # The simulated gateway's week on the simulated clock; its controller is always healthy
        # and its only outage is IB's (1100), which is not a login wait.
        for check in IB_CONTROLLER_CHECKS:
            m["ib_gateway_controller_up"].labels(check).set(1)
        self.week = GatewayWeek(m, lambda: world.ib_connected, lambda: None if world.ib_connected else "connectivity_lost",
                                lambda: dict.fromkeys(IB_CONTROLLER_CHECKS, True), clock.now)
        self._observe = {"ack": m["order_ack_latency_seconds"], "fill_latency": m["order_fill_latency_seconds"],
                         "slippage_bps": m["order_slippage_bps"]}

    def refresh(self) -> None:
        w, m, d, st = self.world, self.m, self._d, self.world.broker.stats
        m["ib_connected"].set(1 if w.ib_connected else 0)
        self.week.update()
        for reason in IB_DOWN_REASONS:  # the simulated outage is IB's (code 1100)
            m["ib_session_down_reason"].labels(reason).set(int(reason == "connectivity_lost" and not w.ib_connected))
        d.inc(m["ib_disconnects_total"], "", w.ib_disconnects)
        for code, n in w.ib_errors.items():
            d.inc(m["ib_errors_total"], code, n, (code,))
        for (farm, kind) in FARMS:
            m["ib_farm_connected"].labels(farm, kind).set(1 if w.farms[(farm, kind)] else 0)
        for s, n in st.submitted.items():
            d.inc(m["orders_submitted_total"], s, n, (s,))
        for s, n in st.filled.items():
            d.inc(m["orders_filled_total"], s, n, (s,))
        for s, n in st.cancelled.items():
            d.inc(m["orders_cancelled_total"], s, n, (s,))
        for key, n in st.rejected.items():
            d.inc(m["orders_rejected_total"], key, n, key)
        obs = st.observations
        while obs:
            kind, s, v = obs.popleft()
            self._observe[kind].labels(s).observe(v)
        now = self.clock.now()
        for s in w.s.strategies:
            pct = w.broker.avg_slippage_pct(s, now)
            if pct is not None:
                m["avg_slippage_pct"].labels(s).set(pct)
                self._slippage_shown.add(s)
            elif s in self._slippage_shown:  # no fill in the window: no sample, like the real exporter
                m["avg_slippage_pct"].remove(s)
                self._slippage_shown.discard(s)
        self._broker_state()
        self._broker_truth()

    def _broker_truth(self) -> None:
        """Working orders, executions, today's order actions, as the real exporter's OrderBook.
        Executions are counted while the session is up: those of an outage at the reconnect
        (the real exporter's reqExecutions)."""
        w, m, d, st = self.world, self.m, self._d, self.world.broker.stats
        m["ib_master_client"].set(1)  # the simulated exporter is the Master API client
        if w.ib_connected:
            for s, n in st.executions.items():
                d.inc(m["ib_executions_total"], s, n, (s,))
            for key, q in st.filled_qty.items():
                d.inc(m["ib_filled_quantity_total"], ("q", key), q, key)
        working = list(w.broker.working.values())
        m["ib_working_orders"].set(len(working))
        active: dict[tuple, float] = {}
        in_flight: dict[tuple, float] = {}
        per_strategy: dict[tuple, float] = {}
        for o in working:
            k = (o.symbol, "BUY" if o.side > 0 else "SELL")
            active[k] = active.get(k, 0) + 1
            k2 = (o.account, o.symbol)
            in_flight[k2] = in_flight.get(k2, 0) + o.qty
            per_strategy[(o.strategy,)] = per_strategy.get((o.strategy,), 0) + 1
        names = {"a": "ib_active_orders", "q": "ib_working_order_quantity", "s": "ib_strategy_working_orders"}
        shown: set[tuple] = set()
        for kind, values in (("a", active), ("q", in_flight), ("s", per_strategy)):
            for k, v in values.items():
                m[names[kind]].labels(*k).set(v)
                shown.add((kind, k))
        for kind, k in self._working_shown - shown:
            m[names[kind]].remove(*k)
        self._working_shown = shown
        today = w.broker.today()  # the simulated strategies amend orders only in oer-runup
        for kind, n in today.items():
            m["ib_order_actions_today"].labels(kind).set(n)
        m["ib_order_efficiency_ratio"].set((today["submission"] + today["revision"] + today["cancellation"]) / (today["execution"] + 1))

    def _broker_state(self) -> None:
        w, m = self.world, self.m
        if not w.ib_connected:
            for name in (*BROKER_GAUGES, *IB_LINE_GAUGES):  # the same sets the real exporter drops on 1100
                m[name].clear()
            return
        # IB's own lines, one per simulated symbol: live data, a session that never closes
        # (the simulated market trades around the clock), no line lost.
        for sym in w.s.symbols:
            line = f"{sym}@SMART"
            m["ib_market_data_tick_age_seconds"].labels(line, "quote").set(max(0.0, self.clock.now() - w.market.ib_last_tick[sym]))
            m["ib_market_data_in_session"].labels(line).set(1)
            m["ib_market_data_type"].labels(line).set(1)
        for a in w.s.accounts:
            acct = w.account(a)
            for name, key in ACCOUNT_GAUGES.items():
                m[name].labels(a).set(acct[key])
            m["risk_exposure_complete"].labels(a).set(1)  # the simulated broker knows every market value
            for sym in w.s.symbols:
                m["ib_position_quantity"].labels(a, sym).set(acct["positions"][sym])
                m["ib_position_market_value"].labels(a, sym).set(acct["market_values"][sym])
