"""Worker processing: outcome counts, durations and lag, with label children bound once."""

from __future__ import annotations

import math
from time import perf_counter

from trademon.metrics import Children


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
        self._processed, self._duration, self._lag = Children(processed, "inc"), Children(duration, "observe"), Children(lag, "set")

    def processing(self, worker: str) -> _Processing:
        return _Processing(self._processed(worker, "ok"), self._processed(worker, "error"), self._duration(worker))

    def set_lag(self, worker: str, seconds: float) -> None:
        if not seconds >= 0 or math.isinf(seconds):  # also refuses NaN
            raise ValueError(
                f"worker lag must be a finite number of seconds >= 0 (0 when idle), "
                f"got {seconds!r} for worker {worker!r}"
            )
        self._lag(worker)(seconds)
