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
