"""The committed dashboards and Grafana provisioning, checked without Grafana.

Every PromQL and LogQL expression is parsed by the grammars Grafana's own query editors
use (tools/logql: @prometheus-io/lezer-promql, @grafana/lezer-logql); every metric a query
names must be in the contract, a recording rule, or Prometheus' own series; every uid a
panel names must be provisioned; thresholds must come from monitoring/config.yml.
"""

from __future__ import annotations

import copy
import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from trademon import contract, grafana_uids
from trademon.settings import thresholds
from trademon.thresholds import render as threshold_rules
from trademon.gen import dashboard_queries as dq
from trademon.gen import dashboards as gen
from trademon.gen.grafana_panels import EXTERNAL_EXPORTERS, PROMETHEUS_BUILTIN_SERIES, STACK_ENGINE_SERIES

ROOT = Path(__file__).resolve().parents[1]
PARSER_DIR = ROOT / "tools" / "logql"
DOCS = dq.load(ROOT)
QUERIES = [q for d in DOCS for q in dq.queries(d)]
LABEL_VALUES = re.compile(r"^label_values\((?P<selector>.+),\s*(?P<label>\w+)\)$")


def lezer_parse(items: list[tuple[str, str]]) -> list[dict]:
    """Parse (lang, expr) pairs with tools/logql/parse.mjs; one result per pair."""
    node = shutil.which("node")
    if node is None:
        pytest.fail("node is not installed: scripts/test installs it (apt-get install nodejs npm)")
    if not (PARSER_DIR / "node_modules" / "@grafana" / "lezer-logql").is_dir():
        pytest.fail(f"the query parsers are not installed: run `npm ci --prefix {PARSER_DIR.relative_to(ROOT)}`")
    out = subprocess.run([node, str(PARSER_DIR / "parse.mjs")], input=json.dumps([{"lang": lang, "expr": e} for lang, e in items]),
                         capture_output=True, text=True, timeout=60, check=False)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)


def parseable(q: dq.Query) -> str:
    """What a parser should see: Grafana's variables replaced, label_values() reduced to its selector."""
    expr = q.concrete(dq.variable_names(next(d for d in DOCS if d["uid"] == q.dashboard)))
    if q.kind == "variable" and q.lang == "promql":
        mt = LABEL_VALUES.match(expr)
        assert mt, f"{q}: a Prometheus variable query should be label_values(<metric>, <label>)"
        expr = mt["selector"]
    return expr


def recording_rules() -> set[str]:
    """The generated recording rules and the threshold series (rendered at run time)."""
    return {r["record"] for f in ("monitoring/rules/trademon.rules.yml", threshold_rules.TEST_COPY)
            for g in yaml.safe_load((ROOT / f).read_text())["groups"] for r in g["rules"] if "record" in r}


def rule_exprs() -> list[str]:
    out = []
    for f in sorted((ROOT / "monitoring" / "rules").glob("*.yml")):
        for g in yaml.safe_load(f.read_text())["groups"]:
            out += [r["expr"] for r in g["rules"]]
    return out


@pytest.fixture(scope="module")
def parsed() -> dict[dq.Query, dict]:
    items = [(q.lang, parseable(q)) for q in QUERIES]
    return dict(zip(QUERIES, lezer_parse(items)))


# --- the set of dashboards ---------------------------------------------------------------


def test_eight_dashboards_with_the_uids_of_grafana_uids():
    uids = [d["uid"] for d in DOCS]
    assert len(uids) == len(set(uids)), "dashboard uids must be unique"
    assert sorted(uids) == sorted(grafana_uids.DASHBOARDS.values())
    titles = {d["title"] for d in DOCS}
    assert titles == {"Trading Overview", "Real-time P&L", "Latency Heatmaps", "Risk Exposure", "System Health",
                      "Worker Performance", "Logs", "Broker Truth"}


def test_uids_are_stable_file_names_and_folders_follow_the_layout():
    """The uid is fixed by grafana_uids, the file by its key: renaming a title changes neither."""
    for key, uid in grafana_uids.DASHBOARDS.items():
        path = ROOT / gen.dashboard_path(key)
        assert path.exists(), f"{path} missing: run `trademon gen`"
        assert json.loads(path.read_text())["uid"] == uid
    folders = {p.parent.name for p in dq.dashboard_files(ROOT)}
    assert folders == set(gen.FOLDERS.values())


def test_a_generated_dashboard_is_deterministic():
    t = thresholds.load(ROOT)
    pattern = thresholds.load_config(ROOT)["runbook_url_pattern"]
    a = gen.render_dashboard(gen.BOARDS["overview"][1](t), pattern)
    b = gen.render_dashboard(gen.BOARDS["overview"][1](t), pattern)
    assert a == b


# --- datasources and provisioning --------------------------------------------------------


def provisioned_datasources() -> dict[str, dict]:
    doc = yaml.safe_load((ROOT / "grafana/provisioning/datasources/trademon.yml").read_text())
    return {d["uid"]: d for d in doc["datasources"]}


def every_datasource_ref(node, where="") -> list[tuple[str, dict]]:
    """Every {"uid": ..., "type": ...} datasource reference anywhere in a dashboard."""
    found = []
    if isinstance(node, dict):
        ds = node.get("datasource")
        if isinstance(ds, dict):
            found.append((where, ds))
        elif isinstance(ds, str):
            found.append((where, {"uid": ds, "type": "?"}))
        for k, v in node.items():
            found += every_datasource_ref(v, f"{where}/{node.get('title', k)}")
    elif isinstance(node, list):
        for v in node:
            found += every_datasource_ref(v, where)
    return found


def test_datasources_have_fixed_uids_for_prometheus_loki_alertmanager():
    ds = provisioned_datasources()
    assert {d["type"] for d in ds.values()} == {"prometheus", "loki", "alertmanager"}
    for d in ds.values():
        assert d["uid"].startswith("trademon-"), d
        port = contract.JOBS[d["type"]].port
        assert d["url"] == f"http://{d['type']}:{port}", d
    assert sum(d.get("isDefault", False) for d in ds.values()) == 1


def datasource_variables(doc) -> dict[str, dict]:
    return {v["name"]: v for v in doc.get("templating", {}).get("list", []) if v["type"] == "datasource"}


@pytest.mark.parametrize("doc", DOCS, ids=[d["uid"] for d in DOCS])
def test_every_datasource_a_dashboard_names_is_a_variable_defaulting_to_the_provisioned_one(doc):
    ds = provisioned_datasources()
    text = json.dumps(doc)
    assert "${DS_" not in text, "dashboards pick datasources with variables, never through ${DS_...} import inputs"
    variables = datasource_variables(doc)
    refs = every_datasource_ref(doc)
    assert refs
    for where, ref in refs:
        name = re.fullmatch(r"\$\{(\w+)\}", ref["uid"])
        assert name and name.group(1) in variables, f"{doc['uid']}{where}: datasource {ref['uid']!r} is not one of the dashboard's datasource variables"
        var = variables[name.group(1)]
        assert ref["type"] == var["query"], f"{doc['uid']}{where}: type {ref['type']} != the variable's {var['query']}"
    for name, var in variables.items():
        # Default: the provisioned datasource of that type (any other one can be picked).
        default = var["current"]["value"]
        assert default in ds and ds[default]["type"] == var["query"], f"{doc['uid']}: ${name} defaults to {default!r}"
        assert not var.get("multi") and not var.get("includeAll")
    # Grafana resolves variables in order: the datasource variables come before any query variable.
    kinds = [v["type"] for v in doc["templating"]["list"]]
    assert kinds[:len(variables)] == ["datasource"] * len(variables)


@pytest.mark.parametrize("doc", DOCS, ids=[d["uid"] for d in DOCS])
def test_no_dashboard_hard_wires_a_datasource_uid(doc):
    """Importable into any Grafana: a provisioned uid appears only as a variable's default."""
    uids = set(provisioned_datasources())
    defaults = [v["current"] for v in datasource_variables(doc).values()]
    stripped = json.loads(json.dumps(doc))
    for v in datasource_variables(stripped).values():
        v.pop("current")
    found = [u for u in uids if u in json.dumps(stripped)]
    assert not found, f"{doc['uid']}: hard-wired datasource uid(s) {found}"
    assert all(d["value"] in uids for d in defaults)


def test_dashboard_provider_uses_folders_from_the_file_layout():
    doc = yaml.safe_load((ROOT / "grafana/provisioning/dashboards/trademon.yml").read_text())
    (p,) = doc["providers"]
    assert p["type"] == "file"
    assert p["options"]["foldersFromFilesStructure"] is True
    assert p["options"]["path"] == gen.CONTAINER_DASHBOARD_DIR


# --- panels ------------------------------------------------------------------------------


def panels(doc):
    for p in doc["panels"]:
        if p["type"] != "row":
            yield p
        yield from p.get("panels", [])


@pytest.mark.parametrize("doc", DOCS, ids=[d["uid"] for d in DOCS])
def test_every_panel_has_a_unit_thresholds_a_description_and_a_unique_title(doc):
    titles = [p["title"] for p in panels(doc)]
    assert len(titles) == len(set(titles)), f"{doc['uid']}: duplicate panel titles"
    ids = [p["id"] for p in doc["panels"]]
    assert len(ids) == len(set(ids))
    for p in panels(doc):
        defaults = p.get("fieldConfig", {}).get("defaults", {})
        assert defaults.get("unit"), f"{doc['uid']}: panel {p['title']!r} has no unit"
        assert p.get("description"), f"{doc['uid']}: panel {p['title']!r} has no description"
        if p["type"] not in ("logs", "heatmap"):
            assert defaults.get("thresholds", {}).get("steps"), f"{doc['uid']}: panel {p['title']!r} has no thresholds"
        assert p.get("targets"), f"{doc['uid']}: panel {p['title']!r} has no query"


@pytest.mark.parametrize("doc", DOCS, ids=[d["uid"] for d in DOCS])
def test_every_variable_a_query_uses_is_defined(doc):
    defined = set(dq.variable_names(doc)) | set(dq.BUILTINS)
    for q in dq.queries(doc):
        for name in re.findall(r"\$\{?(\w+)", q.expr):
            assert name in defined, f"{q}: ${name} is not a variable of the dashboard"


def test_strategy_symbol_account_variables_where_they_make_sense():
    by_uid = {d["uid"]: set(dq.variable_names(d)) for d in DOCS}
    u = grafana_uids.DASHBOARDS
    assert {"strategy", "account"} <= by_uid[u["overview"]]
    assert {"strategy", "account"} <= by_uid[u["pnl"]]
    assert {"account", "symbol"} <= by_uid[u["risk"]]
    assert "strategy" in by_uid[u["latency"]]
    assert "symbol" in by_uid[u["health"]]
    assert {"service", "level"} <= by_uid[u["logs"]]


def test_heatmaps_come_from_histogram_buckets():
    heatmaps = [(d["uid"], p) for d in DOCS for p in panels(d) if p["type"] == "heatmap"]
    assert len(heatmaps) >= 5
    histograms = {m.name for m in contract.METRICS if m.type == contract.HISTOGRAM}
    for uid, p in heatmaps:
        (t,) = p["targets"]
        assert t["format"] == "heatmap", (uid, p["title"])
        mt = re.fullmatch(r"sum by \(le\) \(rate\((\w+)_bucket(\{.*\})?\[\$__rate_interval\]\)\)", t["expr"])
        assert mt and mt[1] in histograms, (uid, p["title"], t["expr"])
        assert p["options"]["calculate"] is False
    used = {re.search(r"rate\((\w+)_bucket", p["targets"][0]["expr"])[1] for _, p in heatmaps}
    assert {"api_request_duration_seconds", "order_ack_latency_seconds", "order_fill_latency_seconds",
            "worker_processing_duration_seconds"} <= used


# --- links and annotations ---------------------------------------------------------------


def all_links(doc):
    yield from doc.get("links", [])
    for p in panels(doc):
        yield from p.get("links", [])


def test_links_point_at_existing_dashboards_and_runbook_sections():
    uids = set(grafana_uids.DASHBOARDS.values())
    alerts = {a.name for a in gen.rules.ALERTS}
    runbooks = ROOT / "monitoring" / "runbooks.md"
    headings = {h.strip().lower() for h in re.findall(r"^##\s+(.+)$", runbooks.read_text(), re.M)}
    pattern = thresholds.load_config(ROOT)["runbook_url_pattern"]
    runbook_links = 0
    for doc in DOCS:
        for ln in all_links(doc):
            url = ln.get("url", "")
            if url.startswith("/d/"):
                assert url.split("?")[0][3:] in uids, f"{doc['uid']}: link {ln['title']!r} to an unknown dashboard {url}"
            elif "#" in url:
                runbook_links += 1
                anchor = url.split("#", 1)[1]
                assert anchor in {a.lower() for a in alerts}, f"{doc['uid']}: runbook anchor #{anchor} is no alert"
                assert url == pattern.replace("{alert}", anchor), f"{doc['uid']}: {url} is not of the config's runbook_url_pattern"
                assert anchor in headings, f"monitoring/runbooks.md has no section for #{anchor}"
    assert runbook_links >= 20


def test_every_dashboard_links_to_the_others_and_to_logs():
    for doc in DOCS:
        kinds = [(ln["type"], ln.get("tags"), ln.get("url", "")) for ln in doc["links"]]
        assert ("dashboards", ["trademon"], "") in [(k, t, u) for k, t, u in kinds if k == "dashboards"]
        assert "trademon" in doc["tags"]
        if doc["uid"] != grafana_uids.DASHBOARDS["logs"]:
            assert any(u.startswith(grafana_uids.path("logs")) for _, _, u in kinds), doc["uid"]


def test_alerts_are_annotations_from_the_alerts_series():
    alerts = {a.name for a in gen.rules.ALERTS}
    for doc in DOCS:
        ann = doc["annotations"]["list"]
        assert any(a["expr"].startswith("ALERTS{") and 'alertstate="firing"' in a["expr"] for a in ann), doc["uid"]
        for a in ann:
            named = re.search(r'alertname=~"([^"]+)"', a["expr"])
            if named:
                assert set(named[1].split("|")) <= alerts, (doc["uid"], a["expr"])


# --- thresholds come from monitoring/config.yml ------------------------------------


def threshold_values(doc) -> set[float]:
    vals = set()
    for p in panels(doc):
        for s in p.get("fieldConfig", {}).get("defaults", {}).get("thresholds", {}).get("steps", []):
            if s.get("value") is not None:
                vals.add(round(float(s["value"]), 9))
    return vals


@pytest.mark.parametrize("key, board", [
    ("daily_loss_limit", "overview"), ("daily_loss_limit", "pnl"), ("rejection_ratio", "overview"), ("exposure_ratio", "risk"),
])
def test_alert_threshold_colours_are_drawn_from_thresholds_yml(key, board):
    """Change a threshold and the stat panels' colours follow at `trademon gen` (Grafana has one
    threshold per panel): the value is read, not retyped. Their lines are series (below)."""
    t = thresholds.load(ROOT)
    moved = copy.deepcopy(t)
    moved[key] = t[key] * 1.37 + (3 if t[key] == 0 else 0)
    factory = gen.BOARDS[board][1]
    before = threshold_values(factory(t).build())
    after = threshold_values(factory(moved).build())
    assert round(float(t[key]), 9) in before, f"{board} draws no threshold at {key}={t[key]}"
    assert round(float(moved[key]), 9) in after, f"{board} does not follow {key} in thresholds.yml"


def drawn_lines(doc) -> list[tuple[str, float]]:
    """(panel title, value) of each fixed line a time series panel draws (its thresholds, dashed)."""
    out = []
    for p in panels(doc):
        defaults = p.get("fieldConfig", {}).get("defaults", {})
        if p["type"] == "timeseries" and defaults.get("custom", {}).get("thresholdsStyle", {}).get("mode", "off") != "off":
            out += [(p["title"], round(float(s["value"]), 9)) for s in defaults["thresholds"]["steps"] if s.get("value") is not None]
    return sorted(out)


def test_no_time_series_draws_an_alert_threshold_fixed_at_gen():
    """A line drawn at a number of monitoring/config.yml stays where `trademon gen` put it while a
    reload moves the alert: with every number moved, no drawn line may move (the limit lines are
    the threshold series instead, test_limit_lines_are_the_threshold_series_in_force)."""
    t = thresholds.load(ROOT)
    moved = {**t, **{k: v * 1.37 + (3 if v == 0 else 0) for k, v in thresholds.numbers(ROOT).items()}}
    for name, (_, factory) in gen.BOARDS.items():
        assert drawn_lines(factory(moved).build()) == drawn_lines(factory(t).build()), f"{name} draws a threshold fixed at gen"


@pytest.mark.parametrize("key, board", [
    ("daily_loss_limit", "overview"), ("daily_loss_limit", "pnl"), ("exposure_ratio", "risk"),
    ("intent_error_ratio", "overview"), ("intent_error_ratio", "workers"), ("rejection_ratio", "overview"),
    ("fill_ratio_min", "overview"), ("slippage_pct", "pnl"), ("slippage_pct", "latency"), ("api_p99_seconds", "latency"),
    ("active_orders_warning", "broker"), ("active_orders_max", "broker"), ("ib_md_quote_stale_seconds", "health"),
    ("marketdata_stale_seconds", "health"), ("outbox_stuck_seconds", "health"), ("page_latency_p95_seconds", "health"),
    ("remote_write_lag_seconds", "health"), ("worker_lag_seconds", "workers"), ("intents_pending_max", "workers"),
])
def test_limit_lines_are_the_threshold_series_in_force(key, board):
    """The alert's threshold as a dashed red line of its series (trademon:threshold:<key>): a reload moves it."""
    doc = gen.BOARDS[board][1](thresholds.load(ROOT)).build()
    lines = [(p, t) for p in panels(doc) if p["type"] == "timeseries" for t in p.get("targets", [])
             if threshold_rules.series(key) + "{" in t["expr"]]
    assert lines, f"{board} has no line of {threshold_rules.series(key)}"
    for p, t in lines:
        style = {o["matcher"]["options"]: o["properties"] for o in p.get("fieldConfig", {}).get("overrides", [])
                 if o["matcher"]["id"] == "byFrameRefID"}
        assert {"id": "custom.lineStyle", "value": {"fill": "dash", "dash": [10, 10]}} in style.get(t["refId"], []), (p["title"], t)


# --- queries parse, and name only metrics that exist ------------------------------------


@pytest.mark.node
def test_every_query_parses(parsed):
    bad = [f"{q}\n    errors near: {[e['near'] for e in r['errors']]}" for q, r in parsed.items() if r["errors"]]
    assert not bad, "queries that do not parse:\n" + "\n".join(bad)
    assert {q.lang for q in parsed} == {"promql", "logql"}


@pytest.mark.node
def test_the_parser_catches_a_broken_query():
    """The check above can fail: a broken query of each language has error nodes, a sound one none."""
    results = lezer_parse([("promql", "sum(rate(order_intents_created_total[1m])"), ("logql", '{job="trading"} |= '),
                           ("promql", 'sum by (le) (rate(x_bucket{a=~".*"}[1m]))'), ("logql", gen.SEED_LOG_QUERY)])
    assert [bool(r["errors"]) for r in results] == [True, True, False, False]


def allowed_series() -> set[str]:
    return contract.all_series_names() | recording_rules() | PROMETHEUS_BUILTIN_SERIES | STACK_ENGINE_SERIES


@pytest.mark.node
def test_every_metric_of_the_dashboards_is_in_the_contract_or_a_recording_rule(parsed):
    allowed = allowed_series()
    used = set()
    for q, r in parsed.items():
        if q.lang != "promql":
            continue
        assert r["metrics"] or q.kind == "panel" and "time()" in q.expr, f"{q}: names no metric"
        external = set(EXTERNAL_EXPORTERS[q.needs]["metrics"]) if q.needs else set()
        unknown = set(r["metrics"]) - allowed - external
        assert not unknown, f"{q}: {sorted(unknown)} not in the contract, a recording rule or Prometheus' own series"
        if q.needs and not all(x.startswith(threshold_rules.PREFIX) for x in r["metrics"]):  # a limit line beside its data
            assert set(r["metrics"]) & external, f"{q}: marked as needing {q.needs} but uses none of its metrics"
        else:
            assert not set(r["metrics"]) & {m for e in EXTERNAL_EXPORTERS.values() for m in e["metrics"]}, \
                f"{q}: uses an external exporter's metric without saying so (Panel needs=...)"
        used |= set(r["metrics"])
    # The dashboards cover the contract: every metric of the trading jobs shows somewhere.
    shown = {s for s in used}
    missing = [m.name for m in contract.METRICS if not set(m.series_names) & shown and not _via_rule(m.name, shown)]
    assert not missing, f"contract metrics no dashboard shows: {missing}"


def _via_rule(metric: str, shown: set[str]) -> bool:
    rules = yaml.safe_load((ROOT / "monitoring" / "rules" / "trademon.rules.yml").read_text())
    return any(r["record"] in shown and metric in r["expr"] for g in rules["groups"] for r in g["rules"])


@pytest.mark.node
def test_every_metric_of_the_rules_is_in_the_contract_or_a_recording_rule():
    # and the log shipper's counter of the gateway's ALERT_* tokens (tests/test_logging_configs.py checks its config)
    allowed = allowed_series() | {contract.IB_GATEWAY_LOG_ALERTS_COUNTER}
    exprs = rule_exprs()
    assert exprs
    results = lezer_parse([("promql", e) for e in exprs])
    for e, r in zip(exprs, results):
        assert not r["errors"], f"rule expression does not parse: {e}"
        unknown = set(r["metrics"]) - allowed
        assert not unknown, f"rule uses {sorted(unknown)}, not in the contract nor a recording rule: {e}"


@pytest.mark.node
def test_a_metric_name_typo_is_caught():
    """The name check can fail: a misspelt metric is neither contract, rule nor builtin."""
    (r,) = lezer_parse([("promql", "sum(rate(orders_filed_total[5m]))")])
    assert r["metrics"] == ["orders_filed_total"] and "orders_filed_total" not in allowed_series()


# --- logs ------------------------------------------------------------------------------


def test_logs_dashboard_shows_errors_first_with_the_seed_query():
    (doc,) = [d for d in DOCS if d["uid"] == grafana_uids.DASHBOARDS["logs"]]
    ps = list(panels(doc))
    assert all(p["datasource"]["type"] == "loki" for p in ps)
    first_row = doc["panels"][0]
    assert first_row["type"] == "row" and "error" in first_row["title"].lower()
    assert "error" in ps[0]["targets"][0]["expr"]
    exprs = [t["expr"] for p in ps for t in p["targets"]]
    assert gen.SEED_LOG_QUERY in exprs
    repeated = [p for p in ps if p.get("repeat") == "service"]
    assert repeated and 'level=~"$level"' in repeated[0]["targets"][0]["expr"]


@pytest.mark.node
def test_every_logql_stream_selector_names_job(parsed):
    """Streams are selected by job first (tests/test_logging_configs.py checks the labels the shippers set)."""
    logql = [(q, r) for q, r in parsed.items() if q.lang == "logql"]
    assert logql
    for q, r in logql:
        assert "job" in r["selectorLabels"], f"{q}: every stream selector names job"


def test_the_dashboard_an_alert_links_to_annotates_it_and_links_its_runbook():
    """An alert's `dashboard` annotation (rules) opens a dashboard that shows the alert and its runbook."""
    by_uid = {d["uid"]: d for d in DOCS}
    for a in gen.rules.ALERTS:
        if a.severity == "info":
            continue
        doc = by_uid[grafana_uids.DASHBOARDS[a.dashboard]]
        annotated = any(re.search(rf'alertname=~"[^"]*\b{a.name}\b', x["expr"]) for x in doc["annotations"]["list"])
        assert annotated, f"{a.name} links to {doc['uid']}, which does not show it as an annotation"
        urls = {ln.get("url", "") for p in panels(doc) for ln in p.get("links", [])}
        assert any(u.endswith(f"#{a.name.lower()}") for u in urls), f"{doc['uid']} has no panel linking to {a.name}'s runbook"
