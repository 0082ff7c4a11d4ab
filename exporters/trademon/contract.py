"""The metric contract: every metric trademon's parts agree on, defined once.

The trader's services, the exporters, the simulator, the alert rules, the dashboards
and docs/metrics.md all take names from here or are tested against it. A metric's
``name`` is the name as it appears in the exposition (counters end in ``_total``).
"""

from __future__ import annotations

from dataclasses import dataclass
from collections.abc import Iterable

COUNTER = "counter"
GAUGE = "gauge"
HISTOGRAM = "histogram"


@dataclass(frozen=True)
class Job:
    """A Prometheus scrape job and the port its service listens on."""

    name: str
    port: int
    kind: str  # "trading": the trader's own services; "trademon": ours; "stack": third-party
    description: str


JOBS: dict[str, Job] = {
    j.name: j
    for j in (
        Job("automatictrader-api", 8080, "trading", "order-intent API and its workers"),
        Job("marketdata-stream", 8081, "trading", "market-data stream"),
        Job("position-manager", 8082, "trading", "internal book, strategy P&L, circuit breakers"),
        Job("ib-exporter", 9110, "trademon", "broker truth from TWS / IB Gateway"),
        Job("synthetic", 9111, "trademon", "continuous synthetic checks"),
        Job("alert-sink", 9112, "trademon", "file-based Alertmanager webhook receiver"),
        Job("alertmanager-config", 9113, "trademon", "Alertmanager config render kept current: market calendar, IB schedule"),
        Job("thresholds", 9115, "trademon", "monitoring/config.yml's thresholds rendered into Prometheus rules, reloaded on change"),
        Job("trademon-bot", 9114, "trademon", "the Telegram companion: page delivery (outbox), buttons, commands"),
        Job("prometheus", 9090, "stack", "Prometheus"),
        Job("alertmanager", 9093, "stack", "Alertmanager"),
        Job("grafana", 3000, "stack", "Grafana"),
        Job("loki", 3100, "stack", "Loki"),
        # The log shipper; Promtail (end of life, 2026-03) is the opt-in legacy profile, not scraped.
        Job("alloy", 12345, "stack", "Grafana Alloy: ships logs to Loki"),
        # cAdvisor listens on 8080 by default; moved so every job has a port of its own.
        Job("cadvisor", 8084, "stack", "cAdvisor: container CPU, memory and network"),
    )
}

# The simulator's own control endpoint (scenarios on/off, clock). Not a scrape job.
SIM_CONTROL_PORT = 9119

# `trademon bot`'s webhook for Alertmanager, and its /healthz, /readyz, /metrics.
BOT = "trademon-bot"
BOT_PORT = JOBS[BOT].port


def jobs_of_kind(kind: str) -> list[str]:
    return [j.name for j in JOBS.values() if j.kind == kind]


@dataclass(frozen=True)
class Metric:
    name: str
    type: str
    help: str
    labels: tuple[str, ...]
    job: str
    group: str
    buckets: tuple[float, ...] | None = None

    @property
    def client_name(self) -> str:
        """The name prometheus_client wants (it appends ``_total`` to counters itself)."""
        if self.type == COUNTER and self.name.endswith("_total"):
            return self.name[: -len("_total")]
        return self.name

    @property
    def series_names(self) -> tuple[str, ...]:
        """Every sample name this metric puts in the exposition."""
        if self.type == HISTOGRAM:
            if self.buckets and self.buckets[0] < 0:
                # prometheus_client (per OpenMetrics) exposes no _sum when buckets go negative.
                return (f"{self.name}_bucket", f"{self.name}_count")
            return (f"{self.name}_bucket", f"{self.name}_sum", f"{self.name}_count")
        return (self.name,)


# Buckets, chosen for what each histogram measures.
LATENCY_API_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)
WORKER_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
ACK_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)
FILL_BUCKETS = (0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0)
# Signed: a negative slippage is price improvement.
# A page from Alertmanager's send (or the alert's start) to Telegram's acceptance: the money
# pages' bar is 5 s (MiFID RTS 7's real-time alerts), the pager alert's 10 s (p95).
PAGE_LATENCY_BUCKETS = (0.25, 0.5, 1.0, 2.0, 3.0, 5.0, 7.5, 10.0, 15.0, 30.0, 60.0, 120.0, 300.0, 900.0)
SLIPPAGE_BPS_BUCKETS = (-50.0, -20.0, -10.0, -5.0, -2.0, -1.0, 0.0, 1.0, 2.0, 5.0, 10.0, 20.0, 50.0, 100.0)

API = "automatictrader-api"
MD = "marketdata-stream"
PM = "position-manager"
IB = "ib-exporter"
SYN = "synthetic"
SINK = "alert-sink"
AMC = "alertmanager-config"
THR = "thresholds"

# The reasons Telegram refuses the bot for good (until someone fixes the setting), with the fix;
# trademon_bot_telegram_refused's label values and TelegramRefusesBot's description.
TELEGRAM_REFUSALS = {
    "token_rejected": "Telegram answers 401 Unauthorized: the bot token was revoked or is wrong. Get the current "
                      "token from @BotFather (/token), set TELEGRAM_BOT_TOKEN in .env and restart trademon-bot",
    "bot_blocked": "Telegram answers 403 Forbidden: the bot was blocked by the user or removed from the group. "
                   "Unblock it (or add it back to the group) and send it /start",
    "chat_not_found": "Telegram answers 400 chat not found: TELEGRAM_CHAT_ID names no chat the bot is in. Send the bot "
                      "a message, read the chat id from getUpdates, set TELEGRAM_CHAT_ID and restart trademon-bot",
    "chat_migrated": "Telegram answers 400: the group was upgraded to a supergroup and has a new id. Set "
                     "TELEGRAM_CHAT_ID to the supergroup's id (-100...) and restart trademon-bot",
}


# How the bot tries one escalation channel of one tier (trademon.bot.escalation), and what
# EscalationChannelFailing's description says of it.
ESCALATION_TRIES = 3
ESCALATION_RETRY_S = 30


def _m(name, type_, help_, labels=(), *, job, group, buckets=None) -> Metric:
    return Metric(name, type_, help_, tuple(labels), job, group, buckets)


METRICS: tuple[Metric, ...] = (
    # Order intents
    _m("order_intents_created_total", COUNTER, "Order intents accepted.", ["strategy"], job=API, group="Order intents"),
    _m("order_intents_duplicate_total", COUNTER, "Intent submissions refused as duplicates (idempotency key).", ["strategy"], job=API, group="Order intents"),
    _m("order_intents_error_total", COUNTER, "Intent creation errors.", ["strategy", "reason"], job=API, group="Order intents"),
    _m("order_intents_pending", GAUGE, "Intents now pending.", job=API, group="Order intents"),
    _m("order_intents_planned", GAUGE, "Intents now planned.", job=API, group="Order intents"),
    _m("order_intents_ready", GAUGE, "Intents now ready.", job=API, group="Order intents"),
    _m("order_intents_sent", GAUGE, "Intents now sent.", job=API, group="Order intents"),
    _m("api_request_duration_seconds", HISTOGRAM, "API request duration; endpoint is the route template, never the raw path.", ["endpoint", "method", "status"], job=API, group="Order intents", buckets=LATENCY_API_BUCKETS),
    # Workers
    _m("worker_intents_processed_total", COUNTER, "Intents processed by a worker; outcome is ok or error.", ["worker", "outcome"], job=API, group="Workers"),
    _m("worker_processing_duration_seconds", HISTOGRAM, "Time a worker spent on one intent.", ["worker"], job=API, group="Workers", buckets=WORKER_BUCKETS),
    _m("worker_lag_seconds", GAUGE, "Age of the oldest intent waiting for this worker, 0 when idle.", ["worker"], job=API, group="Workers"),
    # Orders and execution
    _m("orders_submitted_total", COUNTER, "Orders submitted to the broker; strategy is the order's orderRef.", ["strategy"], job=IB, group="Orders and execution"),
    _m("orders_filled_total", COUNTER, "Orders completely filled.", ["strategy"], job=IB, group="Orders and execution"),
    _m("orders_cancelled_total", COUNTER, "Orders cancelled (rejections are counted apart).", ["strategy"], job=IB, group="Orders and execution"),
    _m("orders_rejected_total", COUNTER, "Orders rejected, by the IB error code that rejected them.", ["strategy", "code"], job=IB, group="Orders and execution"),
    _m("order_ack_latency_seconds", HISTOGRAM, "Time from order submission to broker acknowledgement.", ["strategy"], job=IB, group="Orders and execution", buckets=ACK_BUCKETS),
    _m("order_fill_latency_seconds", HISTOGRAM, "Time from order submission to complete fill.", ["strategy"], job=IB, group="Orders and execution", buckets=FILL_BUCKETS),
    _m("order_slippage_bps", HISTOGRAM, "Slippage per fill against the arrival mid price, in basis points; positive is a cost.", ["strategy"], job=IB, group="Orders and execution", buckets=SLIPPAGE_BPS_BUCKETS),
    _m("avg_slippage_pct", GAUGE, "Mean slippage of the fills of the last 15 minutes, in percent (0.5 means 0.5 %).", ["strategy"], job=IB, group="Orders and execution"),
    # P&L, positions, reconciliation
    _m("daily_pnl", GAUGE, "Today's P&L of the account (IB reqPnL dailyPnL), account currency.", ["account"], job=IB, group="P&L, positions, reconciliation"),
    _m("unrealized_pnl", GAUGE, "Unrealized P&L of the account, account currency.", ["account"], job=IB, group="P&L, positions, reconciliation"),
    _m("realized_pnl", GAUGE, "Realized P&L of the account, account currency.", ["account"], job=IB, group="P&L, positions, reconciliation"),
    _m("strategy_pnl", GAUGE, "Cumulative P&L of the day per strategy, account currency.", ["strategy"], job=PM, group="P&L, positions, reconciliation"),
    _m("ib_position_quantity", GAUGE, "Broker position, in shares or contracts (signed).", ["account", "symbol"], job=IB, group="P&L, positions, reconciliation"),
    _m("ib_position_market_value", GAUGE, "Broker position market value, account currency (signed).", ["account", "symbol"], job=IB, group="P&L, positions, reconciliation"),
    _m("position_reconciliation_discrepancy", GAUGE, "Internal book minus broker quantity; 0 when in sync.", ["account", "symbol"], job=PM, group="P&L, positions, reconciliation"),
    # Risk and account
    _m("account_net_liquidation", GAUGE, "Net liquidation value, account currency.", ["account"], job=IB, group="Risk and account"),
    _m("account_gross_position_value", GAUGE, "Gross position value, account currency.", ["account"], job=IB, group="Risk and account"),
    _m("account_maint_margin_req", GAUGE, "Maintenance margin requirement, account currency.", ["account"], job=IB, group="Risk and account"),
    _m("account_excess_liquidity", GAUGE, "Excess liquidity, account currency.", ["account"], job=IB, group="Risk and account"),
    _m("account_buying_power", GAUGE, "Buying power, account currency.", ["account"], job=IB, group="Risk and account"),
    _m("account_cushion", GAUGE, "Excess liquidity / net liquidation, 0..1.", ["account"], job=IB, group="Risk and account"),
    _m("risk_gross_exposure", GAUGE, "Sum of |market value| of the positions, account currency.", ["account"], job=IB, group="Risk and account"),
    _m("risk_net_exposure", GAUGE, "Sum of signed market value of the positions, account currency.", ["account"], job=IB, group="Risk and account"),
    _m("risk_leverage", GAUGE, "Gross exposure / net liquidation.", ["account"], job=IB, group="Risk and account"),
    _m("risk_exposure_complete", GAUGE, "1 when IB has sent the market value of every position of the account, 0 while some is unknown (then the exposure series are absent, not understated).", ["account"], job=IB, group="Risk and account"),
    _m("risk_gross_exposure_limit", GAUGE, "The configured gross exposure limit, account currency.", ["account"], job=IB, group="Risk and account"),
    _m("circuit_breaker_open", GAUGE, "1 while the breaker is tripped (new orders halted), else 0.", ["breaker"], job=PM, group="Risk and account"),
    _m("circuit_breaker_trips_total", COUNTER, "Circuit breaker trips.", ["breaker", "reason"], job=PM, group="Risk and account"),
    # IB connection
    _m("ib_connected", GAUGE, "1 while the API session to TWS / IB Gateway is up.", job=IB, group="IB connection"),
    _m("ib_errors_total", COUNTER, "Error and warning codes received from TWS / IB Gateway.", ["code"], job=IB, group="IB connection"),
    _m("ib_disconnects_total", COUNTER, "API session losses.", job=IB, group="IB connection"),
    _m("ib_farm_connected", GAUGE, "Data farm state from codes 2103/2104 (market), 2105/2106 (historical), 2157/2158 (secdef).", ["farm", "kind"], job=IB, group="IB connection"),
    _m("ib_session_down_reason", GAUGE, "Why the API session is down: 1 for the reason of the current outage (one of IB_DOWN_REASONS), 0 for the others; all 0 while the session is up.", ["reason"], job=IB, group="IB connection"),
    _m("ib_client_id", GAUGE, "The API client id the exporter connects with (TRADEMON_IB_CLIENT_ID), so a page can name it.", job=IB, group="IB connection"),
    # IB Gateway's week (trademon.ib.week, trademon.ib.controller; docs/ib-gateway.md)
    _m("ib_gateway_reauth_in_seconds", GAUGE, "Countdown to IB's next forced weekly re-authentication of the gateway session (Sunday 01:00 America/New_York; the next login needs the second factor by hand).", job=IB, group="IB gateway"),
    _m("ib_gateway_2fa_required", GAUGE, "1 while the gateway waits for a login with the second factor (the API session is down since IB's weekly re-authentication, the handshake stalls at login, or the gateway controller is alive but not ready), else 0.", job=IB, group="IB gateway"),
    _m("ib_gateway_controller_up", GAUGE, "1 if the gateway controller's (ibg-controller) check answered 200 at the last poll, else 0; check is health or ready. Absent when no controller is configured (TRADEMON_IB_CONTROLLER_URL).", ["check"], job=IB, group="IB gateway"),
    _m("ib_label_overflow_total", COUNTER, "Events whose strategy, farm, error code, contract (symbol) or market data line (subscription) was counted under __overflow__ because the label's cap of distinct values was reached.", ["label"], job=IB, group="IB connection"),
    # IB's own market-data lines (trademon.ib.subscriptions; docs/ib-exporter.md)
    _m("ib_market_data_tick_age_seconds", GAUGE, "Seconds since the market data line's last tick, counted from the latest of that tick, the line's (re)request and the open of its exchange's current session; cadence is its class (IB_MARKET_DATA_CADENCES). Absent while the API session is down or TWS has lost IB.", ["subscription", "cadence"], job=IB, group="IB market data"),
    _m("ib_market_data_in_session", GAUGE, "1 while the line's exchange is in a regular session (exchange-calendars), else 0; absent when its exchange has no known calendar (then its staleness is not judged).", ["subscription"], job=IB, group="IB market data"),
    _m("ib_market_data_type", GAUGE, "The market data type TWS delivers on the line: 1 live, 2 frozen, 3 delayed (also after code 10167), 4 delayed-frozen; absent until TWS says.", ["subscription"], job=IB, group="IB market data"),
    _m("ib_market_data_type_requested", GAUGE, "The market data type the exporter asks for (TRADEMON_IB_MARKET_DATA_TYPE: 1 live, 2 frozen, 3 delayed, 4 delayed-frozen).", job=IB, group="IB market data"),
    _m("ib_market_data_lines_lost", GAUGE, "Market data lines TWS dropped at code 1101 (connectivity restored, data lost) that the exporter has not asked for again; 0 otherwise.", job=IB, group="IB market data"),
    # Broker truth: what IB says, beside what the trading system says it did (docs/broker-truth.md)
    _m("ib_master_client", GAUGE, "1 once this session has seen an order of another API client as it happened (the exporter is TWS's Master API client), 0 while it has not (it cannot see other clients' orders, or none was placed since it connected); absent while the session is down.", job=IB, group="Broker truth"),
    _m("ib_executions_total", COUNTER, "Executions IB reported, once each (by execId), live or recovered with reqExecutions at a (re)connect; executions from before the exporter started are not counted.", ["strategy"], job=IB, group="Broker truth"),
    _m("ib_working_orders", GAUGE, "Orders working at IB now (every client the exporter sees); absent while the session is down.", job=IB, group="Broker truth"),
    _m("ib_strategy_working_orders", GAUGE, "Orders working at IB now per strategy (from the orderRef, as orders_submitted_total): a breaker named after a strategy leaks only these; strategies without one have no series; absent while the session is down.", ["strategy"], job=IB, group="Broker truth"),
    _m("ib_active_orders", GAUGE, "Working orders at IB per contract and side (IB allows 20); contracts without one have no series.", ["symbol", "side"], job=IB, group="Broker truth"),
    _m("ib_working_order_quantity", GAUGE, "Remaining quantity of the working orders per account and symbol (unsigned): position drift within it may be orders in flight.", ["account", "symbol"], job=IB, group="Broker truth"),
    _m("ib_filled_quantity_total", COUNTER, "Quantity IB executed per account and symbol (unsigned), counted with ib_executions_total: fills of the last moments may not have reached the trading system's book yet.", ["account", "symbol"], job=IB, group="Broker truth"),
    _m("ib_order_actions_today", GAUGE, "Today's order actions as IB's Order Efficiency Ratio counts them: submission, revision, cancellation, execution (orders with a fill).", ["kind"], job=IB, group="Broker truth"),
    _m("ib_order_efficiency_ratio", GAUGE, "Today's Order Efficiency Ratio: (submissions + revisions + cancellations) / (executions + 1); IB calls above 20 excessive.", job=IB, group="Broker truth"),
    _m("trading_orders_sent_total", COUNTER, "Orders the trading system sent to IB (its own count, by strategy; the strategy as the ib-exporter derives it from orderRef).", ["strategy"], job=API, group="Broker truth"),
    _m("trading_fills_recorded_total", COUNTER, "Executions the trading system recorded (its own count, by strategy).", ["strategy"], job=API, group="Broker truth"),
    _m("trading_position_quantity", GAUGE, "The trading system's own position per account and symbol (signed), as its book says.", ["account", "symbol"], job=API, group="Broker truth"),
    # Market data
    _m("marketdata_connected", GAUGE, "1 while the upstream feed is connected.", job=MD, group="Market data"),
    _m("marketdata_ticks_total", COUNTER, "Ticks received.", ["symbol"], job=MD, group="Market data"),
    _m("marketdata_last_tick_timestamp_seconds", GAUGE, "Unix time of the last tick.", ["symbol"], job=MD, group="Market data"),
    _m("marketdata_connected_since_timestamp_seconds", GAUGE, "Unix time the feed last connected; uptime is time() - this.", job=MD, group="Market data"),
    # Synthetic checks
    _m("synthetic_check_success", GAUGE, "1 if the last run of the check passed.", ["check"], job=SYN, group="Synthetic checks"),
    _m("synthetic_check_duration_seconds", GAUGE, "Duration of the last run of the check.", ["check"], job=SYN, group="Synthetic checks"),
    _m("synthetic_check_last_run_timestamp_seconds", GAUGE, "Unix time of the last run of the check.", ["check"], job=SYN, group="Synthetic checks"),
    # Alert sink (trademon's own webhook receiver)
    _m("alert_sink_notifications_total", COUNTER, "Notifications written to the JSON-lines file; status is firing or resolved.", ["receiver", "status"], job=SINK, group="Alert sink"),
    _m("alert_sink_rejected_total", COUNTER, "Payloads refused, by reason.", ["reason"], job=SINK, group="Alert sink"),
    _m("alert_sink_last_notification_timestamp_seconds", GAUGE, "Unix time of the last notification written.", job=SINK, group="Alert sink"),
    # Telegram bot (trademon bot): the pager's last hop
    _m("trademon_bot_notifications_total", COUNTER, "Notifications from Alertmanager: delivered, deferred to the outbox, or retried (taken already, not sent twice).", ["outcome"], job=BOT, group="Telegram bot"),
    _m("trademon_bot_outbox_pending", GAUGE, "Notifications accepted and not yet delivered to Telegram; absent while the outbox cannot be read.", job=BOT, group="Telegram bot"),
    _m("trademon_bot_outbox_oldest_age_seconds", GAUGE, "Age of the oldest notification waiting in the outbox, 0 when it is empty; absent while the outbox cannot be read.", job=BOT, group="Telegram bot"),
    _m("trademon_bot_telegram_sends_total", COUNTER, "Messages sent to Telegram (sendMessage, sendPhoto), by result (ok, refused, rate_limited, failed) and Telegram's error code (200 when ok, network when unreachable).", ["result", "code"], job=BOT, group="Telegram bot"),
    _m("trademon_bot_telegram_refused", GAUGE, "1 while Telegram refuses the bot for this reason (one of TELEGRAM_REFUSALS), else 0: set by the refusal, cleared by the next success.", ["reason"], job=BOT, group="Telegram bot"),
    _m("trademon_bot_pages_delivered_total", COUNTER, "Firing notifications (pages) delivered to Telegram, by severity.", ["severity"], job=BOT, group="Telegram bot"),
    _m("trademon_bot_page_latency_seconds", HISTOGRAM, "Time to Telegram's acceptance of a page's last message, since Alertmanager's send (since=webhook) and since the newest alert's startsAt (since=alert_start).", ["since"], job=BOT, group="Telegram bot", buckets=PAGE_LATENCY_BUCKETS),
    _m("trademon_bot_storm_folded_total", COUNTER, "Notifications counted in a chat's storm status message instead of sent as messages of their own (past 8 pages a minute in the chat: Telegram allows about 20 messages a minute in a group).", job=BOT, group="Telegram bot"),
    _m("trademon_bot_poll_conflict", GAUGE, "1 while Telegram answers getUpdates with 409 Conflict (a second poller with the same token).", job=BOT, group="Telegram bot"),
    _m("trademon_bot_escalations_total", COUNTER, "Escalations of a critical page nobody acknowledged, by tier (1 is the first), channel (pushover, sms, call, chat) and result (ok, failed: every try counts).", ["tier", "channel", "result"], job=BOT, group="Telegram bot"),
    _m("trademon_bot_escalation_channel_failing", GAUGE, "1 while the last escalation through this channel failed, else 0 (each channel of the ladder at 0 from the start; absent while escalation is off).", ["channel"], job=BOT, group="Telegram bot"),
    # Market and IB schedule (am-config --watch, from the rendered exchange calendar)
    _m("trademon_market_open", GAUGE, "1 while the exchange is in a regular session (holidays, early closes and breaks from its calendar), else 0; absent past the calendar's horizon.", ["exchange"], job=AMC, group="Market and IB schedule"),
    _m("trademon_market_calendar_end_timestamp_seconds", GAUGE, "Unix time the rendered market-open intervals end (the calendar horizon).", job=AMC, group="Market and IB schedule"),
    _m("trademon_ib_maintenance_window", GAUGE, "1 inside a configured IB maintenance window (server reset, Gateway restart), else 0.", ["window"], job=AMC, group="Market and IB schedule"),
    _m("trademon_am_config_last_render_timestamp_seconds", GAUGE, "Unix time of the last successful Alertmanager config render.", job=AMC, group="Market and IB schedule"),
    _m("trademon_am_config_render_failures_total", COUNTER, "Failed renders or Alertmanager reloads (the last good config stays).", job=AMC, group="Market and IB schedule"),
    # Thresholds (trademon thresholds --watch: monitoring/config.yml as series)
    _m("trademon_thresholds_last_reload_successful", GAUGE, "1 when monitoring/config.yml as it is now is what Prometheus evaluates; 0 when it was refused (the log names the key) or Prometheus did not reload; absent before the first render.", job=THR, group="Thresholds"),
    _m("trademon_thresholds_last_reload_success_timestamp_seconds", GAUGE, "Unix time monitoring/config.yml last went live (rendered and reloaded, or found unchanged).", job=THR, group="Thresholds"),
)

BY_NAME: dict[str, Metric] = {m.name: m for m in METRICS}

IB_ERROR_FARM_CODES = {
    # code: (kind, connected)
    2103: ("market", 0), 2104: ("market", 1),
    2105: ("historical", 0), 2106: ("historical", 1),
    2157: ("secdef", 0), 2158: ("secdef", 1),
}


# The value a bounded label takes once its cap of distinct values is reached, and the labels
# of the ib-exporter that are bounded that way (ib_label_overflow_total's label values).
OVERFLOW = "__overflow__"
IB_BOUNDED_LABELS = ("strategy", "farm", "code", "symbol", "subscription")

# ib_market_data_tick_age_seconds' cadence classes (trademon.ib.subscriptions) and what each is;
# each has its own bound in monitoring/config.yml (ib_md_<class>_stale_seconds).
IB_MARKET_DATA_CADENCES = {
    "quote": "streaming quotes (reqMktData) of stocks, futures, FX, indices, CFDs, crypto: ticks many times a minute in session",
    "quote_sparse": "streaming quotes of options, warrants and bonds: a quote may rest for minutes in session",
}

# ib_order_actions_today's kinds: the terms of IB's Order Efficiency Ratio
ORDER_ACTION_KINDS = ("submission", "revision", "cancellation", "execution")

# The broker-state gauges: dropped while the IB session is down or TWS has lost IB (code 1100),
# because a last value is not a live value. The ib-exporter and the simulator's stand-in for it
# drop the same set, so they live here, where neither needs the other's dependencies.
BROKER_GAUGES = (
    "daily_pnl", "unrealized_pnl", "realized_pnl", "ib_position_quantity", "ib_position_market_value",
    "risk_gross_exposure", "risk_net_exposure", "risk_leverage", "risk_exposure_complete",
    "account_net_liquidation", "account_gross_position_value", "account_maint_margin_req",
    "account_excess_liquidity", "account_buying_power", "account_cushion",
)

# The gateway controller's checks (ib_gateway_controller_up's label values: bounded) and the
# ALERT_* tokens IBC / ibg-controller write to their log that the log shippers count
# (trademon_ib_gateway_log_alerts_total{gateway_alert}: bounded to these) with what to do.
IB_CONTROLLER_CHECKS = ("health", "ready")
# Made by the log shipper (Alloy, or the legacy Promtail) from its config, not by trademon.
IB_GATEWAY_LOG_ALERTS_COUNTER = "trademon_ib_gateway_log_alerts_total"
IB_GATEWAY_LOG_ALERTS = {
    "ALERT_2FA_FAILED": "the second-factor login was not approved in time: approve the IB Key push in IBKR Mobile "
                        "(or enter the code) at the next prompt; do not restart the gateway to get a new prompt",
    "ALERT_LOGIN_FAILED": "IB refused the login: check the user name and password the controller uses; each failed "
                          "login counts towards IB locking the account",
    "ALERT_PASSWORD_EXPIRED": "the IB password has expired: change it in Client Portal, then update the controller's "
                              "secret; no login works until then",
}

# ib_session_down_reason's reasons (a fixed set: the label is bounded) and what to do about
# each; TWSConnectionLost's description says it. {client_id} is the exporter's client id.
IB_DOWN_REASONS = {
    "client_id_in_use": "client id {client_id} is used by another API client (IB code 326): set "
                        "TRADEMON_IB_CLIENT_ID to an id no other API client uses",
    "socket_refused": "nothing accepts connections on the API port (TWS / IB Gateway not running, API socket "
                      "clients not enabled, or a wrong port; code 502 in IB's own client): start it, enable the API, "
                      "check TRADEMON_IB_HOST and TRADEMON_IB_PORT",
    "connect_timeout": "the API port does not answer at all (a firewall dropping the connection, or the host is "
                       "down): check TRADEMON_IB_HOST, TRADEMON_IB_PORT and the network",
    "unreachable": "the TWS / IB Gateway host cannot be resolved or reached: check TRADEMON_IB_HOST and the network",
    "handshake_timeout": "TWS / IB Gateway accepts the connection but does not complete the API handshake: it is "
                         "waiting for a login, the two-factor approval or an accept-incoming-connection dialog; "
                         "log in or approve it",
    "closed_at_connect": "TWS / IB Gateway closed the connection during the handshake: check its API settings "
                         "(Trusted IPs, Allow connections from localhost only)",
    "connectivity_lost": "TWS / IB Gateway lost its connection to IB's servers (IB code 1100): IB's daily reset "
                         "or a network problem on the Gateway's side; it reconnects by itself",
    "session_closed": "TWS / IB Gateway closed the API session (restarted, logged out, or the login was taken "
                      "over elsewhere)",
    "heartbeat_timeout": "the connection is open but TWS / IB Gateway stopped answering (hung, or a half-open "
                         "socket): restart it if it does not come back",
    "other": "see the ib-exporter's log",
}


def metric(name: str) -> Metric:
    try:
        return BY_NAME[name]
    except KeyError:
        raise KeyError(f"{name!r} is not a metric of the trademon contract (see docs/metrics.md)") from None


def metrics_for_job(job: str) -> list[Metric]:
    return [m for m in METRICS if m.job == job]


def all_series_names() -> set[str]:
    """Every sample name of the contract, for checking PromQL in rules and dashboards."""
    return {s for m in METRICS for s in m.series_names}


def groups() -> Iterable[str]:
    seen: dict[str, None] = {}
    for m in METRICS:
        seen.setdefault(m.group)
    return seen.keys()
