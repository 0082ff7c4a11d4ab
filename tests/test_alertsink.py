"""alert-sink: one fsync'd JSON line per notification, 400 with the reason for a malformed
payload, 500 when the file cannot be written, and its own metrics. Run as the real
`trademon alert-sink` process."""

from __future__ import annotations

import json
import os
import sys

import pytest
import requests
from prometheus_client.parser import text_string_to_metric_families

from tests.support.procs import free_port, start, wait_http

PAYLOAD = {
    "version": "4", "groupKey": '{}/{severity="critical"}:{severity="critical"}', "truncatedAlerts": 0, "status": "firing",
    "receiver": "critical", "groupLabels": {"severity": "critical"}, "commonLabels": {"severity": "critical"},
    "commonAnnotations": {}, "externalURL": "http://alertmanager:9093",
    "alerts": [{"status": "firing", "labels": {"alertname": "DailyLossLimitBreach", "severity": "critical", "account": "DU1"},
                "annotations": {"summary": "Daily loss limit breached on DU1", "description": "daily P&L -612.40 USD"},
                "startsAt": "2026-03-02T14:31:00Z", "endsAt": "0001-01-01T00:00:00Z", "generatorURL": "http://p/graph",
                "fingerprint": "a1b2"}],
}


@pytest.fixture
def sink(tmp_path):
    port = free_port()
    path = tmp_path / "data" / "alerts.jsonl"
    p = start("alert-sink", [sys.executable, "-m", "trademon", "alert-sink"],
              {"TRADEMON_ALERT_SINK_HOST": "127.0.0.1", "TRADEMON_ALERT_SINK_PORT": str(port), "TRADEMON_ALERT_SINK_FILE": str(path)},
              tmp_path / "alert-sink.log")
    url = f"http://127.0.0.1:{port}"
    wait_http(f"{url}/healthz", 20, p)
    yield url, path, p
    p.close()


def metrics(url) -> dict[tuple, float]:
    out = {}
    for fam in text_string_to_metric_families(requests.get(f"{url}/metrics", timeout=5).text):
        for s in fam.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def test_notification_appended_as_one_json_line(sink):
    url, path, _ = sink
    for status in ("firing", "resolved"):
        r = requests.post(f"{url}/alerts", json={**PAYLOAD, "status": status}, timeout=5)
        assert r.status_code == 200, r.text
    lines = path.read_text().splitlines()
    assert len(lines) == 2
    first = json.loads(lines[0])
    assert first["alerts"] == PAYLOAD["alerts"] and first["receiver"] == "critical" and "received_at" in first
    m = metrics(url)
    assert m[("alert_sink_notifications_total", (("receiver", "critical"), ("status", "firing")))] == 1
    assert m[("alert_sink_notifications_total", (("receiver", "critical"), ("status", "resolved")))] == 1
    assert m[("alert_sink_last_notification_timestamp_seconds", ())] > 0
    assert requests.get(f"{url}/readyz", timeout=5).status_code == 200


@pytest.mark.parametrize("body, reason, fragment", [
    (b"not json", "not_json", "body is not JSON"),
    (json.dumps({**PAYLOAD, "version": "3"}).encode(), "unsupported_version", "version '3'"),
    (json.dumps({k: v for k, v in PAYLOAD.items() if k != "alerts"}).encode(), "invalid_payload", "alerts: Field required"),
    (json.dumps({**PAYLOAD, "alerts": [{"status": "burning", "labels": {}, "startsAt": "x"}]}).encode(), "invalid_payload", "alerts.0.status"),
    (b"[1, 2]", "invalid_payload", "not an Alertmanager webhook payload"),
])
def test_malformed_payload_is_400_with_the_reason(sink, body, reason, fragment):
    url, path, _ = sink
    r = requests.post(f"{url}/alerts", data=body, headers={"Content-Type": "application/json"}, timeout=5)
    assert r.status_code == 400
    assert r.json()["error"] == reason and fragment in r.json()["detail"], r.json()
    assert not path.exists()
    assert metrics(url)[("alert_sink_rejected_total", (("reason", reason),))] == 1


def test_write_failure_is_500_so_alertmanager_retries(sink):
    url, path, proc = sink
    path.parent.mkdir(parents=True, exist_ok=True)
    os.mkdir(path)  # the file's place is taken by a directory: every append fails
    r = requests.post(f"{url}/alerts", json=PAYLOAD, timeout=5)
    assert r.status_code == 500 and r.json()["error"] == "write_failed"
    assert metrics(url)[("alert_sink_rejected_total", (("reason", "write_failed"),))] == 1
    assert requests.get(f"{url}/readyz", timeout=5).status_code == 503
    os.rmdir(path)  # fixed: the retry succeeds
    assert requests.post(f"{url}/alerts", json=PAYLOAD, timeout=5).status_code == 200
    assert len(path.read_text().splitlines()) == 1
    assert "cannot write the notification" in proc.log_text()


def test_concurrent_notifications_never_interleave(sink):
    from concurrent.futures import ThreadPoolExecutor

    url, path, _ = sink
    big = {**PAYLOAD, "alerts": PAYLOAD["alerts"] * 200}

    def post(i):
        return requests.post(f"{url}/alerts", json={**big, "groupKey": f"g{i}"}, timeout=20).status_code

    with ThreadPoolExecutor(8) as ex:
        assert set(ex.map(post, range(40))) == {200}
    docs = [json.loads(line) for line in path.read_text().splitlines()]
    assert sorted(d["groupKey"] for d in docs) == sorted(f"g{i}" for i in range(40))
