"""monitoring/tests/*.yml: promtool unit tests of every alert, from monitoring/config.yml.

Each test's series are built around the thresholds (a value at the limit, one past it), so
a tuned threshold moves its tests along (and ``trademon gen --check`` flags a stale copy).
The expected texts are written here independently of the rule templates, in plain Python
formatting, so a test fails when a template renders something else than intended.

Timing: Prometheus evaluates every ``evaluation_interval`` (prometheus.yml); an alert whose
condition is first true at evaluation T fires at T + ``for``. Money alerts are checked to
that one evaluation: not firing one evaluation before, firing at it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from .. import contract, grafana_uids, thresholds
from . import rules

TESTS_DIR = "monitoring/tests"
RULE_FILES = ["../rules/trademon.rules.yml", "../rules/trademon.alerts.yml"]
ACCOUNT = "DU1234567"
ALERTS = {a.name: a for a in rules.ALERTS}
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def secs(d) -> int:
    """Seconds of a Prometheus duration with one unit ("2m"); 0 for 0."""
    d = str(d)
    if d == "0":
        return 0
    try:
        return int(float(d[:-1]) * _UNITS[d[-1]])
    except (KeyError, ValueError):
        raise ValueError(f"{d!r}: expected a duration like 30s, 5m or 1h") from None


def dur(s: int) -> str:
    """A duration promtool reads: 3930 -> 1h5m30s."""
    out = ""
    for unit, n in (("h", 3600), ("m", 60), ("s", 1)):
        if s >= n:
            out += f"{s // n}{unit}"
            s %= n
    return out or "0s"


def num(v: float) -> str:
    return f"{v:g}" if abs(v) < 1e15 else repr(v)


def gauge(*phases: tuple[float, int]) -> str:
    """Series values, in promtool's notation, of a gauge held at each value for n samples."""
    return " ".join(num(v) if n == 1 else f"{num(v)}x{n - 1}" for v, n in phases if n > 0)


def counter(*phases: tuple[float, int], start: float = 1000.0) -> str:
    """Series values of a counter growing by ``inc`` per sample for n samples, phase after
    phase. It starts high so that rate() never extrapolates to its zero."""
    parts, v = [], start
    for inc, n in phases:
        if n <= 0:
            continue
        parts.append(f"{num(v)}+{num(inc)}x{n - 1}")
        v += inc * n
    return " ".join(parts)


def human_duration(v: float) -> str:
    """Prometheus's humanizeDuration, for the values the tests use."""
    if v == 0:
        return "0s"
    if abs(v) < 1:
        return f"{v * 1000:.4g}ms"
    seconds = int(v)
    d, h, m, s = seconds // 86400, seconds // 3600 % 24, seconds // 60 % 60, seconds % 60
    if d:
        return f"{d}d {h}h {m}m {s}s"
    if h:
        return f"{h}h {m}m {s}s"
    if m:
        return f"{m}m {s}s"
    return f"{v:.4g}s"


def human_pct(v: float) -> str:
    """Prometheus's humanizePercentage."""
    return f"{v * 100:.4g}%"


def pct(ratio: float) -> str:
    """A threshold ratio as the alert texts write it (0.05 -> 5%)."""
    return f"{ratio * 100:g}%"


def target(job: str) -> str:
    return f"{job}:{contract.JOBS[job].port}"


def sel(metric: str, **labels: str) -> str:
    return metric + "{" + ", ".join(f'{k}="{v}"' for k, v in labels.items()) + "}"


@dataclass
class Fired:
    """One expected firing alert: its labels (besides alertname) and its two texts."""

    labels: dict
    summary: str
    description: str


@dataclass
class Test:
    name: str
    interval: int
    series: list[tuple[str, str]] = field(default_factory=list)
    checks: list[tuple[int, str, list[Fired]]] = field(default_factory=list)
    exprs: list[tuple[int, str, list[tuple[dict, float]]]] = field(default_factory=list)

    def add(self, selector: str, values: str) -> Test:
        self.series.append((selector, values))
        return self

    def expect(self, t: int, alert: str, *fired: Fired) -> Test:
        self.checks.append((t, alert, list(fired)))
        return self

    def expect_expr(self, t: int, expr: str, *samples: tuple[dict, float]) -> Test:
        self.exprs.append((t, expr, list(samples)))
        return self

    def as_dict(self) -> dict:
        d = {"name": self.name, "interval": dur(self.interval),
             "input_series": [{"series": s, "values": v} for s, v in self.series]}
        if self.checks:
            d["alert_rule_test"] = [{
                "eval_time": dur(t), "alertname": alert,
                "exp_alerts": [{"exp_labels": {"severity": ALERTS[alert].severity, **f.labels},
                                "exp_annotations": {"summary": f.summary, "description": f.description,
                                                    "runbook_url": _RUNBOOK[0].replace("{alert}", alert.lower()),
                                                    "dashboard": grafana_uids.path(ALERTS[alert].dashboard)}}
                               for f in fired],
            } for t, alert, fired in self.checks]
        if self.exprs:
            d["promql_expr_test"] = [{
                "expr": expr, "eval_time": dur(t),
                "exp_samples": [{"labels": _labels(lbls), "value": v} for lbls, v in samples],
            } for t, expr, samples in self.exprs]
        return d


def _labels(lbls: dict) -> str:
    name = lbls.get("__name__", "")
    rest = {k: v for k, v in lbls.items() if k != "__name__"}
    return name + "{" + ", ".join(f'{k}="{v}"' for k, v in rest.items()) + "}"


_RUNBOOK = [""]  # the config's runbook_url_pattern, set by Ctx


class Ctx:
    """Thresholds and timings for the test builders."""

    def __init__(self, root: Path):
        self.t = thresholds.load(root)
        _RUNBOOK[0] = thresholds.load_config(root)["runbook_url_pattern"]
        prom = yaml.safe_load((root / "prometheus" / "prometheus.yml").read_text(encoding="utf-8"))
        self.eval = secs(prom["global"]["evaluation_interval"])

    def __getitem__(self, key: str):
        return self.t[key]

    def for_(self, alert: str) -> int:
        key = ALERTS[alert].for_
        return secs(self.t[key]) if key else 0

    def next_eval(self, t: int) -> int:
        """The first evaluation at or after t."""
        return math.ceil(t / self.eval) * self.eval


def step_test(c: Ctx, alert: str, *, series: list[tuple[str, float, float]], fired: list[Fired],
              interval: int = 60, offset: int = 0, quiet: list[tuple[str, float]] = (), what: str = "") -> Test:
    """The common shape: each series sits at its ``normal`` value (at the threshold, where
    possible) for longer than ``for``, then at its ``breach`` value for ``for`` + 3 minutes,
    then back to normal. ``offset`` samples delay the breach off the evaluation grid.
    ``quiet`` series hold their value throughout and must not change the outcome."""
    F = c.for_(alert)
    n_pre = math.ceil((F + 120) / interval) + offset
    n_on = math.ceil((F + 180) / interval)
    n_post = math.ceil(120 / interval) + 1
    t_on, t_off = n_pre * interval, (n_pre + n_on) * interval
    first = c.next_eval(t_on)
    fire = first + F
    test = Test(f"{alert}: {what}".rstrip(": "), interval)
    for s, normal, breach in series:
        test.add(s, gauge((normal, n_pre), (breach, n_on), (normal, n_post)))
    for s, value in quiet:
        test.add(s, gauge((value, n_pre + n_on + n_post)))
    test.expect(first - c.eval, alert)  # at the threshold for longer than `for`: quiet
    if F:
        test.expect(fire - c.eval, alert)  # past the threshold, but not yet for `for`
    test.expect(fire, alert, *fired)
    test.expect(c.next_eval(t_off) - c.eval, alert, *fired)  # still firing while past it
    test.expect(c.next_eval(t_off), alert)  # resolved at the first evaluation after recovery
    return test


def window_checks(c: Ctx, test: Test, alert: str, t_on: int, t_off: int, clear: int, fired: Fired) -> None:
    """The checks of an alert on a windowed rate whose burst runs from t_on to t_off:
    quiet before; still quiet one evaluation before ``for`` has passed since the burst began
    (its condition cannot hold earlier); firing at t_off, when the window holds burst only
    (so the text's value is exact); quiet ``clear`` seconds after the burst."""
    test.expect(t_on - 60, alert)
    test.expect(t_on + c.for_(alert) - c.eval, alert)
    test.expect(t_off, alert, fired)
    test.expect(t_off + clear, alert)


# ---------------------------------------------------------------- money: critical alerts


def money_setting(c: Ctx) -> tuple:
    """The loss limit, currency, a P&L past the limit, and the labels of the money series."""
    limit = c["daily_loss_limit"]
    return (limit, c["currency"], limit - 112.4, {"account": ACCOUNT},
            {"job": "ib-exporter", "instance": target("ib-exporter")},
            {"job": "position-manager", "instance": target("position-manager")})


def money_tests(c: Ctx) -> list[Test]:
    limit, cur, pnl, acct, ib, pm = money_setting(c)
    out = [
        step_test(c, "DailyLossLimitBreach", interval=15, offset=1,
                  what=f"at {limit} quiet; below it fires at the next evaluation; resolves on recovery",
                  series=[(sel("daily_pnl", **acct, **ib), limit, pnl)],
                  quiet=[(sel("daily_pnl", account="DU7654321", **ib), 120.5)],
                  fired=[Fired(acct, f"Daily loss limit breached on {ACCOUNT}",
                               f"Account {ACCOUNT}: daily P&L {pnl:.2f} {cur}, limit {limit}.")]),
        step_test(c, "CircuitBreakerTripped", interval=15, offset=1,
                  what="fires at the next evaluation after a trip, synthetic breakers too, with their breaker label",
                  series=[(sel("circuit_breaker_open", breaker="daily_loss", **pm), 0, 1),
                          (sel("circuit_breaker_open", breaker="synthetic_check", **pm), 0, 1)],
                  quiet=[(sel("circuit_breaker_open", breaker="momentum", **pm), 0)],
                  fired=[Fired({"breaker": b}, f"Circuit breaker {b} tripped: new orders halted",
                               f"Circuit breaker {b} is open: the orders it guards are refused until it is reset.")
                         for b in ("daily_loss", "synthetic_check")]),
        step_test(c, "TWSConnectionLost", interval=15, offset=1,
                  what=f"fires {c['tws_lost_for']} after the session drops, to the evaluation",
                  series=[(sel("ib_connected", **ib), 1, 0)],
                  fired=[Fired(ib, "IB API session to TWS / IB Gateway lost",
                               f"{target('ib-exporter')} has had no API session to TWS / IB Gateway for more than "
                               f"{c['tws_lost_for']}. Why: {NO_REASON}. No order reaches the broker, and P&L, "
                               "positions and risk from the broker are not current.")]),
        step_test(c, "PositionReconciliationMismatch",
                  what="book and broker differ for a symbol",
                  series=[(sel("position_reconciliation_discrepancy", symbol="AAPL", **acct, **pm), 0, -100)],
                  quiet=[(sel("position_reconciliation_discrepancy", symbol="MSFT", **acct, **pm), 0)],
                  fired=[Fired({**acct, "symbol": "AAPL"}, f"Position mismatch for AAPL on {ACCOUNT}",
                               f"Internal book minus broker for AAPL on account {ACCOUNT}: -100 (shares or contracts), "
                               f"for more than {c['reconciliation_for']}.")]),
    ]
    # A mismatch shorter than `for` (an order being filled) never pages.
    F = c.for_("PositionReconciliationMismatch")
    short = Test("PositionReconciliationMismatch: a mismatch shorter than its for (an order filling) stays quiet", 60)
    n = F // 60 - 1
    short.add(sel("position_reconciliation_discrepancy", symbol="AAPL", **acct, **pm), gauge((0, 3), (50, n), (0, 10)))
    for t in range(60, (n + 8) * 60, 120):
        short.expect(t, "PositionReconciliationMismatch")
    out.append(short)
    return out


# ---------------------------------------------------------------- money: no false resolve

# The description's note while a money alert stands on the last value seen (rules.held_note),
# written out here independently of the rule's template.
HELD_NOTE = (" No current value: its data is unavailable; this is the last value seen, and the alert stays "
             "until a current value shows recovery.")


def held_tests(c: Ctx, alert: str, *, series: list[tuple[str, float, float]], fired, quiet=(), gone: int = 120) -> list[Test]:
    """A breach fires on live data; then the data goes away (a stale marker, as when the
    exporter drops the series or the target goes down) for ``gone`` minutes: the alert keeps
    firing on the last value seen, its text saying the data is unavailable. Then the data
    comes back: recovered, it resolves at that evaluation; still in breach, it keeps firing.
    ``fired(held)`` gives the expected alerts."""
    F = c.for_(alert)
    n_pre, n_on = math.ceil((F + 120) / 60), math.ceil((F + 180) / 60)
    t_on, t_stale = n_pre * 60, (n_pre + n_on) * 60
    t_back = t_stale + gone * 60
    tests = []
    for back, what in (("normal", "comes back recovered: resolved"), ("breach", "comes back still in breach: firing")):
        t = Test(f"{alert}: its data goes away for {dur(gone * 60)} after it fired: still firing, saying the data is "
                 f"unavailable; the data {what}", 60)
        for sel_, normal, breach in series:
            again = normal if back == "normal" else breach
            t.add(sel_, f"{gauge((normal, n_pre), (breach, n_on))} stale _x{gone - 1} {gauge((again, 20))}")
        for sel_, value in quiet:
            t.add(sel_, gauge((value, n_pre + n_on + gone + 20)))
        t.expect(c.next_eval(t_on) + F, alert, *fired(False))
        t.expect(t_stale - c.eval, alert, *fired(False))
        t.expect(t_stale, alert, *fired(True))  # the stale marker: no current value from here on
        t.expect(t_stale + 10 * 60, alert, *fired(True))
        t.expect(t_back - c.eval, alert, *fired(True))
        if back == "normal":
            t.expect(t_back, alert)
        else:
            t.expect(t_back, alert, *fired(False))
        tests.append(t)
    return tests


def no_data_no_alert_test(c: Ctx, alert: str, sel_: str) -> Test:
    """A series that never showed a breach and goes away does not fire (nothing to hold)."""
    t = Test(f"{alert}: data that goes away without a breach stays quiet", 60)
    t.add(sel_, "0x9 stale")
    for tt in (5 * 60, 10 * 60, 30 * 60):
        t.expect(tt, alert)
    return t


def hold_tests(c: Ctx) -> list[Test]:
    limit, cur, pnl, acct, ib, pm = money_setting(c)
    note = lambda held: HELD_NOTE if held else ""  # noqa: E731
    out = held_tests(c, "DailyLossLimitBreach", series=[(sel("daily_pnl", **acct, **ib), limit, pnl)],
                     fired=lambda held: [Fired(acct, f"Daily loss limit breached on {ACCOUNT}",
                                               f"Account {ACCOUNT}: daily P&L {pnl:.2f} {cur}, limit {limit}.{note(held)}")])
    out += held_tests(c, "CircuitBreakerTripped", series=[(sel("circuit_breaker_open", breaker="daily_loss", **pm), 0, 1)],
                      fired=lambda held: [Fired({"breaker": "daily_loss"}, "Circuit breaker daily_loss tripped: new orders halted",
                                                "Circuit breaker daily_loss is open: the orders it guards are refused until it is "
                                                f"reset.{note(held)}")])
    out += held_tests(c, "PositionReconciliationMismatch",
                      series=[(sel("position_reconciliation_discrepancy", symbol="AAPL", **acct, **pm), 0, -100),
                              (sel("position_reconciliation_discrepancy", symbol="MSFT", **acct, **pm), 0, 0)],
                      fired=lambda held: [Fired({**acct, "symbol": "AAPL"}, f"Position mismatch for AAPL on {ACCOUNT}",
                                                f"Internal book minus broker for AAPL on account {ACCOUNT}: -100 (shares or "
                                                f"contracts), for more than {c['reconciliation_for']}.{note(held)}")])
    lim = 100000.0
    over = min(c["exposure_ratio"] * lim + 0.5 * (lim - c["exposure_ratio"] * lim), lim * 0.999)
    out += held_tests(c, "HighRiskExposure", series=[(sel("risk_gross_exposure", **acct, **ib), c["exposure_ratio"] * lim, over)],
                      quiet=[(sel("risk_gross_exposure_limit", **acct, **ib), lim)],
                      fired=lambda held: [Fired(acct, f"Gross exposure of {ACCOUNT} near its limit",
                                                f"Gross exposure of account {ACCOUNT} is {human_pct(over / lim)} of its limit "
                                                f"(alert above {pct(c['exposure_ratio'])}), for more than {c['exposure_for']}."
                                                f"{note(held)}")])
    out.append(no_data_no_alert_test(c, "DailyLossLimitBreach", sel("daily_pnl", **acct, **ib)))
    out.append(no_data_no_alert_test(c, "CircuitBreakerTripped", sel("circuit_breaker_open", breaker="daily_loss", **pm)))
    # Held for money_hold at most: data gone for longer is no longer "the last value".
    H = secs(c["money_hold"])
    long = Test(f"DailyLossLimitBreach: held on the last value for {c['money_hold']} at most", 60)
    long.add(sel("daily_pnl", **acct, **ib), f"{gauge((pnl, 10))} stale _x{H // 60 + 20}")
    long.expect(H, "DailyLossLimitBreach", Fired(acct, f"Daily loss limit breached on {ACCOUNT}",
                                                 f"Account {ACCOUNT}: daily P&L {pnl:.2f} {cur}, limit {limit}.{HELD_NOTE}"))
    long.expect(10 * 60 + H + 60, "DailyLossLimitBreach")
    out.append(long)
    return out


# ---------------------------------------------------------------- blind spots


def blind_tests(c: Ctx) -> list[Test]:
    ib = {"job": "ib-exporter", "instance": target("ib-exporter")}
    acct = {"account": ACCOUNT}
    F = c.for_("BrokerViewLost")
    blind = ("Blind: daily P&L, positions, exposure and the TWS session, so DailyLossLimitBreach, HighRiskExposure, "
             "TWSConnectionLost and the order-quality alerts cannot fire.")
    others = [j for j in contract.JOBS if j != "ib-exporter"]
    out = [step_test(c, "BrokerViewLost", what=f"the ib-exporter not scraped for {dur(F)} pages; other jobs down do not",
                     series=[(sel("up", **ib), 1, 0)],
                     quiet=[(sel("up", job=j, instance=target(j)), 0) for j in others],
                     fired=[Fired(ib, "Broker view lost: ib-exporter is not scraped",
                                  f"Prometheus has not been able to scrape ib-exporter ({target('ib-exporter')}) for more "
                                  f"than {dur(F)}. {blind}")])]
    M = c.for_("BrokerDataMissing")
    mem = c["broker_data_memory"]
    gone_at, back_at = 20 * 60, 20 * 60 + M + 600
    fired = Fired(acct, f"No broker data for {ACCOUNT}",
                  f"Prometheus had daily P&L for account {ACCOUNT} within the last {mem} but has had none for more than "
                  f"{c['broker_data_missing_for']}, while ib_connected says the IB session is up. Blind for this account: "
                  "DailyLossLimitBreach, HighRiskExposure and its positions.")
    n_gone = (back_at - gone_at) // 60
    t = Test("BrokerDataMissing: an account's P&L gone while the IB session is up pages; other accounts do not; "
             "back, it resolves", 60)
    t.add(sel("daily_pnl", **acct, **ib), f"{gauge((12.5, 20))} stale _x{n_gone - 1} {gauge((15, 20))}")
    t.add(sel("daily_pnl", account="DU7654321", **ib), gauge((40, 20 + n_gone + 20)))
    t.add(sel("ib_connected", **ib), gauge((1, 20 + n_gone + 20)))
    t.expect(gone_at - c.eval, "BrokerDataMissing")
    t.expect(gone_at + M - c.eval, "BrokerDataMissing")
    t.expect(gone_at + M, "BrokerDataMissing", fired)
    t.expect(back_at - c.eval, "BrokerDataMissing", fired)
    t.expect(back_at, "BrokerDataMissing")
    out.append(t)
    down = Test("BrokerDataMissing: P&L gone because the IB session is down is TWSConnectionLost's page, not this", 60)
    down.add(sel("daily_pnl", **acct, **ib), f"{gauge((12.5, 20))} stale")
    down.add(sel("ib_connected", **ib), gauge((1, 20), (0, 40)))
    for tt in (gone_at + M, gone_at + M + 10 * 60, 50 * 60):
        down.expect(tt, "BrokerDataMissing")
    out.append(down)
    never = Test(f"BrokerDataMissing: an account gone for longer than {mem} is forgotten", 60)
    never.add(sel("daily_pnl", **acct, **ib), f"{gauge((12.5, 10))} stale")
    never.add(sel("ib_connected", **ib), gauge((1, secs(mem) // 60 + 40)))
    never.expect(10 * 60 + M + 60, "BrokerDataMissing", fired)
    never.expect(10 * 60 + secs(mem) + 120, "BrokerDataMissing")
    out.append(never)
    return out


def risk_tests(c: Ctx) -> list[Test]:
    limit = 100000.0
    at = c["exposure_ratio"] * limit
    over = min(at + 0.5 * (limit - at), limit * 0.999)
    ib = {"job": "ib-exporter", "instance": target("ib-exporter")}
    acct = {"account": ACCOUNT}
    test = step_test(c, "HighRiskExposure", what="gross exposure past its share of the limit; no limit, no ratio",
                     series=[(sel("risk_gross_exposure", **acct, **ib), at, over)],
                     quiet=[(sel("risk_gross_exposure_limit", **acct, **ib), limit),
                            (sel("risk_gross_exposure", account="DU0000000", **ib), 5e6),
                            (sel("risk_gross_exposure_limit", account="DU0000000", **ib), 0)],
                     fired=[Fired(acct, f"Gross exposure of {ACCOUNT} near its limit",
                                  f"Gross exposure of account {ACCOUNT} is {human_pct(over / limit)} of its limit "
                                  f"(alert above {pct(c['exposure_ratio'])}), for more than {c['exposure_for']}.")])
    test.expect_expr(60, "account:risk_gross_exposure:ratio_limit",
                     ({"__name__": "account:risk_gross_exposure:ratio_limit", **acct}, at / limit))
    return [test]


def pnl_anomaly_tests(c: Ctx) -> list[Test]:
    """A P&L that wiggles by a little each minute for over an hour, then one large move."""
    floor, sigmas, cur = c["pnl_anomaly_min_change"], c["pnl_anomaly_sigmas"], c["currency"]
    F = c.for_("PnLAnomaly")
    ib = {"job": "ib-exporter", "instance": target("ib-exporter")}
    acct = {"account": ACCOUNT}
    wiggle = floor / 10  # the 5-minute moves are 0 or +-wiggle: their spread is well under floor / sigmas
    n_hist = 75  # minutes of history before the move (the rule looks at the hour before)

    def history(base: float) -> list[float]:
        return [base + (wiggle if i % 2 else 0) for i in range(n_hist)]

    def values(xs: list[float]) -> str:
        return " ".join(num(x) for x in xs)

    tests = []
    move = 3 * floor
    big = Test(f"PnLAnomaly: a {num(move)} move after an hour of +-{num(wiggle)} wiggles fires after "
               f"{c['pnl_anomaly_for']}, and resolves once the move is 5 minutes old", 60)
    xs = history(0.0) + [-move + (wiggle if i % 2 else 0) for i in range(n_hist, n_hist + 15)]
    big.add(sel("daily_pnl", **acct, **ib), values(xs))
    t_on = n_hist * 60
    # The 5-minute change at t_on + k minutes, k < 5: the value now minus five minutes ago.
    change = xs[n_hist + c.next_eval(F) // 60] - xs[n_hist + c.next_eval(F) // 60 - 5]
    big.expect(t_on - c.eval, "PnLAnomaly")
    if F:
        big.expect(t_on + F - c.eval, "PnLAnomaly")
    big.expect(t_on + c.next_eval(F), "PnLAnomaly",
               Fired(acct, f"Unusual P&L move on {ACCOUNT}",
                     f"Daily P&L of account {ACCOUNT} moved {change:+.2f} {cur} in 5 minutes: more than {num(sigmas)} "
                     f"standard deviations of its 5-minute moves over the hour before, and at least {num(floor)} {cur}."))
    big.expect(t_on + 6 * 60, "PnLAnomaly")
    tests.append(big)

    small = Test(f"PnLAnomaly: a move of many standard deviations but under {num(floor)} {cur} stays quiet", 60)
    small_move = floor * 0.8
    xs = history(0.0) + [-small_move + (wiggle if i % 2 else 0) for i in range(n_hist, n_hist + 10)]
    small.add(sel("daily_pnl", **acct, **ib), values(xs))
    for t in range(t_on, t_on + 6 * 60, 60):
        small.expect(t, "PnLAnomaly")
    # The move is past sigmas deviations (only the floor holds it back).
    small.expect_expr(t_on + 60, f"abs(account:daily_pnl:delta5m) > {num(sigmas)} * "
                                 "stddev_over_time(account:daily_pnl:delta5m[1h] offset 5m)",
                      ({"account": ACCOUNT}, abs(xs[n_hist + 1] - xs[n_hist - 4])))
    tests.append(small)

    wild = Test(f"PnLAnomaly: the same {num(move)} move on a P&L that swings that much all the time stays quiet", 60)
    swing = move
    wild.add(sel("daily_pnl", **acct, **ib),
             values([swing if i % 2 else -swing for i in range(n_hist)] + [-move - swing] * 10))
    for t in range(t_on, t_on + 6 * 60, 60):
        wild.expect(t, "PnLAnomaly")
    tests.append(wild)
    return tests


# ---------------------------------------------------------------- orders and workers


def order_tests(c: Ctx) -> list[Test]:
    api = {"job": "automatictrader-api", "instance": target("automatictrader-api")}
    ib = {"job": "ib-exporter", "instance": target("ib-exporter")}
    out = []

    # Intent errors: 45 accepted and 15 refused a minute is 25 %; below the limit before.
    F = c.for_("OrderIntentErrorRateHigh")
    ok_per_min, err_per_min = 45, 15
    err_ratio = err_per_min / (ok_per_min + err_per_min)
    low_err = max(math.floor(c["intent_error_ratio"] * ok_per_min * 0.8), 0)  # a little under the limit
    n_pre, n_on, n_post = 20, (F + 600) // 60, 10 + 5
    t_on, t_off = n_pre * 60, (n_pre + n_on) * 60
    t = Test(f"OrderIntentErrorRateHigh: {human_pct(err_ratio)} of intents failing for {c['intent_error_for']} fires; "
             "a rate under the limit does not", 60)
    t.add(sel("order_intents_created_total", strategy="momentum", **api), counter((ok_per_min, n_pre + n_on + n_post)))
    t.add(sel("order_intents_error_total", strategy="momentum", reason="validation", **api),
          counter((low_err, n_pre), (err_per_min, n_on), (0, n_post)))
    fired = Fired({"job": "automatictrader-api"}, f"{human_pct(err_ratio)} of order intents fail on automatictrader-api",
                  f"{human_pct(err_ratio)} of the order intents of the last 5 minutes were refused with an error "
                  f"(limit {pct(c['intent_error_ratio'])}; open circuit breakers and synthetic checks not counted), "
                  f"for more than {c['intent_error_for']}. order_intents_error_total has the reason.")
    window_checks(c, t, "OrderIntentErrorRateHigh", t_on, t_off, 6 * 60, fired)
    t.expect_expr(t_on - 60, "job:order_intents_error:ratio_rate5m",
                  ({"__name__": "job:order_intents_error:ratio_rate5m", "job": "automatictrader-api"},
                   low_err / (ok_per_min + low_err)))
    out.append(t)

    few = Test(f"OrderIntentErrorRateHigh: half of a trickle of intents failing (under {c['ratio_min_events']} "
               "in 5 minutes) stays quiet; breaker refusals and synthetic intents are no errors; "
               "no error counter at all is a ratio of 0", 60)
    trickle = (c["ratio_min_events"] - 1) / 2 / 5  # per minute, each of accepted and refused
    few.add(sel("order_intents_created_total", strategy="meanrev", **api), counter((trickle, 40)))
    few.add(sel("order_intents_error_total", strategy="meanrev", reason="validation", **api), counter((trickle, 40)))
    few.add(sel("order_intents_created_total", strategy="pairs", job="other-api", instance="other-api:8080"),
            counter((10, 40)))
    # Refusals by an open breaker, and the synthetic checks' traffic, are not pipeline errors.
    few.add(sel("order_intents_error_total", strategy="pairs", reason="circuit_breaker_open", job="other-api",
                instance="other-api:8080"), counter((30, 40)))
    few.add(sel("order_intents_error_total", strategy="synthetic_pipeline", reason="validation", job="other-api",
                instance="other-api:8080"), counter((30, 40)))
    for tt in (F + 5 * 60, F + 15 * 60, 35 * 60):
        few.expect(tt, "OrderIntentErrorRateHigh")
    few.expect_expr(20 * 60, "job:order_intents_error:ratio_rate5m",
                    ({"__name__": "job:order_intents_error:ratio_rate5m", "job": "automatictrader-api"}, 0.5),
                    ({"__name__": "job:order_intents_error:ratio_rate5m", "job": "other-api"}, 0))
    out.append(few)

    pending = c["intents_pending_max"]
    out.append(step_test(c, "OrderIntentsPendingTooMany", what=f"more than {pending} pending for {c['intents_pending_for']}",
                         series=[(sel("order_intents_pending", **api), pending, pending + 23)],
                         fired=[Fired({"job": "automatictrader-api"}, f"{pending + 23} order intents pending on automatictrader-api",
                                      f"{pending + 23} intents pending (limit {pending}) for more than "
                                      f"{c['intents_pending_for']}: the workers are not keeping up or are stuck.")]))
    lag = c["worker_lag_seconds"]
    out.append(step_test(c, "WorkerProcessingLag", what="the oldest waiting intent is older than the limit",
                         series=[(sel("worker_lag_seconds", worker="planner", **api), lag, lag * 2.5)],
                         quiet=[(sel("worker_lag_seconds", worker="sender", **api), 0)],
                         fired=[Fired({"job": "automatictrader-api", "worker": "planner"}, "Worker planner is lagging",
                                      f"The oldest intent waiting for worker planner is {human_duration(lag * 2.5)} old "
                                      f"(limit {num(lag)}s), for more than {c['worker_lag_for']}.")]))
    slip = c["slippage_pct"]
    out.append(step_test(c, "UnusualSlippage", what="average slippage past the limit",
                         series=[(sel("avg_slippage_pct", strategy="momentum", **ib), slip, slip * 2.08)],
                         quiet=[(sel("avg_slippage_pct", strategy="meanrev", **ib), -0.2)],
                         fired=[Fired({"job": "ib-exporter", "strategy": "momentum"}, "Unusual slippage on momentum",
                                      f"Average slippage of momentum over the last 15 minutes: {slip * 2.08:.2f} % "
                                      f"(limit {num(slip)} %).")]))
    out += rejection_tests(c, ib) + fill_tests(c, ib) + latency_tests(c, api)
    return out


def rejection_tests(c: Ctx, ib: dict) -> list[Test]:
    F = c.for_("HighOrderRejectionRate")
    sub, rej = 10, 5  # per minute: 50 % rejected in the burst
    below = c["rejection_ratio"] * sub * 0.8
    n_pre, n_on, n_post = 20, F // 60 + 20, 20
    t_on, t_off = n_pre * 60, (n_pre + n_on) * 60
    t = Test(f"HighOrderRejectionRate: half of the orders rejected fires after {c['rejection_for']}; "
             f"under {pct(c['rejection_ratio'])} does not", 60)
    t.add(sel("orders_submitted_total", strategy="momentum", **ib), counter((sub, n_pre + n_on + n_post)))
    t.add(sel("orders_rejected_total", strategy="momentum", code="201", **ib),
          counter((below, n_pre), (rej, n_on), (0, n_post)))
    fired = Fired({"job": "ib-exporter", "strategy": "momentum"}, f"{human_pct(rej / sub)} of momentum's orders rejected",
                  f"{human_pct(rej / sub)} of the orders momentum submitted in the last 15 minutes were rejected "
                  f"(limit {pct(c['rejection_ratio'])}). orders_rejected_total has IB's error code.")
    window_checks(c, t, "HighOrderRejectionRate", t_on, t_off, 16 * 60, fired)
    few = Test(f"HighOrderRejectionRate: every order of a trickle (under {c['ratio_min_events']} in 15 minutes) "
               "rejected stays quiet", 60)
    trickle = (c["ratio_min_events"] - 1) / 15
    few.add(sel("orders_submitted_total", strategy="pairs", **ib), counter((trickle, 60)))
    few.add(sel("orders_rejected_total", strategy="pairs", code="201", **ib), counter((trickle, 60)))
    for tt in (20 * 60, 40 * 60, 59 * 60):
        few.expect(tt, "HighOrderRejectionRate")
    return [t, few]


def fill_tests(c: Ctx, ib: dict) -> list[Test]:
    F = c.for_("LowOrderFillRate")
    sub, fill_ok, fill_low = 10, 9, 2  # per minute
    n_pre, n_on, n_post = 40, F // 60 + 40, 40
    t_on, t_off = n_pre * 60, (n_pre + n_on) * 60
    t = Test(f"LowOrderFillRate: {human_pct(fill_low / sub)} of orders filled fires after {c['fill_rate_for']}; "
             "resolves when fills come back", 60)
    t.add(sel("orders_submitted_total", strategy="momentum", **ib), counter((sub, n_pre + n_on + n_post)))
    t.add(sel("orders_filled_total", strategy="momentum", **ib), counter((fill_ok, n_pre), (fill_low, n_on), (sub, n_post)))
    fired = Fired({"job": "ib-exporter", "strategy": "momentum"}, "Few of momentum's orders fill",
                  f"Only {human_pct(fill_low / sub)} of the orders momentum submitted in the last 30 minutes and IB accepted were filled "
                  f"(minimum {pct(c['fill_ratio_min'])}), for more than {c['fill_rate_for']}.")
    window_checks(c, t, "LowOrderFillRate", t_on, t_off, 31 * 60, fired)
    never = Test("LowOrderFillRate: a strategy with no fill at all (no filled counter yet) fires", 60)
    never.add(sel("orders_submitted_total", strategy="meanrev", **ib), counter((sub, 60)))
    never.expect(c.next_eval(F) - c.eval, "LowOrderFillRate")
    never.expect(45 * 60, "LowOrderFillRate", Fired(
        {"job": "ib-exporter", "strategy": "meanrev"}, "Few of meanrev's orders fill",
        f"Only 0% of the orders meanrev submitted in the last 30 minutes and IB accepted were filled "
        f"(minimum {pct(c['fill_ratio_min'])}), for more than {c['fill_rate_for']}."))
    rejected = Test("LowOrderFillRate: orders IB rejects count for HighOrderRejectionRate, not here", 60)
    rejected.add(sel("orders_submitted_total", strategy="pairs", **ib), counter((sub, 60)))
    rejected.add(sel("orders_rejected_total", strategy="pairs", code="201", **ib), counter((sub - fill_ok, 60)))
    rejected.add(sel("orders_filled_total", strategy="pairs", **ib), counter((fill_ok * 0.9, 60)))
    for tt in (20 * 60, 45 * 60, 59 * 60):
        rejected.expect(tt, "LowOrderFillRate")
    # All of them rejected: nothing accepted, no ratio (and no alert) rather than 0 %.
    rejected.add(sel("orders_submitted_total", strategy="meanrev", **ib), counter((sub, 60)))
    rejected.add(sel("orders_rejected_total", strategy="meanrev", code="201", **ib), counter((sub, 60)))
    rejected.expect_expr(45 * 60, "round(strategy:orders_filled:ratio_rate30m, 0.001)",
                         ({"job": "ib-exporter", "strategy": "pairs"}, 0.9))
    return [t, never, rejected]


def latency_tests(c: Ctx, api: dict) -> list[Test]:
    """Requests land in the buckets of the contract: 90 % fast, 10 % in the bucket past the limit."""
    F = c.for_("APILatencyHigh")
    limit = c["api_p99_seconds"]
    buckets = contract.metric("api_request_duration_seconds").buckets
    fast = max(b for b in buckets if b <= limit / 4)
    slow_i = next(i for i, b in enumerate(buckets) if b > limit)
    slow_lo, slow = buckets[slow_i - 1], buckets[slow_i]
    lbl = {"endpoint": "/intents", "method": "POST", "status": "201", **api}
    n_pre, n_on, n_post = 15, F // 60 + 10, 10
    t_on, t_off = n_pre * 60, (n_pre + n_on) * 60
    per_min, slow_share = 100, 10
    t = Test(f"APILatencyHigh: {slow_share} % of requests slower than {num(limit)}s puts p99 past the limit", 60)
    for le in [*buckets, math.inf]:
        fast_n = per_min if le >= fast else 0
        burst_n = (per_min - slow_share if le >= fast else 0) + (slow_share if le >= slow else 0)
        t.add(sel("api_request_duration_seconds_bucket", **lbl, le="+Inf" if le == math.inf else num(le)),
              counter((fast_n, n_pre), (burst_n, n_on), (fast_n, n_post)))
    t.add(sel("api_request_duration_seconds_count", **lbl), counter((per_min, n_pre + n_on + n_post)))
    # p99 interpolates inside the slow bucket: 90 % below it, its 10 % spread over it.
    p99 = slow_lo + (slow - slow_lo) * (0.99 - (1 - slow_share / per_min)) / (slow_share / per_min)
    fired = Fired({"job": "automatictrader-api", "endpoint": "/intents"},
                  f"Slow API: p99 of /intents is {human_duration(p99)}",
                  f"p99 latency of /intents on automatictrader-api over 5 minutes: {human_duration(p99)} "
                  f"(limit {num(limit)}s), for more than {c['api_latency_for']}.")
    window_checks(c, t, "APILatencyHigh", t_on, t_off, 6 * 60, fired)
    few = Test(f"APILatencyHigh: every request slow, but under {c['ratio_min_events']} of them in 5 minutes: quiet", 60)
    trickle = (c["ratio_min_events"] - 1) / 5
    lbl["endpoint"] = "/intents/{id}"
    for le in [*buckets, math.inf]:
        few.add(sel("api_request_duration_seconds_bucket", **lbl, le="+Inf" if le == math.inf else num(le)),
                counter((trickle if le >= slow else 0, 30)))
    few.add(sel("api_request_duration_seconds_count", **lbl), counter((trickle, 30)))
    for tt in (c.next_eval(F) + 5 * 60, 29 * 60):
        few.expect(tt, "APILatencyHigh")
    # Its p99 is past the limit: only the floor keeps it quiet.
    few.expect_expr(29 * 60, f"count(endpoint:api_request_duration_seconds:p99_5m > {num(limit)})", ({}, 1))
    return [t, few]


# ---------------------------------------------------------------- health


def up_tests(c: Ctx, alert: str, kind: str, other_kind: str) -> list[Test]:
    """Every job of ``kind`` down fires ``alert``; a job of ``other_kind`` down does not."""
    jobs = contract.jobs_of_kind(kind)
    F = c.for_(alert)
    desc = {"APIHealthCheckFailed": "the service is down, hung or unreachable, and trading through it may have stopped.",
            "ExporterDown": "the metrics and alerts that depend on it are blind."}[alert]
    t = step_test(c, alert, what=f"each {kind} job down for {dur(F)} fires; other jobs do not",
                  series=[(sel("up", job=j, instance=target(j)), 1, 0) for j in jobs],
                  quiet=[(sel("up", job=j, instance=target(j)), 0) for j in contract.jobs_of_kind(other_kind)],
                  fired=[Fired({"job": j, "instance": target(j)}, f"{j} is down",
                               f"Prometheus has not been able to scrape {j} ({target(j)}) for more than {dur(F)}: {desc}")
                         for j in jobs])
    return [t]


def health_tests(c: Ctx) -> list[Test]:
    out = up_tests(c, "APIHealthCheckFailed", "trading", "trademon") + up_tests(c, "ExporterDown", "trademon", "trading")
    ib = {"job": "ib-exporter", "instance": target("ib-exporter")}
    syn = {"job": "synthetic", "instance": target("synthetic")}
    md = {"job": "marketdata-stream", "instance": target("marketdata-stream")}
    out.append(step_test(c, "IBDataFarmDisconnected", what="a data farm down",
                         series=[(sel("ib_farm_connected", farm="usfarm", kind="market", **ib), 1, 0)],
                         quiet=[(sel("ib_farm_connected", farm="ushmds", kind="historical", **ib), 1)],
                         fired=[Fired({"job": "ib-exporter", "farm": "usfarm", "kind": "market"},
                                      "IB market data farm usfarm disconnected",
                                      f"TWS / IB Gateway has reported the market data farm usfarm down for more than "
                                      f"{c['farm_down_for']}.")]))
    out.append(step_test(c, "SyntheticCheckFailed", what="a check failing on every run",
                         series=[(sel("synthetic_check_success", check="circuit_breaker", **syn), 1, 0)],
                         fired=[Fired({"job": "synthetic", "check": "circuit_breaker"}, "Synthetic check circuit_breaker failing",
                                      f"The synthetic check circuit_breaker has failed on every run for more than "
                                      f"{c['synthetic_failing_for']}.")]))
    flap = Test("SyntheticCheckFailed: a check failing every other run does not keep failing: quiet", 60)
    flap.add(sel("synthetic_check_success", check="pipeline", **syn), " ".join(["0 1"] * 20))
    for t in range(60, 40 * 60, 5 * 60):
        flap.expect(t, "SyntheticCheckFailed")
    out.append(flap)

    # Market data: timestamps follow the clock (a tick every sample) until AAPL stalls.
    stale = c["marketdata_stale_seconds"]
    interval = 15
    n_tick, n_stall = 20, math.ceil((stale + 240) / interval)
    t_stall = (n_tick - 1) * interval  # AAPL's last tick
    n_total = n_tick + n_stall + 40
    t_down = (n_tick + n_stall) * interval
    t_up = t_down + 20 * interval
    test = Test("MarketDataStale: a symbol without ticks while the feed is up fires past the limit; "
                "a disconnected feed is not stale data", interval)
    test.add(sel("marketdata_last_tick_timestamp_seconds", symbol="AAPL", **md),
             f"0+{interval}x{n_tick - 1} {num(t_stall)}x{t_up // interval - n_tick - 1} {num(t_up)}+{interval}x{n_total - t_up // interval - 1}")
    test.add(sel("marketdata_last_tick_timestamp_seconds", symbol="MSFT", **md), f"0+{interval}x{n_total - 1}")
    test.add(sel("marketdata_connected", **md), gauge((1, t_down // interval), (0, 20), (1, n_total - t_up // interval)))
    first = math.floor((t_stall + stale) / c.eval) * c.eval  # age == stale at best: not past it
    fire = c.next_eval(t_stall + stale + 1)
    test.expect(first, "MarketDataStale")
    test.expect(fire, "MarketDataStale", Fired({"job": "marketdata-stream", "symbol": "AAPL"}, "No market data for AAPL",
                                               f"No tick for AAPL for {human_duration(fire - t_stall)} (limit {num(stale)}s) "
                                               "while the market-data feed is connected."))
    test.expect(c.next_eval(t_down), "MarketDataStale")  # feed down: TWS/feed alerts cover it
    test.expect(c.next_eval(t_up), "MarketDataStale")  # ticks again
    out.append(test)

    # Alertmanager's failed deliveries: a burst of failures for longer than `for`, then none.
    F = c.for_("AlertDeliveryFailing")
    n_ok, n_fail = 10, math.ceil((F + 300) / 60)
    am = {"job": "alertmanager", "instance": target("alertmanager")}
    failing = Test("AlertDeliveryFailing: deliveries failing past `for` page; a healthy integration stays quiet", 60)
    failing.add(sel("alertmanager_notifications_failed_total", integration="webhook", reason="other", **am),
                f"0x{n_ok - 1} 1+1x{n_fail - 1} {n_fail}x20")
    failing.add(sel("alertmanager_notifications_failed_total", integration="email", reason="other", **am),
                f"0x{n_ok + n_fail + 20 - 1}")
    t_fail = (n_ok - 1) * 60 + 60  # the first failed attempt; one more each minute
    failing.expect(t_fail - 60, "AlertDeliveryFailing")
    first = c.next_eval(t_fail)
    failing.expect(first + F - c.eval, "AlertDeliveryFailing")  # failing, but not yet for `for`
    fire = c.next_eval(first + F)
    attempts = min(5, (fire - t_fail) // 60 + 1)  # one a minute since t_fail, within the 5-minute window
    failing.expect(fire, "AlertDeliveryFailing", Fired(
        {"integration": "webhook"}, "Alertmanager cannot deliver notifications to webhook",
        f"Alertmanager's deliveries to webhook have failed for more than {c['delivery_failing_for']} ({attempts} failed attempts "
        "in 5 minutes): pages sent that way are not arriving. With the Telegram companion down (integration webhook), "
        "pages reach only Slack and email."))
    failing.expect((n_ok + n_fail) * 60 + 6 * 60, "AlertDeliveryFailing")  # no failure in the last 5 minutes: resolved
    out.append(failing)

    wd = Test("Watchdog: always firing", 60)
    wd.add("up{job=\"prometheus\"}", gauge((1, 10)))
    for t in (0, 5 * 60):
        wd.expect(t, "Watchdog", Fired({}, "Alerting pipeline heartbeat",
                                        "Always firing, so that its notifications prove Prometheus evaluates rules and "
                                        "Alertmanager delivers. If the heartbeat stops arriving, alerting is broken."))
    out.append(wd)
    return out


# ---------------------------------------------------------------- why IB is down

NO_REASON = "not known yet (the ib-exporter has not failed to connect yet, or is not scraped): see its log"
CLIENT_ID = 9110


def ib_down_tests(c: Ctx) -> list[Test]:
    """TWSConnectionLost's description says why, from ib_session_down_reason of the same
    exporter: one exporter per reason, all down; one more without a reason yet."""
    t = Test("TWSConnectionLost: the page names the reason the session is down and the fix", 15)
    F = c.for_("TWSConnectionLost")
    n = math.ceil((F + 120) / 15)
    fired = []
    for i, (reason, text) in enumerate([*contract.IB_DOWN_REASONS.items(), (None, NO_REASON)]):
        ib = {"job": "ib-exporter", "instance": f"ib-gateway-{i}:9110"}
        t.add(sel("ib_connected", **ib), gauge((0, n)))
        t.add(sel("ib_client_id", **ib), gauge((CLIENT_ID, n)))
        for other in contract.IB_DOWN_REASONS:
            t.add(sel("ib_session_down_reason", reason=other, **ib), gauge((1 if other == reason else 0, n)))
        fired.append(Fired(ib, "IB API session to TWS / IB Gateway lost",
                           f"{ib['instance']} has had no API session to TWS / IB Gateway for more than "
                           f"{c['tws_lost_for']}. Why: {text.format(client_id=CLIENT_ID)}. No order reaches the broker, "
                           "and P&L, positions and risk from the broker are not current."))
    t.expect(c.next_eval(F + 60), "TWSConnectionLost", *fired)
    return [t]


FILES = {
    "money.yml": ("Critical money alerts: loss limit, circuit breaker, TWS, reconciliation; P&L and risk",
                  lambda c: money_tests(c) + pnl_anomaly_tests(c) + risk_tests(c)),
    "blind.yml": ("No false resolve when money data goes away; pages when the broker's view is lost",
                  lambda c: hold_tests(c) + blind_tests(c)),
    "orders.yml": ("Order intents, workers, execution quality, API latency", order_tests),
    "health.yml": ("Service health, IB data farms, market data, synthetic checks, Watchdog", health_tests),
    "ib_down.yml": ("Why IB is down: TWSConnectionLost names the reason and the fix", ib_down_tests),
}


def render(root: Path, filename: str) -> str:
    c = Ctx(root)
    what, build = FILES[filename]
    doc = {
        "rule_files": RULE_FILES,
        "evaluation_interval": dur(c.eval),
        # Recording rules first, as a dependent alert sees them in production one evaluation later at most.
        "group_eval_order": [*rules.RECORDING_GROUPS, rules.MONEY_GROUP, rules.ALERTS_GROUP],
        "tests": [t.as_dict() for t in build(c)],
    }
    header = (f"# promtool unit tests: {what}.\n"
              "# Generated by `trademon gen` from monitoring/config.yml and exporters/trademon/gen/rule_tests.py.\n"
              "# Run: promtool test rules monitoring/tests/*.yml\n")
    return header + yaml.dump(doc, Dumper=rules._Dumper, sort_keys=False, width=1000, allow_unicode=True)


GENERATED = [(f"{TESTS_DIR}/{name}", (lambda n: lambda root: render(root, n))(name)) for name in FILES]
