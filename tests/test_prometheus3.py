"""What Prometheus 3 changed, pinned where it touches the project (docs/prometheus3.md).

Every PromQL expression that ships (recording and alert rules, every dashboard panel,
variable and annotation) is read back from the committed files and held to the rules below;
the promtool tests and the end-to-end tests run all of them on the pinned Prometheus 3.5.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from trademon import contract
from trademon.gen import dashboard_queries as dq
from trademon.settings.values import seconds

ROOT = Path(__file__).resolve().parents[1]
PROM = ROOT / "prometheus"


def rule_exprs() -> list[tuple[str, str]]:
    out = []
    for f in sorted((ROOT / "monitoring" / "rules").glob("*.yml")):
        for group in yaml.safe_load(f.read_text())["groups"]:
            for r in group["rules"]:
                out.append((f"{f.name}: {r.get('alert') or r.get('record')}", r["expr"]))
    return out


def dashboard_exprs() -> list[tuple[str, str]]:
    return [(str(q), q.concrete(dq.variable_names(doc))) for doc in dq.load(ROOT) for q in dq.queries(doc) if q.lang == "promql"]


EXPRS = rule_exprs() + dashboard_exprs()


def test_there_is_something_to_check():
    assert len(rule_exprs()) > 30 and len(dashboard_exprs()) > 30


# Prometheus 3 stores a classic histogram's `le` (and a summary's `quantile`) as scraped in
# float form: le="1" becomes le="1.0". A matcher on the integer form silently matches nothing.
LE_MATCHER = re.compile(r'\b(le|quantile)\s*(=|!=|=~|!~)\s*"([^"]*)"')


@pytest.mark.parametrize("where,expr", EXPRS, ids=[w for w, _ in EXPRS])
def test_no_le_or_quantile_matcher_on_an_integer_form(where, expr):
    for label, _, value in LE_MATCHER.findall(expr):
        for alt in value.split("|"):
            assert not re.fullmatch(r"[+-]?\d+", alt), f"{where}: {label}=\"{value}\" matches nothing on Prometheus 3 (use \"{alt}.0\")"


def test_the_le_check_can_fail():
    bad = 'sum(rate(api_request_duration_seconds_bucket{le="1"}[5m]))'
    assert any(re.fullmatch(r"\d+", v) for _, _, v in LE_MATCHER.findall(bad))


# Removed in Prometheus 3 (holt_winters), or experimental there and off unless
# --enable-feature=promql-experimental-functions, which docker-compose.yml does not set.
REMOVED_OR_EXPERIMENTAL = ("holt_winters", "double_exponential_smoothing", "sort_by_label", "sort_by_label_desc",
                           "limitk", "limit_ratio", "mad_over_time", "info", "ts_of_max_over_time",
                           "ts_of_min_over_time", "ts_of_last_over_time", "first_over_time")


@pytest.mark.parametrize("where,expr", EXPRS, ids=[w for w, _ in EXPRS])
def test_no_removed_or_experimental_function(where, expr):
    used = set(re.findall(r"\b([a-z_]+)\s*\(", expr))
    assert not used & set(REMOVED_OR_EXPERIMENTAL), f"{where}: {sorted(used & set(REMOVED_OR_EXPERIMENTAL))}"


def test_experimental_functions_stay_off():
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    flags = " ".join(compose["services"]["prometheus"]["command"])
    assert "promql-experimental-functions" not in flags


# Range selectors are left-open in Prometheus 3: a sample exactly at the window's start no
# longer counts. A window of under 4 scrape intervals can then hold too few samples for
# rate() to answer: every literal window is at least 4 x scrape_interval.
@pytest.mark.parametrize("where,expr", EXPRS, ids=[w for w, _ in EXPRS])
def test_range_windows_hold_enough_samples_under_left_open_ranges(where, expr):
    scrape = seconds(yaml.safe_load((PROM / "prometheus.yml").read_text())["global"]["scrape_interval"])
    for window in re.findall(r"\[(\d+(?:ms|s|m|h|d|w))(?::[^\]]*)?\]", expr):
        assert seconds(window) >= 4 * scrape, f"{where}: [{window}] holds under 4 samples at a {scrape}s scrape interval"


# Prometheus 3 accepts UTF-8 metric and label names, which PromQL must then quote
# ({"my.metric"}) and older tools cannot read: the contract keeps to the classic charset.
LEGACY_NAME = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*")


def test_contract_names_are_classic_prometheus_names():
    names = [m.name for m in contract.METRICS]
    assert names
    for m in contract.METRICS:
        assert LEGACY_NAME.fullmatch(m.name), m.name
        for label in m.labels:
            assert LEGACY_NAME.fullmatch(label) and not label.startswith("__"), (m.name, label)


def test_prometheus_yml_has_no_prometheus_2_only_settings():
    cfg = yaml.safe_load((PROM / "prometheus.yml").read_text())
    for am in cfg.get("alerting", {}).get("alertmanagers", []):
        assert am.get("api_version", "v2") == "v2", "Prometheus 3 speaks only Alertmanager API v2"
    for sc in cfg["scrape_configs"]:
        assert "scrape_classic_histograms" not in sc, f"{sc['job_name']}: renamed always_scrape_classic_histograms in Prometheus 3"
