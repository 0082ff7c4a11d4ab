"""Where only ib_insync is installed, the exporter uses it: same stand-in TWS, same metrics."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from tests.support.ib import IB_INSYNC_DIR, WITHOUT_IB_ASYNC, install_ib_insync, seed_broker


@pytest.fixture(scope="module")
def ib_insync_path() -> str:
    install_ib_insync()
    return os.pathsep.join(p for p in (str(IB_INSYNC_DIR), os.environ.get("PYTHONPATH", "")) if p)


def start_line(log: str) -> dict:
    return next(json.loads(line) for line in log.splitlines() if '"ib-exporter starting"' in line)


def test_exporter_falls_back_to_ib_insync(tws, exporter, ib_insync_path):
    seed_broker(tws)
    ex = exporter(tws, cmd=WITHOUT_IB_ASYNC, PYTHONPATH=ib_insync_path,
                  TRADEMON_IB_EXPOSURE_LIMIT="DU111111=50000")
    ex.wait_value(1, "ib_connected")
    ex.wait_value(15_500, "ib_position_market_value", account="DU111111", symbol="AAPL")
    s = ex.samples()

    def v(name, **labels):
        return s.get((name, tuple(sorted(labels.items()))))

    assert (v("daily_pnl", account="DU111111"), v("unrealized_pnl", account="DU111111"),
            v("realized_pnl", account="DU111111")) == (-123.5, 40.25, -163.75)
    assert v("daily_pnl", account="DU222222") == 12.0
    assert v("ib_position_quantity", account="DU111111", symbol="MSFT") == -50
    assert v("ib_position_quantity", account="DU222222", symbol="SPY") == 10
    assert v("account_net_liquidation", account="DU111111") == 100_000
    assert v("account_cushion", account="DU111111") == 0.91
    assert v("risk_gross_exposure", account="DU111111") == 30_500
    assert v("risk_gross_exposure_limit", account="DU111111") == 50_000
    assert v("ib_farm_connected", farm="usfarm", kind="market") == 1
    line = start_line(ex.proc.log_text())
    assert (line["library"], line["library_version"]) == ("ib_insync", "0.9.86")
    assert tws.subscriptions()[0]["pnl"] == 2 and tws.subscriptions()[0]["account_summary"] == 1

    # a drop and a reconnect go through ib_insync's client as well
    tws.drop()
    ex.wait_value(1, "ib_disconnects_total")
    ex.wait_value(1, "ib_connected", timeout=15)
    ex.wait_value(-123.5, "daily_pnl", account="DU111111")


def test_ib_async_is_used_when_installed(tws, exporter):
    """(Not both on one path: they would share one ``eventkit``; see tests/support/ib.py.)"""
    ex = exporter(tws)
    ex.wait_value(1, "ib_connected")
    line = start_line(ex.proc.log_text())
    assert line["library"] == "ib_async" and line["library_version"].startswith("2.")


def test_neither_library_is_a_clear_error():
    code = ("import sys; sys.modules['ib_async'] = None; sys.modules['ib_insync'] = None; "
            "import trademon.ib.api")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert r.returncode != 0
    assert "the IB exporter needs ib_async (pip install 'ib_async>=2.1,<3'); ib_insync is not installed either" \
        in r.stderr
