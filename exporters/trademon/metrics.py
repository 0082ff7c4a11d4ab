"""Build prometheus_client objects for a job from the contract, so no name is typed twice."""

from __future__ import annotations

from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from trademon.contract import COUNTER, GAUGE, HISTOGRAM, Metric, metric, metrics_for_job


class Registry(CollectorRegistry):
    """A registry whose exposition has no ``<name>_created`` series.

    They would double the series of every counter and histogram child for no use in the rules
    or dashboards. prometheus_client can only switch them off for the whole process
    (``disable_created_metrics``), which would change a trader's own metrics when the
    instrumentation library is imported; this drops them for trademon's registries alone.
    """

    def collect(self):
        for family in super().collect():
            created = family.name + "_created"
            family.samples = [s for s in family.samples if s.name != created]
            yield family


class Children:
    """A labelled metric's children, each looked up once by its label values, so hot paths (every
    request, every IB event) do no label lookup. With ``method`` (``"inc"``, ``"observe"``, ``"set"``)
    the child's bound method is what is kept and returned. ``remove`` and ``clear`` drop the
    series and the cache together: a cached child of a removed series would update nothing."""

    __slots__ = ("metric", "method", "children")

    def __init__(self, metric, method: str | None = None):
        self.metric, self.method = metric, method
        self.children: dict[tuple, Any] = {}

    def __call__(self, *labels: str):
        c = self.children.get(labels)
        if c is None:
            child = self.metric.labels(*labels)
            c = self.children[labels] = child if self.method is None else getattr(child, self.method)
        return c

    def remove(self, *labels: str) -> None:
        if self.children.pop(labels, None) is not None:
            self.metric.remove(*labels)

    def clear(self) -> None:
        self.children.clear()
        self.metric.clear()


_CLASSES = {COUNTER: Counter, GAUGE: Gauge, HISTOGRAM: Histogram}


def create(spec: Metric, registry: CollectorRegistry):
    kwargs: dict[str, object] = {"registry": registry}
    if spec.type == HISTOGRAM:
        kwargs["buckets"] = spec.buckets
    return _CLASSES[spec.type](spec.client_name, spec.help, spec.labels, **kwargs)


class JobMetrics:
    """The contract's metrics of one job, in their own registry.

    ``jm["orders_filled_total"]`` is the prometheus_client object; names are checked
    against the contract, so a typo fails at start-up, not silently in a dashboard.
    """

    def __init__(self, job: str, registry: CollectorRegistry | None = None, names: list[str] | None = None):
        self.job = job
        self.registry = registry if registry is not None else Registry()
        specs = [metric(n) for n in names] if names is not None else metrics_for_job(job)
        self._objs = {s.name: create(s, self.registry) for s in specs}

    def __getitem__(self, name: str):
        try:
            return self._objs[name]
        except KeyError:
            metric(name)  # raises a clear error for a name outside the contract
            raise KeyError(f"{name!r} is not exposed by job {self.job!r}") from None

    def names(self) -> list[str]:
        return list(self._objs)
