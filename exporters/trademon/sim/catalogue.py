"""The scenario catalogue: which alerts each scenario raises, and how long until the page and
until the resolve, at speed 1 and in the guided demo (``trademon demo``).

The times are derived, not typed: each alert's ``for`` and severity come from the generated
rule files, the scrape and evaluation intervals from prometheus/prometheus.yml, the route's
group_wait/group_interval from alertmanager/alertmanager.yml. What is the simulator's own is
``onset_s``/``clear_s``: how long (simulated seconds) after the switch the rule's expression
turns true or false again. docs/demo.md's table is generated from here (``trademon gen``) and
the guided demo uses the same figures as its deadlines, so a wrong figure fails CI.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import yaml

from trademon.settings.values import seconds
from trademon.stack import timescale
from trademon.sim.scenarios import SCENARIOS

DEMO_SPEED = 30.0  # the guided demo's time compression (trademon native --mode demo --speed 30)
MARKET_HOURS_ROUTE_ALERTS = ("MarketDataStale",)  # muted outside US market hours (see alertmanager.yml)


@dataclass(frozen=True)
class Expect:
    alert: str
    onset_s: float  # simulated seconds from switch-on until the rule's expression is true
    clear_s: float  # simulated seconds from switch-off until it is false again
    why: str = ""


# Onsets and clears, in simulated seconds, from how the simulator and the rules work:
#  - ratios over [15m] windows (rejection) cross 0.1 after ~0.1/0.75 of the window of
#    burst orders, and fall back below it once the burst orders are ~0.1 of the window;
#  - avg_slippage_pct is a 15-minute mean: 2 % slippage takes ~15 * 0.5/2 minutes up and,
#    after switch-off, stays above 0.5 % until the spike's fills age out of the window;
#  - pending intents grow by the intent rate (~12/min) while the workers are stalled.
EXPECTED: dict[str, tuple[Expect, ...]] = {
    "loss-breach": (Expect("DailyLossLimitBreach", 0, 0), Expect("CircuitBreakerTripped", 0, 0)),
    "ib-disconnect": (Expect("TWSConnectionLost", 0, 0),),
    "marketdata-stall": (Expect("MarketDataStale", 75, 0, "muted outside US market hours"),),
    "slippage-spike": (Expect("UnusualSlippage", 225, 660),),
    "rejection-burst": (Expect("HighOrderRejectionRate", 120, 780),),
    "intent-backlog": (Expect("WorkerProcessingLag", 60, 30), Expect("OrderIntentsPendingTooMany", 270, 60)),
    "api-down": (Expect("APIHealthCheckFailed", 15, 15),),
    "reconciliation-mismatch": (Expect("PositionReconciliationMismatch", 0, 0),),
    # Broker truth: the order and fill checks compare counts 5/30/60 s old (their offsets), so
    # the onset is that offset after the switch (silent-drop places its first order at once;
    # fill-lost's missing executions count at the 1102, 10 s in, and its position drift shows
    # once IB's fills of the last minute no longer excuse it); the rest hold from the switch.
    "silent-drop": (Expect("OrderNotAcknowledgedByIB", 30, 0,
                           "OrderAcknowledgementSlow warns at 5 s, then is inhibited by it"),),
    "fill-lost": (Expect("ExecutionNotRecorded", 70, 0), Expect("PositionDriftFromBroker", 70, 0)),
    "position-drift": (Expect("PositionDriftFromBroker", 0, 0),),
    "breaker-leak": (Expect("BreakerLeakingOrders", 0, 0), Expect("CircuitBreakerTripped", 0, 0)),
    "oer-runup": (Expect("OrderEfficiencyRatioExcessive", 60, 0),),
}


@dataclass(frozen=True)
class Pipeline:
    """The alert path's own waits, in seconds, from the shipped configuration."""
    scrape: float
    evaluation: float
    rules: dict  # alert -> (severity, for seconds, keep_firing_for seconds)
    routes: dict  # severity -> (group_wait, group_interval)

    @classmethod
    def load(cls, root: Path) -> Pipeline:
        prom = yaml.safe_load((root / "prometheus" / "prometheus.yml").read_text())["global"]
        rules = {}
        for f in sorted((root / "monitoring" / "rules").glob("*.yml")):
            for g in yaml.safe_load(f.read_text())["groups"]:
                for r in g["rules"]:
                    if "alert" in r:
                        rules[r["alert"]] = (r["labels"]["severity"], seconds(r["for"]) if "for" in r else 0.0,
                                             seconds(r["keep_firing_for"]) if "keep_firing_for" in r else 0.0)
        am = yaml.safe_load((root / "alertmanager" / "alertmanager.yml").read_text())["route"]
        default = (am["group_wait"], am["group_interval"])
        routes = {}
        for child in am.get("routes", []):
            for m in child.get("matchers", []):
                if m.startswith("severity="):
                    sev = m.split("=", 1)[1].strip('"')
                    routes[sev] = (child.get("group_wait", default[0]), child.get("group_interval", default[1]))
        routes = {k: (seconds(a), seconds(b)) for k, (a, b) in routes.items()}
        return cls(seconds(prom["scrape_interval"]), seconds(prom["evaluation_interval"]), rules,
                   {**routes, "_default": (seconds(default[0]), seconds(default[1]))})

    def _waits(self, alert: str, speed: float) -> tuple[float, float, float, float]:
        sev = self.rules[alert][0]
        gw, gi = self.routes.get(sev, self.routes["_default"])
        if speed == 1:
            return self.scrape, self.evaluation, gw, gi
        f = timescale.FLOOR_S
        return max(self.scrape / speed, f), max(self.evaluation / speed, f), max(gw / speed, f), max(gi / speed, f)

    def page_s(self, e: Expect, speed: float = 1.0) -> float:
        """Worst case from switch-on to the notification: onset, one scrape, one evaluation,
        the rule's for (evaluated on its grid) and the route's group_wait."""
        scrape, ev, gw, _ = self._waits(e.alert, speed)
        for_s = self.rules[e.alert][1] / speed
        return e.onset_s / speed + scrape + ev + for_s + ev + gw

    def resolve_s(self, e: Expect, speed: float = 1.0) -> float:
        """Worst case from switch-off to the resolved notification: clear, one scrape, one
        evaluation, the rule's keep_firing_for and the route's group_interval (resolves go out
        with the next flush)."""
        scrape, ev, _, gi = self._waits(e.alert, speed)
        return e.clear_s / speed + scrape + ev + self.rules[e.alert][2] / speed + gi

    def severity(self, alert: str) -> str:
        return self.rules[alert][0]


def human(s: float) -> str:
    s = int(round(s))
    return f"{s // 60} min {s % 60:02d} s" if s >= 60 else f"{s} s"


def markdown(root: Path, speed: float = DEMO_SPEED) -> str:
    """The catalogue table of docs/demo.md (worst cases; typical times are shorter by up to one interval each)."""
    p = Pipeline.load(root)
    rows = ["| scenario | what it simulates | alerts expected (severity) | page / resolve at speed 1 | "
            f"page / resolve in the guided demo (speed {speed:g}) |", "| --- | --- | --- | --- | --- |"]
    for name, what in SCENARIOS.items():
        for i, e in enumerate(EXPECTED[name]):
            note = f"; {e.why}" if e.why else ""
            first = (f"`{name}`", what) if i == 0 else ("", "")
            rows.append(f"| {first[0]} | {first[1]} | `{e.alert}` ({p.severity(e.alert)}{note}) | "
                        f"{human(p.page_s(e))} / {human(p.resolve_s(e))} | "
                        f"{human(p.page_s(e, speed))} / {human(p.resolve_s(e, speed))} |")
    return "\n".join(rows) + "\n"


def demo_total_s(root: Path, speed: float = DEMO_SPEED) -> float:
    """The guided demo's worst case: every scenario paged and resolved, one after another."""
    p = Pipeline.load(root)
    return sum(max(p.page_s(e, speed) for e in es) + max(p.resolve_s(e, speed) for e in es) for es in EXPECTED.values())
