"""Unknown is absent, never 0: a market value IB has not sent (or sent as its unset double, or
NaN) is no sample, and the exposure that would need it is absent and flagged, not understated
(issue 10). Real ib_async client against the stand-in TWS."""

from __future__ import annotations

import math

import pytest

from tests.support.procs import wait_for

UNSET_DOUBLE = 1.7976931348623157e308
A = "DU111111"


@pytest.mark.parametrize("unknown", [None, UNSET_DOUBLE, math.nan], ids=["not-sent", "unset-double", "nan"])
def test_unknown_market_value_is_absent_and_exposure_is_not_understated(tws, exporter, unknown):
    tws.set_position(A, "AAPL", 100, 150.0, market_value=15_500.0)
    tws.set_position(A, "MSFT", -50, 300.0, market_value=unknown)
    ex = exporter(tws, TRADEMON_IB_EXPOSURE_LIMIT="20000")
    ex.wait_value(15_500.0, "ib_position_market_value", account=A, symbol="AAPL")
    ex.wait_value(-50, "ib_position_quantity", account=A, symbol="MSFT")
    s = ex.samples()

    def v(name, **labels):
        return s.get((name, tuple(sorted(labels.items()))))

    assert v("ib_position_market_value", account=A, symbol="MSFT") is None  # not 0
    # 15,500 alone would read as 78 % of the limit while the truth is 30,500 (153 %)
    assert v("risk_gross_exposure", account=A) is None
    assert v("risk_net_exposure", account=A) is None
    assert v("risk_exposure_complete", account=A) == 0  # flagged, so a dashboard can say "unknown"
    assert v("risk_gross_exposure_limit", account=A) == 20_000

    tws.set_position(A, "MSFT", -50, 300.0, market_value=-15_000.0)  # IB sends it: complete again
    ex.wait_value(30_500.0, "risk_gross_exposure", account=A)
    assert ex.value("risk_net_exposure", account=A) == 500.0
    assert ex.value("ib_position_market_value", account=A, symbol="MSFT") == -15_000.0
    assert ex.value("risk_exposure_complete", account=A) == 1


def test_flat_account_has_complete_zero_exposure(tws, exporter):
    ex = exporter(tws)
    ex.wait_value(1, "ib_connected")
    ex.wait_value(1, "risk_exposure_complete", account=A)
    assert ex.value("risk_gross_exposure", account=A) == 0


def test_nan_quantity_is_absent_and_a_later_valid_one_is_shown(tws, exporter):
    tws.set_position(A, "AAPL", math.nan, 150.0, market_value=15_500.0)
    ex = exporter(tws)
    ex.wait_value(15_500.0, "ib_position_market_value", account=A, symbol="AAPL")
    assert ex.value("ib_position_quantity", account=A, symbol="AAPL") is None  # not NaN
    tws.set_position(A, "AAPL", 100, 150.0, market_value=15_500.0)
    ex.wait_value(100, "ib_position_quantity", account=A, symbol="AAPL")  # not stuck at NaN
    tws.set_position(A, "AAPL", 120, 150.0, market_value=18_600.0)
    ex.wait_value(120, "ib_position_quantity", account=A, symbol="AAPL")
    wait_for(lambda: ex.value("risk_gross_exposure", account=A) == 18_600.0, 10, what="exposure follows")
