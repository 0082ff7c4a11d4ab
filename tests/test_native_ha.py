"""`trademon native --ha`: the HA layout without Docker, tried for real (free ports for every
node): both Alertmanagers in one gossip cluster, both Prometheus replicas sending to both,
and their series in VictoriaMetrics under this host, without the replica label."""

import sys

import requests
from tests.support.procs import free_port, start, wait_for, wait_http
from trademon import contract
from trademon.settings.env import port_variable


def test_native_ha_brings_up_the_pair_the_cluster_and_the_store(tmp_path):
    env = {port_variable(job): str(free_port()) for job in contract.JOBS}
    extra = ("TRADEMON_SIM_CONTROL_PORT", "TRADEMON_PROMETHEUS_B_PORT", "TRADEMON_ALERTMANAGER_B_PORT",
             "TRADEMON_ALERTMANAGER_CLUSTER_PORT", "TRADEMON_ALERTMANAGER_B_CLUSTER_PORT", "TRADEMON_VICTORIAMETRICS_PORT",
             "TRADEMON_BOT_PORT")
    env.update({name: str(free_port()) for name in extra})
    env["TRADEMON_HOST"] = "trading-test"
    url = lambda var: f"http://127.0.0.1:{env[var]}"
    proms = [url(port_variable("prometheus")), url("TRADEMON_PROMETHEUS_B_PORT")]
    ams = [url(port_variable("alertmanager")), url("TRADEMON_ALERTMANAGER_B_PORT")]
    vm = url("TRADEMON_VICTORIAMETRICS_PORT")
    proc = start("native-ha", [sys.executable, "-m", "trademon", "native", "--ha", "--data-dir", str(tmp_path / "native")],
                 env, tmp_path / "native.log")
    try:
        for p in proms:
            wait_http(f"{p}/-/ready", timeout=90, proc=proc)
        for am in ams:
            wait_for(lambda am=am: len(requests.get(f"{am}/api/v2/status", timeout=5).json()["cluster"]["peers"]) == 2, 30, 0.5,
                     f"{am} sees both nodes")
        for p in proms:
            wait_for(lambda p=p: len(requests.get(f"{p}/api/v1/alertmanagers", timeout=5).json()["data"]["activeAlertmanagers"]) == 2,
                     30, 0.5, f"{p} sends to both Alertmanagers")

        def stored():
            r = requests.get(f"{vm}/api/v1/series", params={"match[]": 'up{job="automatictrader-api"}'}, timeout=5).json()
            return r["data"]
        series = wait_for(stored, 60, 1, "the pair's series in VictoriaMetrics")
        assert [s.get("host") for s in series] == ["trading-test"] and "replica" not in series[0], series
    finally:
        rc = proc.close()
    assert rc == 0, proc.tail()


# ---- HA is the single host, twice ------------------------------------------------------------

HA_PORTS = ("TRADEMON_PROMETHEUS_B_PORT", "TRADEMON_ALERTMANAGER_B_PORT", "TRADEMON_ALERTMANAGER_CLUSTER_PORT",
            "TRADEMON_ALERTMANAGER_B_CLUSTER_PORT", "TRADEMON_VICTORIAMETRICS_PORT")


def listening_pid(port: int) -> int | None:
    """The process whose command line says it listens on ``port`` (an engine: --web.listen-address)."""
    from pathlib import Path

    for d in Path("/proc").iterdir():
        try:
            cmd = (d / "cmdline").read_bytes().split(b"\0")
        except (OSError, ValueError):
            continue
        if f"--web.listen-address=127.0.0.1:{port}".encode() in cmd:
            return int(d.name)
    return None


def test_native_ha_from_an_env_file_survives_a_dead_alertmanager_and_prometheus_and_pages_once(tmp_path):
    """`trademon native --ha --env-file`: the file's Telegram settings are used (as without
    --ha), a node killed -9 is started again, every Prometheus scrapes every node, the
    synthetic breaker stays a self-test, and after one Alertmanager and then one Prometheus
    died the next page reaches Telegram exactly once."""
    import os
    import signal
    import time

    from tests.support.native import NativeStack, synthetic_breaker_alerts
    from tests.support.standins import StandIns

    with StandIns() as standins:
        values = {**{k: v for k, v in standins.env().items() if k.startswith("TELEGRAM_")},
                  **{name: str(free_port()) for name in HA_PORTS}, "TRADEMON_HOST": "trading-test"}
        stack = NativeStack(tmp_path, values, "--ha", "--speed", "30")
        try:
            stack.wait_ready()
            v = stack.values
            proms = [stack.prom_url, f"http://127.0.0.1:{v['TRADEMON_PROMETHEUS_B_PORT']}"]
            ams = [stack.am_url, f"http://127.0.0.1:{v['TRADEMON_ALERTMANAGER_B_PORT']}"]
            for p in proms:  # every node scraped by every replica: a dead one is seen
                def nodes(p=p):
                    active = requests.get(f"{p}/api/v1/targets", timeout=5).json()["data"]["activeTargets"]
                    return sorted(t["labels"]["instance"] for t in active if t["labels"]["job"] in ("prometheus", "alertmanager")
                                  and t["health"] == "up")
                want = sorted(u.removeprefix("http://") for u in proms + ams)
                wait_for(lambda: nodes() == want, 60, 0.5, f"{p} scraping both Prometheus and both Alertmanagers")

            for labels in wait_for(lambda: synthetic_breaker_alerts(ams[1], stack.record), 90, 0.5,
                                   "the synthetic breaker's CircuitBreakerTripped in Alertmanager or its record"):
                assert labels["severity"] == "info" and labels.get("self_test") == "true", labels

            def cluster_whole():
                return all(len(requests.get(f"{am}/api/v2/status", timeout=2).json()["cluster"]["peers"]) == 2 for am in ams)
            for url in (ams[0], proms[0]):  # one Alertmanager, then one Prometheus, killed -9
                port = int(url.rsplit(":", 1)[1])
                pid = listening_pid(port)
                assert pid is not None, url
                os.kill(pid, signal.SIGKILL)
                wait_for(lambda: listening_pid(port) not in (None, pid) and requests.get(f"{url}/-/ready", timeout=2).ok,
                         60, 0.5, f"{url} started again")
                assert stack.proc.popen.poll() is None, stack.proc.tail()
                wait_for(cluster_whole, 60, 0.5, "both Alertmanagers in the cluster again")

            t0 = time.time()
            requests.post(f"{stack.control_url}/scenarios/loss-breach", timeout=5).raise_for_status()

            def pages():
                return [m for m in standins.telegram.sent() if "DailyLossLimitBreach" in m["text"] and m["at"] >= t0]
            wait_for(pages, 90, 0.5, "the DailyLossLimitBreach page at the Telegram stand-in")
            time.sleep(12)  # past two --cluster.peer-timeouts (5 s): a second node's copy would be in by now
            assert len(pages()) == 1, [m["text"][:200] for m in pages()]
            assert all(s not in stack.proc.log_text() for s in standins.secrets())
        finally:
            rc = stack.close()
    assert rc == 0, stack.proc.tail()
