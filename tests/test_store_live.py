"""The long-term store, for real: Prometheus replicas remote_write into the VictoriaMetrics
binary (.tools/bin/victoria-metrics), as trademon.stack.scaleout configures them.

Layout: trading host ``trading-1`` watched by an HA pair (replicas a and b, the project's
prometheus.yml and rules, scraping the simulator, the alert-sink and the synthetic checks of
tests/test_dashboards_live.py), and a second host ``trading-2``, one Prometheus. The second
"host" scrapes the same simulator: what is tested is the store keeping hosts apart by the
``host`` label and dashboards selecting it, not a second trading system.

Shortened, and only these: scrape and evaluation every 1 s, so VictoriaMetrics deduplicates
at 1 s (-dedup.minScrapeInterval is the scrape interval); its -search.latencyOffset (how
recent a sample must be before an instant query sees it, 30 s by default) is 1 s.

The dashboard tests of tests/test_dashboards_live.py run here again, unchanged, against
VictoriaMetrics' PromQL API (its ``stack`` fixture is this module's, pointed at the store).
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest
import requests
import yaml
from trademon import contract
from trademon.stack import native, scaleout

from tests.support.hastack import Node
from tests.support.procs import free_port, wait_for
from tests.test_dashboards_live import (  # noqa: F401 - run here against the store
    Stack,
    exercise,
    test_every_annotation_query_is_valid,
    test_every_panel_query_is_valid_and_returns_data,
    test_every_variable_offers_values,
)

HOST1, HOST2 = "trading-1", "trading-2"
JOB = "automatictrader-api"
KILLED_FOR = 8.0  # seconds one replica is dead


class Store:
    def __init__(self, workdir: Path):
        self.dir = workdir
        self.nodes: list[Node] = []
        self.stack = None
        port = free_port()
        self.vm = Node("victoria-metrics", scaleout.victoriametrics_cmd(workdir / "vm-data", port, dedup_interval="1s")
                       + ["-search.latencyOffset=1s"], {}, workdir / "victoria-metrics.log", f"http://127.0.0.1:{port}/health")
        self.vm.url = f"http://127.0.0.1:{port}"
        self.vm.start()
        self.nodes.append(self.vm)
        write = f"{self.vm.url}{scaleout.REMOTE_WRITE_PATH}"
        self.stack = Stack(workdir / "trading-1-a", configure=lambda cfg: scaleout.ha_prometheus_config(
            cfg, alertmanagers=[], replica="a", host=HOST1, remote_write=write))
        base = yaml.safe_load((workdir / "trading-1-a" / "prometheus.yml").read_text())
        self.replica_b = self._prometheus("trading-1-b", base, replica="b", host=HOST1)
        self.host2 = self._prometheus("trading-2", base, replica="a", host=HOST2)

    def _prometheus(self, name: str, base: dict, **labels) -> Node:
        cfg = yaml.safe_load(yaml.safe_dump(base))
        cfg["global"]["external_labels"].update({scaleout.REPLICA_LABEL: labels["replica"], scaleout.HOST_LABEL: labels["host"]})
        path = self.dir / f"{name}.yml"
        path.write_text(yaml.safe_dump(cfg, sort_keys=False))
        port = free_port()
        cmd = native.prometheus_cmd(path, self.dir / f"{name}-data", port) + ["--web.enable-admin-api"]
        node = Node(name, cmd, {}, self.dir / f"{name}.log", f"http://127.0.0.1:{port}/-/ready")
        node.url = f"http://127.0.0.1:{port}"
        node.start()
        self.nodes.append(node)
        return node

    def close(self) -> None:
        if self.stack is not None:
            self.stack.close()
        for n in reversed(self.nodes):
            n.close()


def query(url: str, expr: str, **params) -> list:
    r = requests.post(f"{url}/api/v1/query", data={"query": expr, **params}, timeout=10)
    body = r.json()
    assert r.status_code == 200 and body["status"] == "success", (expr, body)
    return body["data"]["result"]


def scalar(url: str, expr: str) -> float | None:
    res = query(url, expr)
    return float(res[0]["value"][1]) if res else None


def names(url: str, match: str | None = None) -> set[str]:
    params = {"match[]": match} if match else {}
    r = requests.get(f"{url}/api/v1/label/__name__/values", params=params, timeout=10)
    r.raise_for_status()
    return set(r.json()["data"])


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    s = Store(tmp_path_factory.mktemp("store"))
    try:
        # Every Prometheus has the bot's histogram at 0 before exercise() pages once: a replica
        # whose first scrape came after the page would hold no increase for the latency panel.
        for url in (s.stack.prom, s.replica_b.url, s.host2.url):
            wait_for(lambda: query(url, f'up{{job="{contract.BOT}"}} == 1'), 30, 0.5, f"{url} scraping the bot")
        exercise(s.stack)
        yield s
    finally:
        s.close()


@pytest.fixture(scope="module")
def stack(store):
    """For the dashboard tests imported above: their queries go to VictoriaMetrics."""
    return store.stack.pointed_at(store.vm.url)


def test_every_contract_series_in_prometheus_arrives_in_the_store(store):
    contract_names = contract.all_series_names()
    prom = store.stack.prom

    def arrived():
        have = names(prom) & contract_names
        return have and have <= names(store.vm.url, f'{{host="{HOST1}"}}') and have
    have = wait_for(arrived, 60, 1, "every contract series of Prometheus in VictoriaMetrics")
    assert len(have) > len(contract_names) // 2, sorted(contract_names - have)


def test_the_replicas_are_one_series_with_one_sample_per_interval(store):
    vm = store.vm.url
    wait_for(lambda: scalar(vm, f'count(up{{host="{HOST1}", job="{JOB}"}})') == 1, 30, 1, "one up series for the pair")
    assert query(vm, '{replica!=""}') == []  # the replica label never reaches the store
    # Both replicas write every second; deduplicated, the store holds as many samples as one
    # replica scraped, not twice as many.
    time.sleep(10)
    at = time.time() - 2
    one = float(query(store.stack.prom, f'count_over_time(up{{job="{JOB}"}}[10s])', time=at)[0]["value"][1])
    n = float(query(vm, f'count_over_time(up{{host="{HOST1}", job="{JOB}"}}[10s])', time=at)[0]["value"][1])
    assert one - 2 <= n <= one + 1, (n, one)


def test_hosts_stay_apart_and_select_by_label(store):
    vm = store.vm.url
    wait_for(lambda: {r["metric"]["host"] for r in query(vm, f'up{{job="{JOB}"}}')} == {HOST1, HOST2}, 30, 1,
             "both hosts in the store")
    assert [r["metric"]["host"] for r in query(vm, f'up{{job="{JOB}", host=~"{HOST2}"}}')] == [HOST2]
    # A dashboard's "All" (.*) also matches series without the label (a single-host Prometheus).
    assert len(query(store.stack.prom, f'up{{job="{JOB}", host=~".*"}}')) == 1


def test_figures_series_count_and_bytes_per_sample(store):
    vm, prom_b = store.vm.url, store.replica_b.url
    prom_series = scalar(prom_b, 'count({__name__=~".+"})')
    vm_series = scalar(vm, f'count({{__name__=~".+", host="{HOST1}"}})')
    vm_all = scalar(vm, 'count({__name__=~".+"})')
    assert prom_series and vm_series
    # The pair is one set of series in the store (a few may be newer in one than the other).
    assert abs(vm_series - prom_series) <= 0.05 * prom_series, (vm_series, prom_series)
    # Bytes per sample on disk. Prometheus: its head written out as a block (the snapshot API),
    # over the samples it appended. VictoriaMetrics: its storage parts after a flush, over the
    # rows it holds. Minutes of data compress worse than months: an upper bound for both.
    snap = requests.post(f"{prom_b}/api/v1/admin/tsdb/snapshot", timeout=60).json()["data"]["name"]
    snap_dir = store.dir / "trading-1-b-data" / "snapshots" / snap
    prom_bytes = sum(p.stat().st_size for p in snap_dir.rglob("*") if p.is_file())
    prom_samples = scalar(prom_b, "prometheus_tsdb_head_samples_appended_total")
    requests.get(f"{vm}/internal/force_flush", timeout=30)
    time.sleep(1)
    metrics = requests.get(f"{vm}/metrics", timeout=10).text
    vm_bytes = sum(float(line.split()[-1]) for line in metrics.splitlines()
                   if line.startswith(('vm_data_size_bytes{type="storage/', 'vm_data_size_bytes{type="indexdb/')))
    vm_rows = sum(float(line.split()[-1]) for line in metrics.splitlines() if line.startswith('vm_rows{type="storage/'))
    assert prom_bytes > 0 and vm_bytes > 0 and vm_rows > 0
    print(f"\nseries: Prometheus (one replica) {prom_series:.0f}, VictoriaMetrics host {HOST1} (both replicas) "
          f"{vm_series:.0f}, VictoriaMetrics all hosts {vm_all:.0f}"
          f"\nbytes per sample on disk: Prometheus block {prom_bytes / prom_samples:.2f} ({prom_samples:.0f} samples), "
          f"VictoriaMetrics {vm_bytes / vm_rows:.2f} ({vm_rows:.0f} rows, index included)")


def test_samples_lost_across_a_prometheus_kill(store):
    """Replica b is killed -9 for KILLED_FOR seconds: its own TSDB has the gap; the store,
    fed by replica a too, has none."""
    vm, b = store.vm.url, store.replica_b
    time.sleep(3)
    t_kill = time.time()
    b.kill9()
    time.sleep(KILLED_FOR)
    b.start()
    time.sleep(5)
    window = f"{int(time.time() - t_kill + 4)}s"
    at = time.time() - 1
    expected = int(time.time() - t_kill + 4) - 1
    sel = f'up{{job="{JOB}"}}'
    own = float(query(b.url, f"count_over_time({sel}[{window}])", time=at)[0]["value"][1])
    stored = float(query(vm, f'count_over_time(up{{job="{JOB}", host="{HOST1}"}}[{window}])', time=at)[0]["value"][1])
    lost_own, lost_store = max(expected - own, 0), max(expected - stored, 0)
    print(f"\nsamples of one series lost across a {KILLED_FOR:.0f} s kill -9 (1 s scrapes, ~{expected} expected): "
          f"the killed replica's own TSDB {lost_own:.0f}, VictoriaMetrics (pair, deduplicated) {lost_store:.0f}")
    assert lost_own >= KILLED_FOR - 2  # the kill made a gap (the test can see one)
    assert lost_store <= 2, (stored, expected)


def test_the_dashboards_host_variable_offers_every_host(store):
    r = requests.get(f"{store.vm.url}/api/v1/label/host/values", params={"match[]": "up"}, timeout=10)
    assert set(r.json()["data"]) == {HOST1, HOST2}
    # and selecting one host narrows a panel query to it
    one = query(store.vm.url, f'max by (host) (up{{host=~"{HOST2}", job="{JOB}"}})')
    assert [x["metric"]["host"] for x in one] == [HOST2]
