"""monitoring/rules/trademon.{rules,alerts}.yml from monitoring/config.yml and the
definitions below.

The definitions are data: each recording rule is a name and a PromQL expression; each
alert is a name, severity, PromQL template, ``for``, texts and a dashboard. Templates
take ``${key}`` from monitoring/config.yml (``${key|pct}`` writes a ratio as a
percentage): a number becomes its threshold series (trademon.thresholds, rendered at run
time), a duration or the currency is written in; and the job selectors (``${trading}``, ``${trademon}``, ``${broker}``,
``${alertmanager}``: the config's ``selectors``, by default the contract's job names),
so no threshold, job or port is typed twice. ``{{ ... }}`` is Prometheus's own alert
templating (Go text/template), left as is; it only uses functions that Prometheus 2.x
and 3.x both have (printf, humanize, humanizeDuration, humanizePercentage).

Recording rules are named ``level:metric:operations``. They keep the ``job`` label (and
``strategy``, ``endpoint``, ``worker``, ``account``) so alerts built on them carry the
labels Alertmanager routes and inhibits on.
"""

from __future__ import annotations

import re
import textwrap
from dataclasses import dataclass
from pathlib import Path

import yaml

from trademon import contract, grafana_uids
from trademon.settings import paths, thresholds
from trademon.settings.values import seconds
from trademon.stack import timescale
from trademon.contract import BOT, IB_DOWN_REASONS, IB_GATEWAY_LOG_ALERTS, IB_GATEWAY_LOG_ALERTS_COUNTER, TELEGRAM_REFUSALS, jobs_of_kind
from trademon.thresholds import render as threshold_rules

RULES_FILE = "monitoring/rules/trademon.rules.yml"
ALERTS_FILE = "monitoring/rules/trademon.alerts.yml"
BROKER_JOB = "ib-exporter"  # the job of the broker's truth (contract JOBS)
SEVERITIES = ("critical", "warning", "info")


@dataclass(frozen=True)
class Record:
    name: str
    expr: str


@dataclass(frozen=True)
class ByAccount:
    """A money alert whose threshold ``key`` may differ per account (monitoring/config.yml
    ``accounts:``), held on the last value like :func:`held_on_last_value`.

    ``live`` and ``last`` are the current and the held value by account. Each is compared with
    its account's own threshold series, or the default's (trademon.thresholds.render.per_account):
    one rule for every account, whatever the config overrides, so an override is a reload away."""
    key: str
    live: str
    last: str
    op: str  # "<" or ">"
    present: str

    def render(self) -> str:
        def cond(vector: str) -> str:
            return f"{self.op} on (account) {threshold_rules.per_account(self.key, vector)}"

        return held_on_last_value(self.live, self.last, cond(self.live), "account", self.present, cond(self.last))


@dataclass(frozen=True)
class Alert:
    name: str
    severity: str
    expr: str | ByAccount
    summary: str
    description: str
    dashboard: str  # a key of trademon.grafana_uids.DASHBOARDS
    for_: str | None = None  # a key of the config holding the duration; None fires at once
    fast: bool = False  # evaluated in the money group, every ${money_evaluation_interval}
    # A check's allowance for what is in flight (a duration, or ``${key}`` of the config): the
    # alert keeps firing that long and HOLD_MARGIN_S more after its expression clears
    # (keep_firing_for). Newer orders, fills or fill quantity can only hide what the check
    # found missing, for that long (see not_matched): no RESOLVED while they do.
    hold: str | None = None


# An evaluation (30 s) and a scrape of the trading system (15 s), rounded up: what a count
# check's allowance needs on top to bridge the gap a newly matched count opens.
HOLD_MARGIN_S = 60.0
# What IB filled this long ago or less may not be in the trading system's scraped position yet
# (four of its scrapes): PositionDriftFromBroker allows for it.
DRIFT_FILL_WINDOW = "1m"


def _q(name: str, q: float, by: str, window: str) -> str:
    """A histogram quantile over the sum of a histogram's buckets."""
    return f"histogram_quantile({q}, sum by ({by}, le) (rate({name}_bucket[{window}])))"


RECORDING_GROUPS: dict[str, list[Record]] = {
    "trademon.intents.rules": [
        # Intents offered to the API by the real strategies (the synthetic checks' own traffic
        # would skew the ratio): accepted or refused with an error. Either counter may not
        # exist yet (labelled counters appear on first use), hence the three-way `or`.
        Record("job:order_intents_attempts:rate5m", """
            (sum by (job) (rate(order_intents_created_total{strategy!~"synthetic.*"}[5m])) + sum by (job) (rate(order_intents_error_total{strategy!~"synthetic.*"}[5m])))
              or sum by (job) (rate(order_intents_created_total{strategy!~"synthetic.*"}[5m]))
              or sum by (job) (rate(order_intents_error_total{strategy!~"synthetic.*"}[5m]))
        """),
        # Errors of the pipeline: refusals by an open circuit breaker are the breaker doing its
        # job (CircuitBreakerTripped pages for it), not errors.
        Record("job:order_intents_error:ratio_rate5m", """
            (sum by (job) (rate(order_intents_error_total{strategy!~"synthetic.*", reason!="circuit_breaker_open"}[5m])) or 0 * job:order_intents_attempts:rate5m)
              / job:order_intents_attempts:rate5m
        """),
    ],
    "trademon.api.rules": [
        Record("endpoint:api_requests:rate5m", "sum by (job, endpoint) (rate(api_request_duration_seconds_count[5m]))"),
        Record("endpoint:api_request_duration_seconds:p50_5m", _q("api_request_duration_seconds", 0.5, "job, endpoint", "5m")),
        Record("endpoint:api_request_duration_seconds:p99_5m", _q("api_request_duration_seconds", 0.99, "job, endpoint", "5m")),
        Record("job:api_request_duration_seconds:p99_5m", _q("api_request_duration_seconds", 0.99, "job", "5m")),
    ],
    "trademon.workers.rules": [
        Record("worker:worker_intents_processed:rate5m", "sum by (job, worker) (rate(worker_intents_processed_total[5m]))"),
        Record("worker:worker_intents_error:ratio_rate5m", """
            (sum by (job, worker) (rate(worker_intents_processed_total{outcome="error"}[5m])) or 0 * worker:worker_intents_processed:rate5m)
              / worker:worker_intents_processed:rate5m
        """),
        Record("worker:worker_processing_duration_seconds:p99_5m", _q("worker_processing_duration_seconds", 0.99, "job, worker", "5m")),
    ],
    "trademon.orders.rules": [
        Record("strategy:orders_submitted:rate15m", "sum by (job, strategy) (rate(orders_submitted_total[15m]))"),
        Record("strategy:orders_rejected:ratio_rate15m", """
            (sum by (job, strategy) (rate(orders_rejected_total[15m])) or 0 * strategy:orders_submitted:rate15m)
              / strategy:orders_submitted:rate15m
        """),
        # Orders IB accepted (submitted minus rejected): rejections have their own alert, so
        # the fill ratio is over accepted orders and one cause does not raise two alerts.
        Record("strategy:orders_accepted:rate30m", """
            sum by (job, strategy) (rate(orders_submitted_total[30m]))
              - (sum by (job, strategy) (rate(orders_rejected_total[30m])) or 0 * sum by (job, strategy) (rate(orders_submitted_total[30m])))
        """),
        Record("strategy:orders_filled:ratio_rate30m", """
            (sum by (job, strategy) (rate(orders_filled_total[30m])) or 0 * strategy:orders_accepted:rate30m)
              / (strategy:orders_accepted:rate30m > 0)
        """),
        Record("strategy:order_ack_latency_seconds:p50_5m", _q("order_ack_latency_seconds", 0.5, "job, strategy", "5m")),
        Record("strategy:order_ack_latency_seconds:p99_5m", _q("order_ack_latency_seconds", 0.99, "job, strategy", "5m")),
        Record("strategy:order_fill_latency_seconds:p50_5m", _q("order_fill_latency_seconds", 0.5, "job, strategy", "5m")),
        Record("strategy:order_fill_latency_seconds:p90_5m", _q("order_fill_latency_seconds", 0.9, "job, strategy", "5m")),
        Record("strategy:order_slippage_bps:p50_15m", _q("order_slippage_bps", 0.5, "job, strategy", "15m")),
        Record("strategy:order_slippage_bps:p90_15m", _q("order_slippage_bps", 0.9, "job, strategy", "15m")),
    ],
    "trademon.pnl_risk.rules": [
        # A limit of 0 (unset) would give +Inf: only accounts with a limit have a ratio.
        Record("account:risk_gross_exposure:ratio_limit", """
            max by (account) (risk_gross_exposure) / (max by (account) (risk_gross_exposure_limit) > 0)
        """),
        # Now minus 5 minutes ago: the exact change (delta() would extrapolate).
        Record("account:daily_pnl:delta5m", "sum by (account) (daily_pnl) - sum by (account) (daily_pnl offset 5m)"),
    ],
}

# IB's schedule (am-config --watch exports the windows of TRADEMON_IB_MAINTENANCE and the
# Gateway's restart). Absent when that exporter is down: then nothing is held (never blind).
RECORDING_GROUPS["trademon.schedule.rules"] = [
    Record("trademon:ib_maintenance_window:max", "max(trademon_ib_maintenance_window)"),
    # Session losses that are incidents: those inside a maintenance window are IB's scheduled
    # reset, not counted (all are counted while the schedule is unknown).
    Record("job:ib_disconnect_incidents:increase5m", """
        (sum by (job) (increase(ib_disconnects_total[5m])) * on () group_left () (1 - trademon:ib_maintenance_window:max))
          or sum by (job) (increase(ib_disconnects_total[5m]))
    """),
]


# Broker truth (docs/broker-truth.md): the trading system's own position against IB's, per
# account and symbol, while the exporter has the account's broker data (risk_exposure_complete
# is present exactly then). A position only one side has counts in full; a flat one is 0.
RECORDING_GROUPS["trademon.broker_truth.rules"] = [
    Record("account_symbol:trading_position_drift:abs", """
        (
          abs(sum by (account, symbol) (trading_position_quantity)
              - (sum by (account, symbol) (ib_position_quantity) or 0 * sum by (account, symbol) (trading_position_quantity)))
          or abs(sum by (account, symbol) (ib_position_quantity))
               and on (account) group by (account) (trading_position_quantity)
        )
        and on (account) group by (account) (risk_exposure_complete)
    """),
]


def not_matched(ahead: str, behind: str, after: str) -> str:
    """How many of ``ahead``'s counts (per strategy, that happened at least ${after} ago and
    within ${broker_truth_window}) ``behind`` has not matched. Raw counter values, not
    increase(): its extrapolation would blur single orders. ``behind``'s window starts a minute
    earlier (min_over_time), and no verdict is given while ``behind``'s newest sample is older than
    ``ahead``'s, nor while the window holds ``behind``'s first samples and not ``ahead``'s, so the
    two scrapes' timing can only hide a miss, never make one up.
    Absent where ``behind`` reset in the window (its process restarted): its count would look
    short. A reset of ``ahead`` makes its count short, which can only hide a miss.
    Counts cannot tell which item is missing: a newer one matched at once hides the missing
    one until it is itself ${after} old, so an alert on this is held (Alert.hold): its RESOLVED
    would otherwise go out at each new order or fill while the missing one still is."""
    w = "${broker_truth_window}" + after
    ahead_now = f"sum by (strategy) ({ahead} offset {after})"
    ahead_delta = f"({ahead_now} - (sum by (strategy) ({ahead} offset {w}) or 0 * {ahead_now}))"
    behind_now = f"sum by (strategy) ({behind})"
    behind_delta = f"({behind_now} - (sum by (strategy) (min_over_time({behind}[1m] offset {w})) or 0 * {behind_now}))"
    # The two counts come from different jobs scraped at different times: where ``behind``'s
    # newest sample is older than ``ahead``'s (a late scrape, a loaded host, a fast demo), what
    # ``ahead`` counted since has not had the chance to show up in ``behind``: no verdict then.
    stale = f"min by (strategy) (timestamp({behind})) < max by (strategy) (timestamp({ahead} offset {after}))"
    # Where the window reaches back to ``behind``'s start but not yet to ``ahead``'s (a cold start
    # whose first scrape of ``behind``'s job came first; ``ahead``'s job not scraped then),
    # ``ahead``'s whole count would be held against ``behind``'s window alone: no verdict then
    # (it paged once an hour after every start).
    unstarted = f"sum by (strategy) (min_over_time({behind}[1m] offset {w})) unless on (strategy) sum by (strategy) ({ahead} offset {w})"
    return (f"{ahead_delta}\n  - ({behind_delta} or 0 * {ahead_delta})\n  > 0\n"
            f"  unless on (strategy) (sum by (strategy) (resets({behind}[{w}])) > 0)\n"
            f"  unless on (strategy) ({stale})\n"
            f"  unless on (strategy) ({unstarted})")


def unacknowledged(after: str) -> str:
    """Orders the trading system sent at least ``after`` ago that IB has not shown, while the
    exporter has a session (without one, TWSConnectionLost pages)."""
    return (not_matched("trading_orders_sent_total", "orders_submitted_total", after)
            + "\n  and on () (max(ib_connected) == 1)")


def breaker_leak() -> str:
    """Open circuit breakers with orders still working at IB, per breaker. A breaker named after a
    strategy (the strategy label of its orders' series) halts that strategy alone: only its
    working orders count, and the alert carries the strategy. Any other breaker halts them all:
    every working order counts. The synthetic checks' test breakers refuse only their own
    intents: not a kill switch."""
    opened = 'max by (breaker) (circuit_breaker_open{breaker!~"synthetic.*"}) > 0'
    strategies = ('label_replace(group by (strategy) (trading_orders_sent_total or orders_submitted_total'
                  ' or ib_strategy_working_orders), "breaker", "$1", "strategy", "(.*)")')
    own = ("sum by (strategy) (ib_strategy_working_orders)\n"
           f'    * on (strategy) group_left (breaker) label_replace({opened}, "strategy", "$1", "breaker", "(.*)")')
    every = f"({opened}\n    unless on (breaker) {strategies})\n    * on () group_left () sum(ib_working_orders)"
    return f"(\n  {own}\n  or\n  {every}\n) > 0"


def held_in_ib_maintenance(expr: str, healthy_within_hold: str) -> str:
    """``expr``, except inside an IB maintenance window while the thing was healthy at some
    point of the last ${ib_maintenance_hold} (``healthy_within_hold``, same labels as ``expr``):
    a scheduled reset waits out the hold, then the alert's own ``for``; a session that stays
    down pages inside the window all the same, and at the latest right after it."""
    return f"({expr}) unless ({healthy_within_hold} and on () trademon:ib_maintenance_window:max == 1)"


CURRENCY_VALUE = '{{ printf "%.2f" $value }} ${currency}'


def held_on_last_value(live: str, last: str, cond: str, key: str, present: str, cond_last: str | None = None) -> str:
    """A money alert that does not resolve because its data went away (issue 10.4).

    ``live cond`` fires on current data. While the series of ``present`` has no current
    sample for the alert's ``key`` (the exporter dropped it while IB is disconnected, the
    target is down), the last value seen within ${money_hold} stands in for it: the alert
    keeps firing on it, and resolves only when a current value shows recovery. The alert's
    labels are the same on both branches, so Alertmanager sees one alert throughout."""
    return (f"{live} {cond}\n"
            f"  or ({last} {cond_last or cond}\n"
            f"        unless on ({key}) group by ({key}) ({present}))")


def held_note(present: str, key: str) -> str:
    """The description's note while the alert stands on the last value (no current data)."""
    return ('{{ with query (printf "' + present + '{' + key + '=%q}" $labels.' + key + ') }}{{ else }}'
            " No current value: its data is unavailable; this is the last value seen, and the alert stays "
            "until a current value shows recovery.{{ end }}")


def _same_target(metric: str, condition: str = "") -> str:
    """A template query for ``metric`` of the alert's own exporter (job and instance)."""
    return f'printf "{metric}{{job=%q,instance=%q}}{condition}" $labels.job $labels.instance | query'


def _branch(i: int, comparison: str) -> str:
    """The i-th branch of a Go template if-chain on ``eq comparison``."""
    return "{{ " + ("if" if i == 0 else "else if") + " eq " + comparison + " }}"


def down_reason_text() -> str:
    """Why the IB session is down, for TWSConnectionLost's description: the reason at 1 in
    ib_session_down_reason of the same exporter and what to do about it (contract.IB_DOWN_REASONS),
    the client id from ib_client_id. Looked up with a template query, not joined into the
    expression: a reason that changes during an outage must not restart the alert."""
    client_id = "{{ with " + _same_target("ib_client_id") + ' }}{{ . | first | value | printf "%.0f" }}{{ end }}'
    branches = "".join(_branch(i, '$reason "' + r + '"') + text.format(client_id=client_id)
                       for i, (r, text) in enumerate(IB_DOWN_REASONS.items()))
    return ("{{ with " + _same_target("ib_session_down_reason", " == 1") + " }}{{ with first . }}"
            '{{ $reason := label "reason" . }}' + branches + "{{ end }}"
            "{{ end }}{{ else }}not known yet (the ib-exporter has not failed to connect yet, or is not scraped): "
            "see its log{{ end }}.")


def text_by_label(label: str, texts: dict[str, str]) -> str:
    """A template that says texts[value] for the alert's ``label`` value (each a sentence)."""
    return ("".join(_branch(i, "$labels." + label + ' "' + value + '"') + text + "."
                    for i, (value, text) in enumerate(texts.items())) + "{{ end }}")


def gateway_log_alert_text() -> str:
    """What to do about each ALERT_* token of the gateway controller's log (contract.IB_GATEWAY_LOG_ALERTS)."""
    return text_by_label("gateway_alert", IB_GATEWAY_LOG_ALERTS)


def refusal_text() -> str:
    """TelegramRefusesBot's fix for its reason label (contract.TELEGRAM_REFUSALS)."""
    return text_by_label("reason", TELEGRAM_REFUSALS)


# The one action for a gateway waiting for its second factor; said in the page itself.
TWO_FA_ACTION = ("Approve the IB Key push in IBKR Mobile now (or log in to IB Gateway by hand with the second factor). "
                 "Do NOT restart the gateway or its container: each restart sends another 2FA push, and unanswered "
                 "pushes can get the account locked (docs/ib-gateway.md, restart policy).")


ALERTS: list[Alert] = [
    # --- Critical: page ---
    Alert("APIHealthCheckFailed", "critical",
          'up{${trading}} == 0',
          "{{ $labels.job }} is down",
          "Prometheus has not been able to scrape {{ $labels.job }} ({{ $labels.instance }}) for more than "
          "${api_down_for}: the service is down, hung or unreachable, and trading through it may have stopped.",
          "health", for_="api_down_for"),
    Alert("TWSConnectionLost", "critical",
          held_in_ib_maintenance("ib_connected == 0", "max_over_time(ib_connected[${ib_maintenance_hold}]) > 0"),
          "IB API session to TWS / IB Gateway lost",
          # the reason first: the Telegram message cuts a description at 400 characters
          "{{ $labels.instance }} has had no API session to TWS / IB Gateway for more than ${tws_lost_for}. "
          "Why: " + down_reason_text() + " No order reaches the broker, and P&L, positions and risk from the broker "
          "are not current.",
          "health", for_="tws_lost_for", fast=True),
    Alert("IBGateway2FARequired", "critical",
          "max by (job, instance) (ib_gateway_2fa_required) == 1",
          "IB Gateway waits for the two-factor login",
          "{{ $labels.instance }}: IB Gateway is waiting for a login with the second factor (IB's weekly re-authentication, "
          "Sunday after 01:00 New York time, or a restart), for more than ${ib_2fa_for}. " + TWO_FA_ACTION
          + " Until then no order reaches the broker.",
          "health", for_="ib_2fa_for"),
    Alert("IBGatewayLoginAlert", "critical",
          # A shipper's counter appears at 1 with its first token, which increase() does not
          # count: a series new within the window fires too.
          "sum by (gateway_alert) (increase(" + IB_GATEWAY_LOG_ALERTS_COUNTER + "[${ib_gateway_log_window}]) > 0"
          " or (" + IB_GATEWAY_LOG_ALERTS_COUNTER + " unless " + IB_GATEWAY_LOG_ALERTS_COUNTER + " offset ${ib_gateway_log_window})) > 0",
          "IB Gateway login: {{ $labels.gateway_alert }}",
          "The gateway controller logged {{ $labels.gateway_alert }} within the last ${ib_gateway_log_window}: "
          + gateway_log_alert_text(),
          "health"),
    Alert("DailyLossLimitBreach", "critical",
          ByAccount("daily_loss_limit", "min by (account) (daily_pnl)",
                    "min by (account) (last_over_time(daily_pnl[${money_hold}]))", "<", "daily_pnl"),
          "Daily loss limit breached on {{ $labels.account }}",
          "Account {{ $labels.account }}: daily P&L " + CURRENCY_VALUE + ", limit ${daily_loss_limit}."
          + held_note("daily_pnl", "account"),
          "pnl", fast=True),
    Alert("CircuitBreakerTripped", "critical",
          held_on_last_value("max by (breaker) (circuit_breaker_open)", "max by (breaker) (last_over_time(circuit_breaker_open[${money_hold}]))",
               "> 0", "breaker", "circuit_breaker_open"),
          "Circuit breaker {{ $labels.breaker }} tripped: new orders halted",
          "Circuit breaker {{ $labels.breaker }} is open: the orders it guards are refused until it is reset."
          + held_note("circuit_breaker_open", "breaker"),
          "risk", fast=True),
    Alert("PositionReconciliationMismatch", "critical",
          held_on_last_value("sum by (account, symbol) (position_reconciliation_discrepancy)",
               "sum by (account, symbol) (last_over_time(position_reconciliation_discrepancy[${money_hold}]))",
               "!= 0", "account", "position_reconciliation_discrepancy"),
          "Position mismatch for {{ $labels.symbol }} on {{ $labels.account }}",
          'Internal book minus broker for {{ $labels.symbol }} on account {{ $labels.account }}: '
          '{{ printf "%+g" $value }} (shares or contracts), for more than ${reconciliation_for}.'
          + held_note("position_reconciliation_discrepancy", "account"),
          "risk", for_="reconciliation_for"),
    # Blind spots: without the ib-exporter's data no loss, exposure or TWS alert can fire, so
    # losing it pages as loudly as the alerts it silences.
    Alert("BrokerViewLost", "critical",
          'up{${broker}} == 0',
          "Broker view lost: {{ $labels.job }} is not scraped",
          "Prometheus has not been able to scrape {{ $labels.job }} ({{ $labels.instance }}) for more than "
          "${broker_view_lost_for}. Blind: daily P&L, positions, exposure and the TWS session, so "
          "DailyLossLimitBreach, HighRiskExposure, TWSConnectionLost and the order-quality alerts cannot fire.",
          "health", for_="broker_view_lost_for"),
    Alert("BrokerDataMissing", "critical",
          # Accounts with P&L in the memory window but none now, while the exporter says the
          # IB session is up (while it is down, TWSConnectionLost pages instead).
          """
          group by (account) (last_over_time(daily_pnl[${broker_data_memory}]))
            unless on (account) group by (account) (daily_pnl)
            and on () (max(ib_connected) == 1)
          """,
          "No broker data for {{ $labels.account }}",
          "Prometheus had daily P&L for account {{ $labels.account }} within the last ${broker_data_memory} but has had "
          "none for more than ${broker_data_missing_for}, while ib_connected says the IB session is up. Blind for this "
          "account: DailyLossLimitBreach, HighRiskExposure and its positions.",
          "pnl", for_="broker_data_missing_for"),
    # Broker truth: the trading system's own record held against IB's (docs/broker-truth.md)
    Alert("OrderNotAcknowledgedByIB", "critical",
          unacknowledged("${order_unacked_critical_after}"),
          '{{ printf "%.0f" $value }} order(s) of {{ $labels.strategy }} never reached IB',
          '{{ printf "%.0f" $value }} order(s) the trading system sent for {{ $labels.strategy }} more than '
          "${order_unacked_critical_after} ago (within the last ${broker_truth_window}) have not appeared at IB: no "
          "openOrder, no status, no fill. IB's paper server has been seen to drop an order with no callback, ever; the "
          "trading system thinks it is working. Orders still count as missing until they leave the window.",
          # not in the money group: an hour's window every second costs more than it buys, with the
          # trading system scraped every 15 s
          "broker", hold="${order_unacked_critical_after}"),
    Alert("ExecutionNotRecorded", "critical",
          not_matched("ib_executions_total", "trading_fills_recorded_total", "${execution_unrecorded_after}")
          + "\n  and on () (max(up{${trading}}) == 1)",
          '{{ printf "%.0f" $value }} execution(s) of {{ $labels.strategy }} at IB not recorded by the trading system',
          'IB reported {{ printf "%.0f" $value }} execution(s) of {{ $labels.strategy }} more than '
          "${execution_unrecorded_after} ago (within the last ${broker_truth_window}) that the trading system has not "
          "recorded: its book and its position are wrong. Fills during an IB disconnect (1100) are not replayed on "
          "reconnect; the ib-exporter recovers them with reqExecutions, the trading system may not.",
          "broker", hold="${execution_unrecorded_after}"),
    Alert("PositionDriftFromBroker", "critical",
          # allowed for: the working orders, and what IB filled in the last minute (four scrapes of
          # the trading system: its position is scraped apart from IB's)
          "account_symbol:trading_position_drift:abs\n"
          "  > (sum by (account, symbol) (ib_working_order_quantity) or 0 * account_symbol:trading_position_drift:abs)\n"
          f"    + (sum by (account, symbol) (increase(ib_filled_quantity_total[{DRIFT_FILL_WINDOW}])) or 0 * account_symbol:trading_position_drift:abs)",
          "Position of {{ $labels.symbol }} on {{ $labels.account }} differs from IB's",
          "The trading system's position in {{ $labels.symbol }} on account {{ $labels.account }} differs from IB's by "
          '{{ printf "%g" $value }} (shares or contracts), more than its working orders could explain, for more than '
          "${position_drift_for}. Checked all the time, so after every reconnect and at the session's end too.",
          "broker", for_="position_drift_for", fast=True, hold=DRIFT_FILL_WINDOW),
    Alert("BreakerLeakingOrders", "critical",
          breaker_leak(),
          "Circuit breaker {{ $labels.breaker }} open but {{ $value }} order(s) still working at IB",
          'Circuit breaker {{ $labels.breaker }} is open, yet IB has had {{ printf "%.0f" $value }} working order(s) '
          "{{ with $labels.strategy }}of {{ . }} {{ end }}for more than ${breaker_leak_for}: the kill switch did not "
          "cancel them. They can still fill.",
          "broker", for_="breaker_leak_for", fast=True),
    Alert("OrderEfficiencyRatioExcessive", "critical",
          "max by (job) (ib_order_efficiency_ratio) > ${oer_max}\n"
          '  and on (job) sum by (job) (ib_order_actions_today{kind!="execution"}) >= ${oer_min_actions}',
          'Order Efficiency Ratio {{ printf "%.1f" $value }}: IB calls it excessive',
          'Today\'s Order Efficiency Ratio ((submissions + revisions + cancellations) / (executions + 1)) is '
          '{{ printf "%.1f" $value }}, above ${oer_max}: IB calls that excessive and restricts repeat offenders.',
          "broker"),
    Alert("ActiveOrdersAtIBLimit", "critical",
          "max by (job, symbol, side) (ib_active_orders) >= ${active_orders_max}",
          '{{ printf "%.0f" $value }} working {{ $labels.side }} orders for {{ $labels.symbol }}: IB\'s limit',
          '{{ printf "%.0f" $value }} orders to {{ $labels.side }} {{ $labels.symbol }} are working at IB; IB allows '
          "${active_orders_max} per contract and side and refuses the next one.",
          "broker"),
    # --- Warning: quiet ---
    Alert("OrderAcknowledgementSlow", "warning",
          unacknowledged("${order_unacked_warning_after}"),
          '{{ printf "%.0f" $value }} order(s) of {{ $labels.strategy }} not yet at IB',
          '{{ printf "%.0f" $value }} order(s) the trading system sent for {{ $labels.strategy }} more than '
          "${order_unacked_warning_after} ago have not appeared at IB yet (OrderNotAcknowledgedByIB pages if they stay "
          "missing).",
          "broker", hold="${order_unacked_warning_after}"),
    Alert("OrderEfficiencyRatioHigh", "warning",
          "max by (job) (ib_order_efficiency_ratio) > ${oer_warning} <= ${oer_max}\n"
          '  and on (job) sum by (job) (ib_order_actions_today{kind!="execution"}) >= ${oer_min_actions}',
          'Order Efficiency Ratio {{ printf "%.1f" $value }}, nearing IB\'s ${oer_max}',
          'Today\'s Order Efficiency Ratio is {{ printf "%.1f" $value }} (warning above ${oer_warning}; IB calls above '
          "${oer_max} excessive): too many submissions, revisions and cancellations per execution.",
          "broker"),
    Alert("ActiveOrdersNearIBLimit", "warning",
          "max by (job, symbol, side) (ib_active_orders) >= ${active_orders_warning} < ${active_orders_max}",
          '{{ printf "%.0f" $value }} working {{ $labels.side }} orders for {{ $labels.symbol }}',
          '{{ printf "%.0f" $value }} orders to {{ $labels.side }} {{ $labels.symbol }} are working at IB (warning at '
          "${active_orders_warning}; IB refuses more than ${active_orders_max} per contract and side).",
          "broker"),
    Alert("IBPacingViolation", "warning",
          'sum by (job) (increase(ib_errors_total{code="100"}[5m])) > 0',
          "IB API pacing violations (error 100)",
          'TWS / IB Gateway answered error 100 (max rate of messages per second exceeded, 50 a second) '
          '{{ printf "%.0f" $value }} time(s) in the last 5 minutes: requests beyond it are refused.',
          "broker"),
    Alert("BrokerOrdersNotVisible", "warning",
          "max by (job, instance) (ib_master_client) == 0\n  and on () sum(increase(trading_orders_sent_total[10m])) > 0",
          "The ib-exporter cannot see the trading system's orders",
          "The trading system has sent orders in the last 10 minutes, but {{ $labels.instance }} has seen no order of "
          "another API client since it connected, for more than ${master_client_missing_for}: set TWS / IB Gateway's "
          "Master API client ID (Configure > API > Settings) to the ib-exporter's client id. Until then the broker-truth "
          "checks compare against nothing.",
          "broker", for_="master_client_missing_for"),
    Alert("OrderIntentErrorRateHigh", "warning",
          # rate * 300 s = intents in the 5-minute window
          "job:order_intents_error:ratio_rate5m > ${intent_error_ratio}"
          " and job:order_intents_attempts:rate5m * 300 >= ${ratio_min_events}",
          "{{ $value | humanizePercentage }} of order intents fail on {{ $labels.job }}",
          "{{ $value | humanizePercentage }} of the order intents of the last 5 minutes were refused with an error "
          "(limit ${intent_error_ratio|pct}; open circuit breakers and synthetic checks not counted), for more than "
          "${intent_error_for}. order_intents_error_total has the reason.",
          "overview", for_="intent_error_for"),
    Alert("OrderIntentsPendingTooMany", "warning",
          "sum by (job) (order_intents_pending) > ${intents_pending_max}",
          '{{ printf "%.0f" $value }} order intents pending on {{ $labels.job }}',
          '{{ printf "%.0f" $value }} intents pending (limit ${intents_pending_max}) for more than '
          "${intents_pending_for}: the workers are not keeping up or are stuck.",
          "workers", for_="intents_pending_for"),
    Alert("WorkerProcessingLag", "warning",
          "max by (job, worker) (worker_lag_seconds) > ${worker_lag_seconds}",
          "Worker {{ $labels.worker }} is lagging",
          "The oldest intent waiting for worker {{ $labels.worker }} is {{ $value | humanizeDuration }} old "
          "(limit ${worker_lag_seconds}s), for more than ${worker_lag_for}.",
          "workers", for_="worker_lag_for"),
    Alert("UnusualSlippage", "warning",
          "max by (job, strategy) (avg_slippage_pct) > ${slippage_pct}",
          "Unusual slippage on {{ $labels.strategy }}",
          'Average slippage of {{ $labels.strategy }} over the last 15 minutes: {{ printf "%.2f" $value }} % '
          "(limit ${slippage_pct} %).",
          "latency", for_="slippage_for"),
    Alert("HighOrderRejectionRate", "warning",
          # rate * 900 s = orders in the 15-minute window
          "strategy:orders_rejected:ratio_rate15m > ${rejection_ratio}"
          " and strategy:orders_submitted:rate15m * 900 >= ${ratio_min_events}",
          "{{ $value | humanizePercentage }} of {{ $labels.strategy }}'s orders rejected",
          "{{ $value | humanizePercentage }} of the orders {{ $labels.strategy }} submitted in the last 15 minutes were "
          "rejected (limit ${rejection_ratio|pct}). orders_rejected_total has IB's error code.",
          "overview", for_="rejection_for"),
    Alert("LowOrderFillRate", "warning",
          # rate * 1800 s = orders in the 30-minute window
          "strategy:orders_filled:ratio_rate30m < ${fill_ratio_min}"
          " and strategy:orders_accepted:rate30m * 1800 >= ${ratio_min_events}",
          "Few of {{ $labels.strategy }}'s orders fill",
          "Only {{ $value | humanizePercentage }} of the orders {{ $labels.strategy }} submitted in the last 30 minutes "
          "and IB accepted were filled (minimum ${fill_ratio_min|pct}), for more than ${fill_rate_for}.",
          "overview", for_="fill_rate_for"),
    Alert("APILatencyHigh", "warning",
          # rate * 300 s = requests in the 5-minute window: a p99 of a handful means little
          "endpoint:api_request_duration_seconds:p99_5m > ${api_p99_seconds}"
          " and endpoint:api_requests:rate5m * 300 >= ${ratio_min_events}",
          "Slow API: p99 of {{ $labels.endpoint }} is {{ $value | humanizeDuration }}",
          "p99 latency of {{ $labels.endpoint }} on {{ $labels.job }} over 5 minutes: {{ $value | humanizeDuration }} "
          "(limit ${api_p99_seconds}s), for more than ${api_latency_for}.",
          "latency", for_="api_latency_for"),
    Alert("HighRiskExposure", "warning",
          ByAccount("exposure_ratio", "account:risk_gross_exposure:ratio_limit",
                    "last_over_time(account:risk_gross_exposure:ratio_limit[${money_hold}])", ">",
                    "account:risk_gross_exposure:ratio_limit"),
          "Gross exposure of {{ $labels.account }} near its limit",
          "Gross exposure of account {{ $labels.account }} is {{ $value | humanizePercentage }} of its limit "
          "(alert above ${exposure_ratio|pct}), for more than ${exposure_for}."
          + held_note("account:risk_gross_exposure:ratio_limit", "account"),
          "risk", for_="exposure_for"),
    Alert("PnLAnomaly", "warning",
          # Compared with the spread of the 5-minute moves of the hour before (offset: the move
          # itself does not widen the spread it is judged by); the floor keeps a flat P&L quiet.
          "account:daily_pnl:delta5m"
          " and abs(account:daily_pnl:delta5m) > ${pnl_anomaly_sigmas} * stddev_over_time(account:daily_pnl:delta5m[1h] offset 5m)"
          " and abs(account:daily_pnl:delta5m) >= ${pnl_anomaly_min_change}",
          "Unusual P&L move on {{ $labels.account }}",
          'Daily P&L of account {{ $labels.account }} moved {{ printf "%+.2f" $value }} ${currency} in 5 minutes: more than '
          "${pnl_anomaly_sigmas} standard deviations of its 5-minute moves over the hour before, and at least "
          "${pnl_anomaly_min_change} ${currency}.",
          "pnl", for_="pnl_anomaly_for"),
    Alert("MarketDataStale", "warning",
          "time() - max by (job, symbol) (marketdata_last_tick_timestamp_seconds) > ${marketdata_stale_seconds}"
          " and on (job) max by (job) (marketdata_connected) == 1",
          "No market data for {{ $labels.symbol }}",
          "No tick for {{ $labels.symbol }} for {{ $value | humanizeDuration }} (limit ${marketdata_stale_seconds}s) "
          "while the market-data feed is connected.",
          "health"),
    Alert("IBDataFarmDisconnected", "warning",
          held_in_ib_maintenance("min by (job, farm, kind) (ib_farm_connected) == 0",
                                 "max by (job, farm, kind) (max_over_time(ib_farm_connected[${ib_maintenance_hold}])) > 0"),
          "IB {{ $labels.kind }} data farm {{ $labels.farm }} disconnected",
          "TWS / IB Gateway has reported the {{ $labels.kind }} data farm {{ $labels.farm }} down for more than "
          "${farm_down_for}.",
          "health", for_="farm_down_for"),
    # IB's own market data lines (trademon.ib.subscriptions): judged only in their exchange's session.
    Alert("IBMarketDataStale", "warning",
          "(max by (job, instance, subscription, cadence) (ib_market_data_tick_age_seconds{cadence=\"quote\"}) > ${ib_md_quote_stale_seconds}"
          " or max by (job, instance, subscription, cadence) (ib_market_data_tick_age_seconds{cadence=\"quote_sparse\"})"
          " > ${ib_md_quote_sparse_stale_seconds})"
          " and on (job, instance, subscription) (max by (job, instance, subscription) (ib_market_data_in_session) == 1)",
          "No IB market data on {{ $labels.subscription }}",
          "The ib-exporter's IB market data line {{ $labels.subscription }} ({{ $labels.cadence }}) has had no tick for "
          "{{ $value | humanizeDuration }} in its exchange's session (limits: quote ${ib_md_quote_stale_seconds}s, "
          "quote_sparse ${ib_md_quote_sparse_stale_seconds}s), while the session to TWS is up: the line is dead, "
          "not permitted (codes 354, 10089/10090 in ib_errors_total), or the instrument is halted.",
          "health"),
    Alert("IBMarketDataNotResubscribed", "warning",
          "max by (job, instance) (ib_market_data_lines_lost) > 0",
          "IB market data lines lost at 1101 not renewed",
          "{{ $labels.instance }}: TWS reported 1101 (connectivity restored, data lost) and {{ $value }} market data "
          "line(s) have not been asked for again for more than ${ib_md_resubscribe_for}: they deliver nothing until "
          "renewed. See the ib-exporter's log (\"resubscription failed\"); restarting the exporter renews every line.",
          "health", for_="ib_md_resubscribe_for"),
    Alert("IBMarketDataDelayed", "warning",
          "max by (job, instance, subscription) (ib_market_data_type)"
          " > on (job, instance) group_left () max by (job, instance) (ib_market_data_type_requested)"
          " and on (job, instance, subscription) (max by (job, instance, subscription) (ib_market_data_in_session) == 1)",
          "IB delivers {{ if eq $value 2.0 }}frozen{{ else if eq $value 3.0 }}delayed{{ else }}delayed-frozen{{ end }} "
          "data on {{ $labels.subscription }}",
          "IB delivers market data type {{ $value }} (2 frozen, 3 delayed, 4 delayed-frozen) on {{ $labels.subscription }} "
          "in its exchange's session, for more than ${ib_md_delayed_for}, worse than the type the exporter asks for "
          "(TRADEMON_IB_MARKET_DATA_TYPE): the account lacks the market data subscription for it (code 10167) or the "
          "data is not permitted live through this login.",
          "health", for_="ib_md_delayed_for"),
    Alert("IBWeeklyReauthSoon", "warning",
          "min by (job, instance) (ib_gateway_reauth_in_seconds) < ${ib_reauth_warn_seconds}",
          "IB's weekly re-authentication in {{ $value | humanizeDuration }}",
          "IB ends the gateway session on Sunday after 01:00 New York time ({{ $value | humanizeDuration }} from now) and the "
          "next login needs the second factor by hand: have IBKR Mobile at hand then, and keep orders that must not "
          "wait out of that hour.",
          "health"),
    Alert("IBGatewayControllerDown", "warning",
          'min by (job, instance) (ib_gateway_controller_up{check="health"}) == 0',
          "IB Gateway controller not healthy",
          "The gateway controller polled by {{ $labels.instance }} has not answered /health with 200 for more than "
          "${ib_controller_down_for}: the gateway it runs may be down, and IBGateway2FARequired cannot see a login wait "
          "through it. Look at the controller's log; restart it by hand only after reading docs/ib-gateway.md.",
          "health", for_="ib_controller_down_for"),
    Alert("SyntheticCheckFailed", "warning",
          "min by (job, check) (synthetic_check_success) == 0",
          "Synthetic check {{ $labels.check }} failing",
          "The synthetic check {{ $labels.check }} has failed on every run for more than ${synthetic_failing_for}.",
          "health", for_="synthetic_failing_for"),
    Alert("ExporterDown", "warning",
          'up{${trademon}} == 0',
          "{{ $labels.job }} is down",
          "Prometheus has not been able to scrape {{ $labels.job }} ({{ $labels.instance }}) for more than "
          "${exporter_down_for}: the metrics and alerts that depend on it are blind.",
          "health", for_="exporter_down_for"),
    # A page path that loses its way says so: the Telegram companion (a webhook) down, a wrong
    # Slack URL or SMTP password. Critical, so Slack and email carry it when the bot is the one down.
    Alert("AlertDeliveryFailing", "critical",
          'sum by (integration) (increase(alertmanager_notifications_failed_total{${alertmanager}}[5m])) > 0',
          "Alertmanager cannot deliver notifications to {{ $labels.integration }}",
          "Alertmanager's deliveries to {{ $labels.integration }} have failed for more than ${delivery_failing_for} "
          '({{ printf "%.0f" $value }} failed attempts in 5 minutes): pages sent that way are not arriving. With the '
          "Telegram companion down (integration webhook), pages reach only Slack and email.",
          "health", for_="delivery_failing_for"),
    # The thresholds reach the alerts as series (trademon.thresholds): a refused edit of
    # monitoring/config.yml leaves the old ones in force, and without the series every alert
    # that compares with one is blind. Either way what the trader believes is live is not.
    Alert("ThresholdsNotLive", "critical",
          "max by (job, instance) (trademon_thresholds_last_reload_successful{${trademon}}) == 0\n"
          "  or absent(" + threshold_rules.default("daily_loss_limit") + ")",
          "The thresholds in monitoring/config.yml are not the ones in force",
          "{{ if $labels.job }}{{ $labels.job }} refused the monitoring/config.yml on disk (or Prometheus did not reload it, "
          "or a duration edited awaits `trademon gen`) for more than ${thresholds_not_live_for}: the alerts, dashboards "
          "and bot still use the thresholds of the last config that went live. Its log names the key and the fix; "
          "`trademon thresholds --reload` prints it."
          "{{ else }}Prometheus has no threshold series (trademon:threshold:*): every alert that compares with a "
          "threshold (loss limit, exposure, error ratios, latency) is blind. The thresholds service is not running "
          "or its rules are not loaded.{{ end }}",
          "health", for_="thresholds_not_live_for"),
    # --- The pager's last hop (trademon bot): routed to the `pager` receiver, Slack and email
    # only (alertmanager.yml, PAGER_ALERTS), since Telegram is the part that failed. ---
    Alert("TelegramBotDown", "critical",
          'up{${bot}} == 0',
          "The Telegram bot is down: pages reach Slack and email only",
          "Prometheus has not been able to scrape trademon-bot ({{ $labels.instance }}) for more than ${bot_down_for}: "
          "Telegram pages are not being delivered (Alertmanager retries them, so they arrive once the bot is back).",
          "health", for_="bot_down_for"),
    Alert("TelegramOutboxStuck", "critical",
          "max by (job, instance) (trademon_bot_outbox_oldest_age_seconds{${bot}}) > ${outbox_stuck_seconds}",
          "A page has waited {{ $value | humanizeDuration }} in the Telegram bot's outbox",
          "The oldest notification in trademon-bot's outbox has waited {{ $value | humanizeDuration }} (limit "
          "${outbox_stuck_seconds}s) for Telegram to take it: Telegram is refusing or unreachable, or the bot cannot "
          "work its outbox. The bot's log says which.",
          "health"),
    Alert("TelegramRefusesBot", "critical",
          "max by (job, instance, reason) (trademon_bot_telegram_refused{${bot}}) == 1",
          "Telegram refuses the bot ({{ $labels.reason }}): no page reaches Telegram",
          "{{ $labels.reason }}: " + refusal_text() + " Until then pages reach only Slack and email.",
          "health"),
    Alert("PageLatencyHigh", "warning",
          "histogram_quantile(0.95, sum by (job, le) (rate(trademon_bot_page_latency_seconds_bucket{${bot},since=\"webhook\"}[10m])))"
          " > ${page_latency_p95_seconds}",
          "Pages take {{ $value | humanizeDuration }} to reach Telegram (p95)",
          "The 95th percentile of the time from Alertmanager's send to Telegram's acceptance of a page has been above "
          "${page_latency_p95_seconds}s for ${page_latency_for}: Telegram is slow or rate-limiting the bot.",
          "health", for_="page_latency_for"),
    Alert("EscalationChannelFailing", "warning",
          "max by (job, instance, channel) (trademon_bot_escalation_channel_failing{${bot}}) == 1",
          "Escalation by {{ $labels.channel }} fails: an unacknowledged page will not reach that tier",
          "The bot's last escalation of an unacknowledged critical page through {{ $labels.channel }} failed: the provider "
          f"refused it or could not be reached (each is tried {contract.ESCALATION_TRIES} times, {contract.ESCALATION_RETRY_S}s apart). Until one goes through, a page nobody "
          "acknowledges may not reach the people of that tier. The bot's log (logger trademon.bot.escalation) has the "
          "provider's answer.",
          "health"),
    # --- Prometheus and Alertmanager watching themselves (the prometheus-mixin and
    # alertmanager-mixin alerts, at this stack's jobs; the HA pair is one job of two targets).
    # What a Prometheus cannot send (no Alertmanager at all) the other replica sends in HA,
    # and the dead man's switch (HEARTBEAT_URL) reports on a single host. ---
    Alert("PrometheusRuleFailures", "critical",
          "sum by (job, instance, rule_group) (increase(prometheus_rule_evaluation_failures_total{${prometheus}}[5m])) > 0",
          "Rules of {{ $labels.rule_group }} fail to evaluate on {{ $labels.instance }}",
          'Prometheus {{ $labels.instance }} failed {{ printf "%.0f" $value }} evaluations of the rule group {{ $labels.rule_group }} '
          "in 5 minutes, for more than ${prometheus_rule_failures_for}: the alerts of that group are blind (a many-to-many "
          "match after a label change is the usual cause). Its log names the rule and the error.",
          "health", for_="prometheus_rule_failures_for"),
    Alert("PrometheusConfigReloadFailed", "warning",
          "max_over_time(prometheus_config_last_reload_successful{${prometheus}}[5m]) == 0",
          "Prometheus {{ $labels.instance }} could not reload its configuration",
          "The last configuration reload of Prometheus {{ $labels.instance }} failed and it runs the previous one: the "
          "rules or scrape jobs edited since are not in force.",
          "health", for_="prometheus_reload_failed_for"),
    Alert("PrometheusNotificationsBacklog", "warning",
          "min_over_time(prometheus_notifications_queue_length{${prometheus}}[10m]) > 0",
          "Prometheus {{ $labels.instance }} has alerts queued for Alertmanager",
          'Prometheus {{ $labels.instance }} has had alerts waiting to be sent to Alertmanager for 10 minutes and more '
          '({{ printf "%.0f" $value }} at least): alerts reach Alertmanager late; a full queue drops them.',
          "health", for_="prometheus_backlog_for"),
    Alert("PrometheusErrorSendingAlertsToAnyAlertmanager", "critical",
          "min without (alertmanager) (rate(prometheus_notifications_errors_total{${prometheus}}[5m])"
          " / rate(prometheus_notifications_sent_total{${prometheus}}[5m]))"
          " > ${prometheus_send_error_ratio}",
          "Prometheus {{ $labels.instance }} fails to send alerts to every Alertmanager",
          'Prometheus {{ $labels.instance }} fails {{ $value | humanizePercentage }} of its sends to even its best '
          "Alertmanager (limit ${prometheus_send_error_ratio|pct}) for ${prometheus_send_errors_for}: its alerts are not "
          "arriving. This page comes from the other replica, or not at all: the dead man's switch then says so.",
          "health", for_="prometheus_send_errors_for"),
    Alert("PrometheusNotConnectedToAlertmanagers", "warning",
          "max_over_time(prometheus_notifications_alertmanagers_discovered{${prometheus}}[5m]) < 1",
          "Prometheus {{ $labels.instance }} has no Alertmanager",
          "Prometheus {{ $labels.instance }} has discovered no Alertmanager for ${prometheus_no_alertmanager_for}: its "
          "alerts go nowhere (check the alerting section of prometheus.yml).",
          "health", for_="prometheus_no_alertmanager_for"),
    Alert("PrometheusRemoteWriteBehind", "critical",
          "(max_over_time(prometheus_remote_storage_highest_timestamp_in_seconds{${prometheus}}[5m])"
          " - ignoring (remote_name, url) group_right"
          " max_over_time(prometheus_remote_storage_queue_highest_sent_timestamp_seconds{${prometheus}}[5m]))"
          " > ${remote_write_lag_seconds}",
          "Prometheus {{ $labels.instance }} is {{ $value | humanizeDuration }} behind writing to {{ $labels.remote_name }}",
          "Remote write from Prometheus {{ $labels.instance }} to {{ $labels.url }} is {{ $value | humanizeDuration }} "
          "behind (limit ${remote_write_lag_seconds}s) for ${remote_write_behind_for}: the long-term store misses the "
          "recent data, and Prometheus loses it past its WAL.",
          "health", for_="remote_write_behind_for"),
    Alert("AlertmanagerFailedReload", "critical",
          "max_over_time(alertmanager_config_last_reload_successful{${alertmanager}}[5m]) == 0",
          "Alertmanager {{ $labels.instance }} could not load its configuration",
          "The last configuration reload of Alertmanager {{ $labels.instance }} failed and it routes with the previous one: "
          "a receiver or route added since is not in force. Its log names the error.",
          "health", for_="alertmanager_reload_failed_for"),
    Alert("AlertmanagerMembersInconsistent", "critical",
          "max_over_time(alertmanager_cluster_members{${alertmanager}}[5m])"
          " < on (job) group_left count by (job) (max_over_time(alertmanager_cluster_members{${alertmanager}}[5m]))",
          "Alertmanager {{ $labels.instance }} sees only {{ $value }} cluster members",
          "Alertmanager {{ $labels.instance }} has not found every member of its cluster for "
          "${alertmanager_cluster_for}: the pair does not share silences and notification state, so a page may go "
          "out twice or a silence not hold (check the --cluster.peer addresses and the gossip port).",
          "health", for_="alertmanager_cluster_for"),
    Alert("AlertmanagerConfigInconsistent", "critical",
          'count by (job) (count_values by (job) ("config_hash", alertmanager_config_hash{${alertmanager}})) != 1',
          "The Alertmanagers of {{ $labels.job }} run different configurations",
          "The Alertmanagers of {{ $labels.job }} have run {{ $value }} different configurations for "
          "${alertmanager_cluster_for}: they route and notify differently (a reload that reached one node only).",
          "health", for_="alertmanager_cluster_for"),
    Alert("AlertmanagerClusterDown", "critical",
          "count by (job) (avg_over_time(up{${alertmanager}}[5m]) < 0.5) / count by (job) (up{${alertmanager}}) >= 0.5",
          "Half or more of the Alertmanagers of {{ $labels.job }} are down",
          "{{ $value | humanizePercentage }} of the Alertmanagers of {{ $labels.job }} could not be scraped for "
          "${alertmanager_cluster_down_for}: in the HA pair the survivor still notifies, with no redundancy left.",
          "health", for_="alertmanager_cluster_down_for"),
    Alert("MarketCalendarExpiring", "warning",
          "(min by (job) (trademon_market_calendar_end_timestamp_seconds) - time()) / 86400 < ${market_calendar_min_days}",
          'Market calendar runs out in {{ printf "%.0f" $value }} days',
          'The market-open intervals rendered into Alertmanager end in {{ printf "%.1f" $value }} days (warning below '
          "${market_calendar_min_days}): after that MarketDataStale is muted as if the market never opened. "
          "alertmanager-config renders them daily; it is failing or stopped.",
          "health"),
    # --- Info: file webhook only ---
    Alert("Watchdog", "info",
          "vector(1)",
          "Alerting pipeline heartbeat",
          "Always firing, so that its notifications prove Prometheus evaluates rules and Alertmanager delivers. "
          "If the heartbeat stops arriving, alerting is broken.",
          "health"),
]

ALERTS_GROUP = "trademon.alerts"
# The alerts the trader stakes money on (loss limit, breaker, TWS session), evaluated more
# often than the rest so that they reach the phone within seconds (issue 10.8): their
# series' jobs are scraped as often (prometheus/prometheus.yml, MONEY_JOBS).
MONEY_GROUP = "trademon.money.alerts"
MONEY_JOBS = ("ib-exporter", "position-manager")

_PLACEHOLDER = re.compile(r"\$\{([a-z_][a-z0-9_]*)(?:\|([a-z]+))?\}")


def _fmt(value) -> str:
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    return str(value)


_FILTERS = {"pct": lambda v: f"{float(v) * 100:g}%"}
_TEMPLATE_FILTERS = {"pct": "humanizePercentage"}  # the same, at notification time


def default_selectors() -> dict[str, str]:
    """The job matchers of the stack's own scrape jobs (the contract), for each selector kind."""
    return {
        "broker": f'job="{BROKER_JOB}"',
        "trading": 'job=~"' + "|".join(jobs_of_kind("trading")) + '"',
        # the bot apart: TelegramBotDown pages for it, by Slack and email
        "trademon": 'job=~"' + "|".join(j for j in jobs_of_kind("trademon") if j != BOT) + '"',
        "bot": f'job="{BOT}"',
        "alertmanager": 'job="alertmanager"',
        "prometheus": 'job="prometheus"',
    }


class Filler:
    """Fills ``${key}`` placeholders and remembers which thresholds were used.

    A threshold that is a number is not written into the rules: in an expression it becomes
    its series (``scalar(trademon:threshold:key)``), in a text a template query of it, so the
    rules never need regenerating for a new value (trademon.thresholds). Durations, the
    currency and the job selectors are written in as they are."""

    def __init__(self, root: Path):
        self.thresholds = thresholds.load(root)
        self.series = thresholds.numbers(root)
        self.values = dict(self.thresholds)
        config = thresholds.load_config(root)
        self.values.update(default_selectors())
        self.values.update(config.get("selectors") or {})
        self.runbook_url_pattern = str(config["runbook_url_pattern"])
        self.used: set[str] = set()

    def __call__(self, text: str, by_account: str | None = None, expr: bool = False) -> str:
        """``text`` with its placeholders filled: in an expression (``expr``) a number
        threshold is its series; in a text, its value looked up when the alert is sent, for
        ``by_account`` (an alert's per-account threshold) the alert's own account's."""
        def sub(m: re.Match) -> str:
            key, filt = m.group(1), m.group(2)
            if key not in self.values:
                raise KeyError("${" + key + "} in an alert definition: no such key in monitoring/config.yml")
            if filt and filt not in _FILTERS:
                raise KeyError(f"unknown filter |{filt} (known: {', '.join(_FILTERS)})")
            self.used.add(key)
            if key in self.series:
                if expr:
                    return threshold_rules.scalar(key)
                fmt = _TEMPLATE_FILTERS[filt] if filt else 'printf "%g"'
                if key == by_account:
                    return threshold_rules.template_account_value(key, fmt)
                return threshold_rules.template_value(key, fmt)
            v = self.values[key]
            return _FILTERS[filt](v) if filt else _fmt(v)

        return _PLACEHOLDER.sub(sub, text)

    def duration(self, key: str | None) -> str | None:
        if key is None:
            return None
        v = str(self("${" + key + "}"))
        return None if v in ("0", "0s", "0m") else v


def _expr(text: str) -> str:
    return textwrap.dedent(text).strip()


def alert_expr(a: Alert, fill: Filler) -> str:
    """The alert's PromQL, filled: thresholds are series, per account where the alert's is."""
    if isinstance(a.expr, str):
        return fill(_expr(a.expr), expr=True)
    fill.used.add(a.expr.key)
    return fill(_expr(a.expr.render()), expr=True)


def keep_firing_for(a: Alert, fill: Filler) -> str | None:
    """The alert's keep_firing_for: its hold's allowance and HOLD_MARGIN_S, or None."""
    return timescale.fmt(seconds(fill(a.hold)) + HOLD_MARGIN_S) if a.hold else None


def alert_rule(a: Alert, fill: Filler) -> dict:
    rule: dict[str, object] = {"alert": a.name, "expr": alert_expr(a, fill)}
    for_ = fill.duration(a.for_)
    if for_:
        rule["for"] = for_
    held = keep_firing_for(a, fill)
    if held:
        rule["keep_firing_for"] = held
    rule["labels"] = {"severity": a.severity}
    by_account = None if isinstance(a.expr, str) else a.expr.key
    rule["annotations"] = {
        "summary": fill(a.summary, by_account),
        "description": fill(a.description, by_account),
        "runbook_url": fill.runbook_url_pattern.replace("{alert}", a.name.lower()),
        "dashboard": grafana_uids.path(a.dashboard),
    }
    return rule


class _Dumper(yaml.SafeDumper):
    pass


def _str(dumper, s: str):
    return dumper.represent_scalar("tag:yaml.org,2002:str", s, style="|" if "\n" in s else None)


_Dumper.add_representer(str, _str)

HEADER = """\
# Generated by `trademon gen` from monitoring/config.yml and
# exporters/trademon/gen/rules.py. Do not edit by hand: tune monitoring/config.yml, run
# `trademon gen`, then reload Prometheus (curl -X POST http://localhost:9090/-/reload).
"""


def _dump(doc: dict, what: str, stamp: str = "") -> str:
    return HEADER + stamp + f"# {what}\n" + yaml.dump(doc, Dumper=_Dumper, sort_keys=False, width=1000, allow_unicode=True)


def render_rules(root: Path) -> str:
    groups = [{"name": name, "rules": [{"record": r.name, "expr": _expr(r.expr)} for r in rules]}
              for name, rules in RECORDING_GROUPS.items()]
    return _dump({"groups": groups}, "Recording rules (level:metric:operations): the ratios and quantiles alerts and dashboards share.")


def render_alerts(root: Path, fill: Filler | None = None) -> str:
    fill = fill or Filler(root)
    doc = {"groups": [
        {"name": MONEY_GROUP, "interval": fill.duration("money_evaluation_interval"),
         "rules": [alert_rule(a, fill) for a in ALERTS if a.fast]},
        {"name": ALERTS_GROUP, "rules": [alert_rule(a, fill) for a in ALERTS if not a.fast]},
    ]}
    thresholds.refuse_unread(root, set(fill.thresholds), fill.used)
    return _dump(doc, "Alerts of the trademon alert contract (monitoring/runbooks.md has one section per alert).",
                 threshold_rules.stamp(root))


def used_thresholds(root: Path) -> tuple[set[str], set[str]]:
    """(keys of the config the alerts use, all threshold keys of the config)."""
    fill = Filler(root)
    render_alerts(root, fill)
    return fill.used, set(fill.thresholds)


def recording_rule_names() -> set[str]:
    """The series the rules record: the generated ones and the thresholds' (rendered at run time)."""
    return {r.name for rules in RECORDING_GROUPS.values() for r in rules} | threshold_rules.names(paths.config_root())


GENERATED = [(RULES_FILE, render_rules), (ALERTS_FILE, render_alerts),
             (threshold_rules.TEST_COPY, threshold_rules.render_test_copy)]


def render_doc(root: Path) -> str:
    """monitoring/alerts.md: the alerts and recording rules as they are generated."""
    fill = Filler(root)
    lines = [
        "# Alerts",
        "",
        "<!-- Generated by `trademon gen` from monitoring/config.yml and exporters/trademon/gen/rules.py. Do not edit by hand. -->",
        "",
        "Thresholds and durations come from `monitoring/config.yml`; what to do about each alert is in",
        "[runbooks.md](runbooks.md). Severities: `critical` pages, `warning` arrives silently, `info` only",
        "reaches the file webhook. The `dashboard` annotation is a Grafana path. \"held\": the alert keeps firing",
        "that long after its expression clears (`keep_firing_for`).",
        "",
        "| alert | severity | fires when | for | dashboard |",
        "| --- | --- | --- | --- | --- |",
    ]
    for a in ALERTS:
        expr = " ".join(alert_expr(a, fill).split()).replace("|", "\\|")  # one table row each, as for the recording rules
        held = f"; held {k}" if (k := keep_firing_for(a, fill)) else ""
        lines.append(f"| [{a.name}](runbooks.md#{a.name.lower()}) | {a.severity} | `{expr}` | "
                     f"{fill.duration(a.for_) or '-'}{held} | `{grafana_uids.path(a.dashboard)}` |")
    lines += ["", "## Recording rules", "",
              "Named `level:metric:operations`; alerts and dashboards share them.", "",
              "| rule | expression |", "| --- | --- |"]
    for rules in RECORDING_GROUPS.values():
        for r in rules:
            expr = " ".join(_expr(r.expr).split()).replace("|", "\\|")
            lines.append(f"| `{r.name}` | `{expr}` |")
    return "\n".join(lines) + "\n"


GENERATED.append(("monitoring/alerts.md", render_doc))
