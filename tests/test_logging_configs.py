"""Loki, Alloy (the shipper) and Promtail (the legacy profile) configs: the fields the log
pipeline depends on.

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
from trademon.runtime.logs import JsonFormatter
from trademon.settings.values import seconds

ROOT = Path(__file__).resolve().parents[1]
LOKI = yaml.safe_load((ROOT / "loki" / "loki.yml").read_text())
PROMTAIL = yaml.safe_load((ROOT / "promtail" / "promtail.yml").read_text())
ALLOY_TEXT = (ROOT / "alloy" / "config.alloy").read_text()
LOG_LABELS = ("level", "logger", "service")


def hours(d: str) -> float:
    return seconds(d) / 3600


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


def compose_service(name: str) -> dict:
    return yaml.safe_load((ROOT / "docker-compose.yml").read_text())["services"][name]


def test_alloy_serves_metrics_on_its_contract_port():
    assert f"--server.http.listen-addr=0.0.0.0:{contract.JOBS['alloy'].port}" in compose_service("alloy")["command"]


def test_promtail_pushes_to_loki_and_serves_on_its_exposed_port():
    assert [str(PROMTAIL["server"]["http_listen_port"])] == compose_service("promtail")["expose"]
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


def alloy_labels() -> set[str]:
    """Every label Alloy can attach to a stream (Alloy, like Promtail, sets filename on files)."""
    code = alloy_code()
    labels = {"filename"} | set(re.findall(r'(?m)^\s*target_label\s*=\s*"(\w+)"', code))
    labels |= {k for k in re.findall(r'"(\w+)"\s*=', "".join(re.findall(r"path_targets\s*=\s*\[(.*?)\]", code))) if not k.startswith("__")}
    labels |= {k for body in re.findall(r"stage\.labels\s*\{\s*values\s*=\s*\{([^}]*)\}", code) for k in re.findall(r"(\w+)\s*=", body)}
    return labels


def test_alloy_the_default_and_promtail_the_legacy_set_the_same_labels():
    assert alloy_labels() == promtail_labels()
    assert {"job", "container", "compose_service", "service", *LOG_LABELS} <= alloy_labels()


def test_the_logs_dashboard_selects_only_labels_the_shipper_sets():
    dash = json.loads((ROOT / "monitoring/dashboards/Operations/logs.json").read_text())
    exprs = [t["expr"] for p in dash["panels"] for t in p.get("targets", [])]
    assert exprs
    for e in exprs:
        selector = re.search(r"\{([^}]*)\}", e)[1]
        used = set(re.findall(r"(\w+)\s*(?:=~|!=|!~|=)", selector))
        assert used <= alloy_labels(), f"{e}: {used - alloy_labels()} is a label Alloy does not set"


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


# --- Redaction in the shippers (issue 11: no secret reaches Loki) ---------------------------

from tests.support import shippers  # noqa: E402
from trademon.runtime.redaction import PATTERNS  # noqa: E402

# Lines as other processes write them when a delivery fails, each with a secret in it. (The
# fake token and hook are put together here so no scan of the tree mistakes them for real ones.)
_TG = "123456789:" + "AAHfakeTokenfakeTokenfakeToken_-xyz"
_HOOK = "T0AAAAAAA/" + "B0BBBBBBB/cccccccccccccccccccccccc"
LEAKY_LINES = {
    _TG: 'time=2026-03-02T14:31:00Z level=WARN source=notify.go:866 msg="Notify attempt failed" '
        f'integration=telegram err="Post \\"https://api.telegram.org/bot{_TG}/sendMessage\\": dial tcp: connection refused"',
    _HOOK: f'level=ERROR msg="Notify for alerts failed" err="slack: Post https://hooks.slack.com/services/{_HOOK}: 500"',
    "pa55w0rd-in-url": 'logger=context error="Get \\"https://admin:pa55w0rd-in-url@grafana.example.com/api/health\\": EOF"',
    "sm7pPassw0rd": 'msg="smtp auth" smtp_password=sm7pPassw0rd host=smtp.example.com:587',
    "sm7pPassw0rd2": '{"level":"error","config":{"auth_password":"sm7pPassw0rd2"}}',
    "c0ffee0123456789abcdef": "GET /scenarios Authorization: Bearer c0ffee0123456789abcdef",
}


def test_both_shippers_mask_the_same_expressions_as_trademon_first():
    expected = [(p, "***") for p in PATTERNS.values()]
    for job in ("containers", "trading-files"):
        stages = scrape(job)["pipeline_stages"]
        first = [(s["replace"]["expression"], s["replace"]["replace"]) for s in stages[: len(expected)] if "replace" in s]
        assert first == expected, f"promtail {job}: the replace stages must come first and equal trademon.runtime.redaction.PATTERNS"
    assert shippers.alloy_replace_stages() == expected
    (body,) = [b for b in alloy_blocks("loki.process") if "stage.json" in b and "level" in b]
    assert body.index("stage.replace") < body.index("stage.json"), "Alloy: mask before parsing"
    # every line passes trademon_json on its way to Loki: the only component forwarding to loki.write
    forwarders = re.findall(r'(?m)^([a-z_.]+\s+"\w+")\s*\{[^\n]*\n(?:(?!^\S).*\n)*?\s*forward_to\s*=\s*\[loki\.write\.', alloy_code())
    assert forwarders == ['loki.process "trademon_json"'], forwarders


@pytest.mark.parametrize("secret", list(LEAKY_LINES))
def test_shippers_mask_secrets_in_other_processes_lines(secret):
    line = LEAKY_LINES[secret]
    assert secret in line
    for shipper, out in shippers.shipped_by_both(line).items():
        assert secret not in out, f"{shipper} would ship {secret!r}: {out}"
        assert "***" in out


def test_shippers_leave_ordinary_lines_alone():
    line = json.dumps(trademon_log_line())
    plain = 'level=info msg="Completed loading of configuration file" file=/etc/alertmanager/alertmanager.yml'
    for text in (line, plain):
        assert set(shippers.shipped_by_both(text).values()) == {text}


@pytest.mark.promtool
def test_redaction_expressions_compile_in_gos_regexp(tmp_path):
    """Promtail and Alloy compile these with Go's regexp (RE2): promtool, a Go program with the
    same package, must accept each as a relabel regex."""
    import subprocess

    promtool = ROOT / ".tools" / "bin" / "promtool"
    cfg = {"scrape_configs": [{"job_name": "x", "static_configs": [{"targets": ["127.0.0.1:1"]}],
                                "relabel_configs": [{"source_labels": ["__address__"], "regex": p, "target_label": f"l{i}"}
                                                    for i, p in enumerate(PATTERNS.values())]}]}
    path = tmp_path / "prometheus.yml"
    path.write_text(yaml.safe_dump(cfg))
    r = subprocess.run([str(promtool), "check", "config", str(path)], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stdout + r.stderr
    bad = tmp_path / "bad.yml"
    cfg["scrape_configs"][0]["relabel_configs"][0]["regex"] = "(?<=x)y"  # a lookbehind: not RE2, must be refused
    bad.write_text(yaml.safe_dump(cfg))
    assert subprocess.run([str(promtool), "check", "config", str(bad)], capture_output=True, timeout=60).returncode != 0


# --- The gateway controller's ALERT_* tokens (issue 26: IBGatewayLoginAlert) -----------------

from trademon.contract import IB_GATEWAY_LOG_ALERTS, IB_GATEWAY_LOG_ALERTS_COUNTER as GATEWAY_COUNTER  # noqa: E402


def promtail_gateway_stages(job: str) -> tuple[str, dict]:
    stages = scrape(job)["pipeline_stages"]
    (regex,) = [s["regex"]["expression"] for s in stages if "regex" in s and "gateway_alert" in s["regex"]["expression"]]
    (metrics,) = [s["metrics"] for s in stages if "metrics" in s]
    return regex, metrics


def test_both_shippers_count_the_contracts_gateway_tokens_under_one_name():
    rules = (ROOT / "monitoring" / "rules" / "trademon.alerts.yml").read_text()
    assert GATEWAY_COUNTER in rules
    alloy_regex = json.loads(re.search(r'stage\.regex\s*\{\s*expression\s*=\s*(".*gateway_alert.*")', alloy_code())[1])
    counter = re.search(r"metric\.counter\s*\{([^}]*)\}", alloy_code())[1]
    attrs = alloy_attrs(counter)
    assert attrs["prefix"] + attrs["name"] == GATEWAY_COUNTER and attrs["source"] == "gateway_alert" and attrs["action"] == "inc"
    for job in ("containers", "trading-files"):
        regex, metrics = promtail_gateway_stages(job)
        assert regex == alloy_regex, job
        ((name, m),) = metrics.items()
        assert m["prefix"] + name == GATEWAY_COUNTER and m["source"] == "gateway_alert" and m["config"]["action"] == "inc"
        assert m["type"] == "Counter"
    # Each of the contract's tokens is picked out whole, and nothing else: the label is bounded.
    for token in IB_GATEWAY_LOG_ALERTS:
        line = f"2026-12-06 01:07:33 ibg-controller: {token}: second factor not approved within 180 s"
        assert re.search(alloy_regex, line)["gateway_alert"] == token
    for other in ("ALERT_SOMETHING_NEW", "alert_2fa_failed", "2FA_FAILED"):
        assert not re.search(alloy_regex, f"controller: {other}"), other


def test_gateway_tokens_are_taken_after_the_secrets_are_masked():
    (body,) = [b for b in alloy_blocks("loki.process") if "stage.json" in b and "level" in b]
    assert body.rindex("stage.replace") < body.index("stage.regex") < body.index("stage.metrics")
    for job in ("containers", "trading-files"):
        kinds = [next(iter(s)) for s in scrape(job)["pipeline_stages"]]
        assert max(i for i, k in enumerate(kinds) if k == "replace") < kinds.index("metrics")
