"""Demo time compression: every duration of the alert path divided by the simulator's speed.

The simulator can run N times faster than real time; its metrics then change N times faster.
If only the simulator were fast, a rule's ``for: 5m`` and its ``[15m]`` windows would still
be real minutes, which changes what a scenario means (30 simulated minutes of slippage
before the slippage alert is due is a daily-loss breach, not a slippage warning). So
``trademon native --mode demo --speed N`` divides every duration by N: rules' ``for``, range
windows and offsets, the ``rate * <window seconds>`` event counts, Prometheus' scrape and
evaluation intervals and Alertmanager's route timings. A scenario then does, in 1/N of the
time, exactly what it does at speed 1. Intervals have a floor (``FLOOR_S``) so the
processes are not polled to death, and range windows one of three such scrapes
(``WINDOW_FLOOR_S``); what the floors cost shows as a few seconds' delay.
"""

from __future__ import annotations

import re
from pathlib import Path

import yaml

from trademon.settings.values import DURATION_PATTERN, seconds

FLOOR_S = 1.0
# A range window holds at least two samples at that floor: rate() and increase() need two
# (at --speed 100 a [1m] was 600 ms, empty, and PositionDriftFromBroker paged). Two scrape
# intervals hold one sample now and then (scrape jitter), so three: at --speed 30 a [1m] of
# 2 s left increase() empty at times, and PositionDriftFromBroker's allowance for fills with it
# (a resolve held 30 s by a few shares of scrape skew).
WINDOW_FLOOR_S = 3 * FLOOR_S
# Alerts on what runs in real time whatever the speed: the synthetic checks run every minute
# or so of the wall clock, so their rule keeps its `for` (compressed, one failed run would page).
REAL_TIME_ALERTS = frozenset({"SyntheticCheckFailed"})
_DUR = DURATION_PATTERN
_RANGE = re.compile(rf"\[({_DUR})(?::({_DUR})?)?\]")
_OFFSET = re.compile(rf"\boffset\s+({_DUR})")
_COUNT = re.compile(r"\*\s*(\d+)\b")


def fmt(s: float) -> str:
    ms = max(1, int(round(s * 1000)))
    return f"{ms // 1000}s" if ms % 1000 == 0 else f"{ms}ms"


def scaled(d: str, speed: float, floor: float = 0.0) -> str:
    return fmt(max(seconds(d) / speed, floor))


def windows(exprs) -> set[int]:
    """The range windows (in seconds) the expressions use."""
    return {int(seconds(m.group(1))) for e in exprs for m in _RANGE.finditer(e)}


def scale_expr(expr: str, speed: float, counts: set[int]) -> str:
    """``expr`` with range windows, subquery steps and offsets divided by ``speed``, and
    ``* <n>`` for n a window length in seconds (``rate5m * 300``: events in the window)."""
    def rng(m):
        step = m.group(2)
        return (f"[{scaled(m.group(1), speed, WINDOW_FLOOR_S)}"
                + (f":{scaled(step, speed)}" if step else (":" if ":" in m.group(0) else "")) + "]")

    expr = _RANGE.sub(rng, expr)
    expr = _OFFSET.sub(lambda m: f"offset {scaled(m.group(1), speed)}", expr)
    return _COUNT.sub(lambda m: f"* {fmt_number(max(int(m.group(1)) / speed, WINDOW_FLOOR_S))}" if int(m.group(1)) in counts
                      else m.group(0), expr)


def fmt_number(x: float) -> str:
    return f"{x:g}"


def scale_rule_files(files: list[Path], out: Path, speed: float) -> list[str]:
    """Copies of the rule files with every duration divided by ``speed``; returns their paths."""
    docs = [(f, yaml.safe_load(Path(f).read_text())) for f in files]
    exprs = [r["expr"] for _, d in docs for g in d["groups"] for r in g["rules"]]
    counts = windows(exprs)
    out.mkdir(parents=True, exist_ok=True)
    paths = []
    for f, doc in docs:
        for group in doc["groups"]:
            if "interval" in group:
                group["interval"] = scaled(group["interval"], speed, FLOOR_S)
            for rule in group["rules"]:
                rule["expr"] = scale_expr(str(rule["expr"]), speed, counts)
                for key in ("for", "keep_firing_for"):
                    if key in rule and rule.get("alert") not in REAL_TIME_ALERTS:
                        rule[key] = scaled(rule[key], speed)
        dst = out / Path(f).name
        dst.write_text(yaml.safe_dump(doc, sort_keys=False, allow_unicode=True))
        paths.append(str(dst))
    return paths


def scale_routes(route: dict, speed: float) -> None:
    """Alertmanager route timings (group_wait, group_interval, repeat_interval) divided by ``speed``."""
    for key in ("group_wait", "group_interval", "repeat_interval"):
        if key in route:
            route[key] = scaled(route[key], speed, FLOOR_S)
    for child in route.get("routes", []):
        scale_routes(child, speed)


def scale_alertmanager_config(path: Path, speed: float) -> None:
    cfg = yaml.safe_load(path.read_text())
    scale_routes(cfg["route"], speed)
    if "resolve_timeout" in cfg.get("global", {}):
        cfg["global"]["resolve_timeout"] = scaled(cfg["global"]["resolve_timeout"], speed, FLOOR_S)
    path.write_text(yaml.safe_dump(cfg, sort_keys=False, allow_unicode=True))


RESEND_DELAY = "1m"  # Prometheus' --rules.alert.resend-delay default


def prometheus_args(speed: float) -> list[str]:
    """Prometheus' own timer of the alert path, compressed: it sends a firing alert to
    Alertmanager again every resend delay, and the sends of its first evaluations, made before
    it has its Alertmanager list, are lost until then (the demo's first alerts, its Watchdog
    included, reached Alertmanager a minute late)."""
    return [f"--rules.alert.resend-delay={scaled(RESEND_DELAY, speed, FLOOR_S)}"]
