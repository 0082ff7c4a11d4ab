"""Loki, Promtail and Alloy configs: the fields the log pipeline depends on.

None of the three runs here (no package on this machine), so the configs are checked for
what matters: Loki's schema, retention and ruler; Promtail's and Alloy's discovery, labels
and JSON parsing, against what trademon's JSON logger really writes; and Alloy doing what
Promtail does, rule for rule.
"""

from __future__ import annotations

import io
import json
import logging
import re
from pathlib import Path

import pytest
import yaml

from trademon import contract
from trademon.logs import JsonFormatter

ROOT = Path(__file__).resolve().parents[1]
LOKI = yaml.safe_load((ROOT / "loki" / "loki.yml").read_text())
PROMTAIL = yaml.safe_load((ROOT / "promtail" / "promtail.yml").read_text())
ALLOY_TEXT = (ROOT / "alloy" / "config.alloy").read_text()
LOG_LABELS = ("level", "logger", "service")


def hours(d: str) -> float:
    mt = re.fullmatch(r"(\d+)([hd])", d)
    assert mt, f"not a duration in hours or days: {d}"
    return int(mt[1]) * (24 if mt[2] == "d" else 1)


def trademon_log_line() -> dict:
    """One line as trademon's services write it."""
    buf = io.StringIO()
    handler = logging.StreamHandler(buf)
    handler.setFormatter(JsonFormatter("automatictrader-api"))
    lg = logging.getLogger("trademon.test.logging_configs")
    lg.addHandler(handler)
    lg.propagate = False
    try:
        lg.error("order rejected", extra={"code": 201})
    finally:
        lg.removeHandler(handler)
    return json.loads(buf.getvalue())


# --- Loki --------------------------------------------------------------------------------


def test_loki_single_binary_tsdb_v13_on_the_filesystem():
    assert LOKI["auth_enabled"] is False
    assert LOKI["server"]["http_listen_port"] == contract.JOBS["loki"].port
    assert LOKI["common"]["replication_factor"] == 1
    assert LOKI["common"]["ring"]["kvstore"]["store"] == "inmemory"
    assert "filesystem" in LOKI["common"]["storage"]
    (schema,) = LOKI["schema_config"]["configs"]
    assert (schema["store"], schema["schema"], schema["object_store"]) == ("tsdb", "v13", "filesystem")
    assert schema["index"]["period"] == "24h", "compactor retention needs the 24h index period"


def test_loki_keeps_30_days_through_the_compactor():
    c = LOKI["compactor"]
    assert c["retention_enabled"] is True
    assert c["delete_request_store"] == "filesystem", "Loki 3 refuses retention without a delete request store"
    assert c["working_directory"].startswith(LOKI["common"]["path_prefix"])
    assert hours(LOKI["limits_config"]["retention_period"]) == 30 * 24


def test_loki_ruler_sends_to_the_stacks_alertmanager():
    r = LOKI["ruler"]
    assert r["alertmanager_url"] == f"http://alertmanager:{contract.JOBS['alertmanager'].port}"
    assert r["storage"]["type"] == "local" and r["storage"]["local"]["directory"]
    assert r["enable_api"] is True


# --- Promtail ----------------------------------------------------------------------------


def scrape(name: str) -> dict:
    (sc,) = [s for s in PROMTAIL["scrape_configs"] if s["job_name"] == name]
    return sc


def stage(stages: list[dict], kind: str) -> dict:
    found = [s[kind] for s in stages if kind in s]
    assert found, f"no {kind} stage"
    return found[-1]


def test_promtail_pushes_to_loki_and_serves_on_its_contract_port():
    assert PROMTAIL["server"]["http_listen_port"] == contract.JOBS["promtail"].port
    (client,) = PROMTAIL["clients"]
    assert client["url"] == f"http://loki:{contract.JOBS['loki'].port}/loki/api/v1/push"
    assert PROMTAIL["positions"]["filename"].startswith("/var/lib/promtail/")


def test_promtail_discovers_containers_and_labels_them_job_trading():
    sc = scrape("containers")
    (sd,) = sc["docker_sd_configs"]
    assert sd["host"] == "unix:///var/run/docker.sock"
    rules = sc["relabel_configs"]
    job_rules = [r for r in rules if r.get("target_label") == "job"]
    assert job_rules[0] == {"target_label": "job", "replacement": "trading"}
    # The monitoring stack's own containers are told apart, so {job="trading"} is the trading side.
    monitoring = job_rules[1]
    assert monitoring["replacement"] == "monitoring"
    names = set(monitoring["regex"].split("|"))
    assert set(contract.jobs_of_kind("stack")) <= names
    assert not names & set(contract.jobs_of_kind("trading")) and not names & set(contract.jobs_of_kind("trademon"))


@pytest.mark.parametrize("job", ["containers", "trading-files"])
def test_promtail_parses_trademon_json_and_lifts_level_logger_service(job):
    stages = scrape(job)["pipeline_stages"]
    line = trademon_log_line()
    expressions = stage(stages, "json")["expressions"]
    for label in LOG_LABELS:
        assert label in stage(stages, "labels"), f"{job}: {label} is not a label"
        assert expressions[label] in line, f"{job}: trademon's log lines have no {expressions[label]!r} key"
    ts = stage(stages, "timestamp")
    assert line[expressions[ts["source"]]].endswith("Z") and ts["format"] == "RFC3339Nano"
    # The line itself is left whole: no output stage replaces it.
    assert not any("output" in s for s in stages)


def test_promtail_file_job_reads_trading_log_files():
    sc = scrape("trading-files")
    (static,) = sc["static_configs"]
    assert static["labels"]["job"] == "trading"
    assert static["labels"]["__path__"].startswith("/var/log/trading/")
    expr = stage(sc["pipeline_stages"], "regex")["expression"]
    assert re.fullmatch(expr, "/var/log/trading/orders.log")["file_service"] == "orders"


def promtail_labels() -> set[str]:
    """Every label Promtail can attach to a stream."""
    labels = {"filename"}  # set by Promtail on file targets
    for sc in PROMTAIL["scrape_configs"]:
        labels |= {r["target_label"] for r in sc.get("relabel_configs", []) if "target_label" in r}
        labels |= {k for s in sc.get("static_configs", []) for k in s.get("labels", {}) if not k.startswith("__")}
        labels |= {k for s in sc.get("pipeline_stages", []) if "labels" in s for k in s["labels"]}
    return labels


def test_the_logs_dashboard_selects_only_labels_promtail_sets():
    dash = json.loads((ROOT / "grafana/dashboards/Operations/logs.json").read_text())
    exprs = [t["expr"] for p in dash["panels"] for t in p.get("targets", [])]
    assert exprs
    for e in exprs:
        selector = re.search(r"\{([^}]*)\}", e)[1]
        used = set(re.findall(r"(\w+)\s*(?:=~|!=|!~|=)", selector))
        assert used <= promtail_labels(), f"{e}: {used - promtail_labels()} is a label no shipper sets"


# --- Alloy -------------------------------------------------------------------------------

BLOCK = re.compile(r'^([a-z_]+(?:\.[a-z_]+)+)\s+"(\w+)"\s*\{', re.M)
REFERENCE = re.compile(r"\b((?:discovery|loki|local)\.[a-z_]+)\.(\w+)\.(receiver|targets|rules)\b")


def alloy_code() -> str:
    """The config without its comments (whole-line ``//`` comments: URLs keep their ``//``)."""
    return "\n".join("" if line.lstrip().startswith("//") else line for line in ALLOY_TEXT.splitlines())


def alloy_blocks(kind: str) -> list[str]:
    """The bodies of the top-level ``kind { ... }`` blocks (nesting aware)."""
    code = alloy_code()
    out = []
    for mt in re.finditer(rf"(?m)^\s*{re.escape(kind)}\s*(?:\"\w+\"\s*)?\{{", code):
        depth, i = 1, mt.end()
        while depth:
            depth += {"{": 1, "}": -1}.get(code[i], 0)
            i += 1
        out.append(code[mt.end(): i - 1])
    return out


def alloy_attrs(body: str) -> dict:
    """``key = "string"`` and ``key = ["a", "b"]`` attributes of a block body."""
    attrs = {}
    for key, value in re.findall(r'(?m)^\s*(\w+)\s*=\s*(".*"|\[.*\])\s*$', body):
        attrs[key] = json.loads(value)
    return attrs


def test_alloy_braces_balance_and_every_reference_is_declared():
    code = alloy_code()
    assert code.count("{") == code.count("}")
    declared = {f"{kind}.{name}" for kind, name in BLOCK.findall(code)}
    assert declared
    refs = {f"{kind}.{name}" for kind, name, _ in REFERENCE.findall(code)}
    assert refs and refs <= declared, f"references to undeclared components: {refs - declared}"
    assert {"discovery.docker.containers", "loki.source.docker.containers", "loki.source.file.trading_files",
            "loki.write.loki"} <= declared


def test_alloy_relabels_exactly_as_promtail_does():
    promtail_rules = scrape("containers")["relabel_configs"]
    (relabel,) = alloy_blocks('discovery.relabel')
    alloy_rules = [alloy_attrs(b) for b in re.findall(r"rule\s*\{([^}]*)\}", relabel)]
    assert alloy_rules == promtail_rules


def test_alloy_ships_to_loki_with_the_same_labels_and_files():
    (write,) = alloy_blocks("loki.write")
    assert f'url = "http://loki:{contract.JOBS["loki"].port}/loki/api/v1/push"' in write
    (docker,) = alloy_blocks("discovery.docker")
    assert alloy_attrs(docker)["host"] == scrape("containers")["docker_sd_configs"][0]["host"]
    (files,) = alloy_blocks("local.file_match")
    static = scrape("trading-files")["static_configs"][0]["labels"]
    assert f'"__path__" = "{static["__path__"]}"' in files and f'"job" = "{static["job"]}"' in files
    processes = "\n".join(alloy_blocks("loki.process"))
    line = trademon_log_line()
    for label in LOG_LABELS:
        assert f'{label} = "{label}"' in processes and label in line  # stage.json reads the key
        assert re.search(rf"stage\.labels\s*\{{[^}}]*\b{label}\s*=", processes), f"{label} is not a label in Alloy"
