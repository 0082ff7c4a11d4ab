"""The contract module is the one source of metric names; these keep it and its copies in line."""

import re
from pathlib import Path

import pytest
from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families

from trademon import contract
from trademon.gen import check, repo_root
from trademon.metrics import JobMetrics

ROOT = Path(__file__).resolve().parents[1]
NAME_RE = re.compile(r"^[a-z_][a-z0-9_]*$")


def test_names_are_valid_and_unique():
    names = [m.name for m in contract.METRICS]
    assert len(names) == len(set(names))
    for m in contract.METRICS:
        assert NAME_RE.match(m.name), m.name
        assert m.job in contract.JOBS, m
        assert m.type in (contract.COUNTER, contract.GAUGE, contract.HISTOGRAM)
        assert (m.type == contract.COUNTER) == m.name.endswith("_total"), m.name
        assert (m.buckets is not None) == (m.type == contract.HISTOGRAM), m.name
        assert m.help.endswith("."), m.name


def test_ports_are_unique():
    ports = [j.port for j in contract.JOBS.values()]
    assert len(ports) == len(set(ports))
    assert contract.SIM_CONTROL_PORT not in ports


@pytest.mark.parametrize("job", sorted({m.job for m in contract.METRICS}))
def test_job_metrics_expose_the_contract(job):
    """Build each job's registry, touch every metric, and read the exposition back."""
    jm = JobMetrics(job)
    for m in contract.metrics_for_job(job):
        obj = jm[m.name]
        child = obj.labels(*["x"] * len(m.labels)) if m.labels else obj
        {"counter": lambda c: c.inc(), "gauge": lambda c: c.set(1), "histogram": lambda c: c.observe(0.1)}[m.type](child)
    families = {f.name: f for f in text_string_to_metric_families(generate_latest(jm.registry).decode())}
    for m in contract.metrics_for_job(job):
        fam = families[m.client_name]
        assert fam.type == m.type
        sample_names = {s.name for s in fam.samples}
        assert set(m.series_names) <= sample_names, (m.name, sample_names)
        for s in fam.samples:
            assert set(s.labels) - {"le"} == set(m.labels), (m.name, s.labels)


def test_unknown_metric_name_is_a_clear_error():
    jm = JobMetrics("ib-exporter")
    with pytest.raises(KeyError, match="not a metric of the trademon contract"):
        jm["ib_conected"]
    with pytest.raises(KeyError, match="not exposed by job"):
        jm["strategy_pnl"]


def test_generated_files_are_up_to_date():
    assert repo_root() == ROOT
    problems = check(ROOT)
    assert not problems, "\n".join(problems)


def test_metrics_doc_lists_every_metric():
    doc = (ROOT / "docs" / "metrics.md").read_text()
    for m in contract.METRICS:
        assert f"| `{m.name}` | {m.type} |" in doc


def test_gen_check_fails_on_drift(tmp_path):
    """The drift check is able to fail: a hand-edited copy is reported."""
    (tmp_path / "exporters").mkdir()
    (tmp_path / "pyproject.toml").write_text("")
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "metrics.md").write_text("# Metrics\nhand edited\n")
    (tmp_path / "monitoring").mkdir()  # generators of rules and dashboards read the config
    (tmp_path / "monitoring" / "config.yml").write_text((ROOT / "monitoring" / "config.yml").read_text())
    problems = check(tmp_path, only={"docs/metrics.md"})
    assert problems and "run `trademon gen`" in problems[0]
