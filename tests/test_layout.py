"""The repository's layout as the README describes it, and the monitoring folder read by the
stacks from where it is (issue 12.2)."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest
import yaml

from trademon.settings import thresholds
from trademon.gen import rules as gen_rules
from trademon.stack import native

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[1]


def table_rows(text: str, header: str) -> dict[str, str]:
    """The rows of the markdown table under ``header``: first cell (paths) -> second cell."""
    start = text.index(header)
    rows = {}
    for line in text[start:].splitlines()[2:]:
        if not line.startswith("|"):
            break
        cells = [c.strip() for c in line.strip("|").split("|")]
        rows[cells[0]] = cells[1]
    return rows


def tracked_top_folders() -> set[str]:
    out = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True).stdout
    return {p.split("/")[0] for p in out.splitlines() if "/" in p and not p.startswith(".")}


def test_the_readme_path_table_names_every_folder_in_one_sentence():
    rows = table_rows((ROOT / "README.md").read_text(), "| path | what it holds |")
    named = {name.strip("`").split("/")[0] for cell in rows for name in cell.split(", ")}
    assert named == tracked_top_folders(), "README's path table and the repository's folders differ"
    for cell, text in rows.items():
        sentences = re.findall(r"[.!?](?:\s|$)", text)
        assert len(sentences) == 1 and text.endswith("."), f"{cell}: one sentence, not {text!r}"


def test_the_monitoring_folder_holds_config_rules_tests_dashboards_and_runbooks():
    mon = ROOT / "monitoring"
    rows = table_rows((mon / "README.md").read_text(), "| path | what it holds |")
    listed = {c.strip("`").rstrip("/") for c in rows}
    present = {p.name for p in mon.iterdir() if p.name != "README.md"}
    assert listed == present == {"config.yml", "rules", "tests", "dashboards", "runbooks.md", "alerts.md"}
    assert gen_rules.ALERTS_FILE.startswith("monitoring/rules/") and gen_rules.RULES_FILE.startswith("monitoring/rules/")


def test_the_stacks_read_the_monitoring_folder_where_it_is():
    """Compose mounts the rules and dashboards from monitoring/; prometheus.yml finds the rules
    by the same relative path in a checkout and in the container."""
    prom = yaml.safe_load((ROOT / "prometheus" / "prometheus.yml").read_text())
    pattern, rendered = prom["rule_files"]  # the generated rules, and the thresholds the running stack renders
    assert rendered == native.THRESHOLDS_RULES
    assert sorted((ROOT / "prometheus").joinpath(pattern).parent.resolve().glob("*.yml")) == sorted((ROOT / "monitoring" / "rules").glob("*.yml"))
    for compose in ("docker-compose.yml", "docker-compose.ha.yml"):
        services = yaml.safe_load((ROOT / compose).read_text())["services"]
        for name, svc in services.items():
            mounts = [v.split(":")[:2] for v in svc.get("volumes", []) if isinstance(v, str)]
            config_dir = next((dst for src, dst in mounts if src == "./prometheus"), None)
            if config_dir is None:  # not a Prometheus
                continue
            want = str(Path(config_dir).joinpath(Path(pattern).parent))
            assert ["./monitoring/rules", re.sub(r"/[^/]+/\.\.", "", want)] in mounts, f"{compose}: {name}"
            rendered_dir = re.sub(r"/[^/]+/\.\.", "", str(Path(config_dir).joinpath(Path(rendered).parent)))
            assert ["thresholds", rendered_dir] in mounts, f"{compose}: {name} does not mount the thresholds volume"
    grafana = yaml.safe_load((ROOT / "docker-compose.yml").read_text())["services"]["grafana"]
    assert any(v.startswith("./monitoring/dashboards:") for v in grafana["volumes"])


# ------------------------------------------------------------------ the config


def alert_severities_by_key() -> dict[str, set[str]]:
    used: dict[str, set[str]] = {}
    for a in gen_rules.ALERTS:
        fill = gen_rules.Filler(ROOT)
        gen_rules.alert_rule(a, fill)
        for key in fill.used:
            used.setdefault(key, set()).add(a.severity)
    return used


def test_each_threshold_is_under_the_severity_of_the_alerts_it_tunes():
    sections = thresholds.section_of(ROOT)
    for key, severities in alert_severities_by_key().items():
        if key not in sections:  # currency, selectors: not thresholds
            continue
        want = severities.pop() if len(severities) == 1 else "shared"
        assert sections[key] == want, f"{key} tunes {sorted(severities) or want} alerts: move it under {want}:"
    assert set(sections) - set(alert_severities_by_key()) <= {"money_evaluation_interval"}  # a group's, not an alert's


BAD = [
    ({"daily_loss_limit": -500}, "unknown key(s) daily_loss_limit: thresholds go under critical:, warning: or shared:"),
    ({"critical": {"x": 1}, "warning": {"x": 2}}, "x is under both critical: and warning:; keep it in one"),
    ({"runbook_url_pattern": "https://example.org/runbooks"}, "has no {alert} placeholder"),
    ({"accounts": {"DU1 OR 1": {"daily_loss_limit": -1}}}, "is not an account id"),
    ({"accounts": {"DU1": {"tws_lost_for": "1m"}}}, "other thresholds are the same for every account"),
    ({"accounts": {"DU1": {"daily_loss_limit": "-1k"}}}, "daily_loss_limit must be a number"),
    ({"selectors": {"brokers": 'job="ib"'}}, "selectors: expected a mapping with some of broker, trading"),
]


@pytest.mark.parametrize("change, message", BAD, ids=[m[:30] for _, m in BAD])
def test_a_bad_config_is_refused_naming_the_key_and_the_fix(tmp_path, change, message):
    config = {"runbook_url_pattern": "https://example.org/{alert}", **change}
    (tmp_path / "monitoring").mkdir()
    (tmp_path / "monitoring" / "config.yml").write_text(yaml.safe_dump(config))
    with pytest.raises(thresholds.ConfigError, match=re.escape(message)):
        thresholds.load(tmp_path)


def test_the_runbook_url_pattern_and_selectors_reach_the_rules(tmp_path):
    config = thresholds.load_config(ROOT)
    config["runbook_url_pattern"] = "https://wiki.example.org/trading/{alert}"
    config["selectors"] = {"broker": 'job="ibkr"', "trading": 'job=~"api|md"'}
    (tmp_path / "monitoring").mkdir()
    (tmp_path / "monitoring" / "config.yml").write_text(yaml.safe_dump(config))
    doc = yaml.safe_load(gen_rules.render_alerts(tmp_path))
    rules = {r["alert"]: r for g in doc["groups"] for r in g["rules"]}
    assert rules["BrokerViewLost"]["expr"] == 'up{job="ibkr"} == 0'
    assert rules["APIHealthCheckFailed"]["expr"] == 'up{job=~"api|md"} == 0'
    assert rules["ExporterDown"]["expr"] == 'up{' + gen_rules.default_selectors()["trademon"] + '} == 0'  # not set: the default
    assert {r["annotations"]["runbook_url"] for r in rules.values()} == {f"https://wiki.example.org/trading/{a.lower()}" for a in rules}


def test_the_default_runbook_urls_point_at_the_shipped_runbooks():
    """The pattern's path is this repository's monitoring/runbooks.md, and each alert's anchor a
    section of it."""
    pattern = thresholds.load_config(ROOT)["runbook_url_pattern"]
    assert "/blob/main/monitoring/runbooks.md#{alert}" in pattern
    headings = {h.strip().lower() for h in re.findall(r"^##\s+(.+)$", (ROOT / "monitoring" / "runbooks.md").read_text(), re.M)}
    assert {a.name.lower() for a in gen_rules.ALERTS} <= headings
