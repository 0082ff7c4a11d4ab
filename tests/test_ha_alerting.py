"""HA alerting, for real: two Prometheus replicas and two gossiping Alertmanagers
(tests/support/hastack.py), every Prometheus sending to every Alertmanager.

Deliveries are counted at the alert-sink, which every receiver includes (so the count holds
whether Telegram is sent by Alertmanager or by `trademon bot` behind a webhook), and at the
Telegram stand-in while Alertmanager still sends to it. A duplicate is a second
notification of the same receiver with the same firing alerts: what Alertmanager's
notification log exists to prevent, and what two nodes without gossip, or replicas whose
alerts differ by their replica label, would send.
"""

from __future__ import annotations

import time
from collections import Counter
from datetime import UTC, datetime, timedelta

import pytest
import requests

from tests.support.hastack import HAStack
from tests.support.procs import wait_for
from tests.support.standins import visible_text

SPEED = 30
SETTLE = 6  # > group_interval + scrape + evaluation + resend: a duplicate would have come by then
LOSS = "DailyLossLimitBreach"


@pytest.fixture(scope="module")
def ha(tmp_path_factory):
    stack = HAStack(tmp_path_factory.mktemp("ha"), speed=SPEED)
    yield stack
    stack.close()


def received(r: dict) -> float:
    return datetime.fromisoformat(r["received_at"]).timestamp()


def notifications(ha, t0: float, alertname: str, receiver: str = "critical") -> list[tuple]:
    """(receiver, firing fingerprints) of each sink record since t0 whose firing alerts include ``alertname``."""
    out = []
    for r in ha.records():
        if received(r) < t0 or r["receiver"] != receiver:
            continue
        firing = [a for a in r["alerts"] if a["status"] == "firing"]
        if any(a["labels"]["alertname"] == alertname for a in firing):
            out.append((r["receiver"], tuple(sorted(a["fingerprint"] for a in firing))))
    return out


def duplicates(items: list) -> int:
    return sum(n - 1 for n in Counter(items).values())


def telegram_pages(ha, t0: float, alertname: str) -> list[str]:
    pages = []
    for m in ha.standins.telegram.sent():
        shown = visible_text(m["text"])
        if m["at"] >= t0 and alertname in shown.split("✅ resolved:")[0] and not shown.startswith("✅"):
            pages.append(m["text"])
    return pages


def end_breach(ha, t0: float) -> None:
    ha.sim.off("loss-breach")
    wait_for(lambda: any(r["receiver"] == "critical" and r["status"] == "resolved" and received(r) >= t0
                         and any(a["labels"]["alertname"] == LOSS for a in r["alerts"]) for r in ha.records()),
             60, 0.5, "the loss breach resolved")


def test_alerts_reach_alertmanager_without_the_replica_label(ha):
    wait_for(lambda: requests.get(f"{ha.ams[0].url}/api/v2/alerts", params={"filter": 'alertname="Watchdog"'}, timeout=5).json(),
             30, 0.5, "Watchdog in Alertmanager")
    for am in ha.ams:
        alerts = requests.get(f"{am.url}/api/v2/alerts", timeout=5).json()
        assert alerts and not any("replica" in a["labels"] for a in alerts), alerts
        watchdogs = [a for a in alerts if a["labels"]["alertname"] == "Watchdog"]
        assert len(watchdogs) == 1  # both replicas' Watchdog are one alert


def test_breach_pages_exactly_once_with_every_node_up(ha):
    t0 = time.time()
    ha.sim.on("loss-breach")
    try:
        wait_for(lambda: notifications(ha, t0, LOSS), 30, 0.2, "the loss page at the alert-sink")
        latency = received(min(r for r in ha.records() if received(r) >= t0 and r["receiver"] == "critical"
                               and any(a["labels"]["alertname"] == LOSS for a in r["alerts"]))) - t0
        time.sleep(SETTLE)
        sent = notifications(ha, t0, LOSS)
        assert duplicates(sent) == 0, sent
        first = [n for n in sent if n == sent[0]]
        assert len(first) == 1
        pages = telegram_pages(ha, t0, LOSS)
        assert len(pages) == len(set(pages)) and len(pages) == len(sent), (pages, sent)
        print(f"\nHA, all up: breach -> page {latency:.1f} s; deliveries of the page {len(first)}, duplicates {duplicates(sent)}")
    finally:
        end_breach(ha, t0)


def test_silence_made_on_one_node_is_honoured_by_the_other(ha):
    """Silenced on node B; node A (which gets the same alerts from both replicas) holds it
    too, and no node delivers it."""
    a, b = ha.ams
    now = datetime.now(UTC)
    silence = {"matchers": [{"name": "alertname", "value": "TWSConnectionLost", "isRegex": False, "isEqual": True}],
               "startsAt": now.isoformat(), "endsAt": (now + timedelta(minutes=10)).isoformat(),
               "createdBy": "test_ha_alerting", "comment": "HA: silence gossip"}
    sid = requests.post(f"{b.url}/api/v2/silences", json=silence, timeout=5).json()["silenceID"]
    wait_for(lambda: any(s["id"] == sid and s["status"]["state"] == "active"
                         for s in requests.get(f"{a.url}/api/v2/silences", timeout=5).json()), 10, 0.2, "the silence on node A")
    t0 = time.time()
    ha.sim.on("ib-disconnect")
    try:
        def silenced_on(am):
            alerts = requests.get(f"{am.url}/api/v2/alerts", params={"filter": 'alertname="TWSConnectionLost"'}, timeout=5).json()
            return alerts and all(sid in x["status"]["silencedBy"] for x in alerts)
        wait_for(lambda: all(silenced_on(am) for am in ha.ams), 30, 0.3, "TWSConnectionLost silenced on both nodes")
        time.sleep(SETTLE)
        assert notifications(ha, t0, "TWSConnectionLost") == []
        assert telegram_pages(ha, t0, "TWSConnectionLost") == []
    finally:
        ha.sim.off("ib-disconnect")
        requests.delete(f"{b.url}/api/v2/silence/{sid}", timeout=5)


def test_kill_one_alertmanager_and_one_prometheus_during_a_breach(ha):
    """SIGKILL the Alertmanager that would send first and one Prometheus replica right after
    the breach starts: the page still arrives, once; the killed nodes come back on their old
    data and send nothing again."""
    am, prom = ha.first_sender(), ha.proms[0]
    t0 = time.time()
    ha.sim.on("loss-breach")
    try:
        am.kill9()
        prom.kill9()
        wait_for(lambda: notifications(ha, t0, LOSS), 60, 0.2, "the loss page with one Alertmanager and one Prometheus dead")
        latency = received(min((r for r in ha.records() if received(r) >= t0 and r["receiver"] == "critical"
                                and any(a["labels"]["alertname"] == LOSS for a in r["alerts"])), key=received)) - t0
        time.sleep(SETTLE)
        during = notifications(ha, t0, LOSS)
        am.start()
        prom.start()
        wait_for(lambda: all(len(ha.cluster(x)["peers"]) == 2 for x in ha.ams), 30, 0.5, "the cluster whole again")
        time.sleep(SETTLE + 4)  # the restarted node syncs the log by gossip, then its groups flush
        after = notifications(ha, t0, LOSS)
        print(f"\nHA, one Alertmanager + one Prometheus killed -9: breach -> page {latency:.1f} s; "
              f"deliveries while down {len(during)}, duplicates {duplicates(during)}; "
              f"after both restarted on old data: duplicates {duplicates(after)}")
        assert during, "no page with one node of each dead"
        assert duplicates(during) == 0, during
        assert duplicates(after) == 0, after
        pages = telegram_pages(ha, t0, LOSS)  # while Alertmanager itself sends to Telegram
        assert len(pages) == len(set(pages)), pages
    finally:
        end_breach(ha, t0)
