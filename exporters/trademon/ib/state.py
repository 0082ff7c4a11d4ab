"""What the exporter knows, fed by ib_async events and kept in memory, so /metrics never
waits for TWS. Every metric object comes from ``JobMetrics("ib-exporter")``.

Broker-state series (P&L, positions, account values, exposure, farms) are dropped while the
session is down or TWS has lost IB (code 1100): a last value is not a live value, and
``ib_connected == 0`` is what the alerts look at. Counters and histograms keep their values.
"""

from __future__ import annotations

import logging
import time
from collections import OrderedDict, deque
from dataclasses import dataclass
from collections.abc import Callable, Iterable

from prometheus_client import CollectorRegistry

from trademon.contract import BROKER_GAUGES, IB_BOUNDED_LABELS, IB_DOWN_REASONS, IB_ERROR_FARM_CODES, metrics_for_job
from trademon.metrics import Children, JobMetrics
from trademon.ib.bounds import Bound, strategy_of
from trademon.ib.config import JOB, IBConfig
from trademon.ib.subscriptions import MarketDataWatch
from trademon.ib.truth import SESSION_GAUGES, OrderBook

log = logging.getLogger("trademon.ib.state")

# IB's "no value" double (1.7976931348623157e308) and NaN both mean "not known".
_UNSET = 1e300

# Account summary tags -> contract gauges.
ACCOUNT_TAGS = {
    "NetLiquidation": "account_net_liquidation",
    "GrossPositionValue": "account_gross_position_value",
    "MaintMarginReq": "account_maint_margin_req",
    "ExcessLiquidity": "account_excess_liquidity",
    "BuyingPower": "account_buying_power",
    "Cushion": "account_cushion",
}
SUMMARY_TAGS = ",".join(ACCOUNT_TAGS)


CONNECTION_LOST, CONNECTION_RESTORED_DATA_LOST, CONNECTION_RESTORED = 1100, 1101, 1102
# IB codes that say why a session cannot be had (ib_session_down_reason)
DOWN_CODES = {326: "client_id_in_use", 502: "socket_refused", CONNECTION_LOST: "connectivity_lost"}
# Codes that cancel an order without it being a rejection: 202 confirms a cancel request;
# 161/10147/10148 answer a cancel request for an order that cannot be cancelled.
CANCEL_CODES = frozenset({161, 202, 10147, 10148})
PRE_ACK = frozenset({"PendingSubmit", "ApiPending"})
ACKED = frozenset({"PreSubmitted", "Submitted", "Filled"})
CANCELLED = frozenset({"Cancelled", "ApiCancelled"})
DONE = CANCELLED | {"Filled", "Inactive"}
SLIPPAGE_WINDOW_SECONDS = 15 * 60
MAX_ORDER_RECORDS = 50_000


def known(x: float) -> bool:
    return x == x and abs(x) < _UNSET


def quote_key(contract) -> tuple[str, str]:
    """Quotes are kept per symbol and security type (arrival mid for slippage)."""
    return (contract.symbol, contract.secType or "STK")


def position_label(contract) -> str:
    """The ``symbol`` label: the ticker for stocks, the local symbol (ESZ6, EUR.USD) otherwise."""
    if contract.secType in ("STK", "", "IND", "CRYPTO"):
        return contract.symbol
    return contract.localSymbol or contract.symbol


@dataclass(slots=True)
class OrderRecord:
    strategy: str
    quote: tuple[str, str]
    first_seen: float
    live: bool  # seen from its submission on, not from a snapshot taken at connect
    pre_ack: bool  # first seen before the broker acknowledged it: ack latency is measurable
    arrival_mid: float | None
    order_id: int
    terms: tuple = ()  # quantity, prices, type: a change is a revision (Order Efficiency Ratio)
    executed: bool = False  # has had a fill (an "execution" in the Order Efficiency Ratio)
    acked: bool = False
    outcome: str | None = None  # filled, cancelled or rejected: counted once
    reject_code: str | None = None  # from an error event, for orders of other client ids


class SlippageWindow:
    """Fills of the last 15 minutes for one strategy: a deque and a running sum."""

    __slots__ = ("fills", "total")

    def __init__(self):
        self.fills: deque[tuple[float, float]] = deque()
        self.total = 0.0

    def add(self, t: float, bps: float) -> None:
        self.fills.append((t, bps))
        self.total += bps

    def evict(self, before: float) -> None:
        fills = self.fills
        while fills and fills[0][0] < before:
            self.total -= fills.popleft()[1]
        if not fills:
            self.total = 0.0  # no float drift carried over an empty window

    def mean_pct(self) -> float | None:
        return self.total / len(self.fills) / 100.0 if self.fills else None


class BrokerState:
    """The exporter's handlers for ib_async events and the metrics they move."""

    def __init__(self, cfg: IBConfig, registry: CollectorRegistry | None = None,
                 clock: Callable[[], float] = time.monotonic, wall: Callable[[], float] = time.time):
        self.cfg = cfg
        self.clock = clock
        self.metrics = JobMetrics(JOB, registry, names=[m.name for m in metrics_for_job(JOB)
                                                        if m.name not in SESSION_GAUGES])
        self.registry = self.metrics.registry
        m = self.metrics
        self.connected_gauge = m["ib_connected"]
        self.disconnects = m["ib_disconnects_total"]
        self.errors = Children(m["ib_errors_total"])
        self.farms = Children(m["ib_farm_connected"])
        self.submitted = Children(m["orders_submitted_total"])
        self.filled = Children(m["orders_filled_total"])
        self.cancelled = Children(m["orders_cancelled_total"])
        self.rejected = Children(m["orders_rejected_total"])
        self.ack_latency = Children(m["order_ack_latency_seconds"])
        self.fill_latency = Children(m["order_fill_latency_seconds"])
        self.slippage = Children(m["order_slippage_bps"])
        self.avg_slippage = Children(m["avg_slippage_pct"])
        self.limit = Children(m["risk_gross_exposure_limit"])
        self.broker = {name: Children(m[name]) for name in BROKER_GAUGES}
        self.by_tag = {tag: self.broker[name] for tag, name in ACCOUNT_TAGS.items()}
        self.strategy_families = (self.submitted, self.filled, self.cancelled, self.ack_latency,
                                  self.fill_latency, self.slippage, self.avg_slippage)

        overflow = m["ib_label_overflow_total"]
        for label in IB_BOUNDED_LABELS:
            overflow.labels(label)  # 0 from the start: "nothing overflowed" is a value
        self.strategies = Bound(cfg.max_strategies, overflow.labels("strategy"), clock, cfg.strategy_idle_seconds)
        self.farm_names = Bound(cfg.max_farms, overflow.labels("farm"))
        self.codes = Bound(cfg.max_error_codes, overflow.labels("code"))
        self.book = OrderBook(m, cfg.client_id, Bound(cfg.max_order_contracts, overflow.labels("symbol")),
                              cfg.day_timezone, wall, started=wall())
        self.market_data = MarketDataWatch(m, Bound(cfg.max_subscriptions, overflow.labels("subscription")),
                                           cfg.market_data_type, clock, wall)
        self.down_reason = m["ib_session_down_reason"]
        for reason in IB_DOWN_REASONS:
            self.down_reason.labels(reason).set(0)
        m["ib_client_id"].set(cfg.client_id)

        self.connected = False  # what ib_connected shows
        self.down_cause: str | None = None  # what ib_session_down_reason shows
        self.socket_up = False
        self.ib_reachable = True  # False between 1100 and 1101/1102
        self.mids: dict[tuple[str, str], float] = {}
        self._ticker_keys: dict[int, tuple[str, str]] = {}
        self.orders: OrderedDict[object, OrderRecord] = OrderedDict()
        self._open_by_order_id: dict[int, set] = {}
        self.windows: dict[str, SlippageWindow] = {}
        # Tells the exporter's own request ids (market data, P&L) from order ids in error events;
        # the connection sets it.
        self.own_request: Callable[[int], bool] = lambda req_id: False
        self._reset_broker()

    # ---- connection -------------------------------------------------------------------

    @property
    def live(self) -> bool:
        return self.socket_up and self.ib_reachable

    def _reset_broker(self) -> None:
        # qty and mv are None while unknown (not sent, IB's unset double, NaN): running sums
        # take known values only, and count the unknown ones, so one NaN cannot stick.
        self.positions: dict[tuple[str, int], list] = {}  # (account, conId) -> [label, qty, mv]
        # (account, label) -> [qty, mv, n, unknown quantities, unknown market values]
        self.label_totals: dict[tuple[str, str], list] = {}
        # account -> [gross, net, number of positions, positions with unknown market value]
        self.exposure: dict[str, list] = {}
        self.net_liq: dict[str, float] = {}

    def _drop_broker_series(self) -> None:
        for fam in self.broker.values():
            fam.clear()
        self._reset_broker()

    def on_connected(self, accounts: Iterable[str]) -> None:
        """The API session is up and synchronised (ib_async connectedEvent)."""
        self.socket_up = True
        self.ib_reachable = True
        self._set_connected(True)
        self.book.session_up()
        for account in accounts:
            if not self.cfg.watches(account):
                continue
            limit = self.cfg.exposure_limit(account)
            if limit is not None:
                self.limit(account).set(limit)
            # positions are complete at connectedEvent: an account without any has no exposure
            self.exposure.setdefault(account, [0.0, 0.0, 0, 0])
            self._export_exposure(account)

    def on_socket_up(self) -> None:
        """Handshake done: data may arrive before ib_async's connectedEvent."""
        self.socket_up = True
        self.ib_reachable = True

    def on_disconnected(self) -> None:
        self.socket_up = False
        self._went_down(count=self.connected)
        self.book.session_down()
        self.farms.clear()  # farm states belong to a TWS session; TWS repeats them on connect
        self.farm_names.clear()
        self._ticker_keys.clear()
        self.market_data.clear()

    def _set_connected(self, up: bool) -> None:
        self.connected = up
        self.connected_gauge.set(1 if up else 0)
        if up:
            self.set_down_reason(None)

    def set_down_reason(self, reason: str | None) -> None:
        """The reason of the current outage (a key of IB_DOWN_REASONS), or None while up."""
        if reason is not None and reason not in IB_DOWN_REASONS:
            reason = "other"
        self.down_cause = reason
        for r in IB_DOWN_REASONS:
            self.down_reason.labels(r).set(1 if r == reason else 0)

    def _went_down(self, count: bool) -> None:
        if count:
            self.disconnects.inc()
        self._set_connected(False)
        self._drop_broker_series()

    def on_error(self, req_id: int, code: int, message: str, contract=None) -> None:
        try:
            self.errors(self.codes(str(code))).inc()
            if code in DOWN_CODES:
                self.set_down_reason(DOWN_CODES[code])
            farm = IB_ERROR_FARM_CODES.get(code)
            if farm is not None:
                kind, up = farm
                name = message.rsplit(":", 1)[-1].strip() if ":" in message else "unknown"
                self.farms(self.farm_names(name[:64] or "unknown"), kind).set(up)
            elif code == CONNECTION_LOST:
                self.ib_reachable = False
                self._went_down(count=self.connected)
            elif code in (CONNECTION_RESTORED, CONNECTION_RESTORED_DATA_LOST):
                self.ib_reachable = True
                if code == CONNECTION_RESTORED_DATA_LOST:
                    self.market_data.data_lost()
                if self.socket_up:
                    self._set_connected(True)
            elif self.own_request(req_id):
                self.market_data.on_error(code, contract)
            elif req_id > 0 and code not in CANCEL_CODES and not 2100 <= code < 2200:
                self._note_order_error(req_id, code)
        except Exception:  # never let a broker message take the exporter down
            log.exception("error event not handled", extra={"code": code})

    def _note_order_error(self, order_id: int, code: int) -> None:
        """An error about an order: remember the code, the status that follows decides."""
        keys = self._open_by_order_id.get(order_id)
        if keys and len(keys) == 1:
            rec = self.orders.get(next(iter(keys)))
            if rec is not None and rec.outcome is None:
                rec.reject_code = str(code)

    # ---- account, P&L, positions ------------------------------------------------------

    def on_pnl(self, pnl) -> None:
        if not self.live or not self.cfg.watches(pnl.account):
            return
        for name, value in (("daily_pnl", pnl.dailyPnL), ("unrealized_pnl", pnl.unrealizedPnL),
                            ("realized_pnl", pnl.realizedPnL)):
            if known(value):
                self.broker[name](pnl.account).set(value)

    def on_account_summary(self, value) -> None:
        fam = self.by_tag.get(value.tag)
        if fam is None or not self.live or not self.cfg.watches(value.account):
            return
        try:
            x = float(value.value)
        except (TypeError, ValueError):
            return
        if not known(x):
            return
        fam(value.account).set(x)
        if value.tag == "NetLiquidation":
            self.net_liq[value.account] = x
            self._set_leverage(value.account)

    def on_position(self, pos) -> None:
        account = pos.account
        if not self.live or not self.cfg.watches(account):
            return
        key = (account, pos.contract.conId)
        entry = self.positions.get(key)
        qty = pos.position if known(pos.position) else None
        if qty == 0:
            if entry is not None:
                self._move(account, entry, 0.0, 0.0, closing=True)
                del self.positions[key]
                exp = self.exposure[account]
                exp[2] -= 1
                if exp[2] <= 0:  # flat: exactly zero, no float residue from the running sums
                    exp[0] = exp[1] = 0.0
                    exp[3] = 0
                    self._export_exposure(account)
            return
        if entry is None:
            # a new position: both values unknown until IB sends them
            entry = self.positions[key] = [position_label(pos.contract), None, None]
            tot = self.label_totals.setdefault((account, entry[0]), [0.0, 0.0, 0, 0, 0])
            tot[2] += 1
            tot[3] += 1
            tot[4] += 1
            exp = self.exposure.setdefault(account, [0.0, 0.0, 0, 0])
            exp[2] += 1
            exp[3] += 1
        self._move(account, entry, qty, entry[2])

    def on_pnl_single(self, p) -> None:
        """reqPnLSingle streams each position's market value (``value``); an unknown one
        (IB's unset double, NaN) makes the position's market value unknown again."""
        if not self.live:
            return
        entry = self.positions.get((p.account, p.conId))
        if entry is not None:
            self._move(p.account, entry, entry[1], p.value if known(p.value) else None)

    def _move(self, account: str, entry: list, qty: float | None, mv: float | None, closing: bool = False) -> None:
        """Set one position's quantity and market value (None: unknown); keep per-symbol sums
        and exposure over the known values, and count the unknown ones."""
        label, old_qty, old_mv = entry
        entry[1], entry[2] = qty, mv
        tot = self.label_totals[(account, label)]
        exp = self.exposure[account]
        if old_qty is None:
            tot[3] -= 1
        else:
            tot[0] -= old_qty
        if qty is None:
            tot[3] += 1
        else:
            tot[0] += qty
        if old_mv is None:
            tot[4] -= 1
            exp[3] -= 1
        else:
            tot[1] -= old_mv
            exp[0] -= abs(old_mv)
            exp[1] -= old_mv
        if mv is None:
            tot[4] += 1
            exp[3] += 1
        else:
            tot[1] += mv
            exp[0] += abs(mv)
            exp[1] += mv
        qty_g, mv_g = self.broker["ib_position_quantity"], self.broker["ib_position_market_value"]
        if closing:
            tot[2] -= 1
        if tot[2] <= 0:
            del self.label_totals[(account, label)]
            qty_g.remove(account, label)
            mv_g.remove(account, label)
        else:
            # a sum with an unknown part is unknown: absent, not a partial sum
            if tot[3] == 0:
                qty_g(account, label).set(tot[0])
            else:
                qty_g.remove(account, label)
            if tot[4] == 0:
                mv_g(account, label).set(tot[1])
            else:
                mv_g.remove(account, label)
        self._export_exposure(account)

    def _export_exposure(self, account: str) -> None:
        """Gross and net exposure and leverage when every market value is known; else none
        of them (a partial sum would understate) and risk_exposure_complete 0."""
        exp = self.exposure[account]
        complete = exp[3] == 0
        self.broker["risk_exposure_complete"](account).set(1 if complete else 0)
        names = ("risk_gross_exposure", "risk_net_exposure")
        if complete:
            self.broker[names[0]](account).set(exp[0])
            self.broker[names[1]](account).set(exp[1])
        else:
            for name in (*names, "risk_leverage"):
                self.broker[name].remove(account)
        self._set_leverage(account)

    def _set_leverage(self, account: str) -> None:
        nl = self.net_liq.get(account)
        exp = self.exposure.get(account)
        if nl and nl > 0 and exp is not None and exp[3] == 0:
            self.broker["risk_leverage"](account).set(exp[0] / nl)

    # ---- quotes -----------------------------------------------------------------------

    def on_pending_tickers(self, tickers) -> None:
        """The hot path: keep the latest mid per symbol, nothing else."""
        mids, keys = self.mids, self._ticker_keys
        for t in tickers:
            b = t.bid
            a = t.ask
            if b > 0.0 and a > 0.0:  # False for NaN and IB's -1 "no quote"
                k = keys.get(id(t))
                if k is None:
                    k = keys[id(t)] = quote_key(t.contract)
                mids[k] = (b + a) * 0.5

    # ---- orders and fills -------------------------------------------------------------

    @staticmethod
    def order_key(order):
        return (order.clientId, order.orderId) if order.orderId > 0 else order.permId

    def _track(self, trade, live: bool) -> OrderRecord:
        """The order's record, made at first sight (that is when it counts as submitted).
        ``live``: seen as it happens, so first sight is close to submission and the mid then is
        its arrival price; not when first seen in a snapshot, done, or through a fill."""
        order = trade.order
        key = self.order_key(order)
        rec = self.orders.get(key)
        if rec is None:
            strategy = self.strategies(strategy_of(order.orderRef, self.cfg.strategy_pattern))
            q = quote_key(trade.contract)
            status = trade.orderStatus.status
            live = live and status not in DONE
            rec = OrderRecord(strategy=strategy, quote=q, first_seen=self.clock(), live=live,
                              pre_ack=live and status in PRE_ACK,
                              arrival_mid=self.mids.get(q) if live else None, order_id=order.orderId,
                              terms=order_terms(order))
            self.orders[key] = rec
            self._open_by_order_id.setdefault(order.orderId, set()).add(key)
            self.submitted(strategy).inc()
            self.book.day.add("submission")
            if len(self.orders) > MAX_ORDER_RECORDS:
                self._forget_oldest()
        return rec

    def _forget_oldest(self) -> None:
        old_key, old = self.orders.popitem(last=False)
        self._closed(old_key, old)

    def _closed(self, key, rec: OrderRecord) -> None:
        keys = self._open_by_order_id.get(rec.order_id)
        if keys is not None:
            keys.discard(key)
            if not keys:
                del self._open_by_order_id[rec.order_id]

    def on_open_orders_snapshot(self, trades) -> None:
        """Open orders of every client at connect (reqAllOpenOrders): counted once, without
        latencies or slippage, since when they were submitted is not known."""
        for trade in trades:
            try:
                self._track(trade, live=False)
                self.on_order_status(trade)
            except Exception:
                log.exception("open order not handled")

    def on_open_order(self, trade) -> None:
        """An open order as it happens (ib_async emits no event for snapshot answers): for
        another client's order, proof that this client sees every client's orders."""
        try:
            order = trade.order
            known_before = self.orders.get(self.order_key(order))
            rec = self._track(trade, live=True)
            if known_before is not None:
                terms = order_terms(order)
                if terms != rec.terms:
                    rec.terms = terms
                    self.book.day.add("revision")
            self.book.seen_live(order.clientId)
            self.book.update(self.order_key(order), trade, position_label(trade.contract), rec.strategy)
        except Exception:
            log.exception("open order not handled")

    def on_order_status(self, trade) -> None:
        try:
            self._status(trade)
        except Exception:
            log.exception("order status not handled")

    def _strategy(self, rec: OrderRecord) -> str:
        """The record's strategy label, marked active (taken back in, or moved to the
        overflow, if it was removed as idle meanwhile)."""
        rec.strategy = self.strategies(rec.strategy)
        return rec.strategy

    def _status(self, trade) -> None:
        rec = self._track(trade, live=True)
        self.book.update(self.order_key(trade.order), trade, position_label(trade.contract), rec.strategy)
        status = trade.orderStatus.status
        if not rec.acked and status in ACKED:
            rec.acked = True
            if rec.pre_ack:
                self.ack_latency(self._strategy(rec)).observe(self.clock() - rec.first_seen)
        if rec.outcome is not None:
            return
        if status == "Filled":
            rec.outcome = "filled"
            self.filled(self._strategy(rec)).inc()
            if rec.live:
                self.fill_latency(rec.strategy).observe(self.clock() - rec.first_seen)
        elif status in CANCELLED or status == "Inactive":
            code = rejection_code(trade) or rec.reject_code
            if code is None and status == "Inactive":
                code = "inactive"
            if code is not None:
                rec.outcome = "rejected"
                self.rejected(self._strategy(rec), self.codes(code)).inc()
            else:
                rec.outcome = "cancelled"
                self.cancelled(self._strategy(rec)).inc()
                self.book.day.add("cancellation")
        else:
            return
        self._closed(self.order_key(trade.order), rec)

    def on_exec_details(self, trade, fill) -> None:
        try:
            rec = self._track(trade, live=self.order_key(trade.order) in self.orders)
            ex = fill.execution
            self.book.seen_live(ex.clientId)
            self._execution(rec, fill)
            arrival = rec.arrival_mid
            if arrival is None or arrival <= 0:
                return
            side = 1.0 if ex.side in ("BOT", "BUY") else -1.0
            bps = side * (ex.price - arrival) / arrival * 1e4
            strategy = self._strategy(rec)
            self.slippage(strategy).observe(bps)
            w = self.windows.get(strategy)
            if w is None:
                w = self.windows[strategy] = SlippageWindow()
            w.add(self.clock(), bps)
            self._refresh_window(strategy, w, self.clock())
        except Exception:
            log.exception("execution not handled")

    def on_executions_snapshot(self, fills) -> None:
        """Today's executions (reqExecutions at every connect): those missed while the session
        was down are counted now; none of them is proof of seeing other clients live."""
        for fill in fills:
            try:
                key = self.order_key_of_execution(fill.execution)
                self._execution(self.orders.get(key), fill)
            except Exception:
                log.exception("execution not handled")

    def order_key_of_execution(self, ex):
        return (ex.clientId, ex.orderId) if ex.orderId > 0 else ex.permId

    def _execution(self, rec: OrderRecord | None, fill) -> None:
        ex = fill.execution
        when = ex.time.timestamp() if getattr(ex, "time", None) else None
        strategy = (lambda: self._strategy(rec)) if rec is not None else (
            lambda: self.strategies(strategy_of(ex.orderRef, self.cfg.strategy_pattern)))
        if self.book.execution(ex.execId, when, strategy, ex.acctNumber, position_label(fill.contract), ex.shares) \
                and rec is not None and not rec.executed:
            rec.executed = True
            self.book.day.add("execution")

    def _refresh_window(self, strategy: str, w: SlippageWindow, now: float) -> None:
        w.evict(now - SLIPPAGE_WINDOW_SECONDS)
        pct = w.mean_pct()
        if pct is None:
            self.avg_slippage.remove(strategy)
        else:
            self.avg_slippage(strategy).set(pct)

    def before_scrape(self) -> None:
        """Age the 15-minute slippage windows so a quiet strategy's mean does not linger, and
        remove the series of strategies idle for longer than TRADEMON_IB_STRATEGY_IDLE_SECONDS
        (a strategy with orders working at IB is not idle: its working orders keep their label)."""
        for strategy in self.book.per_strategy:
            self.strategies.touch(strategy)
        for strategy in self.strategies.expire():
            self._forget_strategy(strategy)
        self.book.day.before_scrape()
        self.market_data.update(self.live)
        now = self.clock()
        for strategy, w in self.windows.items():
            self._refresh_window(strategy, w, now)

    def status(self) -> dict:
        """What /status answers: the session, and whether other clients' orders are visible."""
        book = self.book
        out: dict = {"connected": self.connected, "client_id": self.cfg.client_id,
                     "down_reason": self.down_cause}
        if book.session:
            out["master_client"] = book.sees_other_clients
            out["other_client_ids_seen"] = sorted(book.other_clients)[:20]
            out["working_orders"] = len(book.working)
            if not book.sees_other_clients:
                out["hint"] = (f"no order of another API client seen live since connecting: if the trading system "
                               f"has sent orders, set TWS / IB Gateway's Master API client ID (Configure > API > "
                               f"Settings) to {self.cfg.client_id}, this exporter's client id")
        out["order_actions_today"] = dict(book.day.counts)
        return out

    def _forget_strategy(self, strategy: str) -> None:
        for fam in self.strategy_families:
            fam.remove(strategy)
        self.book.forget_strategy(strategy)
        for labels in [k for k in self.rejected.children if k[0] == strategy]:
            self.rejected.remove(*labels)
        self.windows.pop(strategy, None)


def order_terms(order) -> tuple:
    """What a revision changes: quantity, limit and aux price, order type."""
    return (order.totalQuantity, order.lmtPrice, order.auxPrice, order.orderType)


def rejection_code(trade) -> str | None:
    """ib_async turns an order error into status Cancelled with the code in the trade's log."""
    for entry in reversed(trade.log):
        code = entry.errorCode
        if code and entry.status == "Cancelled" and code not in CANCEL_CODES:
            return str(code)
    return None
