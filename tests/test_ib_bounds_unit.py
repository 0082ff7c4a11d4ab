"""The pieces behind bounded labels and down reasons, without sockets: the label bound with a
clock the test moves, the classification of connect failures, and ib_async's done orders
forgotten beyond the newest KEEP_DONE_TRADES."""

from __future__ import annotations

import errno
import socket

import pytest
from ib_async import IB, Contract, Order, OrderState
from prometheus_client import CollectorRegistry, Counter

from trademon.contract import OVERFLOW
from trademon.ib import connection
from trademon.ib.bounds import Bound, strategy_of
from trademon.ib.config import load
from trademon.ib.connection import Connection
from trademon.ib.reasons import connect_failure
from trademon.ib.state import BrokerState


class Clock:
    t = 1000.0

    def __call__(self):
        return self.t


def test_bound_caps_counts_and_expires_idle_values():
    overflowed = Counter("x", "x", registry=CollectorRegistry())
    clock = Clock()
    b = Bound(2, overflowed, clock, idle=60)
    assert [b("a"), b("b"), b("c"), b("a"), b("d")] == ["a", "b", OVERFLOW, "a", OVERFLOW]
    assert overflowed._value.get() == 2
    clock.t += 30
    b("a")
    clock.t += 31
    assert b.expire() == ["b", OVERFLOW]  # idle for 61 s; "a" was used 31 s ago
    assert b("c") == "c"  # b's place is free again
    assert overflowed._value.get() == 2


def test_strategy_of():
    import re

    p = re.compile(r"^(?P<strategy>[a-z]+)-\d+$")
    assert strategy_of("momentum-17", p) == "momentum"
    assert strategy_of("Momentum", p) == "unmatched"
    assert strategy_of("", p) == strategy_of(None, None) == "unknown"
    assert strategy_of("x" * 500, None) == "x" * 100


@pytest.mark.parametrize("error, accepted, code, reason", [
    (ConnectionRefusedError(errno.ECONNREFUSED, "refused"), False, None, "socket_refused"),
    (TimeoutError(), False, None, "connect_timeout"),
    (TimeoutError(), True, None, "handshake_timeout"),
    (socket.gaierror(-2, "Name or service not known"), False, None, "unreachable"),
    (OSError(errno.EHOSTUNREACH, "No route to host"), False, None, "unreachable"),
    (ConnectionError("Socket connection broken while connecting"), True, None, "closed_at_connect"),
    (ConnectionError("Socket connection broken while connecting"), True, "client_id_in_use", "client_id_in_use"),
    (TimeoutError(), True, "client_id_in_use", "client_id_in_use"),
    (ValueError("something else"), True, None, "other"),
])
def test_connect_failures_are_classified(error, accepted, code, reason):
    assert connect_failure(error, accepted, code) == reason


def test_done_orders_are_forgotten_by_ib_async_beyond_the_newest(monkeypatch):
    monkeypatch.setattr(connection, "KEEP_DONE_TRADES", 5)
    ib = IB()
    ib.wrapper.clientId = 1
    conn = Connection(load({}), BrokerState(load({})), ib)  # held: ib_async's events keep weak references
    for i in range(1, 13):
        order = Order(orderId=i, clientId=7, permId=5000 + i, action="BUY", totalQuantity=1, orderType="MKT")
        ib.wrapper.openOrder(i, Contract(conId=1, symbol="AAPL", secType="STK"), order, OrderState(status="Submitted"))
        if i <= 10:  # 10 done, 2 still open
            ib.wrapper.orderStatus(i, "Filled", 1, 0, 1.0, 5000 + i, 0, 1.0, 7, "", 0.0)
    assert sorted(k[1] for k in ib.wrapper.trades) == [6, 7, 8, 9, 10, 11, 12]
    assert sorted(ib.wrapper.permId2Trade) == [5000 + i for i in (6, 7, 8, 9, 10, 11, 12)]
    assert len(conn._done) == 5
