"""Peak memory of the alert-sink and the bot under 40 parallel maximum-size (16 MiB) bodies.

Not a test: it prints figures. Target (issue 23): the shipped Kubernetes limit (256Mi) holds.

    python benchmarks/body_memory.py [--parallel 40]

The alert-sink runs twice in the same run: with the body budget out of the way
(TRADEMON_HTTP_BODY_BUDGET of 1 TiB: every body read and parsed at once, as before the
budget) and with the default budget (one 16 MiB body in flight, 503 past it), first with
bodies that are one long text, then with dense ones (within MAX_VALUES, nearly all small
JSON values: the budget weighs each value with what it parses into). Each line is
the process's peak resident memory (VmHWM) before and after the burst, the answers by status
and the ratio of the two runs' peaks. The bot is sent the same burst without its webhook token:
it refuses each before reading the body.
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "exporters"))
os.environ["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT / "exporters"), os.environ.get("PYTHONPATH", "")) if p)  # the services run this checkout

from tests.support.procs import free_port, start, wait_http  # noqa: E402
from tests.support.standins import TelegramStandIn  # noqa: E402
from tests.test_hardening import SMALL_ALERT, dense_notification  # noqa: E402
from tests.test_security import PAYLOAD  # noqa: E402
from trademon.alertmanager.payload import MAX_BODY, MAX_VALUES  # noqa: E402
from trademon.runtime.httpguard import json_values_at_most  # noqa: E402

BOT_TOKEN = "7312345678:AAG-fakeTelegramToken_abcdefghijklmnop"


def body(size: int) -> bytes:
    doc = {**PAYLOAD, "commonAnnotations": {"description": ""}}
    doc["commonAnnotations"]["description"] = "x" * (size - len(json.dumps(doc)) - 16)
    return json.dumps(doc).encode()


def peak_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmHWM")


def burst(url: str, data: bytes, parallel: int, headers: dict | None = None) -> dict[str, int]:
    def post(_):
        try:
            return str(requests.post(url, data=data, headers={"Content-Type": "application/json", **(headers or {})}, timeout=120).status_code)
        except requests.ConnectionError:
            return "closed before the body was sent (the early answer)"
    with ThreadPoolExecutor(parallel) as pool:
        return dict(collections.Counter(pool.map(post, range(parallel))))


def run(name: str, cmd: list[str], env: dict, health: str, url: str, data: bytes, parallel: int, log: Path, headers=None) -> float:
    p = start(name, cmd, env, log)
    try:
        wait_http(health, 30, p)
        before = peak_mib(p.popen.pid)
        codes = burst(url, data, parallel, headers)
        after = peak_mib(p.popen.pid)
        print(f"{name:<38} peak RSS {before:6.0f} -> {after:6.0f} MiB   answers {codes}")
        return after
    finally:
        p.close()


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--parallel", type=int, default=40)
    a = ap.parse_args()
    data = body(MAX_BODY - 1024)
    py = [sys.executable, "-m", "trademon"]
    print(f"{a.parallel} parallel bodies of {len(data) / (1 << 20):.1f} MiB each")
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        peaks = {}
        dense = dense_notification(len(SMALL_ALERT) * MAX_VALUES // 7, SMALL_ALERT)  # within MAX_VALUES
        print(f"dense bodies: {len(dense) / (1 << 20):.1f} MiB holding {json_values_at_most(dense)} JSON values each")
        for kind, sent in (("", data), (", dense", dense)):
            for label, budget in ((f"alert-sink{kind}, no budget (before)", str(1 << 40)), (f"alert-sink{kind}, default budget", None)):
                port = free_port()
                env = {"TRADEMON_ALERT_SINK_PORT": str(port), "TRADEMON_ALERT_SINK_FILE": str(tmp / f"{port}.jsonl")}
                if budget:
                    env["TRADEMON_HTTP_BODY_BUDGET"] = budget
                base = f"http://127.0.0.1:{port}"
                peaks[label] = run(label, [*py, "alert-sink"], env, f"{base}/healthz", f"{base}/alerts", sent, a.parallel, tmp / f"{port}.log")
            before, after = list(peaks.values())[-2:]
            print(f"alert-sink{kind} peak, default budget / no budget: {after / before:.2f}")
        telegram = TelegramStandIn(BOT_TOKEN)
        try:
            port = free_port()
            env = {"TELEGRAM_BOT_TOKEN": BOT_TOKEN, "TELEGRAM_CHAT_ID": "42", "TELEGRAM_API_URL": telegram.url,
                   "TRADEMON_BOT_PORT": str(port), "TRADEMON_BOT_STATE_DIR": str(tmp / "bot")}
            base = f"http://127.0.0.1:{port}"
            run("bot, no webhook token", [*py, "bot"], env, f"{base}/healthz", f"{base}/alerts", data, a.parallel, tmp / "bot.log")
        finally:
            telegram.close()


if __name__ == "__main__":
    main()
