"""monitoring/config.yml -> the threshold rules Prometheus loads beside the alert rules.

Every threshold that is a number becomes a series, ``trademon:threshold:<name>``: a default
without an ``account`` label and, where monitoring/config.yml ``accounts:`` overrides it, one
with the account's label. The alerts, the dashboards and the bot read these series, so a change
needs a render and a Prometheus reload, never a regeneration of the alert rules. Durations
(``for``, windows) are rule properties, not values a query can read: they stay in the
generated alert rules (``trademon gen``).

The PromQL helpers below are the one way the alerts and dashboards look a threshold up.
"""

from __future__ import annotations

import json
from pathlib import Path

import yaml

from trademon.settings import thresholds

PREFIX = "trademon:threshold:"
FILE = "trademon.thresholds.yml"
GROUP = "trademon.thresholds"
HEADER = """\
# Rendered from monitoring/config.yml by `trademon thresholds` when the stack starts and on every
# change of the file; do not edit. One series per threshold (the default) and one per account
# that overrides it; the alert rules, the dashboards and the bot read them.
"""


def series(key: str) -> str:
    return PREFIX + key


def default(key: str) -> str:
    """The default's series (the one without an account label)."""
    return f'{series(key)}{{account=""}}'


def scalar(key: str) -> str:
    """A threshold that is the same for every account, as a PromQL scalar: NaN while the
    series is missing, so a comparison with it is false (ThresholdsNotLive pages for that)."""
    return f"scalar({default(key)})"


def per_account(key: str, vector: str) -> str:
    """The threshold of each account of ``vector``: the account's own series where
    monitoring/config.yml overrides it, else the default, one element per account.

    ``own or on () default`` would not do: ``or on ()`` drops the default as soon as any
    account has its own, leaving the other accounts without a threshold. The default is taken
    through ``max``: one Prometheus has one, while the long-term store holds one per trading
    host (the dashboards read it there), which ``group_left`` would refuse as duplicates."""
    return (f'({series(key)}{{account!=""}} or on (account) '
            f"(group by (account) ({vector}) * on () group_left () max({default(key)})))")


def template_value(key: str, fmt: str = 'printf "%g"') -> str:
    """The threshold's current value in an alert's text (Go template, at notification time)."""
    return "{{ with query `" + default(key) + "` }}{{ . | first | value | " + fmt + " }}{{ else }}unknown{{ end }}"


def template_account_value(key: str, fmt: str = 'printf "%g"') -> str:
    """The alert's own account's threshold in its text: its own series, else the default (for
    one account, ``or on ()`` is the right fallback)."""
    q = series(key) + "{account=%q} or on () " + default(key)
    return ("{{ with printf `" + q + "` $labels.account | query }}{{ . | first | value | " + fmt
            + " }}{{ else }}unknown{{ end }}")


# The generated alert rules say which durations and currency they were written with, so the
# running service can tell an edit of one (a `trademon gen` away) from a number (a reload away).
STAMP = "# Written in from monitoring/config.yml (durations, currency; `trademon thresholds` compares): "


def stamp(root: Path) -> str:
    return STAMP + json.dumps(thresholds.written_in(root), sort_keys=True, separators=(",", ":")) + "\n"


def stamped(rules_dir: Path) -> dict[str, str] | None:
    """What the generated rules were written with (None: no stamped rules here)."""
    for f in sorted(rules_dir.glob("*.yml")) if rules_dir.is_dir() else []:
        with open(f, encoding="utf-8") as fh:
            for line in fh:
                if not line.startswith("#"):
                    break
                if line.startswith(STAMP):
                    return json.loads(line[len(STAMP):])
    return None


def not_written_in(root: Path, rules_dir: Path) -> list[str]:
    """Each duration or currency of monitoring/config.yml that differs from the rules': how."""
    was = stamped(rules_dir)
    if was is None:
        return []
    now = thresholds.written_in(root)
    return [f"{thresholds.named(root, k)}: {was.get(k, '(none)')} in the alert rules, {now[k]} in monitoring/config.yml"
            for k in sorted(now) if was.get(k) != now[k]]


def _num(v: float) -> str:
    if isinstance(v, float) and v.is_integer():
        v = int(v)
    return str(v)


def groups(root: Path) -> list[dict]:
    """The rule group (raises thresholds.ConfigError for a config that must not go live)."""
    values = thresholds.numbers(root)
    interval = thresholds.load(root).get("money_evaluation_interval")
    rules: list[dict] = []
    for key, value in values.items():
        rules.append({"record": series(key), "expr": f"vector({_num(value)})"})
    for account, over in thresholds.accounts(root).items():
        for key, value in over.items():
            rules.append({"record": series(key), "expr": f"vector({_num(value)})", "labels": {"account": account}})
    group: dict = {"name": GROUP}
    if interval:  # as often as the money alerts: a reload is live at their next evaluation
        group["interval"] = interval
    group["rules"] = rules
    return [group]


def render(root: Path, header: str = HEADER) -> str:
    return header + yaml.safe_dump({"groups": groups(root)}, sort_keys=False)


TEST_COPY = "monitoring/tests/rendered/" + FILE
TEST_HEADER = """\
# Generated by `trademon gen` from monitoring/config.yml: the threshold rules as a running stack
# renders them, for the promtool tests beside them (Prometheus never loads this copy).
"""


def render_test_copy(root: Path) -> str:
    return render(root, TEST_HEADER)


def names(root: Path) -> set[str]:
    return {series(k) for k in thresholds.numbers(root)}
