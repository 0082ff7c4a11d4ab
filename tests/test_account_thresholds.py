"""Per-account thresholds (monitoring/config.yml ``accounts:``): DailyLossLimitBreach and
HighRiskExposure compare each overridden account with its own limit and the others with the
default, checked by real promtool against hand-written tests (tests/data/account_thresholds/);
without overrides the rules are the shipped ones; a bad override is refused by ``trademon gen``."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from trademon.settings import thresholds
from trademon.stack import tools
from trademon.gen import rules as gen_rules
from trademon.thresholds import render as threshold_rules

ROOT = Path(__file__).resolve().parents[1]
DATA = Path(__file__).resolve().parent / "data" / "account_thresholds"

# What the hand-written tests were written for (their header says the same): pinned here, so
# tuning the shipped config does not break them.
PINNED = {"daily_loss_limit": -500, "exposure_ratio": 0.9, "exposure_for": "5m", "money_hold": "12h"}
ACCOUNTS = {
    "DU1111111": {"daily_loss_limit": -2000, "exposure_ratio": 0.95},  # looser than the default
    "DU2222222": {"daily_loss_limit": -250, "exposure_ratio": 0.5},  # stricter
    "U4444444": {"exposure_ratio": 0.8},  # its loss limit is the default
}


def config_with(accounts: dict, **top) -> dict:
    """The shipped config with the pinned thresholds, ``accounts`` and top-level ``top``."""
    config = thresholds.load_config(ROOT)
    sections = thresholds.section_of(ROOT)
    for key, value in PINNED.items():
        config[sections[key]][key] = value
    config.update(currency="USD", runbook_url_pattern="https://runbooks.example/{alert}", accounts=accounts, **top)
    return config


def write_root(root: Path, config: dict) -> Path:
    (root / "monitoring").mkdir(parents=True, exist_ok=True)
    (root / thresholds.CONFIG_FILE).write_text(yaml.safe_dump(config, sort_keys=False))
    return root


def generate_rules(root: Path) -> None:
    """The generated rules, and the threshold rules as a running stack renders them, in monitoring/rules/."""
    for rel in (gen_rules.RULES_FILE, gen_rules.ALERTS_FILE):
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(dict(gen_rules.GENERATED)[rel](root))
    (root / "monitoring" / "rules" / threshold_rules.FILE).write_text(threshold_rules.render(root))


@pytest.mark.promtool
def test_each_account_fires_at_its_own_limit(tmp_path):
    """The looser account is quiet past the default and fires past its own; the stricter fires
    before the default; the others use the default; the description names the account's own
    limit; an overridden account whose data goes away is held at its own limit."""
    root = write_root(tmp_path, config_with(ACCOUNTS))
    generate_rules(root)
    (root / "monitoring" / "tests").mkdir()
    shutil.copy(DATA / "accounts.yml", root / "monitoring" / "tests" / "accounts.yml")
    r = subprocess.run([tools.find("promtool"), "test", "rules", "monitoring/tests/accounts.yml"],
                       cwd=root, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stdout + r.stderr


@pytest.mark.promtool
def test_the_hand_written_tests_fail_with_one_limit_for_all(tmp_path):
    """The same tests against rules without the overrides fail: they can tell."""
    root = write_root(tmp_path, config_with({}))
    generate_rules(root)
    (root / "monitoring" / "tests").mkdir()
    shutil.copy(DATA / "accounts.yml", root / "monitoring" / "tests" / "accounts.yml")
    r = subprocess.run([tools.find("promtool"), "test", "rules", "monitoring/tests/accounts.yml"],
                       cwd=root, capture_output=True, text=True, timeout=120)
    assert r.returncode != 0
    for test in ("each account against its own limit", "held at its own limit",
                 "each account against its own share", "held at its own share"):
        assert test in r.stdout + r.stderr, r.stdout + r.stderr


def test_overrides_and_values_live_in_the_threshold_rules_only(tmp_path):
    """The generated alert rules are the same whatever the numbers and the overrides: those
    reach Prometheus as series (the threshold rules, rendered at run time), so a change needs
    a reload, never `trademon gen`. The threshold rules have one series per override."""
    shipped = thresholds.load_config(ROOT)
    assert shipped["accounts"] in ({}, None), "the shipped config has no account overrides"
    assert gen_rules.render_alerts(ROOT) == (ROOT / gen_rules.ALERTS_FILE).read_text()

    plain = write_root(tmp_path / "plain", config_with({}))
    tuned = config_with(ACCOUNTS)
    tuned["critical"]["daily_loss_limit"] = -750
    tuned = write_root(tmp_path / "tuned", tuned)
    assert gen_rules.render_alerts(plain) == gen_rules.render_alerts(tuned)
    rules = {(r["record"], r.get("labels", {}).get("account")): r["expr"]
             for g in yaml.safe_load(threshold_rules.render(tuned))["groups"] for r in g["rules"]}
    assert rules[("trademon:threshold:daily_loss_limit", None)] == "vector(-750)"
    assert rules[("trademon:threshold:daily_loss_limit", "DU2222222")] == "vector(-250)"
    assert rules[("trademon:threshold:exposure_ratio", "U4444444")] == "vector(0.8)"
    assert ("trademon:threshold:daily_loss_limit", "U4444444") not in rules  # its loss limit is the default


def test_every_per_account_key_has_a_per_account_alert():
    """An override of a key no alert takes per account would silently do nothing."""
    keys = {a.expr.key for a in gen_rules.ALERTS if isinstance(a.expr, gen_rules.ByAccount)}
    assert keys == set(thresholds.ACCOUNT_KEYS)


@pytest.mark.parametrize("accounts, says", [
    ({"DU1": {"max_position": 5}}, "accounts: DU1: expected some of daily_loss_limit, exposure_ratio"),
    ({"DU1": {"daily_loss_limit": "-2000 USD"}}, "accounts: DU1: daily_loss_limit must be a number"),
    ({'DU1"}) or vector(1': {"daily_loss_limit": -1}}, "is not an account id"),
    ({"DU1": -2000}, "accounts: DU1: expected some of daily_loss_limit, exposure_ratio"),
])
def test_a_bad_override_is_a_clear_error_at_gen(tmp_path, accounts, says):
    """``trademon gen`` refuses it before writing anything: one line naming the key and the
    fix, exit 2, no traceback."""
    root = write_root(tmp_path, config_with(accounts))
    env = {**os.environ, "PYTHONPATH": str(ROOT / "exporters")}
    r = subprocess.run([sys.executable, "-m", "trademon", "gen", "--root", str(root)],
                       capture_output=True, text=True, timeout=120, env=env)
    assert r.returncode == 2, r.stdout + r.stderr
    assert "Traceback" not in r.stderr, r.stderr
    assert r.stderr.startswith("trademon gen: configuration error: ") and says in r.stderr, r.stderr
    assert sorted(p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file()) == [thresholds.CONFIG_FILE]


# ------------------------------------------------------------------ the bot shows each account's own limit

def test_the_bot_knows_each_accounts_own_loss_limit(tmp_path):
    """From the threshold series as the running stack renders them (what the alert compares
    with), not from the file: the default and each override."""
    from trademon.bot.reports import Limits, pnl_lines

    root = write_root(tmp_path, config_with(ACCOUNTS))
    samples = [({"__name__": r["record"], **r.get("labels", {})}, float(r["expr"].removeprefix("vector(").removesuffix(")")))
               for g in yaml.safe_load(threshold_rules.render(root))["groups"] for r in g["rules"]
               if r["record"] == "trademon:threshold:daily_loss_limit"]
    limits = Limits.from_series(samples, "USD")
    assert (limits.daily_loss_limit, limits.currency) == (-500, "USD")
    assert {a: limits.loss_limit(a) for a in ("DU1111111", "DU2222222", "DU3333333", "U4444444")} == {
        "DU1111111": -2000, "DU2222222": -250, "DU3333333": -500, "U4444444": -500}
    # /status: the looser account at -1000 is within its limit; the stricter at -300 is below its own.
    lines = pnl_lines([({"account": "DU1111111"}, -1000.0), ({"account": "DU2222222"}, -300.0), ({"account": "DU3333333"}, -100.0)], limits)
    assert lines == ["P&amp;L DU1111111: -1,000.00 USD (limit -2,000.00)",
                     "P&amp;L DU2222222: -300.00 USD (limit -250.00) ⛔ below the limit",
                     "P&amp;L DU3333333: -100.00 USD (limit -500.00)"]
    # /pnl and the daily chart: each charted account's own line, the default once if an account uses it.
    assert limits.loss_lines(["DU1111111", "DU3333333"]) == [("loss limit -500.00", -500), ("loss limit DU1111111 -2,000.00", -2000)]
    assert limits.loss_lines(["DU2222222"]) == [("loss limit DU2222222 -250.00", -250)]
    assert limits.loss_lines([]) == [("loss limit -500.00", -500)]
    # No series (Prometheus unreachable, thresholds not rendered): unknown, never a made-up limit.
    unknown = Limits.from_series([], "USD")
    assert pnl_lines([({"account": "DU1"}, -900.0)], unknown) == ["P&amp;L DU1: -900.00 USD (limit unknown)"]
    assert unknown.loss_lines(["DU1"]) == []


# ------------------------------------------------------------------ dashboards: own limits and the currency

def dashboard_docs(root: Path) -> dict[str, dict]:
    from trademon.gen import dashboards

    t = dashboards.values(root)
    return {key: json.loads(dashboards.render_dashboard(factory(t), "https://runbooks.example/{alert}"))
            for key, (_, factory) in dashboards.BOARDS.items()}


def panels(doc: dict):
    for p in doc["panels"]:
        yield p
        yield from p.get("panels", [])


def test_the_dashboards_do_not_depend_on_the_overrides(tmp_path):
    """The limit lines read the threshold series: the same dashboards with and without
    overrides (an override needs a reload, never a regeneration), and the panels whose colours
    are a Grafana threshold say the colours are the default's."""
    assert dashboard_docs(write_root(tmp_path / "tuned", config_with(ACCOUNTS))) == dashboard_docs(write_root(tmp_path / "plain", config_with({})))
    docs = dashboard_docs(ROOT)
    loss = [p for key in ("overview", "pnl") for p in panels(docs[key]) if p["type"] == "stat" and "daily loss limit" in p.get("description", "")]
    assert len(loss) == 2 and all("The colours are monitoring/config.yml's default" in p["description"] for p in loss)


def target(doc: dict, legend: str) -> str:
    """The query of the target with this legend, with the board's variables at "All"."""
    expr = next(t["expr"] for p in panels(doc) for t in p.get("targets", []) if t.get("legendFormat") == legend)
    return expr.replace("$host", ".*").replace("$account", ".*")


@pytest.mark.promtool
def test_the_limit_lines_are_each_accounts_own(tmp_path):
    """The P&L board's "limit" lines and the risk board's "alert at" line, evaluated by real
    promtool against the threshold rules: each account's own loss limit and share of its
    exposure limit (where its alert fires), the default for the others."""
    docs = dashboard_docs(write_root(tmp_path, config_with(ACCOUNTS)))
    accounts = ("DU1111111", "DU2222222", "DU3333333", "U4444444")
    series = [f'{metric}{{account="{a}", job="ib-exporter"}}' for a in accounts for metric in ("daily_pnl", "risk_gross_exposure_limit")]

    def expect(expr: str, values) -> dict:
        return {"expr": expr, "eval_time": "1m",
                "exp_samples": [{"labels": f'{{account="{a}"}}', "value": v} for a, v in zip(accounts, values, strict=True)]}

    (tmp_path / "thresholds.yml").write_text(threshold_rules.render(tmp_path))  # the series, as the running stack has them
    test = {"rule_files": ["thresholds.yml"], "evaluation_interval": "1m", "tests": [{
        "interval": "1m",
        "input_series": [{"series": s, "values": ("-123x3" if s.startswith("daily_pnl") else "100000x3")} for s in series],
        "promql_expr_test": [expect(target(docs["pnl"], "limit {{account}}"), (-2000, -250, -500, -500)),
                             expect(target(docs["risk"], "alert at {{account}}"), (95000, 50000, 90000, 80000))],
    }]}
    (tmp_path / "lines.yml").write_text(yaml.safe_dump(test))
    r = subprocess.run([tools.find("promtool"), "test", "rules", "lines.yml"], cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stdout + r.stderr


def money_units(docs: dict[str, dict]) -> set[str]:
    """The units of the panels that show money (their titles say P&L, exposure or liquidation)."""
    return {p["fieldConfig"]["defaults"]["unit"] for d in docs.values() for p in panels(d)
            if "fieldConfig" in p and any(w in p["title"] for w in ("P&L", "exposure against", "Net liquidation"))}


@pytest.mark.parametrize("currency, unit", [("USD", "currencyUSD"), ("EUR", "currencyEUR"), ("CHF", "currencyCHF"),
                                            ("JPY", "currencyJPY"), ("CAD", "suffix: CAD"), ("HKD", "suffix: HKD")])
def test_the_config_currency_is_the_dashboards_money_unit(tmp_path, currency, unit):
    config = config_with({})
    config["currency"] = currency
    assert money_units(dashboard_docs(write_root(tmp_path, config))) == {unit}


def test_the_shipped_dashboards_show_the_shipped_currency():
    assert money_units(dashboard_docs(ROOT)) == {f"currency{thresholds.load(ROOT)['currency']}"}


@pytest.mark.parametrize("currency", ["usd", "US$", "EURO", 840, ""])
def test_a_currency_that_is_not_a_code_is_a_clear_error(tmp_path, currency):
    config = config_with({})
    config["currency"] = currency
    with pytest.raises(thresholds.ConfigError, match="is not a currency code.*three capital letters"):
        thresholds.load_config(write_root(tmp_path, config))


def test_alerts_md_keeps_one_table_row_per_alert(tmp_path):
    """The per-account expressions span lines: alerts.md's table still has one row per alert."""
    for root in (ROOT, write_root(tmp_path, config_with(ACCOUNTS))):
        table = [line for line in gen_rules.render_doc(root).splitlines() if line.startswith("| [")]
        assert [line.split("]")[0][3:] for line in table] == [a.name for a in gen_rules.ALERTS]
        assert all(line.endswith("` |") for line in table)
