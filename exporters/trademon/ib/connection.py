"""The session with TWS / IB Gateway: connect, subscribe, heartbeat, resubscribe, reconnect.

One ``IB`` object for the life of the process. Each session: connect (read-only, own client
id), subscribe to what the exporter shows, then wait for the session to end: TWS closed the
socket, or the heartbeat (reqCurrentTime) got no answer in time, which is how a silent,
half-open socket is noticed. Then reconnect after a capped exponential backoff, forever.
Every subscription is tracked so that a resubscription (code 1101) cancels before it asks
again and nothing piles up at TWS.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque

from trademon.ib.api import CONNECT_OPTIONS, IB, Contract
from trademon.ib.config import IBConfig
from trademon.ib.reasons import connect_failure, sent_greeting
from trademon.ib.state import CONNECTION_RESTORED, CONNECTION_RESTORED_DATA_LOST, DOWN_CODES, SUMMARY_TAGS, BrokerState, quote_key
from trademon.runtime import backoff

log = logging.getLogger("trademon.ib.connection")
JITTER = 0.2  # each reconnect wait 80-100 % of its step: exporters that lost one gateway do not return in step

# ib_async keeps every order it has seen (with its fills and log) for the life of the session;
# an account placing tens of thousands of orders a day would grow the process without end.
# The exporter only needs a done order for its late messages (a commission report right after
# the fill): it keeps this many done orders in ib_async and forgets older ones.
KEEP_DONE_TRADES = 1000


async def within(seconds: float, awaitable):
    """``awaitable`` with a time limit. Not asyncio.wait_for: in Python 3.11 it returns the
    result when a cancel races with completion, and the cancel is lost (a loop that should
    stop on SIGTERM goes on, and shutdown hangs); asyncio.timeout never drops it."""
    async with asyncio.timeout(seconds):
        return await awaitable


def raise_if_cancelled() -> None:
    """After a library call that may use asyncio.wait_for inside (ib_async's connectAsync
    does): if a cancel of this task was swallowed there, the task still counts it."""
    task = asyncio.current_task()
    if task is not None and task.cancelling():
        raise asyncio.CancelledError


class Connection:
    def __init__(self, cfg: IBConfig, state: BrokerState, ib: IB | None = None):
        self.cfg, self.state = cfg, state
        self.ib = ib or IB()
        # ib_async asks for a new account summary on every 1102 without cancelling the old
        # one; the exporter resubscribes itself, cancelling first (_on_error).
        resubscribe_on_1102 = getattr(self.ib, "_onError", None)
        if resubscribe_on_1102 is not None:
            self.ib.errorEvent -= resubscribe_on_1102
        ib = self.ib
        ib.errorEvent += state.on_error
        ib.errorEvent += self._on_error
        ib.connectedEvent += self._on_connected
        ib.disconnectedEvent += self._on_disconnected
        ib.client.apiStart += state.on_socket_up
        ib.client.throttleStart += self._throttle_start
        ib.client.throttleEnd += self._throttle_end
        ib.pnlEvent += state.on_pnl
        ib.pnlSingleEvent += state.on_pnl_single
        ib.positionEvent += state.on_position
        ib.positionEvent += self._on_position
        ib.accountSummaryEvent += state.on_account_summary
        ib.openOrderEvent += state.on_open_order
        ib.openOrderEvent += self._watch_order_symbol
        ib.orderStatusEvent += state.on_order_status
        ib.orderStatusEvent += self._forget_done_trades
        ib.execDetailsEvent += state.on_exec_details
        ib.pendingTickersEvent += state.on_pending_tickers
        ib.pendingTickersEvent += state.market_data.on_tickers
        state.own_request = self._own_request
        self.accounts: list[str] = []
        self.sessions = 0
        self._throttled = False
        self._resubscribing: asyncio.Task | None = None
        self._resubscribe_again = False
        self._lost = asyncio.Event()
        self._code_reason: str | None = None  # what an IB code said during this connect attempt
        self._loss_reason: str | None = None  # why the exporter itself dropped the session
        self._summary_req: int | None = None
        self._pnl: set[str] = set()
        self._pnl_single: set[tuple[str, int]] = set()
        self._md: dict[tuple[str, str], Contract] = {}
        self._qualified: dict[tuple[str, str], Contract] = {}  # conIds do not change: asked once
        self._done: deque = deque()  # done trades still held by ib_async, oldest first

    # ---- the loop ---------------------------------------------------------------------

    async def run(self) -> None:
        """Connect and stay connected, forever (until cancelled)."""
        failures = 0
        try:
            while True:
                self._lost = asyncio.Event()
                self._code_reason = None
                try:
                    await self.ib.connectAsync(self.cfg.host, self.cfg.port, self.cfg.client_id,
                                               timeout=self.cfg.connect_timeout, readonly=True, **CONNECT_OPTIONS)
                    raise_if_cancelled()
                except Exception as e:  # refused, timed out, client id in use: try again later
                    failures += 1
                    delay = backoff.delay(failures, self.cfg.reconnect_min, self.cfg.reconnect_max, JITTER)
                    reason = connect_failure(e, sent_greeting(self.ib), self._code_reason)
                    self.state.set_down_reason(reason)
                    log.warning("cannot connect to TWS / IB Gateway; retrying",
                                extra={"address": f"{self.cfg.host}:{self.cfg.port}", "error": repr(e),
                                       "reason": reason, "client_id": self.cfg.client_id,
                                       "retry_in_seconds": round(delay, 2), "attempt": failures})
                    self._forget()
                    await asyncio.sleep(delay)
                    continue
                started = asyncio.get_running_loop().time()
                await self._session()
                # a session that lasted restarts the backoff; one that ends at once keeps climbing
                lasted = asyncio.get_running_loop().time() - started
                failures = 1 if lasted > 2 * self.cfg.reconnect_max else failures + 1
                await asyncio.sleep(backoff.delay(failures, self.cfg.reconnect_min, self.cfg.reconnect_max, JITTER))
        finally:
            self.ib.disconnect()

    async def _session(self) -> None:
        self.sessions += 1
        heartbeat = asyncio.create_task(self._heartbeat(), name="ib-heartbeat")
        try:
            await self._subscribe()
            await self._lost.wait()
        except Exception:
            log.exception("session failed; reconnecting")
            self.ib.disconnect()
        finally:
            heartbeat.cancel()
            if self._resubscribing is not None:
                self._resubscribing.cancel()
            self._throttled = False
            self._forget()

    async def _heartbeat(self) -> None:
        """reqCurrentTime every interval; no answer in time means the socket is dead.

        ib_async paces requests (45 a second) and queues the rest; a beat sent into that queue
        would wait its turn and time out on a healthy socket (500 symbols to resubscribe take
        11 s), so no beat is sent while the queue drains."""
        while self.ib.isConnected():
            await asyncio.sleep(self.cfg.heartbeat_interval)
            if not self.ib.isConnected():
                return
            if self._throttled:
                continue
            try:
                await within(self.cfg.heartbeat_timeout, self.ib.reqCurrentTimeAsync())
            except (TimeoutError, ConnectionError):
                log.warning("no answer to the heartbeat; dropping the connection",
                            extra={"timeout_seconds": self.cfg.heartbeat_timeout})
                self._loss_reason = "heartbeat_timeout"
                self.ib.disconnect()  # emits disconnectedEvent
                return

    # ---- events -----------------------------------------------------------------------

    def _on_connected(self) -> None:
        self.accounts = [a for a in self.ib.client.getAccounts() if self.cfg.watches(a)]
        missing = [a for a in self.cfg.accounts if a not in self.ib.client.getAccounts()]
        if missing:
            log.warning("configured accounts are not managed by this TWS login",
                        extra={"accounts": missing, "managed": self.ib.client.getAccounts()})
        log.info("connected to TWS / IB Gateway",
                 extra={"server_version": self.ib.client.serverVersion(), "accounts": self.accounts,
                        "client_id": self.cfg.client_id})
        self.state.on_connected(self.accounts)

    def _on_disconnected(self) -> None:
        reason, self._loss_reason = self._loss_reason or "session_closed", None
        log.warning("disconnected from TWS / IB Gateway", extra={"reason": reason})
        self.state.on_disconnected()
        self.state.set_down_reason(reason)
        self._lost.set()

    def _on_error(self, req_id, code, message, contract=None) -> None:
        if code in DOWN_CODES:
            self._code_reason = DOWN_CODES[code]
        # 1101: TWS lost the subscriptions. 1102: TWS kept them, but the exporter dropped its
        # broker series at 1100 and positions would only come back as they change. Either way:
        # cancel, then ask again, so TWS sends the whole state and nothing piles up.
        if code in (CONNECTION_RESTORED_DATA_LOST, CONNECTION_RESTORED) and self.ib.isConnected():
            log.warning("IB connectivity restored: resubscribing", extra={"code": code})
            if self._resubscribing is not None and not self._resubscribing.done():
                self._resubscribe_again = True  # one more round after the running one, not two at once
            else:
                self._resubscribing = asyncio.ensure_future(self._resubscribe())

    def _forget_done_trades(self, trade) -> None:
        """Hold at most KEEP_DONE_TRADES done orders in ib_async (see there)."""
        if not trade.isDone():
            return
        self._done.append(trade)
        w = self.ib.wrapper
        while len(self._done) > KEEP_DONE_TRADES:
            old = self._done.popleft()
            o = old.order
            key = w.orderKey(o.clientId, o.orderId, o.permId)
            if w.trades.get(key) is old:
                del w.trades[key]
            if w.permId2Trade.get(o.permId) is old:
                del w.permId2Trade[o.permId]
            for f in old.fills:
                w.fills.pop(f.execution.execId, None)

    def _throttle_start(self) -> None:
        self._throttled = True

    def _throttle_end(self) -> None:
        self._throttled = False

    def _own_request(self, req_id: int) -> bool:
        w = self.ib.wrapper
        return (req_id == self._summary_req or req_id in w.reqId2Ticker or req_id in w.reqId2PnL
                or req_id in w.reqId2PnlSingle or req_id in w._futures)  # noqa: SLF001

    def _on_position(self, pos) -> None:
        """Each open position gets a reqPnLSingle (its market value); a closed one, a cancel."""
        key = (pos.account, pos.contract.conId)
        if not self.cfg.watches(pos.account) or not self.ib.isConnected():
            return
        try:
            if pos.position != 0 and key not in self._pnl_single:
                self._pnl_single.add(key)
                self.ib.reqPnLSingle(pos.account, "", pos.contract.conId)
            elif pos.position == 0 and key in self._pnl_single:
                self._pnl_single.discard(key)
                self.ib.cancelPnLSingle(pos.account, "", pos.contract.conId)
        except Exception:
            log.exception("position subscription failed")

    def _watch_order_symbol(self, trade) -> None:
        """Keep quotes for every traded symbol (arrival mid), within a line budget."""
        key = quote_key(trade.contract)
        budget = len(self.cfg.symbols) + self.cfg.max_auto_symbols
        if key in self._md or len(self._md) >= budget or not self.ib.isConnected():
            return
        self._req_mkt_data(key, trade.contract)

    # ---- subscriptions ----------------------------------------------------------------

    def _req_mkt_data(self, key, contract: Contract) -> None:
        try:
            self.ib.reqMktData(contract)
            self._md[key] = contract
            self.state.market_data.requested(key, contract)
        except Exception:  # one bad contract must not end the session
            log.exception("market data request failed", extra={"symbol": key[0]})

    def _subscribe_streams(self) -> None:
        ib = self.ib
        ib.reqMarketDataType(self.cfg.market_data_type)
        self._summary_req = ib.client.getReqId()
        ib.client.reqAccountSummary(self._summary_req, "All", SUMMARY_TAGS)
        for account in self.accounts:
            self._pnl.add(account)
            ib.reqPnL(account)

    async def _snapshot_open_orders(self) -> None:
        """Orders of every client that are open now. Later changes arrive as events when this
        client id is TWS's "Master API client ID" (or is 0, for orders entered in TWS)."""
        trades = await within(self.cfg.connect_timeout, self.ib.reqAllOpenOrdersAsync())
        self.state.on_open_orders_snapshot(trades)
        for t in trades:
            self._watch_order_symbol(t)

    async def _snapshot_executions(self) -> None:
        """Today's executions: fills that happened while the session was down (TWS does not
        replay them as events) are counted now, so the trading system's record can be checked."""
        fills = await within(self.cfg.connect_timeout, self.ib.reqExecutionsAsync())
        self.state.on_executions_snapshot(fills)

    async def _step(self, what: str, coro) -> None:
        """One part of a subscription; if it fails, the rest still happens (a dead socket is
        the heartbeat's to find, not this)."""
        try:
            await coro
        except Exception as e:
            log.warning("subscription step failed", extra={"step": what, "error": repr(e)})

    async def _subscribe(self) -> None:
        """Few requests first, awaited; the market data lines last: ib_async paces requests,
        and hundreds of them in front would hold up the answers awaited here."""
        if not self.ib.isConnected():
            return
        self._subscribe_streams()
        await self._step("open orders", self._snapshot_open_orders())
        await self._step("executions", self._snapshot_executions())
        await self._step("watched symbols", self._subscribe_watched())

    async def _subscribe_watched(self) -> None:
        """The configured symbols, qualified once (ib_async needs a conId for market data), in
        batches that fit ib_async's pacing, then one market data line each."""
        todo = [w for w in self.cfg.symbols if (w.symbol, w.sec_type) not in self._qualified]
        for i in range(0, len(todo), 40):
            batch = todo[i:i + 40]
            try:
                found = await within(self.cfg.connect_timeout,
                                    self.ib.qualifyContractsAsync(*[w.contract() for w in batch]))
            except TimeoutError:
                log.warning("no contract details in time; those symbols are tried at the next connect",
                            extra={"symbols": [w.symbol for w in batch]})
                continue
            for w, contract in zip(batch, found):
                if isinstance(contract, Contract) and contract.conId:
                    self._qualified[(w.symbol, w.sec_type)] = contract
                else:
                    log.warning("symbol not found or ambiguous at IB; no quotes for it",
                                extra={"symbol": w.symbol, "sec_type": w.sec_type, "exchange": w.exchange})
        for key, contract in self._qualified.items():
            if key not in self._md:
                self._req_mkt_data(key, contract)

    async def _resubscribe(self) -> None:
        """After 1101/1102 (connectivity restored): cancel everything, then ask again."""
        self._resubscribe_again = True
        while self._resubscribe_again and self.ib.isConnected():
            self._resubscribe_again = False
            try:
                await self._resubscribe_once()
            except Exception:  # e.g. the socket died meanwhile: the session loop takes over
                log.exception("resubscription failed")

    async def _resubscribe_once(self) -> None:
        self._cancel_streams()
        self._subscribe_streams()
        # positions again (each re-arms its reqPnLSingle); once complete, flat accounts show 0
        await self._step("positions", within(self.cfg.connect_timeout, self.ib.reqPositionsAsync()))
        if self.state.live:
            self.state.on_connected(self.accounts)
        await self._step("open orders", self._snapshot_open_orders())
        await self._step("executions", self._snapshot_executions())
        for key, contract in list(self._md.items()):  # the many market data lines last
            self.ib.cancelMktData(contract)
            del self._md[key]
            self._req_mkt_data(key, contract)

    def _cancel_streams(self) -> None:
        """Cancel account summary, P&L, per-position P&L and positions before asking again."""
        ib = self.ib
        if self._summary_req is not None:
            ib.client.cancelAccountSummary(self._summary_req)
        for account in self._pnl:
            ib.cancelPnL(account)
        for account, con_id in self._pnl_single:
            ib.cancelPnLSingle(account, "", con_id)
        ib.client.cancelPositions()
        self._forget_streams()

    def _forget_streams(self) -> None:
        self._summary_req = None
        self._pnl.clear()
        self._pnl_single.clear()

    def _forget(self) -> None:
        """A closed socket cancels everything at TWS; ib_async has reset its own maps."""
        self._forget_streams()
        self._md.clear()
        self._done.clear()
