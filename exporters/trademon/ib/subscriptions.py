"""IB's own market-data lines, watched: per line the age of its last tick against its cadence
class, within its exchange's session; lines TWS dropped (code 1101) and not yet asked again;
and the data type TWS delivers (live, frozen, delayed, delayed-frozen).

Fed by ib_async's events (pendingTickersEvent, errorEvent) and by the connection each time it
requests a line; the gauges are set at each scrape (``update``), from the injected clocks:
``clock`` (monotonic) for ages, ``wall`` (Unix time) for exchange sessions.

The age of a line counts from the latest of its last tick, its (re)request, and the open of
its exchange's current session, so a line quiet overnight does not look stale at the open.
Sessions come from exchange-calendars (trademon.alertmanager.markets), by the exchange IB
names for the contract (primaryExchange, else exchange) mapped to a calendar code below;
a line whose exchange has no calendar has no ``ib_market_data_in_session`` series, and its
staleness is not judged (the exporter says which at the line's first request).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta, UTC

from trademon.alertmanager import markets
from trademon.contract import IB_MARKET_DATA_CADENCES
from trademon.ib.bounds import Bound
from trademon.metrics import Children

log = logging.getLogger("trademon.ib.subscriptions")

# Security types whose quotes may rest for minutes inside the session (options, warrants,
# bonds): their own, looser cadence class. Everything else streams as "quote".
SPARSE_SEC_TYPES = frozenset({"OPT", "FOP", "WAR", "BOND", "IOPT"})

# IB's exchange names -> exchange-calendars codes, where they differ (IB's own names that are
# calendar names already, e.g. NYSE, NASDAQ, LSE, CBOT, NYMEX, COMEX, FWB, ASX, are taken as they are).
IB_CALENDARS = {
    "ISLAND": "XNAS", "ARCA": "ARCX", "AMEX": "XASE", "IEX": "XNYS", "BYX": "BATS",
    "GLOBEX": "CMES", "CME": "CMES", "ECBOT": "CBOT", "NYBOT": "ICEUS", "CFE": "CFE",
    "IDEALPRO": "24/5", "PAXOS": "24/7", "ZEROHASH": "24/7",
    "IBIS": "XETR", "SEHK": "XHKG", "TSEJ": "XTKS", "TSE": "XTSE", "EBS": "XSWX", "SBF": "XPAR",
    "AEB": "XAMS", "BVME": "XMIL", "BM": "XMAD", "LSEETF": "XLON",
}

# reqMarketDataType's values (ib_market_data_type)
LIVE, FROZEN, DELAYED, DELAYED_FROZEN = 1, 2, 3, 4
# 10167: "Requested market data is not subscribed. Displaying delayed market data."
DELAYED_INSTEAD = 10167
SESSION_DAYS = 8  # sessions are computed this far ahead, once per calendar and period


def cadence_of(sec_type: str) -> str:
    return "quote_sparse" if sec_type in SPARSE_SEC_TYPES else "quote"


def calendar_of(contract) -> str | None:
    """The exchange-calendars code of the contract's exchange, or None when there is none."""
    name = (getattr(contract, "primaryExchange", "") or contract.exchange or "").upper()
    code = IB_CALENDARS.get(name, name)
    try:
        return markets.check_exchange(code) if code and code != "SMART" else None
    except markets.CalendarUnavailable:
        return None
    except Exception:  # ConfigError: not a calendar code
        return None


class SessionClock:
    """Whether an exchange is in session at a wall time, and since when; sessions computed once
    per calendar for SESSION_DAYS, again when that runs out."""

    def __init__(self):
        self._cache: dict[str, tuple[float, float, list[tuple[float, float]]]] = {}

    def _periods(self, code: str, now: float) -> list[tuple[float, float]]:
        got = self._cache.get(code)
        if got is None or not got[0] <= now < got[1]:
            start = datetime.fromtimestamp(now, UTC) - timedelta(days=1)
            end = start + timedelta(days=SESSION_DAYS)
            periods = [(s.open.timestamp(), s.close.timestamp()) for s in markets.sessions(code, start, end)]
            got = self._cache[code] = (now, end.timestamp() - 86_400, periods)
        return got[2]

    def opened(self, code: str, now: float) -> float | None:
        """The open of the session ``code`` is in at ``now`` (Unix time), None outside one."""
        for o, c in self._periods(code, now):
            if o <= now < c:
                return o
        return None


@dataclass(slots=True)
class Line:
    label: str  # the subscription label (bounded)
    cadence: str
    calendar: str | None
    requested: float  # clock time of the latest request
    last_tick: float | None = None
    data_type: int | None = None  # what TWS says it delivers; None until it says


def line_label(contract) -> str:
    """``SYMBOL@EXCHANGE``: the ticker (the local symbol for futures and options) and IB's exchange."""
    sym = contract.symbol if contract.secType in ("STK", "", "IND", "CRYPTO", "CASH") else (contract.localSymbol or contract.symbol)
    exchange = getattr(contract, "primaryExchange", "") or contract.exchange or "SMART"
    return f"{sym}@{exchange}"[:100]


class MarketDataWatch:
    def __init__(self, metrics, bound: Bound, requested_type: int, clock: Callable[[], float],
                 wall: Callable[[], float], sessions: SessionClock | None = None):
        self.bound, self.clock, self.wall = bound, clock, wall
        self.sessions = sessions or SessionClock()
        self.age = Children(metrics["ib_market_data_tick_age_seconds"])
        self.in_session = Children(metrics["ib_market_data_in_session"])
        self.data_type = Children(metrics["ib_market_data_type"])
        self.lost_gauge = metrics["ib_market_data_lines_lost"]
        metrics["ib_market_data_type_requested"].set(requested_type)
        self.lines: dict[tuple[str, str], Line] = {}
        self.lost: set[tuple[str, str]] = set()
        self._shown: set[str] = set()
        self._export_lost()

    # ---- events -------------------------------------------------------------------------

    def requested(self, key: tuple[str, str], contract) -> None:
        """The connection asked TWS for this line (again)."""
        line = self.lines.get(key)
        if line is None:
            cal = calendar_of(contract)
            if cal is None:
                log.warning("no exchange calendar for this market data line: its staleness is not judged",
                            extra={"symbol": contract.symbol, "exchange": getattr(contract, "primaryExchange", "") or contract.exchange})
            line = self.lines[key] = Line(self.bound(line_label(contract)), cadence_of(contract.secType), cal, self.clock())
        line.requested = self.clock()
        line.last_tick = None
        if key in self.lost:
            self.lost.discard(key)
            self._export_lost()

    def on_tickers(self, tickers) -> None:
        """pendingTickersEvent: every ticker in it had a tick now."""
        lines, now = self.lines, None
        for t in tickers:
            c = t.contract
            line = lines.get((c.symbol, c.secType or "STK"))
            if line is None:
                continue
            if now is None:
                now = self.clock()
            line.last_tick = now
            if t.marketDataType:
                line.data_type = t.marketDataType

    def on_error(self, code: int, contract) -> None:
        if code == DELAYED_INSTEAD and contract is not None:
            line = self.lines.get((contract.symbol, contract.secType or "STK"))
            if line is not None:
                line.data_type = DELAYED

    def data_lost(self) -> None:
        """Code 1101: TWS dropped every line; each counts as lost until it is asked again."""
        self.lost = set(self.lines)
        self._export_lost()

    def clear(self) -> None:
        """The socket closed: TWS cancelled every line; the next session asks afresh."""
        self.lines.clear()
        self.lost.clear()
        self._export_lost()
        self._remove(set(self._shown))
        self.bound.clear()

    # ---- scrape -------------------------------------------------------------------------

    def _export_lost(self) -> None:
        self.lost_gauge.set(len(self.lost))

    def _remove(self, labels: set[str]) -> None:
        for label in labels:
            for cadence in IB_MARKET_DATA_CADENCES:
                self.age.remove(label, cadence)
            self.in_session.remove(label)
            self.data_type.remove(label)
        self._shown -= labels

    def update(self, live: bool) -> None:
        """Set the gauges (lines under ``__overflow__`` show their worst). None while not
        ``live`` (no session, or TWS without IB): a quiet line is then no news of its own."""
        if not live:
            self._remove(set(self._shown))
            return
        now, wall = self.clock(), self.wall()
        ages: dict[tuple[str, str], float] = {}
        open_: dict[str, int] = {}
        types: dict[str, int] = {}
        for line in self.lines.values():
            since = line.requested if line.last_tick is None else max(line.requested, line.last_tick)
            if line.calendar is not None:
                opened = self.sessions.opened(line.calendar, wall)
                if opened is not None:
                    since = max(since, now - (wall - opened))
                open_[line.label] = max(open_.get(line.label, 0), int(opened is not None))
            k = (line.label, line.cadence)
            ages[k] = max(ages.get(k, 0.0), max(0.0, now - since))
            if line.data_type is not None:
                types[line.label] = max(types.get(line.label, 0), line.data_type)
        labels = {label for label, _ in ages}
        self._remove(self._shown - labels)
        for (label, cadence), age in ages.items():
            self.age(label, cadence).set(age)
        for label in labels:
            if label in open_:
                self.in_session(label).set(open_[label])
            else:
                self.in_session.remove(label)
            if label in types:
                self.data_type(label).set(types[label])
            else:
                self.data_type.remove(label)
        self._shown = labels

