"""alert-sink: one fsync'd JSON line per notification, 400 with the reason for a malformed
payload, 500 when the file cannot be written, and its own metrics. Run as the real
`trademon alert-sink` process."""

from __future__ import annotations

import contextlib
import json
import os
import random
import signal
import subprocess
import sys
import threading
import time

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


# --- Issue 10 item 6: every acknowledged notification stays readable ------------------------



def start_sink(tmp_path, path, log_name="alert-sink.log", prefix=()):
    port = free_port()
    p = start("alert-sink", [*prefix, sys.executable, "-m", "trademon", "alert-sink"],
              {"TRADEMON_ALERT_SINK_HOST": "127.0.0.1", "TRADEMON_ALERT_SINK_PORT": str(port), "TRADEMON_ALERT_SINK_FILE": str(path)},
              tmp_path / log_name)
    url = f"http://127.0.0.1:{port}"
    wait_http(f"{url}/healthz", 20, p)
    return url, p


def notification(n: int, size: int) -> dict:
    """A notification marked ``n`` whose JSON line is about ``size`` bytes."""
    alert = {**PAYLOAD["alerts"][0], "annotations": {"summary": f"n{n}", "description": "x" * size}}
    return {**PAYLOAD, "groupKey": f"n{n}", "alerts": [alert]}


def readable(path) -> tuple[list[str], list[str]]:
    """(groupKeys of the lines that parse, the lines that do not)."""
    keys, bad = [], []
    data = path.read_bytes() if path.exists() else b""
    for line in data.split(b"\n")[:-1] if data.endswith(b"\n") else data.split(b"\n"):
        try:
            keys.append(json.loads(line)["groupKey"])
        except (ValueError, KeyError):
            bad.append(line[:80].decode(errors="replace"))
    return keys, bad


def test_kill_9_during_large_writes_loses_no_acknowledged_notification(tmp_path):
    """Rounds of: large notifications posted one after another, the sink killed with SIGKILL at
    a random moment, started again. Every notification answered 200 must be in the file, once,
    on a line of its own. A kill lands mid-write only now and then, so each round also leaves
    the file as such a kill does (a partial line, no newline: the write was never acknowledged)
    before the restart."""
    path = tmp_path / "alerts.jsonl"
    acked: list[str] = []
    rng = random.Random(6)
    n = 0
    for rnd in range(6):
        url, p = start_sink(tmp_path, path, f"alert-sink-{rnd}.log")
        stop = threading.Event()

        def sender():
            nonlocal n
            with requests.Session() as s:
                while not stop.is_set():
                    n += 1
                    key = f"n{n}"
                    try:
                        r = s.post(f"{url}/alerts", json=notification(n, rng.choice([200_000, 1_000_000, 3_000_000])), timeout=10)
                    except requests.RequestException:
                        return
                    if r.status_code == 200:
                        acked.append(key)

        t = threading.Thread(target=sender)
        t.start()
        time.sleep(rng.uniform(0.3, 1.0))
        os.killpg(p.popen.pid, signal.SIGKILL)
        p.popen.wait(5)
        stop.set()
        t.join(15)
        p.close()
        with open(path, "ab") as f:  # what a kill in the middle of write() leaves
            f.write(json.dumps(notification(10_000 + rnd, 50_000)).encode()[:30_000])
    url, p = start_sink(tmp_path, path, "alert-sink-last.log")
    assert requests.post(f"{url}/alerts", json=notification(0, 10), timeout=10).status_code == 200
    acked.append("n0")
    assert requests.get(f"{url}/readyz", timeout=5).status_code == 200
    p.close()
    keys, bad = readable(path)
    assert not bad, f"{len(bad)} unreadable line(s), first: {bad[0]!r}"
    missing = [k for k in acked if k not in keys]
    assert not missing, f"{len(missing)} of {len(acked)} acknowledged notifications unreadable: {missing[:5]}"
    assert len(keys) == len(set(keys)), "a notification written twice"
    assert len(acked) >= 10, f"only {len(acked)} notifications acknowledged: the test did not exercise the sink"
    assert "cut a torn last line" in p.log_text()


@contextlib.contextmanager
def small_filesystem(where, size_kib: int):
    """A file system of ``size_kib`` KiB at ``where``: a tmpfs (mount needs root, which this
    test machine and CI containers have). The test fails, never skips, where it cannot mount."""
    where.mkdir()
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size_kib}k,mode=0755", "tmpfs", str(where)],
                       capture_output=True, text=True, timeout=20)
    assert r.returncode == 0, f"cannot mount a small tmpfs for the full-disk test (needs root): {r.stderr}"
    try:
        yield where
    finally:
        subprocess.run(["umount", "-l", str(where)], capture_output=True, timeout=20)


def test_full_disk_leaves_no_partial_line_and_says_not_ready(tmp_path):
    with small_filesystem(tmp_path / "small", 2048) as fs:
        path = fs / "alerts.jsonl"
        url, p = start_sink(tmp_path, path)
        try:
            assert requests.get(f"{url}/readyz", timeout=5).status_code == 200
            acked, failed = [], 0
            for n in range(1, 40):  # 150 KB each: the 2 MiB disk fills within ~14
                r = requests.post(f"{url}/alerts", json=notification(n, 150_000), timeout=10)
                if r.status_code == 200:
                    acked.append(f"n{n}")
                else:
                    assert r.status_code == 500 and r.json()["error"] == "write_failed", r.text
                    failed += 1
                    if failed == 3:
                        break
            assert failed == 3 and acked, (len(acked), failed)
            ready = requests.get(f"{url}/readyz", timeout=5)
            assert ready.status_code == 503 and "file writable" in ready.text, "a full disk must show on /readyz"
            keys, bad = readable(path)
            assert not bad and path.read_bytes().endswith(b"\n"), f"a partial line is left: {bad[:1]}"
            assert keys == acked
            # Room again (the trader cleans up): the retry is written and the sink is ready.
            os.truncate(path, 0)
            r = requests.post(f"{url}/alerts", json=notification(99, 1000), timeout=10)
            assert r.status_code == 200
            assert requests.get(f"{url}/readyz", timeout=5).status_code == 200
            assert readable(path) == (["n99"], [])
        finally:
            p.close()
