"""Intent lifecycle: counters per strategy, and the state gauges read at scrape time."""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping

from prometheus_client.metrics_core import GaugeMetricFamily

from trademon.contract import metric
from trademon.metrics import Children

log = logging.getLogger("trademon.instrument")

STATES = ("pending", "planned", "ready", "sent")
STATE_METRICS = {state: metric(f"order_intents_{state}") for state in STATES}


class IntentCounters:
    """created / duplicate / error counts, with label children bound once per value."""

    def __init__(self, created, duplicate, error):
        self._created, self._duplicate, self._error = Children(created, "inc"), Children(duplicate, "inc"), Children(error, "inc")

    def created(self, strategy: str) -> None:
        self._created(strategy)()

    def duplicate(self, strategy: str) -> None:
        self._duplicate(strategy)()

    def error(self, strategy: str, reason: str) -> None:
        self._error(strategy, reason)()


StatesFn = Callable[[], Mapping[str, float]]


class IntentStatesCollector:
    """Exposes ``order_intents_<state>`` from one call of the tracked function per scrape,
    so the four gauges are one consistent snapshot and requests pay nothing for them.

    States the function leaves out count as 0 (a ``collections.Counter`` works as is).
    Until a function is tracked, or if it fails, the gauges have no sample: an unknown
    count is not reported as zero, and the scrape itself still succeeds.
    """

    def __init__(self):
        self._fn: StatesFn | None = None
        self._warned_keys: set[str] = set()

    def track(self, fn: StatesFn) -> None:
        if not callable(fn):
            raise TypeError(
                f"track_intent_states needs a function returning intent counts by state "
                f"({', '.join(STATES)}), got {type(fn).__name__}"
            )
        self._fn = fn

    def describe(self):
        # Lets the registry check names at registration without calling the function.
        return [GaugeMetricFamily(m.name, m.help) for m in STATE_METRICS.values()]

    def collect(self):
        counts = self._read()
        for state, spec in STATE_METRICS.items():
            family = GaugeMetricFamily(spec.name, spec.help)
            if counts is not None:
                family.add_metric([], float(counts.get(state, 0)))
            yield family

    def _read(self) -> Mapping[str, float] | None:
        if self._fn is None:
            return None
        try:
            counts = self._fn()
            unknown = set(counts) - set(STATES) - self._warned_keys
        except Exception:
            log.exception("intent state function failed; order_intents_* gauges left empty for this scrape")
            return None
        if unknown:
            self._warned_keys |= unknown
            log.warning("intent state function returned unknown states, ignored",
                        extra={"unknown": sorted(unknown), "known": list(STATES)})
        return counts
