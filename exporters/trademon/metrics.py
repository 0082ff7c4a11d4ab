"""Build prometheus_client objects for a job from the contract, so no name is typed twice."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, disable_created_metrics

from .contract import COUNTER, GAUGE, HISTOGRAM, Metric, metric, metrics_for_job

# The text format would add a `<name>_created` series per counter and histogram child:
# twice the series for no use in the rules or dashboards.
disable_created_metrics()

_CLASSES = {COUNTER: Counter, GAUGE: Gauge, HISTOGRAM: Histogram}


def create(spec: Metric, registry: CollectorRegistry):
    kwargs = {"registry": registry}
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
        self.registry = registry if registry is not None else CollectorRegistry()
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
