"""The IB exporter as a process against the stand-in TWS: fixtures and helpers the test_ib_* modules share."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
import requests
from prometheus_client.parser import text_string_to_metric_families

from tests.support.procs import free_port, start, wait_for, wait_http
from trademon.testing.fake_tws import FakeTWS

CLIENT_ID = 4242
ACCOUNTS = ["DU111111", "DU222222"]
FAST = {
    "TRADEMON_IB_HEARTBEAT_SECONDS": "0.3",
    "TRADEMON_IB_HEARTBEAT_TIMEOUT_SECONDS": "0.5",
    "TRADEMON_IB_RECONNECT_MIN_SECONDS": "0.2",
    "TRADEMON_IB_RECONNECT_MAX_SECONDS": "0.5",
    "TRADEMON_IB_CONNECT_TIMEOUT_SECONDS": "5",
}
EXPORTER_CMD = [sys.executable, "-m", "trademon", "ib-exporter"]


@pytest.fixture
def tws():
    # the exporter's client id is TWS's Master API client ID, as docs/ib-exporter.md asks
    fake = FakeTWS(accounts=ACCOUNTS, master_client_id=CLIENT_ID).start()
    yield fake
    fake.stop()


class Exporter:
    def __init__(self, proc, url):
        self.proc, self.url = proc, url

    def samples(self) -> dict[tuple, float]:
        """(name, sorted label pairs) -> value, for every sample of one scrape."""
        text = requests.get(self.url + "/metrics", timeout=5).text
        return {(s.name, tuple(sorted(s.labels.items()))): s.value
                for fam in text_string_to_metric_families(text) for s in fam.samples}

    def value(self, name, **labels):
        return self.samples().get((name, tuple(sorted(labels.items()))))

    def names(self) -> set[str]:
        return {name for name, _ in self.samples()}

    def wait_value(self, expected, name, timeout=10.0, **labels):
        wait_for(lambda: self.value(name, **labels) == expected, timeout,
                 what=f"{name}{labels} == {expected} (last: {self.value(name, **labels)})")


@pytest.fixture
def exporter(tmp_path):
    """``exporter(tws, cmd=None, **env)`` starts ``trademon ib-exporter`` (or ``cmd``) pointed at ``tws``."""
    started = []

    def run(tws: FakeTWS, cmd: list[str] | None = None, **env) -> Exporter:
        port = free_port()
        full = {"TRADEMON_IB_HOST": "127.0.0.1", "TRADEMON_IB_PORT": str(tws.port),
                "TRADEMON_IB_CLIENT_ID": str(CLIENT_ID), "TRADEMON_IB_EXPORTER_HOST": "127.0.0.1",
                "TRADEMON_IB_EXPORTER_PORT": str(port), **FAST, **env}
        proc = start("ib-exporter", cmd or EXPORTER_CMD, full, tmp_path / f"ib-exporter-{len(started)}.log")
        started.append(proc)
        url = f"http://127.0.0.1:{port}"
        wait_http(url + "/healthz", 20, proc)
        return Exporter(proc, url)

    yield run
    for p in started:
        p.close()


def seed_broker(tws: FakeTWS) -> None:
    tws.set_position("DU111111", "AAPL", 100, 150.0, market_value=15_500.0)
    tws.set_position("DU111111", "MSFT", -50, 300.0, market_value=-15_000.0)
    tws.set_position("DU222222", "SPY", 10, 500.0, market_value=5_010.0)
    tws.set_pnl("DU111111", -123.5, 40.25, -163.75)
    tws.set_pnl("DU222222", 12.0, 10.0, 2.0)
    for tag, value in (("NetLiquidation", 100_000), ("GrossPositionValue", 30_500), ("MaintMarginReq", 9_000),
                       ("ExcessLiquidity", 91_000), ("BuyingPower", 364_000)):
        tws.set_account_value("DU111111", tag, value)
    tws.set_account_value("DU111111", "Cushion", 0.91, "")
    tws.set_account_value("DU111111", "AccountType", "INDIVIDUAL", "")  # not numeric: ignored


# ---- ib_insync, the fallback client library ------------------------------------------------
# Not in pyproject's extras on purpose: ib_insync's event library (eventkit) and ib_async's
# (aeventkit) both install the package ``eventkit``; in one environment the later install
# silently replaces the other's files. So the fallback test runs ib_insync from its own
# directory, first on the exporter's sys.path, with ib_async made unimportable.
IB_INSYNC_PINS = ("ib_insync==0.9.86", "eventkit==1.0.3")  # its other needs (nest_asyncio, numpy) are ours too
IB_INSYNC_DIR = Path(__file__).resolve().parents[2] / ".tools" / "python" / "ib_insync-0.9.86"


def install_ib_insync(target: Path = IB_INSYNC_DIR) -> Path:
    """pip-install the pins into ``target`` once (concurrent runs: the first rename wins)."""
    if (target / "ib_insync").is_dir():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=target.parent) as tmp:
        r = subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
                            "--no-deps", "--target", tmp, *IB_INSYNC_PINS], capture_output=True, text=True)
        if r.returncode != 0:
            raise RuntimeError(f"cannot install {' '.join(IB_INSYNC_PINS)} into {target} (needs PyPI): "
                               f"{r.stderr.strip()[-2000:]}")
        try:
            os.rename(tmp, target)
        except OSError:  # another run put it there first
            pass
    if not (target / "ib_insync").is_dir():
        raise RuntimeError(f"{target} has no ib_insync after installing it")
    return target


# The exporter with ib_async unimportable (``import ib_async`` raises ImportError, as when it
# is not installed); trademon.ib.api then falls back to ib_insync.
WITHOUT_IB_ASYNC = [sys.executable, "-c", "import sys; sys.modules['ib_async'] = None; "
                    "from trademon.cli import main; sys.exit(main(['ib-exporter']))"]


if __name__ == "__main__":  # CI can install it before the tests: python tests/support/ib.py
    print(install_ib_insync())
