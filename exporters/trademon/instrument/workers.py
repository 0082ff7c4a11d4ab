"""Worker processing: outcome counts, durations and lag, with label children bound once."""

from __future__ import annotations

from collections.abc import Callable

import math
from time import perf_counter


class _Processing:
    """``with`` block timing one intent; an exception is an ``error`` outcome and propagates."""

    __slots__ = ("_ok", "_error", "_observe", "_start")

    def __init__(self, ok, error, observe):
        self._ok, self._error, self._observe = ok, error, observe

    def __enter__(self):
        self._start = perf_counter()
        return self

    def __exit__(self, exc_type, exc, tb):
        self._observe(perf_counter() - self._start)
        (self._ok if exc_type is None else self._error)()
        return False


class WorkerMetrics:
    def __init__(self, processed, duration, lag):
        self._processed, self._duration, self._lag = processed, duration, lag
        self._bound: dict[str, tuple] = {}
        self._lag_by: dict[str, Callable[..., None]] = {}

    def processing(self, worker: str) -> _Processing:
        bound = self._bound.get(worker)
        if bound is None:
            bound = self._bound[worker] = (
                self._processed.labels(worker, "ok").inc,
                self._processed.labels(worker, "error").inc,
                self._duration.labels(worker).observe,
            )
        return _Processing(*bound)

    def set_lag(self, worker: str, seconds: float) -> None:
        if not seconds >= 0 or math.isinf(seconds):  # also refuses NaN
            raise ValueError(
                f"worker lag must be a finite number of seconds >= 0 (0 when idle), "
                f"got {seconds!r} for worker {worker!r}"
            )
        setter = self._lag_by.get(worker)
        if setter is None:
            setter = self._lag_by[worker] = self._lag.labels(worker).set
        setter(seconds)
