"""Starting the simulator serves the four jobs it stands in for, each with every metric
of the contract for that job: right type, exactly its labels (checked on the parsed exposition)."""

from __future__ import annotations

import math

import pytest
import requests

from trademon.contract import COUNTER, HISTOGRAM, metrics_for_job

from tests.support.procs import wait_for
from tests.support.sim import SIM_JOBS, SimProcess


@pytest.fixture(scope="module")
def sim(tmp_path_factory):
    s = SimProcess.start(tmp_path_factory.mktemp("sim-exposition"), speed=60)
    yield s
    s.close()


def family_name(m) -> str:
    # The parser names a counter family without its _total suffix.
    return m.name[: -len("_total")] if m.type == COUNTER else m.name


def problems(families: dict, job: str) -> list[str]:
    out = []
    for m in metrics_for_job(job):
        fam = families.get(family_name(m))
        if fam is None:
            out.append(f"{m.name}: missing")
            continue
        if fam.type != m.type:
            out.append(f"{m.name}: type {fam.type}, contract says {m.type}")
        samples = [s for s in fam.samples if s.name in m.series_names]
        seen = {s.name for s in samples}
        for series in m.series_names:
            if series not in seen:
                out.append(f"{m.name}: no {series} sample")
        for s in samples:
            want = set(m.labels) | ({"le"} if s.name.endswith("_bucket") else set())
            if set(s.labels) != want:
                out.append(f"{s.name}: labels {sorted(s.labels)}, contract says {sorted(want)}")
                break
        if m.type == HISTOGRAM:
            les = sorted({float(s.labels["le"]) for s in samples if s.name.endswith("_bucket")})
            if les != [*m.buckets, math.inf]:
                out.append(f"{m.name}: buckets {les}, contract says {list(m.buckets)} + inf")
    return out


@pytest.mark.parametrize("job", SIM_JOBS)
def test_every_contract_metric_of_the_job_is_served(sim, job):
    last: list[str] = []

    def complete():
        nonlocal last
        last = problems(sim.scrape(job), job)
        return not last

    try:
        # Some series (errors, histograms per status) appear with the first traffic.
        wait_for(complete, timeout=20, interval=0.3, what=f"{job}: every metric of the contract")
    except TimeoutError:
        pytest.fail(f"{job} on port {sim.ports[job]}:\n  " + "\n  ".join(last))


@pytest.mark.parametrize("job", [*SIM_JOBS, "control"])
def test_every_port_serves_the_probes(sim, job):
    for path in ("/healthz", "/readyz"):
        assert requests.get(sim.url(job) + path, timeout=5).status_code == 200, (job, path)


def test_exposition_checker_catches_a_wrong_label():
    from prometheus_client.parser import text_string_to_metric_families

    text = "# TYPE ib_connected gauge\nib_connected{extra=\"x\"} 1\n"
    fams = {f.name: f for f in text_string_to_metric_families(text)}
    found = problems(fams, "ib-exporter")
    assert any(p.startswith("ib_connected: labels") for p in found)
    assert any(p == "daily_pnl: missing" for p in found)
