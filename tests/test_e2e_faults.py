"""The alert path's own failures, end to end (issue 22.5): each fault made in a running stack
of real engines (Prometheus, Alertmanager, `trademon bot`, the project's rules and rendered
Alertmanager config) must reach the trader by another channel (the Slack and SMTP
stand-ins) within the bound its intervals allow (tests/support/faults.py, ``bound``).

One single-node stack serves the faults of the bot, of Telegram, of a rule and of a reload, in
turn (each mended before the next); the HA pair (tests/support/hastack.py) the last, one
Alertmanager killed. Shortened as tests/test_e2e_alerting.py shortens: scrape and evaluation
every 1 s, group_wait 1 s, group_interval 2 s, every rule's ``for`` divided by SCALE, and the
range window of the alerts whose window is part of their wait (a reload failed for the whole
[5m], an Alertmanager down for half of it) divided by SCALE too. The bound at production
settings of each is in docs/self-monitoring.md (benchmarks/pager_faults.py prints both).
"""

from __future__ import annotations

import pytest
import yaml

from tests.support import faults
from tests.support.amstack import alert
from tests.support.e2estack import E2EStack
from tests.support.hastack import HAStack
from tests.support.procs import wait_for
from trademon.settings.values import seconds
from trademon.stack.scaleout import PEER_TIMEOUT

pytestmark = pytest.mark.e2e  # real Prometheus, Alertmanager and trademon processes

SCALE = 120
AM = {"group_wait": "1s", "group_interval": "2s"}
# What a loaded 2-core machine adds to the bound: Prometheus' notifier, Alertmanager's
# dispatch and the stand-ins' threads, each a scheduling delay behind.
ALLOWANCE = 5.0


@pytest.fixture(scope="module")
def e2e(tmp_path_factory):
    stack = E2EStack(tmp_path_factory.mktemp("faults"), scrape="1s", evaluation="1s", am_intervals=AM, for_scale=SCALE,
                     resend_delay="1s", scrape_bot=True, compress=faults.COMPRESS)
    yield stack
    stack.close()


def rules(e2e) -> list[str]:
    return yaml.safe_load(e2e.config_path.read_text())["rule_files"]


def am_config(alerting) -> dict:
    return yaml.safe_load(alerting.config_path.read_text())


def check(page: faults.Page, bound: faults.Bound) -> None:
    print(f"\n{page.fault}: {page.alert} on Slack {page.slack - page.at_fault:.2f} s, by email {page.email - page.at_fault:.2f} s "
          f"(bound {bound})")
    assert bound.floor <= page.latency <= bound.total + ALLOWANCE, (page, str(bound))


def test_bot_killed_and_left_dead_pages_by_slack_and_email(e2e):
    rule = faults.alert_rule(rules(e2e), "TelegramBotDown")
    b = faults.bound(rule, 1, 1, am_config(e2e.alerting))
    t0 = faults.kill_bot(e2e)
    try:
        page = faults.wait_page(e2e.alerting.standins, "bot killed", "TelegramBotDown", t0, b.total + 30, wait=e2e.alerting.wait)
        check(page, b)
    finally:
        e2e.alerting.start_bot()
    # The record shows where it went: the pager receiver (Slack, email, file), never the bot.
    assert {r["receiver"] for r in e2e.alerting.records() if any(a["labels"]["alertname"] == "TelegramBotDown" for a in r["alerts"])} \
        == {"pager"}


@pytest.mark.parametrize("what, reason", [("token", "token_rejected"), ("blocked", "bot_blocked"), ("chat", "chat_not_found")])
def test_telegram_refusing_the_bot_pages_by_slack_and_email_naming_the_fix(e2e, what, reason):
    rule = faults.alert_rule(rules(e2e), "TelegramRefusesBot")
    b = faults.bound(rule, 1, 1, am_config(e2e.alerting))
    probe = alert("FaultProbe", "warning", f"a page for the bot to send ({what})", fault=what)
    try:
        t0 = faults.telegram_refuses(e2e, what, probe)
        page = faults.wait_page(e2e.alerting.standins, f"Telegram {what}", "TelegramRefusesBot", t0, b.total + 30,
                                text=f"Telegram refuses the bot ({reason})", wait=e2e.alerting.wait)
        check(page, b)
        mail = next(m for m in e2e.alerting.standins.smtp.messages if m.at == page.email)
        fix = {"token": "@BotFather", "blocked": "Unblock it", "chat": "set TELEGRAM_CHAT_ID"}[what]
        assert fix in mail.body, mail.body
    finally:
        e2e.telegram.refuse(None)
        e2e.alerting.post(probe, resolved=True)


def test_a_rule_failing_at_run_time_and_an_alertmanager_reload_with_a_broken_file_page(e2e):
    """Both at once (two alerts of the critical route, neither in the other's way; the second
    joins the first's group, so its bound has group_interval)."""
    cfg = am_config(e2e.alerting)
    b_rule = faults.bound(faults.alert_rule(rules(e2e), "PrometheusRuleFailures"), 1, 1, cfg, first_evaluation=True)
    b_reload = faults.bound(faults.alert_rule(rules(e2e), "AlertmanagerFailedReload"), 1, 1, cfg)
    t_reload, good = faults.break_am_config(e2e.alerting)
    try:
        t_rule = faults.break_a_rule(e2e)
        try:
            page = faults.wait_page(e2e.alerting.standins, "rule fails", "PrometheusRuleFailures", t_rule, b_rule.total + 30,
                                    text="fault.many_to_many", wait=e2e.alerting.wait)
            check(page, b_rule)
        finally:
            faults.mend_the_rule(e2e)
        # carried by the Alertmanager that failed: it routes on with the configuration it had
        page = faults.wait_page(e2e.alerting.standins, "Alertmanager reload broken", "AlertmanagerFailedReload", t_reload,
                                b_reload.total + 30, wait=e2e.alerting.wait)
        check(page, b_reload)
    finally:
        faults.mend_am_config(e2e.alerting, good)


@pytest.fixture(scope="module")
def ha(tmp_path_factory):
    stack = HAStack(tmp_path_factory.mktemp("faults-ha"), for_scale=SCALE, compress=faults.COMPRESS,
                    intervals=AM, resend_delay="1s")
    yield stack
    stack.close()


def test_one_alertmanager_of_the_pair_killed_pages_through_the_survivor(ha):
    files = yaml.safe_load((ha.dir / "prometheus-a.yml").read_text())["rule_files"]
    rule = faults.alert_rule(files, "AlertmanagerClusterDown")
    cfg = yaml.safe_load(ha.am_config.read_text())
    b = faults.bound(rule, 1, 1, cfg, peer_timeout=seconds(PEER_TIMEOUT))
    faults.steady([p.url for p in ha.proms], "alertmanager", b.parts["window"] / faults.WINDOWED[rule["alert"]],
                  lambda p, t, w: wait_for(p, t, 0.2, w))
    t0 = faults.kill_first_alertmanager(ha)
    page = faults.wait_page(ha.standins, "one Alertmanager killed", "AlertmanagerClusterDown", t0, b.total + 30,
                            wait=lambda p, t, w: wait_for(p, t, 0.1, w))
    check(page, b)
