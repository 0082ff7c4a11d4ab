"""Issue 11 as an attacker on the network would try it, against the real processes on loopback
(127.0.0.1 only), each attack bounded in count and time, each asserting the bound: where a
service listens, who may switch or write what, memory peak (VmHWM), series count, answer code,
log volume, and no secret in any log (trademon's, Alertmanager's, and what Promtail/Alloy
would ship, their replace stages emulated in tests/support/shippers.py)."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import bcrypt
import pytest
import requests
import yaml
from prometheus_client.parser import text_string_to_metric_families

from trademon.stack import tools
from trademon.settings.env import port_variable
from trademon.contract import OVERFLOW
from trademon.runtime.logs import RepeatLimiter
from trademon.sim.api import MAX_SYNTHETIC_NAMES
from trademon.alertsink.app import MAX_BODY, MAX_RECEIVERS

from tests.support import shippers
from tests.support.amstack import alert
from tests.support.procs import Proc, free_port, serve, start, wait_for, wait_http
from tests.support.standins import SMTPStandIn

ROOT = Path(__file__).resolve().parents[1]
TOKEN = "tok-" + "5f1c0e9a" * 6  # the shared bearer token of these tests
PAYLOAD = {"version": "4", "groupKey": "{}:{}", "status": "firing", "receiver": "critical", "groupLabels": {},
           "commonLabels": {}, "commonAnnotations": {}, "externalURL": "http://am",
           "alerts": [{"status": "firing", "labels": {"alertname": "X"}, "annotations": {}, "startsAt": "2026-03-02T14:31:00Z"}]}
SIM_JOBS = ("automatictrader-api", "marketdata-stream", "position-manager", "ib-exporter")


# --- helpers -----------------------------------------------------------------------------

def trademon(name: str, args: list[str], env: dict, log: Path, limit_fds: int | None = None) -> Proc:
    cmd = [sys.executable, "-m", "trademon", *args]
    if limit_fds:
        cmd = ["prlimit", f"--nofile={limit_fds}:{limit_fds}", "--", *cmd]
    return start(name, cmd, env, log)


def sink(tmp_path: Path, env: dict | None = None, limit_fds: int | None = None, host: bool = True) -> tuple[str, Proc, Path]:
    port, path = free_port(), tmp_path / "alerts.jsonl"
    e = {"TRADEMON_ALERT_SINK_PORT": str(port), "TRADEMON_ALERT_SINK_FILE": str(path), **(env or {})}
    if host:
        e["TRADEMON_ALERT_SINK_HOST"] = "127.0.0.1"
    p = trademon("alert-sink", ["alert-sink"], e, tmp_path / f"alert-sink-{port}.log", limit_fds)
    scheme = "https" if "TRADEMON_WEB_CONFIG_FILE" in e else "http"
    if scheme == "http":
        wait_http(f"http://127.0.0.1:{port}/healthz", 20, p)
    return f"{scheme}://127.0.0.1:{port}", p, path


def sim(tmp_path: Path, env: dict | None = None, host: bool = True) -> tuple[dict[str, str], Proc]:
    ports = {job: free_port() for job in (*SIM_JOBS, "control")}
    e = {port_variable(j): str(p) for j, p in ports.items() if j != "control"}
    e.update({"TRADEMON_SIM_CONTROL_PORT": str(ports["control"]), "TRADEMON_SIM_SPEED": "1", **(env or {})})
    if host:
        e["TRADEMON_SIM_HOST"] = "127.0.0.1"
    p = trademon("sim", ["sim"], e, tmp_path / f"sim-{ports['control']}.log")
    urls = {j: f"http://127.0.0.1:{port}" for j, port in ports.items()}
    for u in urls.values():
        wait_http(f"{u}/healthz", 30, p)
    return urls, p


def pid_of(p: Proc) -> int:
    """The Python process (under prlimit, which execs it, it is the same pid)."""
    return p.popen.pid


def vmhwm_kb(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    raise AssertionError("no VmHWM")


def open_fds(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


def listening(pid: int) -> set[str]:
    """Addresses (ip:port) the process listens on, from /proc/net/tcp{,6} and its socket inodes."""
    inodes = set()
    for fd in os.listdir(f"/proc/{pid}/fd"):
        try:
            target = os.readlink(f"/proc/{pid}/fd/{fd}")
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(target[8:-1])
    out = set()
    for table in ("tcp", "tcp6"):
        for line in Path(f"/proc/{pid}/net/{table}").read_text().splitlines()[1:]:
            f = line.split()
            if f[3] == "0A" and f[9] in inodes:  # LISTEN
                hexip, hexport = f[1].split(":")
                if len(hexip) == 8:
                    ip = socket.inet_ntop(socket.AF_INET, bytes.fromhex(hexip)[::-1])
                else:
                    ip = socket.inet_ntop(socket.AF_INET6, b"".join(bytes.fromhex(hexip[i:i + 8])[::-1] for i in range(0, 32, 8)))
                out.add(f"{ip}:{int(hexport, 16)}")
    return out


def series(url: str, family: str) -> list:
    text = requests.get(f"{url}/metrics", timeout=5).text
    return [s for f in text_string_to_metric_families(text) if f.name == family for s in f.samples]


def log_lines(p: Proc) -> list[str]:
    return [line for line in p.log_text().splitlines() if line.strip()]


def raw_request(port: int, head: bytes, timeout: float = 5.0) -> tuple[int | None, socket.socket]:
    s = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    s.sendall(head)
    return s


def status_of(s: socket.socket) -> int | None:
    try:
        data = s.recv(200)
    except (TimeoutError, ConnectionResetError):
        return None
    return int(data.split()[1]) if data.startswith(b"HTTP/1.1 ") else None


# --- no open door --------------------------------------------------------------------------

@pytest.mark.parametrize("service", ["alert-sink", "sim", "synthetic", "ib-exporter"])
def test_started_directly_every_service_listens_on_loopback_only(tmp_path, service):
    if service == "alert-sink":
        url, p, _ = sink(tmp_path, host=False)
        ports = [int(url.rsplit(":", 1)[1])]
    elif service == "sim":
        urls, p = sim(tmp_path, host=False)
        ports = [int(u.rsplit(":", 1)[1]) for u in urls.values()]
    else:
        port = free_port()
        env = {port_variable(service): str(port)}
        if service == "ib-exporter":
            env["TRADEMON_IB_PORT"] = str(free_port())  # no TWS: it keeps retrying, /healthz still answers
        else:
            closed = f"http://127.0.0.1:{free_port()}"
            env.update({"TRADEMON_SYNTHETIC_API_URL": closed, "TRADEMON_SYNTHETIC_PROMETHEUS_URL": closed,
                        "TRADEMON_SYNTHETIC_ALERTMANAGER_URL": closed, "TRADEMON_SYNTHETIC_POSITION_MANAGER_URL": closed,
                        "TRADEMON_SYNTHETIC_HEALTH_TARGETS": f"x={closed}/healthz"})
        p = trademon(service, [service], env, tmp_path / f"{service}.log")
        wait_http(f"http://127.0.0.1:{port}/healthz", 30, p)
        ports = [port]
    try:
        got = listening(pid_of(p))
        assert got == {f"127.0.0.1:{port}" for port in ports}, f"{service} listens on {sorted(got)}"
    finally:
        p.close()


def test_token_guards_the_scenario_switch_and_the_test_hooks(tmp_path):
    urls, p = sim(tmp_path, {"TRADEMON_API_TOKEN": TOKEN})
    auth = {"Authorization": f"Bearer {TOKEN}"}
    try:
        for method, url in [("POST", f"{urls['control']}/scenarios/api-down"), ("GET", f"{urls['control']}/state"),
                            ("POST", f"{urls['automatictrader-api']}/test/circuit-breaker/synthetic/trip")]:
            for headers in ({}, {"Authorization": "Bearer wrong-token-wrong-token"}, {"Authorization": f"Basic {TOKEN}"}):
                r = requests.request(method, url, headers=headers, timeout=5)
                assert r.status_code == 401 and r.headers["www-authenticate"].startswith("Bearer"), (url, headers, r.status_code)
        assert requests.get(f"{urls['control']}/state", headers=auth, timeout=5).json()["api_down"] is False
        assert requests.post(f"{urls['control']}/scenarios/api-down", headers=auth, timeout=5).status_code == 200
        assert requests.post(f"{urls['automatictrader-api']}/test/circuit-breaker/synthetic/trip", headers=auth, timeout=5).status_code in (200, 503)
        # every other path asks for it too, but the health checks
        assert requests.get(f"{urls['position-manager']}/metrics", timeout=5).status_code == 401
        assert requests.get(f"{urls['position-manager']}/metrics", headers=auth, timeout=5).status_code == 200
        assert requests.get(f"{urls['control']}/readyz", timeout=5).status_code == 200
    finally:
        p.close()
    assert TOKEN not in p.log_text()


def test_token_guards_the_notification_record(tmp_path):
    url, p, path = sink(tmp_path, {"TRADEMON_API_TOKEN": TOKEN})
    try:
        forged = {**PAYLOAD, "status": "resolved", "alerts": [{**PAYLOAD["alerts"][0], "status": "resolved",
                                                                "labels": {"alertname": "DailyLossLimitBreach"}}]}
        assert requests.post(f"{url}/alerts", json=forged, timeout=5).status_code == 401
        assert not path.exists()
        assert requests.post(f"{url}/alerts", json=PAYLOAD, headers={"Authorization": f"Bearer {TOKEN}"}, timeout=5).status_code == 200
        assert len(path.read_text().splitlines()) == 1
    finally:
        p.close()
    assert TOKEN not in p.log_text()


def prometheus_scrapes_it(tmp_path: Path, url: str, auth: dict, what: str) -> None:
    """The real Prometheus scrapes ``url`` (job alert-sink) with ``auth`` (scrape config fields) until up is 1."""
    prom_port = free_port()
    cfg = {"global": {"scrape_interval": "1s"},
           "scrape_configs": [{"job_name": "alert-sink", **auth, "static_configs": [{"targets": [url.split("//")[1]]}]}]}
    (tmp_path / "prometheus.yml").write_text(yaml.safe_dump(cfg))
    prom = start("prometheus", [tools.find("prometheus"), f"--config.file={tmp_path / 'prometheus.yml'}",
                                f"--storage.tsdb.path={tmp_path / 'prom'}", f"--web.listen-address=127.0.0.1:{prom_port}"],
                 None, tmp_path / "prometheus.log")
    try:
        def up():
            r = requests.get(f"http://127.0.0.1:{prom_port}/api/v1/query", params={"query": "up"}, timeout=2).json()
            return r["data"]["result"] and r["data"]["result"][0]["value"][1] == "1"
        wait_for(up, 25, what=what)
    finally:
        prom.close()


def _self_signed(tmp_path: Path) -> tuple[Path, Path]:
    cert, key = tmp_path / "tls.crt", tmp_path / "tls.key"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=127.0.0.1",
                    "-addext", "subjectAltName=IP:127.0.0.1", "-keyout", str(key), "-out", str(cert)],
                   check=True, capture_output=True, timeout=60)
    return cert, key


def test_web_config_file_gives_tls_and_basic_auth_and_prometheus_scrapes_through_it(tmp_path):
    cert, key = _self_signed(tmp_path)
    password = "scrape-Passw0rd-xyz"
    web = tmp_path / "web.yml"
    web.write_text(yaml.safe_dump({"tls_server_config": {"cert_file": cert.name, "key_file": key.name},
                                   "basic_auth_users": {"prometheus": bcrypt.hashpw(password.encode(), bcrypt.gensalt(4)).decode()}}))
    url, p, _ = sink(tmp_path, {"TRADEMON_WEB_CONFIG_FILE": str(web)})
    try:
        wait_for(lambda: requests.get(f"{url}/healthz", verify=str(cert), timeout=2).ok, 20, what="https /healthz")
        with pytest.raises(requests.exceptions.ConnectionError):
            requests.get(url.replace("https:", "http:") + "/metrics", timeout=2)
        assert requests.get(f"{url}/metrics", verify=str(cert), timeout=5).status_code == 401
        assert requests.get(f"{url}/metrics", verify=str(cert), auth=("prometheus", "wrong"), timeout=5).status_code == 401
        assert requests.get(f"{url}/readyz", verify=str(cert), timeout=5).status_code == 200  # a health check
        ok = requests.get(f"{url}/metrics", verify=str(cert), auth=("prometheus", password), timeout=5)
        assert ok.status_code == 200 and "alert_sink_rejected_total" in ok.text

        # The real Prometheus scrapes it as any basic-auth/TLS exporter.
        (tmp_path / "pw").write_text(password)
        prometheus_scrapes_it(tmp_path, url, {"scheme": "https", "tls_config": {"ca_file": str(cert)},
                                              "basic_auth": {"username": "prometheus", "password_file": str(tmp_path / "pw")}},
                              "Prometheus scraping the alert-sink over TLS with basic auth")
    finally:
        p.close()
    assert password not in p.log_text()


# --- bounded work per request ------------------------------------------------------------

def _chunked_flood(port: int, path: str, total_mb: int) -> tuple[int, int | None]:
    """POST a chunked body of up to ``total_mb`` MiB; (bytes the server took, its status)."""
    s = socket.create_connection(("127.0.0.1", port), timeout=5)
    s.sendall(f"POST {path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n".encode())
    chunk = b"%x\r\n" % (1 << 20) + b"[" * (1 << 20) + b"\r\n"
    sent = 0
    try:
        for _ in range(total_mb):
            s.sendall(chunk)
            sent += 1 << 20
        s.sendall(b"0\r\n\r\n")
    except (TimeoutError, BrokenPipeError, ConnectionResetError):
        pass
    code = status_of(s)
    s.close()
    return sent, code


@pytest.mark.parametrize("target", ["alert-sink", "automatictrader-api"])
def test_oversized_bodies_are_refused_while_reading(tmp_path, target):
    if target == "alert-sink":
        url, p, _ = sink(tmp_path)
        path, limit = "/alerts", MAX_BODY
    else:
        urls, p = sim(tmp_path)
        url, path, limit = urls[target], "/intents", 1 << 20
    port = int(url.rsplit(":", 1)[1])
    try:
        before = vmhwm_kb(pid_of(p))
        # Declared: refused before one byte of the body is read.
        s = raw_request(port, f"POST {path} HTTP/1.1\r\nHost: x\r\nContent-Length: {500 << 20}\r\n\r\n".encode())
        assert status_of(s) == 413
        s.close()
        # Chunked: counted as it comes, cut at the limit.
        sent, code = _chunked_flood(port, path, 96)
        assert code in (413, None), code
        assert sent < limit + (24 << 20), f"the server read {sent >> 20} MiB of a body over its {limit >> 20} MiB limit"
        grown = vmhwm_kb(pid_of(p)) - before
        assert grown < 64 * 1024, f"peak memory grew {grown // 1024} MiB for a refused body"
        assert requests.get(f"{url}/healthz", timeout=5).ok
    finally:
        p.close()


def test_deep_json_is_400_with_the_reason(tmp_path):
    url, p, _ = sink(tmp_path)
    urls, sp = sim(tmp_path)
    deep = b"[" * 100_000 + b"]" * 100_000
    try:
        r = requests.post(f"{url}/alerts", data=deep, headers={"Content-Type": "application/json"}, timeout=10)
        assert r.status_code == 400 and r.json()["error"] == "too_deep", r.text
        r = requests.post(f"{urls['automatictrader-api']}/intents", data=b'{"strategy":' + deep + b"}",
                          headers={"Idempotency-Key": "k1", "Content-Type": "application/json"}, timeout=10)
        assert r.status_code == 400 and r.json()["reason"] == "json_too_deep", r.text
    finally:
        p.close()
        sp.close()
    assert "RecursionError" not in p.log_text() + sp.log_text()


def test_slow_and_idle_clients_are_cut_and_health_keeps_answering_at_the_fd_limit(tmp_path):
    """400 connections that trickle a request head, against a process allowed 256 files: the
    slow ones are closed after the read timeout, a new connection pushes out the oldest idle
    one, /healthz keeps answering, the process never reaches its file limit, and the log stays quiet."""
    url, p, _ = sink(tmp_path, {"TRADEMON_HTTP_READ_TIMEOUT": "1.5"}, limit_fds=256)
    port = int(url.rsplit(":", 1)[1])
    pid = pid_of(p)
    conns = []

    def slow_client(_):
        s = socket.create_connection(("127.0.0.1", port), timeout=5)
        s.sendall(b"POST /alerts HTTP/1.1\r\nHost: x\r\n")  # never finishes the head
        return s

    try:
        # in parallel: a full accept queue makes each connect wait for a SYN retransmit (1 s)
        with ThreadPoolExecutor(32) as pool:
            conns = list(pool.map(slow_client, range(400)))
        t0 = time.monotonic()
        assert requests.get(f"{url}/healthz", timeout=3).ok
        assert open_fds(pid) < 200, f"{open_fds(pid)} open files: the connection cap did not hold"
        time.sleep(2.5)  # past the read timeout
        closed = 0
        for s in conns:
            s.settimeout(0.5)
            try:
                got = s.recv(300)
                if got.startswith(b"HTTP/1.1 503 "):  # pushed out by the cap before its head was whole
                    got = s.recv(300)  # then closed
                if got == b"":
                    closed += 1
            except (TimeoutError, ConnectionResetError):
                closed += isinstance(sys.exc_info()[1], ConnectionResetError)
        assert closed == len(conns), f"{len(conns) - closed} slow connections still open after {time.monotonic() - t0:.1f} s"
        assert requests.get(f"{url}/healthz", timeout=3).ok
    finally:
        for s in conns:
            s.close()
        p.close()
    lines = log_lines(p)
    assert len(lines) < 20, f"{len(lines)} log lines:\n" + "\n".join(lines[:20])
    assert "out of system resource" not in p.log_text()


def test_the_same_error_repeated_is_logged_a_bounded_number_of_times(tmp_path):
    url, p, _ = sink(tmp_path)
    t0 = time.monotonic()
    try:
        with requests.Session() as s:
            for _ in range(200):
                assert s.post(f"{url}/alerts", data=b"not json", timeout=5).status_code == 400
    finally:
        elapsed = time.monotonic() - t0
        p.close()
    rejected = [line for line in log_lines(p) if "payload rejected" in line]
    windows = int(elapsed // RepeatLimiter().window) + 1  # at most `burst` lines per window
    assert 1 <= len(rejected) <= RepeatLimiter().burst * windows, f"{len(rejected)} identical lines for 200 identical bad requests in {elapsed:.1f} s"


def test_client_chosen_names_are_bounded(tmp_path):
    url, p, _ = sink(tmp_path)
    urls, sp = sim(tmp_path)
    try:
        with requests.Session() as s:
            for i in range(MAX_RECEIVERS + 20):
                assert s.post(f"{url}/alerts", json={**PAYLOAD, "receiver": f"r{i}"}, timeout=5).status_code == 200
            for i in range(MAX_SYNTHETIC_NAMES + 20):
                s.post(f"{urls['automatictrader-api']}/intents", headers={"Idempotency-Key": f"k{i}"}, timeout=5,
                       json={"strategy": f"synthetic-{i}", "symbol": "SPY", "side": "buy", "quantity": 1, "order_type": "market"})
                s.post(f"{urls['automatictrader-api']}/test/circuit-breaker/synthetic-b{i}/trip", timeout=5)
        receivers = {x.labels["receiver"] for x in series(url, "alert_sink_notifications")}
        assert len(receivers) == MAX_RECEIVERS + 1 and OVERFLOW in receivers, len(receivers)
        api = requests.get(f"{urls['automatictrader-api']}/metrics", timeout=5).text
        strategies = {s.labels["strategy"] for f in text_string_to_metric_families(api) for s in f.samples if "strategy" in s.labels}
        assert len(strategies) <= 3 + MAX_SYNTHETIC_NAMES + 1, f"{len(strategies)} strategy label values on the API"
        breakers = {x.labels.get("breaker") for x in series(urls["position-manager"], "circuit_breaker_open")}
        assert len(breakers) <= MAX_SYNTHETIC_NAMES + 1, f"{len(breakers)} breaker series on position-manager"
    finally:
        p.close()
        sp.close()


# --- secrets never reach a log -------------------------------------------------------------

class _Failing:
    """An HTTP endpoint that answers 500 to everything (a Slack webhook having a bad day)."""

    def __init__(self):
        from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

        class H(BaseHTTPRequestHandler):
            def do_POST(self):
                self.rfile.read(int(self.headers.get("content-length", 0)))
                self.send_response(500)
                self.send_header("content-length", "5")
                self.end_headers()
                self.wfile.write(b"oops\n")

            def log_message(self, *a):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), H)
        self.port = self.server.server_address[1]
        serve(self.server)

    def close(self):
        self.server.shutdown()
        self.server.server_close()


def test_no_secret_in_any_log_when_every_channel_fails(tmp_path):
    secrets = {
        "TELEGRAM_BOT_TOKEN": "7312345678:AAG-fakeTelegramToken_abcdefghijklmnop",  # 35 characters after the colon, as BotFather's
        "SLACK_WEBHOOK_URL": None,  # below: the stand-in's address with a secret path
        "SMTP_PASSWORD": "smtp-Secret-Passw0rd-never-logged",
        "TRADEMON_API_TOKEN": TOKEN,
    }
    # Telegram unreachable (a closed port): Alertmanager's error names the Bot API URL, token and all.
    telegram_url = f"http://127.0.0.1:{free_port()}"
    slack = _Failing()
    slack_secret = "T0SECRET1/B0SECRET2/slackHookSecretPart0123456789"
    secrets["SLACK_WEBHOOK_URL"] = f"http://127.0.0.1:{slack.port}/services/{slack_secret}"
    smtp = SMTPStandIn("alerts@trademon.test", "the-right-password-is-other")  # refuses our login
    # The webhook fails too: the alert-sink asks for another token than Alertmanager sends.
    sink_url, sink_p, sink_file = sink(tmp_path, {"TRADEMON_API_TOKEN": "another-token-" + "0" * 20, "TRADEMON_LOG_LEVEL": "debug"})
    am_port = free_port()
    env = {**os.environ, "TELEGRAM_CHAT_ID": "-1001234567890", "TELEGRAM_API_URL": telegram_url,
           "SMTP_SMARTHOST": smtp.smarthost, "SMTP_FROM": "trademon@trademon.test", "SMTP_TO": "trader@trademon.test",
           "SMTP_USERNAME": "alerts@trademon.test", "SMTP_REQUIRE_TLS": "false", "TRADEMON_LOG_LEVEL": "debug",
           **secrets}
    out = tmp_path / "am-config"
    r = subprocess.run([sys.executable, "-m", "trademon", "am-config", "--out", str(out), "--source", str(ROOT / "alertmanager"),
                        "--alert-sink-url", f"{sink_url}/alerts"], env=env, capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    amconfig_log = r.stdout + r.stderr
    assert '"level": "debug"' in amconfig_log, "TRADEMON_LOG_LEVEL=debug is honoured"
    cfg = yaml.safe_load((out / "alertmanager.yml").read_text())
    for route in [cfg["route"], *cfg["route"].get("routes", [])]:
        for k in ("group_wait", "group_interval"):
            if k in route:
                route[k] = "1s"
    (out / "alertmanager.yml").write_text(yaml.safe_dump(cfg, sort_keys=False))
    am = start("alertmanager", [tools.find("alertmanager"), f"--config.file={out / 'alertmanager.yml'}",
                                f"--storage.path={tmp_path / 'am-data'}", f"--web.listen-address=127.0.0.1:{am_port}",
                                "--cluster.listen-address="], {"ZONEINFO": str(out / "zoneinfo")}, tmp_path / "alertmanager.log")
    try:
        wait_http(f"http://127.0.0.1:{am_port}/-/ready", 20, am)
        now = time.time()
        body = [{**a, "startsAt": iso_ts(now - 1), "endsAt": iso_ts(now + 600), "generatorURL": "http://prometheus.test/graph"}
                for a in (alert("DailyLossLimitBreach", "critical", account="DU1"), alert("HighSlippage", "warning", strategy="momentum"))]
        assert requests.post(f"http://127.0.0.1:{am_port}/api/v2/alerts", json=body, timeout=5).ok

        # Telegram is a webhook to `trademon bot` (unreachable here) unless Alertmanager holds the token itself.
        channels = ("slack", "email", "webhook") + (("telegram",) if any("telegram_configs" in r for r in cfg["receivers"]) else ())

        def every_channel_failed():
            text = am.log_text()
            return all(k in text for k in channels) and text.count("Notify attempt failed") >= 4
        wait_for(every_channel_failed, 40, 0.5, "a failed delivery logged for every channel")
    finally:
        am.close()
        sink_p.close()
        slack.close()
        smtp.close()
    assert not sink_file.exists()
    values = [v for v in secrets.values()] + [slack_secret, secrets["TELEGRAM_BOT_TOKEN"].split(":")[1]]
    am_log = am.log_text()
    holds_telegram_token = any("telegram_configs" in r for r in cfg["receivers"])
    logs = {"am-config": amconfig_log, "alert-sink": sink_p.log_text(), **shippers.shipped_by_both(am_log)}
    # Alertmanager's own output: clean, but for the Telegram token while Alertmanager holds it
    # (it names the Bot API URL in failed deliveries; the Telegram path through `trademon bot`
    # takes the token away from it). The shippers' output above must be clean either way.
    logs["alertmanager"] = am_log.replace(secrets["TELEGRAM_BOT_TOKEN"], "<held>") if holds_telegram_token else am_log
    if holds_telegram_token:
        logs["alertmanager"] = logs["alertmanager"].replace(secrets["TELEGRAM_BOT_TOKEN"].split(":")[1], "<held>")
    for name, text in logs.items():
        for v in values:
            assert v not in text, f"{name}'s log holds a secret ({v[:6]}...)"
    if holds_telegram_token:  # the leak the shippers mask is really there
        assert secrets["TELEGRAM_BOT_TOKEN"] in am_log and "bot***" in logs["promtail"] and "bot***" in logs["alloy"]


def iso_ts(t: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(t)) + "Z"


@pytest.mark.parametrize("variable", ["TELEGRAM_API_URL", "GRAFANA_URL"])
def test_am_config_masks_credentials_in_an_invalid_url(tmp_path, variable):
    password = "hunter2-Secret-In-Url"
    env = {**os.environ, "TELEGRAM_BOT_TOKEN": "7312345678:AAG-fakeTelegramToken_abcdefghijklmnop",
           "TELEGRAM_CHAT_ID": "42", "TRADEMON_LOG_LEVEL": "debug",
           variable: f"ftp://admin:{password}@example.com/x y"}
    r = subprocess.run([sys.executable, "-m", "trademon", "am-config", "--out", str(tmp_path / "out"),
                        "--source", str(ROOT / "alertmanager")], env=env, capture_output=True, text=True, timeout=60)
    text = r.stdout + r.stderr
    assert variable in text and "not an http(s) URL" in text, text
    assert password not in text and "admin" not in text, text
    assert '"level": "debug"' in text


# --- the thresholds reload command behind the web config -----------------------------------

def _thresholds(tmp_path: Path, env: dict) -> tuple[int, Proc]:
    """`trademon thresholds --watch` on a copy of the shipped monitoring/ (no Prometheus to reload)."""
    root = tmp_path / "root"
    shutil.copytree(Path(__file__).resolve().parents[1] / "monitoring", root / "monitoring",
                    ignore=shutil.ignore_patterns("dashboards", "tests"))
    port = free_port()
    e = {"TRADEMON_THRESHOLDS_PORT": str(port), "TRADEMON_THRESHOLDS_HOST": "127.0.0.1", "TRADEMON_THRESHOLDS_ROOT": str(root),
         "TRADEMON_THRESHOLDS_OUT": str(tmp_path / "out"), "TRADEMON_THRESHOLDS_RELOAD_URL": "", **env}
    return port, trademon("thresholds", ["thresholds", "--watch"], e, tmp_path / "thresholds.log")


def _reload(env: dict) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "trademon", "thresholds", "--reload"], capture_output=True, text=True, timeout=60,
                          env={**os.environ, **env})


def test_thresholds_reload_passes_the_web_config_tls_and_token(tmp_path):
    """With TRADEMON_WEB_CONFIG_FILE (TLS and basic auth) and the bearer token set, as for every
    service, `trademon thresholds --reload` run with the same environment reaches /reload over
    HTTPS with the token (it spoke plain HTTP without a credential: no outcome) and prints the
    outcome; the token never in what it prints."""
    cert, key = _self_signed(tmp_path)
    web = tmp_path / "web.yml"
    web.write_text(yaml.safe_dump({"tls_server_config": {"cert_file": cert.name, "key_file": key.name},
                                   "basic_auth_users": {"prometheus": bcrypt.hashpw(b"scrape-Passw0rd-xyz", bcrypt.gensalt(4)).decode()}}))
    (tmp_path / "token").write_text(TOKEN)
    env = {"TRADEMON_WEB_CONFIG_FILE": str(web), "TRADEMON_API_TOKEN_FILE": str(tmp_path / "token")}
    port, p = _thresholds(tmp_path, env)
    try:
        wait_for(lambda: requests.get(f"https://127.0.0.1:{port}/healthz", verify=str(cert), timeout=2).ok, 20, what="https /healthz")
        r = _reload({**env, "TRADEMON_THRESHOLDS_PORT": str(port)})
        assert r.returncode == 0 and r.stdout.startswith("thresholds live: "), r.stdout + r.stderr
        assert TOKEN not in r.stdout + r.stderr

        # Another token than the service's: refused, and the one line says what to set.
        r = _reload({**env, "TRADEMON_API_TOKEN_FILE": "", "TRADEMON_API_TOKEN": "other-" + TOKEN, "TRADEMON_THRESHOLDS_PORT": str(port)})
        lines = r.stderr.strip().splitlines()
        assert r.returncode == 2 and len(lines) == 1 and "refused (401)" in lines[0] and "TRADEMON_API_TOKEN" in lines[0], r.stderr
        assert TOKEN not in r.stdout + r.stderr
    finally:
        p.close()
    assert TOKEN not in p.log_text()


def test_thresholds_reload_refused_by_basic_auth_names_the_fix(tmp_path):
    """Basic auth alone on the service: the command holds no password (the web config has only
    hashes), so the 401 is answered with one line naming the fix, not a bare 'unauthorized'."""
    web = tmp_path / "web.yml"
    web.write_text(yaml.safe_dump({"basic_auth_users": {"prometheus": bcrypt.hashpw(b"scrape-Passw0rd-xyz", bcrypt.gensalt(4)).decode()}}))
    env = {"TRADEMON_WEB_CONFIG_FILE": str(web)}
    port, p = _thresholds(tmp_path, env)
    try:
        wait_http(f"http://127.0.0.1:{port}/healthz", 20, p)
        r = _reload({**env, "TRADEMON_THRESHOLDS_PORT": str(port)})
        lines = r.stderr.strip().splitlines()
        assert r.returncode == 2 and len(lines) == 1, r.stdout + r.stderr
        assert "refused (401)" in lines[0] and "set TRADEMON_API_TOKEN" in lines[0], lines[0]
    finally:
        p.close()
