"""End to end, issue 10 items 1, 4 and 7, with the real Prometheus (the project's rules) and
Alertmanager (the project's rendered config), the simulator, and the stand-ins of Telegram,
Slack, SMTP and of the external heartbeat (a Healthchecks.io-style ping URL).

Shortened as in test_e2e_alerting: the simulator runs 30x, scrape and evaluation every 1 s,
each rule's `for` divided by 30 (`for: 2m` is 4 s), Prometheus re-sends firing alerts every
2 s, group_wait and group_interval 1 s / 2 s. Each test has a stack of its own.
"""

from __future__ import annotations

import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from tests.support.e2estack import E2EStack
from tests.support.procs import ClosedPort, HangingServer, serve
from tests.support.standins import visible_text

pytestmark = pytest.mark.e2e  # real Prometheus, Alertmanager and trademon processes

SPEED = 30
AM = {"group_wait": "1s", "group_interval": "2s"}
# "Within 5 minutes" of the broker's view going away, shortened; plus the seconds Prometheus
# takes to find a target down at all (its first failed scrape) and the delivery.
PAGE_WITHIN = 5 * 60 / SPEED + 5


def stack(tmp_path, **kw) -> E2EStack:
    kw.setdefault("am_intervals", AM)
    return E2EStack(tmp_path, speed=SPEED, scrape="1s", evaluation="1s", for_scale=SPEED, resend_delay="2s", **kw)


def pages(e2e: E2EStack, name: str, since: float = 0) -> list[dict]:
    out = []
    for m in e2e.telegram.sent():
        shown = visible_text(m["text"])
        if m["at"] >= since and shown.startswith("🔴") and name in shown.split("✅ resolved:")[0]:
            out.append(dict(m, shown=shown))
    return out


def resolved(e2e: E2EStack, name: str) -> list[str]:
    return e2e.telegram.resolved_shown(name)


# ------------------------------------------------------------------ 1. the broker's view lost


@pytest.mark.parametrize("how", ["port closed", "scrape hangs"])
def test_ib_exporter_not_scraped_pages_within_5_minutes_saying_what_is_blind(tmp_path, how):
    hang = HangingServer() if how == "scrape hangs" else ClosedPort()
    dead = f"127.0.0.1:{hang.port}"
    e2e = stack(tmp_path, targets={"ib-exporter": dead})
    try:
        t0 = time.time()
        (page,) = e2e.alerting.wait(lambda: pages(e2e, "BrokerViewLost"), PAGE_WITHIN, "the BrokerViewLost page")
        assert page["at"] - t0 <= PAGE_WITHIN
        assert page["silent"] is False
        assert "Broker view lost: ib-exporter is not scraped" in page["shown"]
        assert "Blind: daily P&L, positions, exposure and the TWS session" in page["shown"]
        assert "DailyLossLimitBreach" in page["shown"] and "TWSConnectionLost" in page["shown"]

        # Its quiet twin for the same job is inhibited: one message, the page.
        def inhibited():
            return [a for a in e2e.alerting.alerts(filter='alertname="ExporterDown"', inhibited="true", active="false")
                    if a["labels"]["job"] == "ib-exporter" and a["status"]["inhibitedBy"]]
        e2e.alerting.wait(inhibited, 20, "ExporterDown{job=ib-exporter} inhibited by BrokerViewLost")
        assert not any("ExporterDown" in visible_text(m["text"]) for m in e2e.telegram.sent())
    finally:
        e2e.close()
        hang.close()


class StandInExposition:
    """A stand-in for the ib-exporter's /metrics, to make what the real exporter does not do
    on its own: drop one account's broker series while the IB session stays up."""

    def __init__(self):
        self.accounts = {"DU1111111": 125.0, "DU2222222": -40.0}
        outer = self

        class H(BaseHTTPRequestHandler):
            def do_GET(self):
                lines = ["# TYPE ib_connected gauge", "ib_connected 1", "# TYPE daily_pnl gauge"]
                lines += [f'daily_pnl{{account="{a}"}} {v}' for a, v in list(outer.accounts.items())]
                body = ("\n".join(lines) + "\n").encode()
                self.send_response(200)
                self.send_header("Content-Type", "text/plain; version=0.0.4")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *a):
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), H)
        self.port = self.httpd.server_address[1]
        serve(self.httpd)

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


def test_broker_data_gone_for_an_account_while_connected_pages(tmp_path):
    ib = StandInExposition()
    e2e = stack(tmp_path, targets={"ib-exporter": f"127.0.0.1:{ib.port}"})
    try:
        e2e.alerting.wait(lambda: len(e2e.prom_query('daily_pnl{job="ib-exporter"}')) == 2, 20, "both accounts in Prometheus")
        time.sleep(3)
        assert pages(e2e, "BrokerDataMissing") == []
        t0 = time.time()
        del ib.accounts["DU2222222"]
        (page,) = e2e.alerting.wait(lambda: pages(e2e, "BrokerDataMissing", t0), PAGE_WITHIN, "the BrokerDataMissing page")
        assert "No broker data for DU2222222" in page["shown"] and "DU1111111" not in page["shown"]
        assert "while ib_connected says the IB session is up" in page["shown"]
        ib.accounts["DU2222222"] = -35.0
        e2e.alerting.wait(lambda: resolved(e2e, "BrokerDataMissing"), 20, "resolved once the account's data is back")
    finally:
        e2e.close()
        ib.close()


# ------------------------------------------------------------------ 4. no false resolve


def test_loss_page_is_not_resolved_when_ib_drops_and_resolves_on_recovery(tmp_path):
    """A loss breach pages; IB disconnects and the exporter drops the P&L series: the loss
    alert stays (no RESOLVED on the phone) beside the TWS page; once IB is back and the P&L has
    recovered, it resolves."""
    e2e = stack(tmp_path)
    try:
        e2e.sim.on("loss-breach")
        e2e.alerting.wait(lambda: pages(e2e, "DailyLossLimitBreach"), 30, "the loss page")
        e2e.sim.on("ib-disconnect")
        e2e.alerting.wait(lambda: pages(e2e, "TWSConnectionLost"), 30, "the TWS page")
        e2e.alerting.wait(lambda: not e2e.prom_query('daily_pnl{account="DU1234567"}'), 20, "the P&L series gone")
        time.sleep(10)  # 5 simulated minutes without P&L; today it resolved in 3
        assert resolved(e2e, "DailyLossLimitBreach") == []
        held = [a for a in e2e.prom_alerts() if a["labels"]["alertname"] == "DailyLossLimitBreach"]
        assert held and held[0]["state"] == "firing", held
        assert "No current value" in held[0]["annotations"]["description"]
        e2e.sim.off("loss-breach")
        e2e.sim.off("ib-disconnect")
        e2e.alerting.wait(lambda: resolved(e2e, "DailyLossLimitBreach"), 60, "resolved once IB is back with a recovered P&L")
    finally:
        e2e.close()


# ------------------------------------------------------------------ 7. dead man's switch


def test_watchdog_pings_the_external_heartbeat_and_the_pings_stop_with_prometheus(tmp_path):
    repeat = 3.0
    e2e = stack(tmp_path, am_intervals={**AM, "group_interval": "1s", "repeat_interval": f"{repeat:g}s"})
    hb = e2e.alerting.standins.heartbeat
    try:
        e2e.alerting.wait(lambda: len(hb.pings()) >= 4, 30, "four heartbeat pings")
        pings = hb.pings()
        gaps = [b.at - a.at for a, b in zip(pings, pings[1:])]
        assert all(repeat * 0.8 <= g <= repeat + 2.5 for g in gaps), gaps  # every repeat_interval, not every flush
        for p in pings:
            assert p.body["status"] == "firing" and [a["labels"]["alertname"] for a in p.body["alerts"]] == ["Watchdog"]
        # Only the Watchdog goes there, and it still reaches the file.
        assert ("record", "Watchdog") in {(r["receiver"], a["labels"]["alertname"]) for r in e2e.alerting.records() for a in r["alerts"]}

        e2e.prom.close()  # Prometheus dies
        stopped = time.time()
        # Alertmanager keeps the Watchdog until the endsAt Prometheus last gave it (4 x the 2 s
        # resend delay), then it is resolved: never pinged (send_resolved: false).
        time.sleep(8 + repeat)
        n = len(hb.pings())
        time.sleep(4 * repeat)
        assert len(hb.pings()) == n, [p.at - stopped for p in hb.pings()[n:]]
        assert all(p.at - stopped < 8 + repeat + 1 for p in hb.pings() if p.at > stopped)
        assert all(p.body["status"] == "firing" for p in hb.pings())
        assert not [r for r in hb.requests if r.status != 200]  # always its own URL
    finally:
        e2e.close()
