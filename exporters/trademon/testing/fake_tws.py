"""A stand-in TWS / IB Gateway for tests: the TWS API socket protocol on loopback.

It speaks what ib_async's (and ib_insync's) client and decoder expect for the server version they negotiate
(length-prefixed messages of NUL-terminated fields; "API\\0" + "v<min>..<max>" handshake,
answered with the server version and connection time; startApi; nextValidId and
managedAccounts; then requests and streamed answers). It runs its own event loop in a
thread, so a test drives it with plain method calls while the exporter, in another
process or loop, talks to it over a real socket.

Scripting: set broker state (positions, P&L, account values, quotes, the market data type
per symbol, with 10167 for delayed) and it is sent to the sessions subscribed to it and
replayed to new ones; send order events, fills, errors
and raw messages; drop the connection, refuse new ones (TWS down), restore, or freeze a
session (a silent, half-open socket); accept sockets but never answer the handshake (a Gateway
waiting for its login or two-factor approval); hold client ids as used by another client (326).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import itertools
import logging
import struct
import threading
import time
from collections import Counter
from dataclasses import dataclass, field

log = logging.getLogger("trademon.testing.fake_tws")

MAX_SERVER_VERSION = 178
FARM_OK = ((2104, "Market data farm connection is OK:usfarm"),
           (2106, "HMDS data farm connection is OK:ushmds"),
           (2158, "Sec-def data farm connection is OK:secdefnj"))

# Incoming message ids (client -> TWS) this stand-in answers.
REQ_MKT_DATA, CANCEL_MKT_DATA, REQ_OPEN_ORDERS, REQ_EXECUTIONS, REQ_IDS, REQ_CONTRACT_DATA = 1, 2, 5, 7, 8, 9
REQ_AUTO_OPEN_ORDERS, REQ_ALL_OPEN_ORDERS, REQ_MANAGED_ACCTS = 15, 16, 17
REQ_CURRENT_TIME, REQ_MARKET_DATA_TYPE, REQ_POSITIONS = 49, 59, 61
REQ_ACCOUNT_SUMMARY, CANCEL_ACCOUNT_SUMMARY, CANCEL_POSITIONS, START_API = 62, 63, 64, 71
REQ_PNL, CANCEL_PNL, REQ_PNL_SINGLE, CANCEL_PNL_SINGLE = 92, 93, 94, 95
REQ_ACCOUNT_DATA, REQ_ACCOUNT_UPDATES_MULTI = 6, 76  # what ib_insync asks at every connect
# Requests that place, change, cancel or take over orders (placeOrder, cancelOrder,
# reqGlobalCancel, exerciseOptions, and reqAutoOpenOrders, which binds TWS's own orders to the
# client): a read-only client sends none (the stand-in counts every request in ``received``).
ORDER_CHANGING_REQUESTS = frozenset({3, 4, 58, 21, REQ_AUTO_OPEN_ORDERS})


def encode(*fields) -> bytes:
    """One TWS API message: a 4-byte big-endian length, then NUL-terminated fields."""
    out = []
    for f in fields:
        if f is None:
            s = ""
        elif isinstance(f, bool):
            s = "1" if f else "0"
        else:
            s = str(f)
        out.append(s.encode() + b"\0")
    body = b"".join(out)
    return struct.pack(">I", len(body)) + body


@dataclass
class FakeContract:
    con_id: int
    symbol: str
    sec_type: str = "STK"
    exchange: str = "SMART"
    currency: str = "USD"
    local_symbol: str = ""
    expiry: str = ""
    multiplier: str = ""

    def fields(self, with_primary: bool = False) -> list:
        # conId, symbol, secType, lastTradeDate, strike, right, multiplier, exchange,
        # [primaryExchange], currency, localSymbol, tradingClass
        f = [self.con_id, self.symbol, self.sec_type, self.expiry, 0.0, "", self.multiplier, self.exchange]
        if with_primary:
            f.append("")
        return f + [self.currency, self.local_symbol or self.symbol, self.symbol]


@dataclass
class FakeOrder:
    order_id: int
    client_id: int
    perm_id: int
    contract: FakeContract
    action: str
    quantity: float
    order_type: str
    limit_price: float | None
    order_ref: str
    account: str
    status: str
    filled: float = 0.0
    avg_price: float = 0.0
    last_price: float = 0.0


@dataclass
class Session:
    writer: asyncio.StreamWriter
    client_id: int | None = None
    version: int = 0
    frozen: bool = False
    requests: list[list[str]] = field(default_factory=list)
    mkt_data: dict[int, str] = field(default_factory=dict)  # reqId -> symbol
    pnl: dict[int, str] = field(default_factory=dict)  # reqId -> account
    pnl_single: dict[int, tuple[str, int]] = field(default_factory=dict)  # reqId -> (account, conId)
    account_summary: set[int] = field(default_factory=set)
    positions: bool = False

    def send(self, *fields) -> None:
        if not self.frozen and not self.writer.is_closing():
            self.writer.write(encode(*fields))

    def subscriptions(self) -> dict[str, int]:
        return {"mkt_data": len(self.mkt_data), "pnl": len(self.pnl), "pnl_single": len(self.pnl_single),
                "account_summary": len(self.account_summary), "positions": int(self.positions)}


class FakeTWS:
    """Scriptable stand-in TWS. Use as a context manager, or ``start()`` / ``stop()``."""

    def __init__(self, accounts=("DU111111",), host: str = "127.0.0.1", port: int = 0,
                 max_version: int = MAX_SERVER_VERSION, farm_messages=FARM_OK, master_client_id: int | None = None):
        self.accounts = list(accounts)
        # TWS's "Master API client ID" (Configure > API > Settings): that client is sent every
        # client's order events and executions; any other client only its own. None: not set.
        self.master_client_id = master_client_id
        self.host, self.port = host, port
        self.max_version = max_version
        self.farm_messages = list(farm_messages)
        self.sessions: list[Session] = []
        self.connections_total = 0
        self.received: Counter[int] = Counter()  # message id -> requests received, every session
        self.positions: dict[tuple[str, int], dict] = {}  # (account, conId) -> {contract, qty, avg, mv}
        self.pnl: dict[str, tuple[float, float, float]] = {}
        self.account_values: dict[tuple[str, str], tuple[str, str]] = {}  # (account, tag) -> (value, ccy)
        self.quotes: dict[str, tuple[float, float]] = {}
        # symbol -> the market data type TWS delivers (1 live, 2 frozen, 3 delayed, 4 delayed-frozen);
        # 1 when not set. Delayed (3) on request is announced with code 10167, as TWS does.
        self.data_types: dict[str, int] = {}
        self.orders: dict[tuple[int, int], FakeOrder] = {}
        self.executions: list[tuple] = []
        self.unknown_symbols: set[str] = set()  # contract details answer error 200 for these
        self.client_ids_in_use: set[int] = set()  # another API client holds these: startApi gets 326
        self.answer_handshake = True  # False: accept the socket, read, never answer (login / 2FA pending)
        self._con_ids: dict[tuple[str, str], int] = {}
        self._perm_ids = itertools.count(900_000)
        self._exec_ids = itertools.count(1)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._server: asyncio.base_events.Server | None = None

    # ---- lifecycle ------------------------------------------------------------------

    def start(self) -> FakeTWS:
        ready = threading.Event()

        def run():
            self._loop = asyncio.new_event_loop()
            asyncio.set_event_loop(self._loop)
            self._loop.run_until_complete(self._listen())
            ready.set()
            self._loop.run_forever()

        self._thread = threading.Thread(target=run, name="fake-tws", daemon=True)
        self._thread.start()
        if not ready.wait(10):
            raise RuntimeError("fake TWS did not start")
        return self

    def stop(self) -> None:
        if self._loop is None:
            return
        self._call(self._shutdown)
        self._loop.call_soon_threadsafe(self._loop.stop)
        if self._thread is not None:
            self._thread.join(5)
        self._loop.close()
        self._loop = None

    def _running_loop(self) -> asyncio.AbstractEventLoop:
        if self._loop is None:
            raise RuntimeError("the fake TWS is not running: call start() first (or use it as a context manager)")
        return self._loop

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    async def _listen(self) -> None:
        self._server = await asyncio.start_server(self._serve, self.host, self.port)
        self.port = self._server.sockets[0].getsockname()[1]

    def _shutdown(self) -> None:
        if self._server is not None:
            self._server.close()
            self._server = None
        self._drop_sessions()

    def _call(self, fn, *args):
        """Run ``fn(*args)`` in the fake's loop and return its result."""
        fut: concurrent.futures.Future = concurrent.futures.Future()

        def go():
            try:
                fut.set_result(fn(*args))
            except BaseException as e:  # noqa: BLE001 - handed back to the caller's thread
                fut.set_exception(e)

        self._running_loop().call_soon_threadsafe(go)
        return fut.result(10)

    # ---- connection control -----------------------------------------------------------

    def drop(self) -> None:
        """Close every client socket (TWS restarted, network cut); keep listening."""
        self._call(self._drop_sessions)

    def _drop_sessions(self) -> None:
        for s in self.sessions:
            s.writer.close()
        self.sessions.clear()

    def go_down(self) -> None:
        """TWS is gone: drop every session and refuse new connections."""
        def down():
            if self._server is not None:
                self._server.close()
                self._server = None
            self._drop_sessions()
        self._call(down)

    def come_back(self) -> None:
        """Listen again, on the same port."""
        async def up():
            if self._server is None:
                self._server = await asyncio.start_server(self._serve, self.host, self.port)
        asyncio.run_coroutine_threadsafe(up(), self._running_loop()).result(10)

    def freeze(self, frozen: bool = True) -> None:
        """Keep the sockets open but neither answer nor send: a silent, half-open connection."""
        def f():
            for s in self.sessions:
                s.frozen = frozen
        self._call(f)

    def wait_sessions(self, n: int = 1, timeout: float = 15.0) -> None:
        """Wait until ``n`` sessions have completed startApi."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._call(lambda: sum(1 for s in self.sessions if s.client_id is not None)) >= n:
                return
            time.sleep(0.02)
        raise TimeoutError(f"no {n} API session(s) within {timeout}s")

    def wait_request(self, msg_id: int, count: int = 1, timeout: float = 15.0) -> None:
        """Wait until the live sessions have sent ``count`` requests with this message id."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.request_count(msg_id) >= count:
                return
            time.sleep(0.02)
        raise TimeoutError(f"no {count} request(s) with message id {msg_id} within {timeout}s")

    def request_count(self, msg_id: int) -> int:
        """Requests with this message id the live sessions have sent (answered or not)."""
        return self._call(lambda: sum(1 for s in self.sessions for r in s.requests if r and r[0] == str(msg_id)))

    def subscriptions(self) -> list[dict[str, int]]:
        """Active subscriptions per live session (to prove resubscribing does not pile up)."""
        return self._call(lambda: [s.subscriptions() for s in self.sessions if s.client_id is not None])

    def client_ids(self) -> list[int]:
        return self._call(lambda: [s.client_id for s in self.sessions if s.client_id is not None])

    # ---- broker state -----------------------------------------------------------------

    def contract(self, symbol: str, sec_type: str = "STK", **kw) -> FakeContract:
        con_id = self._con_ids.setdefault((symbol, sec_type), 100_000 + len(self._con_ids) * 7 + 3)
        return FakeContract(con_id, symbol, sec_type, **kw)

    def set_position(self, account: str, symbol: str, quantity: float, avg_cost: float = 0.0,
                     market_value: float | None = None, sec_type: str = "STK") -> None:
        c = self.contract(symbol, sec_type)

        def f():
            self.positions[(account, c.con_id)] = {"contract": c, "qty": quantity, "avg": avg_cost,
                                                   "mv": market_value}
            for s in self._live():
                if s.positions:
                    self._send_position(s, account, c.con_id)
                for req_id, key in s.pnl_single.items():
                    if key == (account, c.con_id):
                        self._send_pnl_single(s, req_id, account, c.con_id)
        self._call(f)

    def set_pnl(self, account: str, daily: float, unrealized: float, realized: float) -> None:
        def f():
            self.pnl[account] = (daily, unrealized, realized)
            for s in self._live():
                for req_id, acct in s.pnl.items():
                    if acct == account:
                        s.send(94, req_id, daily, unrealized, realized)
        self._call(f)

    def set_account_value(self, account: str, tag: str, value, currency: str = "USD") -> None:
        def f():
            self.account_values[(account, tag)] = (str(value), currency)
            for s in self._live():
                for req_id in s.account_summary:
                    s.send(63, 1, req_id, account, tag, value, currency)
        self._call(f)

    def set_quote(self, symbol: str, bid: float, ask: float) -> None:
        def f():
            self.quotes[symbol] = (bid, ask)
            for s in self._live():
                for req_id, sym in s.mkt_data.items():
                    if sym == symbol:
                        self._send_quote(s, req_id, symbol)
        self._call(f)

    def set_market_data_type(self, symbol: str, data_type: int) -> None:
        """What TWS delivers for ``symbol`` from now on (e.g. 2 frozen at the close): the
        marketDataType message to every line of it, then its quote again."""
        def f():
            self.data_types[symbol] = data_type
            for s in self._live():
                for req_id, sym in s.mkt_data.items():
                    if sym == symbol:
                        s.send(58, 1, req_id, data_type)
                        self._send_quote(s, req_id, symbol)
        self._call(f)

    # ---- events -----------------------------------------------------------------------

    def error(self, code: int, message: str, req_id: int = -1) -> None:
        def send() -> None:
            for s in self._live():
                self._send_error(s, req_id, code, message)
        self._call(send)

    def errors(self, items) -> None:
        """Many ``(code, message)`` errors in one go (without a round trip to the fake's loop each)."""
        items = list(items)
        def send() -> None:
            for s in self._live():
                for code, text in items:
                    self._send_error(s, -1, code, text)
        self._call(send)

    def send_raw(self, *fields) -> None:
        """Any message, e.g. an id no client knows, or a known id with garbage fields."""
        self._call(lambda: [s.send(*fields) for s in self._live()])

    def place_order(self, order_id: int, symbol: str, action: str, quantity: float, *, client_id: int,
                    order_ref: str = "", account: str | None = None, order_type: str = "MKT",
                    limit_price: float | None = None, status: str = "PreSubmitted") -> FakeOrder:
        """An order placed by the API client ``client_id`` (another client, seen by a master client)."""
        o = FakeOrder(order_id, client_id, next(self._perm_ids), self.contract(symbol), action, quantity,
                      order_type, limit_price, order_ref, account or self.accounts[0], status)

        def f():
            self.orders[(client_id, order_id)] = o
            for s in self._watching(o.client_id):
                self._send_open_order(s, o)
                self._send_order_status(s, o)
        self._call(f)
        return o

    def place_orders(self, orders) -> None:
        """Many orders in one go: ``place_order`` keyword dicts (order_id, symbol, action, quantity,
        client_id, order_ref, ...), sent as one burst, the way TWS streams a busy session."""
        made = [FakeOrder(o["order_id"], o["client_id"], next(self._perm_ids), self.contract(o["symbol"]),
                          o.get("action", "BUY"), o.get("quantity", 1), o.get("order_type", "MKT"),
                          o.get("limit_price"), o.get("order_ref", ""), o.get("account") or self.accounts[0],
                          o.get("status", "PreSubmitted")) for o in orders]

        def f():
            for o in made:
                self.orders[(o.client_id, o.order_id)] = o
                for s in self._watching(o.client_id):
                    self._send_open_order(s, o)
                    self._send_order_status(s, o)
        self._call(f)

    def order_status(self, order_id: int, status: str, *, client_id: int) -> None:
        self.order_statuses([order_id], status, client_id=client_id)

    def order_statuses(self, order_ids, status: str, *, client_id: int) -> None:
        """The same new status for many orders, in one go."""
        order_ids = list(order_ids)

        def f():
            for order_id in order_ids:
                o = self.orders[(client_id, order_id)]
                o.status = status
                for s in self._watching(client_id):
                    self._send_order_status(s, o)
        self._call(f)

    def reject(self, order_id: int, code: int, message: str, *, client_id: int) -> None:
        """What TWS does when it rejects an order: the error, then status Cancelled."""
        def f():
            o = self.orders[(client_id, order_id)]
            o.status = "Cancelled"
            for s in self._watching(client_id):
                self._send_error(s, order_id, code, message)
                self._send_order_status(s, o)
        self._call(f)

    def fill(self, order_id: int, shares: float, price: float, *, client_id: int, commission: float = 1.0) -> str:
        """An execution (execDetails + commissionReport) and the order status that follows."""
        return self.fills([(order_id, shares, price)], client_id=client_id, commission=commission)[0]

    def fills(self, items, *, client_id: int, commission: float = 1.0) -> list[str]:
        """Many ``(order_id, shares, price)`` executions in one go, each as ``fill`` sends it."""
        items = [(f"0000e0d5.{next(self._exec_ids):08d}.01.01", *item) for item in items]

        def f():
            for exec_id, order_id, shares, price in items:
                o = self.orders[(client_id, order_id)]
                o.avg_price = (o.avg_price * o.filled + price * shares) / (o.filled + shares)
                o.filled += shares
                o.last_price = price
                o.status = "Filled" if o.filled >= o.quantity else "Submitted"
                ex = (exec_id, o, shares, price, o.filled, o.avg_price, time.time())
                self.executions.append(ex)
                for s in self._watching(client_id):
                    self._send_execution(s, -1, ex)
                    s.send(59, 1, exec_id, commission, "USD", 1.7976931348623157e308, 1.7976931348623157e308, "")
                    self._send_order_status(s, o)
        self._call(f)
        return [item[0] for item in items]

    # ---- protocol ---------------------------------------------------------------------

    def _live(self):
        return [s for s in self.sessions if s.client_id is not None]

    def _sees(self, s: Session, client_id: int) -> bool:
        """Whether session ``s`` is sent events of orders placed by ``client_id``."""
        return s.client_id == client_id or (self.master_client_id is not None and s.client_id == self.master_client_id)

    def _watching(self, client_id: int):
        return [s for s in self._live() if self._sees(s, client_id)]

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        session = Session(writer)
        self.connections_total += 1
        try:
            if await reader.readexactly(4) != b"API\0":
                return
            body = await self._read(reader)
            if not self.answer_handshake:  # keep the socket open, say nothing, until the client gives up
                await reader.read()
                return
            session.version = self._negotiate(body.decode())
            writer.write(encode(session.version, time.strftime("%Y%m%d %H:%M:%S UTC", time.gmtime())))
            self.sessions.append(session)
            while True:
                fields = (await self._read(reader)).decode(errors="replace").split("\0")[:-1]
                if not fields:
                    continue
                session.requests.append(fields)  # received even when frozen: it just is not answered
                if fields[0].isdigit():
                    self.received[int(fields[0])] += 1
                if session.frozen:
                    continue
                try:
                    self._handle(session, fields)
                except Exception:  # a request the stand-in cannot parse must not kill it
                    log.exception("fake TWS could not handle %s", fields)
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            if session in self.sessions:
                self.sessions.remove(session)
            writer.close()

    @staticmethod
    async def _read(reader: asyncio.StreamReader) -> bytes:
        (n,) = struct.unpack(">I", await reader.readexactly(4))
        return await reader.readexactly(n)

    def _negotiate(self, text: str) -> int:
        # "v157..178" optionally followed by connect options
        spec = text.split(" ")[0].lstrip("v")
        lo, _, hi = spec.partition("..")
        hi_v = int(hi or lo)
        if hi_v < 157:
            raise ConnectionError(f"client version {hi_v} too old")
        return min(hi_v, self.max_version)

    def _handle(self, s: Session, f: list[str]) -> None:
        msg = int(f[0])
        if msg == START_API:
            client_id = int(f[2])
            if client_id in self.client_ids_in_use or any(o.client_id == client_id for o in self.sessions if o is not s):
                self._send_error(s, -1, 326, "Unable to connect as the client id is already in use. "
                                 "Retry with a unique client id.")
                s.writer.close()
                return
            s.client_id = client_id
            s.send(9, 1, 1 + max((o.order_id for o in self.orders.values()), default=0))
            s.send(15, 1, ",".join(self.accounts))
            for code, text in self.farm_messages:
                self._send_error(s, -1, code, text)
        elif msg == REQ_CURRENT_TIME:
            s.send(49, 1, int(time.time()))
        elif msg == REQ_POSITIONS:
            s.positions = True
            for account, con_id in list(self.positions):
                self._send_position(s, account, con_id)
            s.send(62, 1)
        elif msg == CANCEL_POSITIONS:
            s.positions = False
        elif msg == REQ_ACCOUNT_SUMMARY:
            req_id = int(f[2])
            s.account_summary.add(req_id)
            for (account, tag), (value, ccy) in self.account_values.items():
                s.send(63, 1, req_id, account, tag, value, ccy)
            s.send(64, 1, req_id)
        elif msg == CANCEL_ACCOUNT_SUMMARY:
            s.account_summary.discard(int(f[2]))
        elif msg == REQ_PNL:
            req_id, account = int(f[1]), f[2]
            s.pnl[req_id] = account
            if account in self.pnl:
                s.send(94, req_id, *self.pnl[account])
        elif msg == CANCEL_PNL:
            s.pnl.pop(int(f[1]), None)
        elif msg == REQ_PNL_SINGLE:
            req_id, account, con_id = int(f[1]), f[2], int(f[4])
            s.pnl_single[req_id] = (account, con_id)
            self._send_pnl_single(s, req_id, account, con_id)
        elif msg == CANCEL_PNL_SINGLE:
            s.pnl_single.pop(int(f[1]), None)
        elif msg == REQ_MKT_DATA:
            req_id, symbol = int(f[2]), f[4]
            s.mkt_data[req_id] = symbol
            data_type = self.data_types.get(symbol, 1)
            if data_type == 3:
                self._send_error(s, req_id, 10167, "Requested market data is not subscribed. Displaying delayed market data.")
            s.send(58, 1, req_id, data_type)  # marketDataType, before the first tick
            self._send_quote(s, req_id, symbol)
        elif msg == CANCEL_MKT_DATA:
            s.mkt_data.pop(int(f[2]), None)
        elif msg in (REQ_ALL_OPEN_ORDERS, REQ_OPEN_ORDERS):
            for o in self.orders.values():
                if o.status not in ("Filled", "Cancelled", "ApiCancelled", "Inactive"):
                    self._send_open_order(s, o)
                    self._send_order_status(s, o)
            s.send(53, 1)
        elif msg == REQ_EXECUTIONS:
            req_id = int(f[2])
            for ex in self.executions:
                if self._sees(s, ex[1].client_id):
                    self._send_execution(s, req_id, ex)
            s.send(55, 1, req_id)
        elif msg == REQ_CONTRACT_DATA:
            self._send_contract_details(s, int(f[2]), f[4], f[5] or "STK", f[10] or "SMART", f[12] or "USD")
        elif msg == REQ_ACCOUNT_DATA and f[2] == "1":
            # the account's values at the time of asking, then the end marker; no streaming
            # (the exporter reads the account summary; ib_insync only waits for the end)
            for (account, tag), (value, ccy) in self.account_values.items():
                if account == f[3]:
                    s.send(6, 2, tag, value, ccy, account)
            s.send(54, 1, f[3])
        elif msg == REQ_ACCOUNT_UPDATES_MULTI:
            req_id, wanted = int(f[2]), f[3]
            for (account, tag), (value, ccy) in self.account_values.items():
                if account == wanted:
                    s.send(73, 1, req_id, account, f[4], tag, value, ccy)
            s.send(74, 1, req_id)
        elif msg == REQ_MANAGED_ACCTS:
            s.send(15, 1, ",".join(self.accounts))
        elif msg == REQ_IDS:
            s.send(9, 1, 1 + max((o.order_id for o in self.orders.values()), default=0))
        # reqAutoOpenOrders, reqMarketDataType and anything else: accepted, no answer (the type is
        # the stand-in's per symbol: data_types)

    def _send_error(self, s: Session, req_id: int, code: int, message: str) -> None:
        fields = [4, 2, req_id, code, message]
        if s.version >= 166:
            fields.append("")  # advancedOrderRejectJson
        s.send(*fields)

    def _send_contract_details(self, s: Session, req_id: int, symbol: str, sec_type: str, exchange: str,
                               currency: str) -> None:
        if symbol in self.unknown_symbols:
            self._send_error(s, req_id, 200, "No security definition has been found for the request")
            return
        c = self.contract(symbol, sec_type, exchange=exchange, currency=currency)
        # server versions >= 164: no version field; minSize, sizeIncrement, suggestedSizeIncrement at the end
        s.send(10, req_id, c.symbol, c.sec_type, c.expiry, 0.0, "", c.exchange, c.currency, c.local_symbol or c.symbol,
               "NMS", c.symbol, c.con_id, 0.01, c.multiplier, "LMT,MKT", "SMART,ISLAND", 1, 0, f"{symbol} INC",
               "NASDAQ", "", "", "", "", "US/Eastern", "", "", "", "", 0,
               1, "", "", "26", "", "COMMON", 1, 1, 1)
        s.send(52, 1, req_id)

    def _send_position(self, s: Session, account: str, con_id: int) -> None:
        p = self.positions[(account, con_id)]
        s.send(61, 3, account, *p["contract"].fields(), p["qty"], p["avg"])

    def _send_pnl_single(self, s: Session, req_id: int, account: str, con_id: int) -> None:
        p = self.positions.get((account, con_id))
        if p is not None and p["mv"] is not None:
            s.send(95, req_id, p["qty"], 0.0, 0.0, 0.0, p["mv"])

    def _send_quote(self, s: Session, req_id: int, symbol: str) -> None:
        q = self.quotes.get(symbol)
        if q is not None:
            s.send(1, 6, req_id, 1, q[0], 100, 0)  # tickPrice bid, size, attribute mask
            s.send(1, 6, req_id, 2, q[1], 100, 0)  # tickPrice ask

    def _send_order_status(self, s: Session, o: FakeOrder) -> None:
        s.send(3, o.order_id, o.status, o.filled, o.quantity - o.filled, o.avg_price, o.perm_id, 0,
               o.last_price, o.client_id, "", 0.0)

    def _send_execution(self, s: Session, req_id: int, ex: tuple) -> None:
        exec_id, o, shares, price, cum, avg, t = ex
        side = "BOT" if o.action == "BUY" else "SLD"
        fields = [11, req_id, o.order_id, *o.contract.fields(), exec_id,
                  time.strftime("%Y%m%d %H:%M:%S UTC", time.gmtime(t)), o.account, "ISLAND", side, shares,
                  price, o.perm_id, o.client_id, 0, cum, avg, o.order_ref, "", "", "", 1]
        if s.version >= 178:
            fields.append(0)  # pendingPriceRevision
        s.send(*fields)

    def _send_open_order(self, s: Session, o: FakeOrder) -> None:
        """openOrder in the layout ib_async's decoder reads for this server version."""
        c = o.contract
        f = [5, o.order_id, *c.fields(), o.action, o.quantity, o.order_type,
             o.limit_price if o.limit_price is not None else "", "", "DAY", "", o.account, "O", 0,
             o.order_ref, o.client_id, o.perm_id, 0, 0, 0, "", "", "", "", ""]
        if s.version < 177:
            f.append("")  # faProfile
        f += [""] * 29  # modelCode .. deltaNeutralAuxPrice (no delta-neutral order type)
        f += [""] * 7  # continuousUpdate .. comboLegsDescrip
        f += [0, 0, 0]  # combo legs, order combo legs, smart combo routing params
        f += ["", "", ""]  # scaleInitLevelSize, scaleSubsLevelSize, scalePriceIncrement (unset)
        f += [""]  # hedgeType
        f += [0, "", "", 0, 0]  # optOutSmartRouting, clearingAccount, clearingIntent, notHeld, no delta-neutral
        f += [""]  # algoStrategy
        f += [0, 0, o.status] + [""] * 12 + ["", "", 0, 0]  # solicited, whatIf, order state .., randomize
        f += [0]  # conditions
        f += [""] * 16  # adjustedOrderType .. usePriceMgmtAlgo
        if s.version >= 159:
            f.append("")  # duration
        if s.version >= 160:
            f.append(0)  # postToAts
        if s.version >= 162:
            f.append(0)  # autoCancelParent
        if s.version >= 170:
            f += [""] * 5  # minTradeQty .. midOffsetAtHalf
        s.send(*f)
