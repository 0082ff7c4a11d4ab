"""Faults of the alert path, made in the running test stacks (tests/support/e2estack.py,
hastack.py), and the page each must bring the trader by another channel (the Slack and SMTP
stand-ins), with the bound the intervals allow. Shared by tests/test_e2e_faults.py and
benchmarks/pager_faults.py.

The bound of a fault is derived from the files that run: the alert's ``for`` and range window
(the rule file loaded), the scrape and evaluation intervals, and the group_wait (or, for a
route whose groups another alert may hold open, group_interval) of the route the alert takes
in the Alertmanager configuration loaded. See ``bound``.
"""

from __future__ import annotations

import math
import re
import time
from dataclasses import dataclass, field
from pathlib import Path

import requests
import yaml

from trademon.settings.values import seconds

# Alerts whose range window is part of their wait (the window must be covered, or half of
# it), so a test compresses it with their ``for``.
WINDOWED = {"AlertmanagerFailedReload": 1.0, "AlertmanagerClusterDown": 0.5}
COMPRESS = frozenset({*WINDOWED, "PrometheusRuleFailures"})

# A recording rule that parses and loads, and fails at every evaluation: ``on ()`` matches
# every `up` series with every other, so the "one" side is not unique (the many-to-many
# match a label change makes of a rule that was one-to-one).
MANY_TO_MANY = {"groups": [{"name": "fault.many_to_many", "rules": [
    {"record": "fault:many_to_many", "expr": "up * on () group_left up"}]}]}


@dataclass
class Bound:
    """Seconds from a fault to its page, part by part."""
    parts: dict[str, float] = field(default_factory=dict)
    floor: float = 0.0  # the least that must pass: an alert fires no sooner than its `for` after the fault


    @property
    def total(self) -> float:
        return sum(self.parts.values())

    def __str__(self) -> str:
        return " + ".join(f"{k} {v:g}" for k, v in self.parts.items() if v) + f" = {self.total:.1f} s"


@dataclass
class Page:
    fault: str
    alert: str
    at_fault: float
    slack: float
    email: float

    @property
    def latency(self) -> float:
        """To the first of the two channels."""
        return min(self.slack, self.email) - self.at_fault


def alert_rule(rule_files: list[str | Path], name: str) -> dict:
    for f in rule_files:
        for group in yaml.safe_load(Path(f).read_text())["groups"]:
            for rule in group["rules"]:
                if rule.get("alert") == name:
                    return rule
    raise KeyError(f"no alert {name} in {rule_files}")


def _matches(matcher: str, labels: dict[str, str]) -> bool:
    m = re.fullmatch(r'(\w+)(=~|!~|!=|=)"(.*)"', matcher)
    if m is None:
        raise ValueError(f"matcher {matcher!r} not understood")
    name, op, value = m.groups()
    got = labels.get(name, "")
    hit = re.fullmatch(value, got) is not None if "~" in op else got == value
    return hit if op in ("=", "=~") else not hit


def route_of(am_config: dict, labels: dict[str, str]) -> dict:
    """The route ``labels`` take (first matching child, not a `continue` one), with the
    timings it inherits."""
    root = am_config["route"]
    timings = {k: root[k] for k in ("group_wait", "group_interval", "group_by") if k in root}
    for child in root.get("routes", []):
        if child.get("continue") or not all(_matches(m, labels) for m in child.get("matchers", [])):
            continue
        return {**timings, **{k: child[k] for k in ("group_wait", "group_interval", "group_by", "receiver") if k in child}}
    return {**timings, "receiver": root["receiver"]}


def bound(rule: dict, scrape: float, evaluation: float, am_config: dict, *, first_evaluation: bool = False,
          peer_timeout: float = 0.0) -> Bound:
    """The most that can pass from a fault to its page: the scrape that sees it; the range
    window it must fill (AlertmanagerFailedReload: all of it, AlertmanagerClusterDown: half);
    the evaluation that finds the condition (and, for a rule group just loaded, its first
    evaluation); the evaluations of its ``for`` (it fires at the first one at least ``for``
    after it turned pending); Alertmanager's group_wait, or group_interval where the route
    groups it with other alerts (an open group of that route: critical groups by severity);
    and in the HA pair, the peer timeout the survivor waits for a dead first sender."""
    name = rule["alert"]
    route = route_of(am_config, {"alertname": name, **rule.get("labels", {})})
    alone = "alertname" in route.get("group_by", [])
    wait = seconds(route.get("group_wait", "30s")) if alone else max(seconds(route.get("group_wait", "30s")),
                                                                        seconds(route.get("group_interval", "5m")))
    windows = [seconds(w) for w in re.findall(r"\[(\d+(?:ms|[smhdwy]))\]", rule["expr"])]
    for_s = seconds(rule.get("for", "0s"))
    parts = {"the failing group's evaluation": evaluation if first_evaluation else 0.0, "scrape": scrape,
             # increase() and rate() need a second sample that differs from the first
             "second scrape": scrape if re.search(r"\b(increase|rate)\(", rule["expr"]) else 0.0,
             "window": WINDOWED.get(name, 0.0) * max(windows, default=0.0), "evaluation": evaluation,
             "for": math.ceil(for_s / evaluation) * evaluation if for_s else 0.0,
             ("group_wait" if alone else "group_wait or group_interval"): wait, "peer timeout": peer_timeout}
    return Bound(parts, floor=for_s)


# ------------------------------------------------------------------ the page, as the trader gets it


def slack_at(standins, alert: str, since: float, text: str = "") -> float | None:
    for r in list(standins.slack.requests):
        body = (r.body.get("attachments") or [{}])[0]
        firing = str(body.get("text", "")).split("✅ resolved:")[0]  # the resolved alerts of the group are listed last
        if r.at >= since and r.status == 200 and f"*{alert}*" in firing and text in firing:
            return r.at
    return None


def email_at(standins, alert: str, since: float, text: str = "") -> float | None:
    for m in standins.smtp.messages:  # the subject names the firing alerts
        if m.at >= since and "RESOLVED" not in m.subject and alert in m.subject.split() and text in m.body:
            return m.at
    return None


def wait_page(standins, fault: str, alert: str, since: float, timeout: float, text: str = "", wait=None) -> Page:
    """Until both Slack and email carry ``alert`` firing (with ``text``), sent after ``since``."""
    def both():
        s, e = slack_at(standins, alert, since, text), email_at(standins, alert, since, text)
        return (s, e) if s and e else None

    def poll():
        from .procs import wait_for
        return wait_for(both, timeout, 0.1, f"{alert} ({fault}) on Slack and by email")
    s, e = wait(both, timeout, f"{alert} ({fault}) on Slack and by email") if wait else poll()
    return Page(fault, alert, since, s, e)


# ------------------------------------------------------------------ the faults


def kill_bot(e2e) -> float:
    e2e.alerting.kill_bot()
    return time.time()


def refused_at(telegram, since: float, status: int) -> float | None:
    return next((r.at for r in list(telegram.requests) if r.at >= since and r.status == status), None)


def telegram_refuses(e2e, what: str, page: dict) -> float:
    """Telegram refuses the bot (``what``: token 401, blocked 403, chat 400), and a page comes
    for it to send; the time of Telegram's first refusal (the fault as the bot meets it)."""
    from .procs import wait_for

    tg = e2e.telegram
    status = tg.REFUSALS[what][0]
    t = time.time()
    tg.refuse(what)
    e2e.alerting.post(page)
    return wait_for(lambda: refused_at(tg, t, status), 30, 0.05, f"Telegram's first {status} to the bot")


def break_a_rule(e2e) -> float:
    """A rule file whose rule fails at every evaluation, loaded by a reload; the reload's time."""
    path = e2e.dir / "rules" / "fault-many-to-many.yml"
    path.write_text(yaml.safe_dump(MANY_TO_MANY, sort_keys=False))
    cfg = yaml.safe_load(e2e.config_path.read_text())
    cfg["rule_files"].append(str(path))
    e2e.config_path.write_text(yaml.safe_dump(cfg, sort_keys=False))
    requests.post(f"{e2e.prom_url}/-/reload", timeout=10).raise_for_status()
    return time.time()


def mend_the_rule(e2e) -> None:
    cfg = yaml.safe_load(e2e.config_path.read_text())
    cfg["rule_files"] = [f for f in cfg["rule_files"] if not f.endswith("fault-many-to-many.yml")]
    e2e.config_path.write_text(yaml.safe_dump(cfg, sort_keys=False))
    requests.post(f"{e2e.prom_url}/-/reload", timeout=10).raise_for_status()


def break_am_config(alerting) -> tuple[float, str]:
    """Alertmanager told to reload a file that does not parse: (the time, the good text to
    put back). It answers the reload with an error and keeps routing with the old one."""
    good = alerting.config_path.read_text()
    alerting.config_path.write_text(good + "\nroute: [this is not a route\n")
    r = requests.post(f"{alerting.am_url}/-/reload", timeout=10)
    assert r.status_code >= 400, f"Alertmanager took a broken file: {r.status_code} {r.text}"
    return time.time(), good


def mend_am_config(alerting, good: str) -> None:
    alerting.config_path.write_text(good)
    requests.post(f"{alerting.am_url}/-/reload", timeout=10).raise_for_status()


def steady(prom_urls: list[str], job: str, window: float, wait) -> None:
    """Until every Prometheus has scraped every target of ``job`` over all of ``window``
    seconds (a Prometheus just started finds some jobs seconds after others): the window the
    bound counts from a fault must be full of samples from before it."""
    q = f'min(count_over_time(up{{job="{job}"}}[{int(window * 1000)}ms]))'

    def full():
        for url in prom_urls:
            r = requests.get(f"{url}/api/v1/query", params={"query": q}, timeout=5).json()["data"]["result"]
            if not r or float(r[0]["value"][1]) < window - 1:
                return False
        return True
    wait(full, 30 + window, f"{job} scraped by every Prometheus for {window:g} s")


def kill_first_alertmanager(ha) -> float:
    """SIGKILL to the Alertmanager of the pair that sends first: the survivor waits its peer
    timeout before it sends what the dead one would have."""
    ha.first_sender().kill9()
    return time.time()
