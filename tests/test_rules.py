"""Prometheus configuration and alert rules: promtool checks and unit tests, and the links
between the rules and their sources (contract, thresholds, runbooks, dashboards)."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from trademon import contract, grafana_uids
from trademon.settings import thresholds
from trademon.stack import tools
from trademon.gen import rules as gen_rules
from trademon.thresholds import render as threshold_rules

ROOT = Path(__file__).resolve().parents[1]
PROM = ROOT / "prometheus"
MON = ROOT / "monitoring"  # the config, rules, their tests, dashboards and runbooks

# The alerts and their severities: the project's own definitions (exporters/trademon/gen/rules.py)
# are the source. ../shared/DESIGN.md's table was the starting set and is not kept in line.
CONTRACT_ALERTS = {a.name: a.severity for a in gen_rules.ALERTS}
# Warnings about the market or the account rather than a service: no `job` label to inhibit on.
# (OrderAcknowledgementSlow holds the trading system's count against IB's: two jobs, by strategy)
NOT_FROM_A_SERVICE = {"HighRiskExposure", "PnLAnomaly", "OrderAcknowledgementSlow"}


def promtool(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess:
    # every test file evaluates every rule (34 alerts, the money group every 1 s): about 25 s on an
    # idle machine, past 90 s on a loaded one
    return subprocess.run([tools.find("promtool"), *args], cwd=cwd, capture_output=True, text=True, timeout=300)


def rule_files() -> list[Path]:
    """The generated rules and the threshold rules (as the running stack renders them)."""
    return sorted((MON / "rules").glob("*.yml")) + [ROOT / threshold_rules.TEST_COPY]


def promtool_test_files() -> list[Path]:
    return sorted((MON / "tests").glob("*.yml"))


def load_rules() -> tuple[dict[str, dict], dict[str, dict]]:
    """(alert name -> rule, record name -> rule) over every rule file."""
    alerts, records = {}, {}
    for f in rule_files():
        for group in yaml.safe_load(f.read_text())["groups"]:
            for r in group["rules"]:
                if "alert" in r:
                    assert r["alert"] not in alerts, f"alert {r['alert']} defined twice"
                    alerts[r["alert"]] = r
                else:
                    assert r["record"] not in records, f"recording rule {r['record']} defined twice"
                    records[r["record"]] = r
    return alerts, records


# ------------------------------------------------------------------ promtool


@pytest.mark.promtool
def test_promtool_check_config(tmp_path):
    # The shipped file in full, as a user checks it (its token file, relative to it, is the
    # checkout's empty one), and as `trademon native` renders it.
    r = promtool("check", "config", "prometheus/prometheus.yml")
    assert r.returncode == 0, r.stdout + r.stderr
    assert (ROOT / "prometheus" / "scrape-token" / "secrets" / "api_token").read_bytes() == b"", \
        "prometheus/scrape-token/secrets/api_token must stay empty: a token belongs in .env"
    r = promtool("check", "config", "prometheus/prometheus.ha.yml")
    assert r.returncode == 0, r.stdout + r.stderr
    from trademon.stack import native

    (tmp_path / "api_token").write_text("")
    targets = {job: f"127.0.0.1:{10000 + i}" for i, job in enumerate(native.NATIVE_JOBS)}
    cfg = native.render_prometheus_config(ROOT, targets, "127.0.0.1:19093", thresholds_dir=tmp_path / "thresholds", token_file=tmp_path / "api_token")
    (tmp_path / "prometheus.yml").write_text(yaml.safe_dump(cfg))
    r = promtool("check", "config", str(tmp_path / "prometheus.yml"))
    assert r.returncode == 0, r.stdout + r.stderr


@pytest.mark.promtool
def test_promtool_check_rules():
    files = rule_files()
    assert {f.name for f in files} == {"trademon.rules.yml", "trademon.alerts.yml", "trademon.thresholds.yml"}
    r = promtool("check", "rules", *map(str, files))
    assert r.returncode == 0, r.stdout + r.stderr


@pytest.mark.promtool  # promtool evaluates every test file: tens of seconds
def test_promtool_unit_tests():
    files = promtool_test_files()
    assert files, "no promtool tests in monitoring/tests"
    r = promtool("test", "rules", *map(str, files))
    assert r.returncode == 0, r.stdout + r.stderr
    assert r.stdout.count("SUCCESS") == len(files), r.stdout


@pytest.mark.promtool
@pytest.mark.parametrize("alert, old, new", [
    # the loss limit's value lives in the threshold rules (a series), its comparison in the alert
    ("DailyLossLimitBreach", "record: trademon:threshold:daily_loss_limit\n    expr: vector(-500)",
     "record: trademon:threshold:daily_loss_limit\n    expr: vector(-700)"),
    ("DailyLossLimitBreach", "min by (account) (daily_pnl) < on (account)", "min by (account) (daily_pnl) + 200 < on (account)"),
    ("TWSConnectionLost", "for: 1m\n", "for: 1m30s\n"),
    ("CircuitBreakerTripped", "(circuit_breaker_open) > 0", "(circuit_breaker_open) > 1"),
    # the IB maintenance hold dropped (a reset pages) or made a mute (a lost session never pages)
    ("TWSConnectionLost", "trademon:ib_maintenance_window:max == 1", "trademon:ib_maintenance_window:max == 2"),
    ("TWSConnectionLost", "max_over_time(ib_connected[15m]) > 0", "max_over_time(ib_connected[15m]) >= 0"),
])
def test_promtool_unit_tests_catch_a_broken_rule(tmp_path, alert, old, new):
    """The unit tests are able to fail: a money alert with a loosened threshold, a longer
    `for` or that never fires is reported, by name (money.yml holds the money alerts,
    schedule.yml the IB maintenance hold)."""
    shutil.copytree(MON / "rules", tmp_path / "rules")
    shutil.copytree(MON / "tests", tmp_path / "tests")
    if old.startswith("record: "):  # a threshold's value: in the rendered threshold rules
        path = tmp_path / threshold_rules.TEST_COPY.removeprefix("monitoring/")
        text = path.read_text()
        assert old in text, f"the threshold rules no longer contain {old!r}: update this test"
        path.write_text(text.replace(old, new))
    else:
        path = tmp_path / "rules" / "trademon.alerts.yml"
        text = path.read_text()
        block_start = text.index(f"- alert: {alert}\n")
        block_end = text.find("- alert:", block_start + 1)
        block = text[block_start:block_end]
        assert old in block, f"{alert}'s rule no longer contains {old!r}: update this test"
        path.write_text(text[:block_start] + block.replace(old, new) + text[block_end:])
    # only the test groups of that alert (their names start with it): the files' other groups
    # (PnLAnomaly's hours of the 2 s money group) took ~9 s a run and test nothing broken here
    r = promtool("test", "rules", f"--run=^{alert}[: ]", str(tmp_path / "tests" / "money.yml"),
                 str(tmp_path / "tests" / "schedule.yml"), cwd=tmp_path)
    assert r.returncode != 0
    assert f"alertname: {alert}" in r.stdout + r.stderr


# ------------------------------------------------------------------ prometheus.yml


def test_prometheus_yml_scrapes_every_job_of_the_contract():
    cfg = yaml.safe_load((PROM / "prometheus.yml").read_text())
    assert cfg["global"]["scrape_interval"] == "15s"
    assert cfg["global"]["evaluation_interval"] == "30s"
    assert cfg["rule_files"] == ["../monitoring/rules/*.yml", "../monitoring/thresholds/*.yml"]
    am = contract.JOBS["alertmanager"]
    assert cfg["alerting"]["alertmanagers"] == [{"static_configs": [{"targets": [f"alertmanager:{am.port}"]}]}]
    jobs = {}
    for sc in cfg["scrape_configs"]:
        assert sc["job_name"] not in jobs, f"job {sc['job_name']} twice"
        jobs[sc["job_name"]] = [t for s in sc["static_configs"] for t in s["targets"]]
    assert set(jobs) == set(contract.JOBS), "prometheus.yml and contract.JOBS list different jobs"
    for name, targets in jobs.items():
        # The compose service is named like the job and listens on the contract's port.
        assert targets == [f"{name}:{contract.JOBS[name].port}"], (name, targets)


def test_money_series_are_scraped_as_often_as_the_money_alerts_are_evaluated():
    """The money alerts' group runs every money_evaluation_interval; the jobs of their series
    must be scraped as often, or the faster evaluation only re-reads old samples."""
    cfg = yaml.safe_load((PROM / "prometheus.yml").read_text())
    interval = str(thresholds.load(ROOT)["money_evaluation_interval"])
    by_job = {sc["job_name"]: sc for sc in cfg["scrape_configs"]}
    for job in gen_rules.MONEY_JOBS:
        assert by_job[job].get("scrape_interval") == interval, job
        assert by_job[job].get("scrape_timeout") == interval, job
    others = [j for j in by_job if j not in gen_rules.MONEY_JOBS]
    assert all("scrape_interval" not in by_job[j] for j in others), "only the money jobs are scraped faster"
    alerts, _ = load_rules()
    groups = {g["name"]: g for f in rule_files() for g in yaml.safe_load(f.read_text())["groups"]}
    money = groups[gen_rules.MONEY_GROUP]
    assert money["interval"] == interval
    assert {r["alert"] for r in money["rules"]} == {"DailyLossLimitBreach", "CircuitBreakerTripped", "TWSConnectionLost",
                                                     "PositionDriftFromBroker", "BreakerLeakingOrders"}


# ------------------------------------------------------------------ the alert contract


def test_every_contract_alert_is_defined_with_its_severity_and_texts():
    alerts, _ = load_rules()
    assert set(alerts) == set(CONTRACT_ALERTS)
    runbook_anchors = markdown_anchors(ROOT / "monitoring" / "runbooks.md")
    dashboards = {grafana_uids.path(k) for k in grafana_uids.DASHBOARDS}
    for name, rule in alerts.items():
        assert rule["labels"]["severity"] == CONTRACT_ALERTS[name], name
        ann = rule["annotations"]
        assert set(ann) == {"summary", "description", "runbook_url", "dashboard"}, name
        assert all(v.strip() for v in ann.values()), name
        base, _, anchor = ann["runbook_url"].partition("#")
        assert base == "https://github.com/trademon/trademon/blob/main/monitoring/runbooks.md", name
        assert anchor in runbook_anchors, f"{name}: monitoring/runbooks.md has no section #{anchor}"
        assert ann["dashboard"] in dashboards, f"{name}: {ann['dashboard']} is not a dashboard of grafana_uids"


def markdown_anchors(path: Path) -> set[str]:
    """GitHub's anchors of a Markdown file's headings."""
    anchors = set()
    for line in path.read_text().splitlines():
        m = re.match(r"^#{1,6}\s+(.*)$", line)
        if m:
            slug = re.sub(r"[^\w\- ]", "", m.group(1).strip().lower()).replace(" ", "-")
            anchors.add(slug)
    return anchors


def test_runbooks_have_one_section_per_alert_and_no_other():
    sections = re.findall(r"^## (.+)$", (ROOT / "monitoring" / "runbooks.md").read_text(), re.M)
    assert sorted(sections) == sorted(CONTRACT_ALERTS)


def test_warnings_caused_by_a_service_keep_its_job_label():
    """Alertmanager silences a down service's own warnings by `job`: the unit tests' expected
    labels show which alerts carry it."""
    labels: dict[str, set[str]] = {}
    for f in promtool_test_files():
        for t in yaml.safe_load(f.read_text())["tests"]:
            for check in t.get("alert_rule_test", []):
                for exp in check["exp_alerts"]:
                    labels.setdefault(check["alertname"], set()).update(exp["exp_labels"])
    assert set(labels) == set(CONTRACT_ALERTS), "an alert has no firing case in monitoring/tests"
    for name, sev in CONTRACT_ALERTS.items():
        if sev == "warning" and name not in NOT_FROM_A_SERVICE:
            assert "job" in labels[name], name
    assert "breaker" in labels["CircuitBreakerTripped"] and "account" in labels["DailyLossLimitBreach"]


def test_every_alert_has_quiet_and_firing_cases():
    seen: dict[str, set[bool]] = {}
    for f in promtool_test_files():
        for t in yaml.safe_load(f.read_text())["tests"]:
            for check in t.get("alert_rule_test", []):
                seen.setdefault(check["alertname"], set()).add(bool(check["exp_alerts"]))
    for name in CONTRACT_ALERTS:
        if name != "Watchdog":
            assert seen.get(name) == {True, False}, f"{name}: needs cases where it fires and where it does not"


# ------------------------------------------------------------------ names in PromQL

FUNCTIONS_AND_KEYWORDS = {"and", "or", "unless", "by", "without", "on", "ignoring", "group_left", "group_right",
                          "offset", "bool", "inf", "nan", "le"}
_STRING = re.compile(r'"(?:[^"\\]|\\.)*"' + r"|'(?:[^'\\]|\\.)*'")
_GROUPING = re.compile(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)")
_IDENT = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*")


def metric_names(expr: str) -> set[str]:
    """The metric names a PromQL expression selects: identifiers that are not functions
    (followed by a parenthesis), keywords, label names or values, or durations."""
    e = _STRING.sub('""', expr)
    e = re.sub(r"\{[^}]*\}", "", e)  # label matchers
    e = re.sub(r"\[[^\]]*\]", "", e)  # range and subquery durations
    e = _GROUPING.sub("", e)
    e = re.sub(r"\boffset\s+\w+", "", e)
    names = set()
    for m in _IDENT.finditer(e):
        if e[m.end():].lstrip().startswith("("):
            continue  # a function or an aggregation
        if m.start() > 0 and (e[m.start() - 1].isdigit() or e[m.start() - 1] == "."):
            continue  # part of a number (1e3)
        if m.group() not in FUNCTIONS_AND_KEYWORDS:
            names.add(m.group())
    return names


def test_metric_names_parser():
    assert metric_names('sum by (job, le) (rate(a_total{job=~"x|y", le="0.5"}[5m] offset 1h)) / on (job) b') == {"a_total", "b"}
    assert metric_names("histogram_quantile(0.99, sum by (le) (rate(c_bucket[5m]))) > 1e3") == {"c_bucket"}
    assert metric_names("vector(1)") == set()
    assert metric_names("time() - max(d) > 60 and e == 1") == {"d", "e"}


def test_every_metric_in_the_rules_is_in_the_contract_or_recorded_here():
    alerts, records = load_rules()
    from trademon.gen.grafana_panels import STACK_ENGINE_SERIES

    # the log shipper's counter of the gateway's ALERT_* tokens (tests/test_logging_configs.py checks its config)
    known = contract.all_series_names() | set(records) | {"up"} | STACK_ENGINE_SERIES | {contract.IB_GATEWAY_LOG_ALERTS_COUNTER}
    for kind, rules in (("alert", alerts), ("record", records)):
        for name, rule in rules.items():
            unknown = metric_names(rule["expr"]) - known
            assert not unknown, f"{kind} {name}: {sorted(unknown)} neither in the contract nor a recording rule"


def test_recording_rules_are_named_level_metric_operations():
    _, records = load_rules()
    assert records
    for name in records:
        assert re.fullmatch(r"[a-z_]+:[a-z0-9_]+:[a-z0-9_]+", name), name


def test_rules_avoid_what_prometheus_2_or_3_lack():
    """Prometheus 3 renamed holt_winters and added info(); 2.x has no UTF-8 names. Both
    versions must load these rules (the compose file runs 3.x, the tests 2.x)."""
    alerts, records = load_rules()
    for rule in [*alerts.values(), *records.values()]:
        expr = rule["expr"]
        assert not re.search(r"\b(holt_winters|double_exponential_smoothing|info|limitk|limit_ratio)\s*\(", expr), expr
        assert expr.isascii(), expr
        for text in rule.get("annotations", {}).values():
            for fn in re.findall(r"\|\s*(\w+)|\{\{\s*(\w+)", text):
                used = [f for f in fn if f]
                assert set(used) <= {"humanize", "humanizeDuration", "humanizePercentage", "printf", "with", "end",
                                     "if", "else", "range", "query", "first", "value", "label"}, (used, text)


# ------------------------------------------------------------------ thresholds


def test_every_threshold_is_used():
    used, keys = gen_rules.used_thresholds(ROOT)
    assert keys - used == set(), f"monitoring/config.yml keys no rule uses: {sorted(keys - used)}"


def test_unknown_threshold_in_a_template_is_a_clear_error():
    fill = gen_rules.Filler(ROOT)
    with pytest.raises(KeyError, match="no such key in monitoring/config.yml"):
        fill("x > ${no_such_threshold}")


def test_a_key_no_alert_reads_is_refused_at_gen(tmp_path):
    """A misspelt duration (or number) beside the real one would be generated into nothing."""
    from trademon.settings.env import ConfigError

    (tmp_path / "monitoring").mkdir()
    cfg = yaml.safe_load((ROOT / "monitoring" / "config.yml").read_text())
    cfg["warning"]["intents_pending_forr"] = "3m"
    (tmp_path / "monitoring" / "config.yml").write_text(yaml.safe_dump(cfg))
    with pytest.raises(ConfigError, match=r"warning: intents_pending_forr: no alert rule compares with it .*did you mean intents_pending_for\?"):
        gen_rules.render_alerts(tmp_path)


def test_no_f_string_of_the_rule_definitions_writes_a_placeholder_or_a_go_template():
    """Three syntaxes meet in an alert's text: Python's f-string braces, the config's ${key} and
    Go's {{ }}. An f-string writing either of the others (``${{key}}``, ``{{{{ if }}}}``) is the
    three in one string: f-strings only put Python values into PromQL; placeholders and
    templates are plain strings, joined with +."""
    import io
    import tokenize

    source = Path(gen_rules.__file__).read_text()
    mixed = [(t.start[0], t.string[:80]) for t in tokenize.generate_tokens(io.StringIO(source).readline)
             if t.type == tokenize.STRING and re.match(r"(?i)[rb]*f", t.string) and ("${{" in t.string or "{{{{" in t.string)]
    assert not mixed, mixed


# ------------------------------------------------------------------ tuned thresholds

# Every threshold of monitoring/config.yml changed at once. A new threshold must be added here
# and given a check below (the test says which). The money group's interval is tuned up (20s,
# not the default 2s): promtool evaluates it through the cases' ~44 hours, so it sets the run's cost.
TUNED = {
    "api_down_for": "3m", "tws_lost_for": "2m", "daily_loss_limit": -800, "reconciliation_for": "10m",
    "intent_error_ratio": 0.1, "intent_error_for": "3m", "intents_pending_max": 80, "intents_pending_for": "5m",
    "worker_lag_seconds": 120, "worker_lag_for": "2m", "slippage_pct": 0.8, "slippage_for": "0s",
    "rejection_ratio": 0.2, "rejection_for": "10m", "fill_ratio_min": 0.4, "fill_rate_for": "5m",
    "ratio_min_events": 10, "api_p99_seconds": 1, "api_latency_for": "2m", "exposure_ratio": 0.8,
    "exposure_for": "1m", "pnl_anomaly_sigmas": 3, "pnl_anomaly_min_change": 250, "pnl_anomaly_for": "2m",
    "marketdata_stale_seconds": 120, "farm_down_for": "10m", "ib_md_quote_stale_seconds": 300,
    "ib_md_quote_sparse_stale_seconds": 3600, "ib_md_resubscribe_for": "3m", "ib_md_delayed_for": "4m", "synthetic_failing_for": "2m",
    "exporter_down_for": "5m", "delivery_failing_for": "4m", "currency": "EUR", "broker_view_lost_for": "3m", "broker_data_memory": "2h",
    "broker_data_missing_for": "3m", "money_hold": "3h", "money_evaluation_interval": "20s",
    "ib_maintenance_hold": "20m", "market_calendar_min_days": 10, "thresholds_not_live_for": "2m",
    "ib_2fa_for": "3m", "ib_gateway_log_window": "30m", "ib_reauth_warn_seconds": 43200, "ib_controller_down_for": "5m",
    "order_unacked_critical_after": "5m", "order_unacked_warning_after": "2m", "execution_unrecorded_after": "3m",
    "position_drift_for": "3m", "breaker_leak_for": "2m", "master_client_missing_for": "4m", "broker_truth_window": "2h",
    "oer_max": 25, "oer_warning": 12, "oer_min_actions": 30, "active_orders_max": 18, "active_orders_warning": 14,
    "bot_down_for": "2m", "outbox_stuck_seconds": 300, "page_latency_p95_seconds": 5, "page_latency_for": "5m",
    "prometheus_rule_failures_for": "2m", "prometheus_reload_failed_for": "5m", "prometheus_backlog_for": "10m",
    "prometheus_send_error_ratio": 0.05, "prometheus_send_errors_for": "10m", "prometheus_no_alertmanager_for": "5m",
    "remote_write_lag_seconds": 300, "remote_write_behind_for": "10m", "alertmanager_reload_failed_for": "5m",
    "alertmanager_cluster_for": "10m", "alertmanager_cluster_down_for": "3m",
}


def tuned_config(values: dict) -> dict:
    """The shipped config with ``values`` put in the sections their keys are in."""
    config = thresholds.load_config(ROOT)
    sections = thresholds.section_of(ROOT)
    for key, value in values.items():
        if key in sections:
            config[sections[key]][key] = value
        else:
            config[key] = value
    return config


def n(x: float) -> str:
    return f"{x:.10g}"


def flat(v: float) -> str:
    """A gauge held at v for 40 minutes of 1-minute samples."""
    return f"{n(v)}x40"


def per_min(r: float) -> str:
    """A counter growing by r a minute for 40 minutes (from 1000: rate() never extrapolates to 0)."""
    return f"1000+{n(r)}x40"


def pnl_move(move: float, wiggle: float) -> str:
    """75 minutes of P&L wiggling so that its 5-minute moves are +-wiggle (a standard deviation
    of wiggle), then a drop of ``move`` that stays: 5-minute moves of exactly -move until 1h20m."""
    xs = [(i % 2) * wiggle for i in range(75)] + [-move + ((i + 1) % 2) * wiggle for i in range(75, 90)]
    return " ".join(n(x) for x in xs)


API = 'job="automatictrader-api", instance="api:8080"'
IB = 'job="ib-exporter", instance="ib:9110"'
AT, AT_PNL = "35m", "1h18m"  # past every window (30m at most) and `for`; 3 minutes into the P&L drop

# Each numeric threshold, checked by evaluation (1-minute samples and evaluations): the input
# series at TUNED[key] + step must fire the alert, at TUNED[key] - step it must not. step's sign says which side fires. Whatever value a broken rule
# kept instead of the tuned one, one of the two cases catches it.
# key: (alert, step, series as a function of the value, eval time)
NUMERIC = {
    "daily_loss_limit": ("DailyLossLimitBreach", -1, lambda v: {f'daily_pnl{{account="DU1", {IB}}}': flat(v)}, AT),
    "intents_pending_max": ("OrderIntentsPendingTooMany", 1, lambda v: {f"order_intents_pending{{{API}}}": flat(v)}, AT),
    "worker_lag_seconds": ("WorkerProcessingLag", 1, lambda v: {f'worker_lag_seconds{{worker="w", {API}}}': flat(v)}, AT),
    "slippage_pct": ("UnusualSlippage", 0.01, lambda v: {f'avg_slippage_pct{{strategy="s", {IB}}}': flat(v)}, AT),
    "exposure_ratio": ("HighRiskExposure", 0.01, lambda v: {f'risk_gross_exposure{{account="DU1", {IB}}}': flat(v * 1000),
                                                           f'risk_gross_exposure_limit{{account="DU1", {IB}}}': flat(1000)}, AT),
    # 100 intents a minute, a share v of them refused
    "intent_error_ratio": ("OrderIntentErrorRateHigh", 0.01, lambda v: {
        f'order_intents_created_total{{strategy="s", {API}}}': per_min(100 * (1 - v)),
        f'order_intents_error_total{{strategy="s", reason="validation", {API}}}': per_min(100 * v)}, AT),
    "rejection_ratio": ("HighOrderRejectionRate", 0.01, lambda v: {
        f'orders_submitted_total{{strategy="s", {IB}}}': per_min(100),
        f'orders_rejected_total{{strategy="s", code="201", {IB}}}': per_min(100 * v)}, AT),
    "fill_ratio_min": ("LowOrderFillRate", -0.01, lambda v: {
        f'orders_submitted_total{{strategy="s", {IB}}}': per_min(100),
        f'orders_filled_total{{strategy="s", {IB}}}': per_min(100 * v)}, AT),
    # v intents in 5 minutes, every one refused
    "ratio_min_events": ("OrderIntentErrorRateHigh", 2, lambda v: {
        f'order_intents_error_total{{strategy="s", reason="validation", {API}}}': per_min(v / 5)}, AT),
    # every request slower than the bucket le=v: histogram_quantile gives v for p99
    "api_p99_seconds": ("APILatencyHigh", 0.1, lambda v: {
        f'api_request_duration_seconds_bucket{{endpoint="/e", le="{n(v)}", {API}}}': per_min(0),
        f'api_request_duration_seconds_bucket{{endpoint="/e", le="+Inf", {API}}}': per_min(100),
        f'api_request_duration_seconds_count{{endpoint="/e", {API}}}': per_min(100)}, AT),
    "pnl_anomaly_sigmas": ("PnLAnomaly", 0.4, lambda v: {f'daily_pnl{{account="DU1", {IB}}}': pnl_move(v * 100, 100)}, AT_PNL),
    "pnl_anomaly_min_change": ("PnLAnomaly", 10, lambda v: {f'daily_pnl{{account="DU1", {IB}}}': pnl_move(v, 10)}, AT_PNL),
    # the last tick v seconds old, all along, while the feed is connected
    "marketdata_stale_seconds": ("MarketDataStale", 10, lambda v: {
        f'marketdata_last_tick_timestamp_seconds{{symbol="AAPL", {IB}}}': f"{n(-v)}+60x40",
        f"marketdata_connected{{{IB}}}": flat(1)}, AT),
    # an IB market data line v seconds without a tick, all along, in its exchange's session
    "ib_md_quote_stale_seconds": ("IBMarketDataStale", 10, lambda v: {
        f'ib_market_data_tick_age_seconds{{subscription="AAPL@NASDAQ", cadence="quote", {IB}}}': flat(v),
        f'ib_market_data_in_session{{subscription="AAPL@NASDAQ", {IB}}}': flat(1)}, AT),
    "ib_md_quote_sparse_stale_seconds": ("IBMarketDataStale", 10, lambda v: {
        f'ib_market_data_tick_age_seconds{{subscription="O@CBOE", cadence="quote_sparse", {IB}}}': flat(v),
        f'ib_market_data_in_session{{subscription="O@CBOE", {IB}}}': flat(1)}, AT),
    # IB's weekly re-authentication v seconds away, all along
    "ib_reauth_warn_seconds": ("IBWeeklyReauthSoon", -1, lambda v: {f"ib_gateway_reauth_in_seconds{{{IB}}}": flat(v)}, AT),
    # today's Order Efficiency Ratio v, with 100 submissions
    "oer_max": ("OrderEfficiencyRatioExcessive", 0.1, lambda v: {
        f"ib_order_efficiency_ratio{{{IB}}}": flat(v), f'ib_order_actions_today{{kind="submission", {IB}}}': flat(100)}, AT),
    "oer_warning": ("OrderEfficiencyRatioHigh", 0.1, lambda v: {
        f"ib_order_efficiency_ratio{{{IB}}}": flat(v), f'ib_order_actions_today{{kind="submission", {IB}}}': flat(100)}, AT),
    # a ratio of 30 once the day has v actions
    "oer_min_actions": ("OrderEfficiencyRatioExcessive", 1, lambda v: {
        f"ib_order_efficiency_ratio{{{IB}}}": flat(30), f'ib_order_actions_today{{kind="submission", {IB}}}': flat(v)}, AT),
    # v working orders for one contract and side (the alerts fire at v, so v - 1 is the quiet side)
    "active_orders_max": ("ActiveOrdersAtIBLimit", 1, lambda v: {
        f'ib_active_orders{{symbol="AAPL", side="BUY", {IB}}}': flat(v)}, AT),
    "active_orders_warning": ("ActiveOrdersNearIBLimit", 1, lambda v: {
        f'ib_active_orders{{symbol="AAPL", side="BUY", {IB}}}': flat(v)}, AT),
    # the oldest page in the bot's outbox v seconds old, all along
    "outbox_stuck_seconds": ("TelegramOutboxStuck", 1, lambda v: {
        'trademon_bot_outbox_oldest_age_seconds{job="trademon-bot", instance="b"}': flat(v)}, AT),
    # every page slower than the bucket le=v: histogram_quantile gives v for p95
    "page_latency_p95_seconds": ("PageLatencyHigh", 0.1, lambda v: {
        f'trademon_bot_page_latency_seconds_bucket{{since="webhook", le="{n(v)}", job="trademon-bot"}}': per_min(0),
        'trademon_bot_page_latency_seconds_bucket{since="webhook", le="+Inf", job="trademon-bot"}': per_min(10)}, AT),
    # 100 alerts sent a minute to the one Alertmanager, a share v of them failing
    "prometheus_send_error_ratio": ("PrometheusErrorSendingAlertsToAnyAlertmanager", 0.01, lambda v: {
        'prometheus_notifications_sent_total{job="prometheus", instance="p", alertmanager="a"}': per_min(100),
        'prometheus_notifications_errors_total{job="prometheus", instance="p", alertmanager="a"}': per_min(100 * v)}, AT),
    # remote write v seconds behind, all along
    "remote_write_lag_seconds": ("PrometheusRemoteWriteBehind", 1, lambda v: {
        'prometheus_remote_storage_highest_timestamp_in_seconds{job="prometheus", instance="p"}': f"{n(100000 + v)}+60x40",
        'prometheus_remote_storage_queue_highest_sent_timestamp_seconds{job="prometheus", instance="p", remote_name="vm", url="u"}':
            "100000+60x40"}, AT),
    # market hours rendered until v days from now, all along
    "market_calendar_min_days": ("MarketCalendarExpiring", -0.1, lambda v: {
        f"trademon_market_calendar_end_timestamp_seconds{{{API}}}": f"{n(v * 86400)}+60x40"}, AT),
}

SENT_AT_10M = {f'trading_orders_sent_total{{strategy="s", {API}}}': "0x9 1x140",
               f'orders_submitted_total{{strategy="s", {IB}}}': "0x149", f"ib_connected{{{IB}}}": "1x149"}

# Durations that are windows, checked where the tuned and the default value disagree:
# key: (alert, series, fires at, quiet at)
WINDOWS = {
    # a loss seen last at 10m stands for money_hold (3h, default 12h)
    "money_hold": ("DailyLossLimitBreach", {f'daily_pnl{{account="DU1", {IB}}}': "-900x10 stale"}, "3h", "3h15m"),
    # an account seen last at 10m is missed for broker_data_memory (2h, default 1h)
    "broker_data_memory": ("BrokerDataMissing", {f'daily_pnl{{account="DU1", {IB}}}': "1x10 stale",
                                                 f"ib_connected{{{IB}}}": "1x160"}, "1h30m", "2h20m"),
    # in a maintenance window, the session lost at 11m waits the hold (20m, default 15m), then tws_lost_for (2m)
    # an order sent at 10m that IB never shows: the warning after 2m (default 5s: 11m), the page after 5m
    "order_unacked_warning_after": ("OrderAcknowledgementSlow", SENT_AT_10M, "12m", "11m"),
    "order_unacked_critical_after": ("OrderNotAcknowledgedByIB", SENT_AT_10M, "15m", "14m"),
    # it stays counted for the window (2h, default 1h), not longer
    "broker_truth_window": ("OrderAcknowledgementSlow", SENT_AT_10M, "1h30m", "2h20m"),
    # an execution at 10m the trading system never records: after 3m (default 60s: 11m)
    "execution_unrecorded_after": ("ExecutionNotRecorded", {f'ib_executions_total{{strategy="s", {IB}}}': "0x9 1x140",
                                                            f'trading_fills_recorded_total{{strategy="s", {API}}}': "0x149",
                                                            f"up{{{API}}}": "1x149"}, "13m", "12m"),
    "ib_maintenance_hold": ("TWSConnectionLost", {f'trademon_ib_maintenance_window{{window="w", {API}}}': "1x60",
                                                  f"ib_connected{{{IB}}}": "1x10 0x50"}, "33m", "29m"),
    # the shipper's counter created by a token at 10m is news for the window (30m, default 15m)
    "ib_gateway_log_window": ("IBGatewayLoginAlert", {'trademon_ib_gateway_log_alerts_total{gateway_alert="ALERT_2FA_FAILED", job="alloy"}':
                                                      "_x9 1x50"}, "35m", "41m"),
}

# The money alerts' `for`, checked by evaluation too: the condition from 10m on fires at 10m + for
# (TUNED), not one evaluation earlier (where the default, shorter, would have fired).
FOR_BY_EVALUATION = {
    "tws_lost_for": ("TWSConnectionLost", {f"ib_connected{{{IB}}}": "1x9 0x50"}),
    "reconciliation_for": ("PositionReconciliationMismatch",
                           {f'position_reconciliation_discrepancy{{account="DU1", symbol="AAPL", {IB}}}': "0x9 5x50"}),
    "broker_view_lost_for": ("BrokerViewLost", {f"up{{{IB}}}": "1x9 0x50"}),
    "ib_2fa_for": ("IBGateway2FARequired", {f"ib_gateway_2fa_required{{{IB}}}": "0x9 1x50"}),
    "ib_controller_down_for": ("IBGatewayControllerDown", {f'ib_gateway_controller_up{{check="health", {IB}}}': "1x9 0x50"}),
    "broker_data_missing_for": ("BrokerDataMissing", {f'daily_pnl{{account="DU1", {IB}}}': "1x9 stale",
                                                      f"ib_connected{{{IB}}}": "1x60"}),
}


def minutes(d: str) -> int:
    return int(d.removesuffix("m"))


def case(name: str, alert: str, series: dict[str, str], fires: list[str], quiet: list[str]) -> dict:
    """A promtool test: ``alert`` firing at the ``fires`` times, not at the ``quiet`` ones."""
    firing = f'count(ALERTS{{alertname="{alert}", alertstate="firing"}})  # {name}'  # promtool names the expr, not the test
    return {"name": name, "interval": "1m",
            "input_series": [{"series": s, "values": v} for s, v in series.items()],
            "promql_expr_test": [{"expr": firing, "eval_time": t, "exp_samples": [{"labels": "{}", "value": 1}]} for t in fires]
                                + [{"expr": firing, "eval_time": t, "exp_samples": []} for t in quiet]}


def tuned_cases() -> list[dict]:
    out = []
    for key, (alert, step, series, at) in NUMERIC.items():
        v = TUNED[key]
        out.append(case(f"{key} {v}: {alert} at {n(v + step)}", alert, series(v + step), [at], []))
        out.append(case(f"{key} {v}: no {alert} at {n(v - step)}", alert, series(v - step), [], [at]))
    for key, (alert, series, fires, quiet) in WINDOWS.items():
        out.append(case(f"{key} {TUNED[key]}: {alert}", alert, series, [fires], [quiet]))
    for key, (alert, series) in FOR_BY_EVALUATION.items():
        f = 10 + minutes(TUNED[key])
        out.append(case(f"{key} {TUNED[key]}: {alert}", alert, series, [f"{f}m"], [f"{f - 1}m"]))
    # The loss page's text: the tuned limit and currency.
    limit, currency = TUNED["daily_loss_limit"], TUNED["currency"]
    out.append({"name": "daily_loss_limit and currency: the page's text", "interval": "1m",
                "input_series": [{"series": f'daily_pnl{{account="DU1", {IB}}}', "values": flat(limit - 1)}],
                "alert_rule_test": [{"eval_time": "1m", "alertname": "DailyLossLimitBreach", "exp_alerts": [{
                    "exp_labels": {"severity": "critical", "account": "DU1"},
                    "exp_annotations": {
                        "summary": "Daily loss limit breached on DU1",
                        "description": f"Account DU1: daily P&L {limit - 1:.2f} {currency}, limit {limit}.",
                        "runbook_url": "https://github.com/trademon/trademon/blob/main/monitoring/runbooks.md#dailylosslimitbreach",
                        "dashboard": "/d/trademon-pnl"}}]}]})
    return out


@pytest.mark.promtool  # promtool evaluates every test file: tens of seconds
def test_tuned_thresholds_move_the_rules_along(tmp_path):
    """Every threshold changed at once: the regenerated rules load, each numeric threshold and
    window fires at its tuned value (and not at the other side of it), each `for` is the tuned
    one, and the committed rules are reported out of date (CI fails until `trademon gen`)."""
    from trademon.gen import check

    assert set(TUNED) == set(thresholds.load(ROOT)), "update TUNED: every threshold of monitoring/config.yml, tuned"
    for_keys = {a.for_ for a in gen_rules.ALERTS if a.for_}
    checked = set(NUMERIC) | set(WINDOWS) | for_keys | {"currency", "money_evaluation_interval"}
    assert checked == set(TUNED), f"give these thresholds a check: {sorted(set(TUNED) - checked)}"

    (tmp_path / "monitoring").mkdir()
    (tmp_path / thresholds.CONFIG_FILE).write_text(yaml.safe_dump(tuned_config(TUNED)))
    for rel, render in gen_rules.GENERATED:
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_text(render(tmp_path))
    rule_paths = [tmp_path / gen_rules.RULES_FILE, tmp_path / gen_rules.ALERTS_FILE, tmp_path / threshold_rules.TEST_COPY]
    r = promtool("check", "rules", *map(str, rule_paths))
    assert r.returncode == 0, r.stdout + r.stderr

    groups = yaml.safe_load((tmp_path / gen_rules.ALERTS_FILE).read_text())["groups"]
    assert {g["name"]: g.get("interval") for g in groups}[gen_rules.MONEY_GROUP] == TUNED["money_evaluation_interval"]
    rendered = {r["alert"]: r for g in groups for r in g["rules"]}
    for a in gen_rules.ALERTS:
        if a.for_:
            want = None if TUNED[a.for_] == "0s" else TUNED[a.for_]
            assert rendered[a.name].get("for") == want, f"{a.name}: for {rendered[a.name].get('for')}, tuned {want}"

    tests = {"rule_files": [str(p) for p in rule_paths], "evaluation_interval": "1m",
             "group_eval_order": [threshold_rules.GROUP, *gen_rules.RECORDING_GROUPS, gen_rules.MONEY_GROUP, gen_rules.ALERTS_GROUP],
             "tests": tuned_cases()}
    (tmp_path / "tuned_test.yml").write_text(yaml.safe_dump(tests, sort_keys=False, width=1000))
    r = promtool("test", "rules", str(tmp_path / "tuned_test.yml"))
    assert r.returncode == 0, r.stdout + r.stderr

    # The committed copies against the tuned thresholds: stale (all but the recording rules,
    # which take no threshold), with the fix in the message.
    for rel, _ in gen_rules.GENERATED:
        shutil.copy(ROOT / rel, tmp_path / rel)
    problems = check(tmp_path, {rel for rel, _ in gen_rules.GENERATED})  # only these: the others need more of a checkout
    assert sorted(p.split()[0] for p in problems) == sorted(rel for rel, _ in gen_rules.GENERATED if rel != gen_rules.RULES_FILE)
    assert all("run `trademon gen`" in p for p in problems)


def test_readme_counts_the_alerts():
    alerts, _ = load_rules()
    readme = (ROOT / "README.md").read_text()
    assert f"{len(alerts)} alerts (" in readme, f"README's overview should say {len(alerts)} alerts"


def test_every_promtool_test_file_loads_the_threshold_rules():
    """The alerts compare with threshold series: a test file without them tests blind alerts
    (thresholds.yml gives them as input series on purpose, to test their absence)."""
    for f in promtool_test_files():
        doc = yaml.safe_load(f.read_text())
        if f.name == "thresholds.yml":
            continue
        assert "rendered/trademon.thresholds.yml" in doc["rule_files"], f"{f.name}: add rendered/trademon.thresholds.yml to rule_files"
        assert doc["group_eval_order"][0] == threshold_rules.GROUP, f"{f.name}: evaluate {threshold_rules.GROUP} first"
