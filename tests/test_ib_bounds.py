"""Labels that come from outside are bounded: orderRef (strategy), data-farm names and IB error
codes, with the real ib_async client against the stand-in TWS. On a broker where every order
carries its own orderRef, an unbounded exporter makes ~47 series per order (issue 10)."""

from __future__ import annotations

import subprocess
import sys

import pytest

from tests.support.procs import wait_for

OVERFLOW = "__overflow__"
OTHER_CLIENT = 7


def orders(n: int, ref, first_id: int = 100, **more) -> list[dict]:
    return [{"order_id": first_id + i, "symbol": "AAPL", "client_id": OTHER_CLIENT, "order_ref": ref(i), **more}
            for i in range(n)]


def by_label(samples, name: str, label: str) -> dict[str, float]:
    return {dict(labels)[label]: v for (n, labels), v in samples.items() if n == name}


def submitted_total(ex) -> float:
    return sum(by_label(ex.samples(), "orders_submitted_total", "strategy").values())


def test_distinct_order_refs_are_capped_with_an_overflow_counter(tws, exporter):
    ex = exporter(tws, TRADEMON_IB_MAX_STRATEGIES="20")
    ex.wait_value(1, "ib_connected")
    tws.place_orders(orders(300, lambda i: f"order-{i:06d}"))
    wait_for(lambda: submitted_total(ex) == 300, 20, what="300 orders counted")
    s = ex.samples()
    strategies = by_label(s, "orders_submitted_total", "strategy")
    assert len(strategies) == 21, sorted(strategies)  # 20 strategies and the overflow
    assert strategies[OVERFLOW] == 280
    assert ex.value("ib_label_overflow_total", label="strategy") == 280
    # every per-strategy family stays within the same 21 values
    for name in ("order_ack_latency_seconds_count", "orders_filled_total", "orders_cancelled_total"):
        assert len(by_label(s, name, "strategy")) <= 21, name
    assert len(s) < 2_000, f"{len(s)} series for 300 orders"


def test_strategy_pattern_derives_the_strategy_from_order_ref(tws, exporter):
    ex = exporter(tws, TRADEMON_IB_STRATEGY_PATTERN=r"^(?P<strategy>[a-z]+)-\d+$")
    ex.wait_value(1, "ib_connected")
    tws.place_orders(orders(150, lambda i: f"momentum-{i}") + orders(50, lambda i: f"pairs-{i}", 1000)
                     + orders(2, lambda i: f"NoDash{i}", 2000) + orders(1, lambda i: "", 3000))
    wait_for(lambda: submitted_total(ex) == 203, 20, what="203 orders counted")
    strategies = by_label(ex.samples(), "orders_submitted_total", "strategy")
    assert strategies == {"momentum": 150, "pairs": 50, "unmatched": 2, "unknown": 1}
    assert ex.value("ib_label_overflow_total", label="strategy") == 0


def test_idle_strategies_are_removed_and_free_their_place(tws, exporter):
    ex = exporter(tws, TRADEMON_IB_MAX_STRATEGIES="2", TRADEMON_IB_STRATEGY_IDLE_SECONDS="1")
    ex.wait_value(1, "ib_connected")
    # done orders: a strategy with orders still working at IB is not idle
    tws.place_orders(orders(3, lambda i: ("a", "b", "c")[i], status="Filled"))
    wait_for(lambda: submitted_total(ex) == 3, 20, what="3 orders counted")
    assert set(by_label(ex.samples(), "orders_submitted_total", "strategy")) == {"a", "b", OVERFLOW}
    # no activity for longer than the idle time: every strategy's series go, the overflow's too
    wait_for(lambda: not by_label(ex.samples(), "orders_submitted_total", "strategy"), 10,
             what="idle strategies removed")
    tws.place_orders(orders(1, lambda i: "c", 500))
    ex.wait_value(1, "orders_submitted_total", strategy="c")


def test_ten_thousand_farm_names_and_error_codes_make_few_series(tws, exporter):
    ex = exporter(tws, TRADEMON_IB_MAX_FARMS="10", TRADEMON_IB_MAX_ERROR_CODES="30")
    ex.wait_value(1, "ib_farm_connected", farm="usfarm", kind="market")
    tws.errors((2104, f"Market data farm connection is OK:farm{i:05d}") for i in range(10_000))
    tws.errors((40_000 + i, "an error code nobody documented") for i in range(10_000))
    wait_for(lambda: (ex.value("ib_label_overflow_total", label="code") or 0) >= 10_000 - 27, 30,
             what="every code counted")
    s = ex.samples()
    farms = by_label(s, "ib_farm_connected", "farm")
    codes = by_label(s, "ib_errors_total", "code")
    assert len(farms) == 11 and farms[OVERFLOW] == 1, len(farms)
    assert len(codes) == 31 and codes[OVERFLOW] == 10_000 - 27, len(codes)  # 3 codes at connect + 27
    assert sum(codes.values()) == 3 + 10_000 + 10_000  # every message counted, none lost
    assert ex.value("ib_label_overflow_total", label="farm") == 10_000 - 7  # 3 farms at connect + 7 more
    assert len(s) < 300


@pytest.mark.parametrize("pattern, fragment", [
    ("(", "TRADEMON_IB_STRATEGY_PATTERN='(': not a regular expression (missing ), unterminated subpattern"),
    ("^[a-z]+", "TRADEMON_IB_STRATEGY_PATTERN='^[a-z]+': has no named group (?P<strategy>...)"),
])
def test_bad_strategy_pattern_exits_2_with_a_clear_message(pattern, fragment):
    import os

    r = subprocess.run([sys.executable, "-m", "trademon", "ib-exporter"], capture_output=True, text=True,
                       timeout=60, env={**os.environ, "TRADEMON_IB_STRATEGY_PATTERN": pattern})
    assert r.returncode == 2, r.stderr
    assert fragment in r.stderr
    # Given as the flag, the message names the flag as typed, then the variable it sets.
    r = subprocess.run([sys.executable, "-m", "trademon", "ib-exporter", "--strategy-pattern", pattern],
                       capture_output=True, text=True, timeout=60)
    as_flag = fragment.replace(f"TRADEMON_IB_STRATEGY_PATTERN={pattern!r}", f"--strategy-pattern {pattern!r}")
    assert r.returncode == 2 and as_flag in r.stderr and "(the flag sets TRADEMON_IB_STRATEGY_PATTERN)" in r.stderr, r.stderr
