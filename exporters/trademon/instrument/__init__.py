"""``trademon.instrument``: the contract's API, intent and worker metrics for a FastAPI
(or Starlette) service, in two lines::

    from trademon.instrument import instrument
    ins = instrument(app)

That adds a pure ASGI middleware timing every request into
``api_request_duration_seconds{endpoint,method,status}`` and a ``GET /metrics`` route
serving ``ins.registry``. The service then reports its intents and workers::

    ins.intent_created(strategy); ins.intent_duplicate(strategy); ins.intent_error(strategy, reason)
    ins.track_intent_states(fn)      # fn() -> {"pending": n, "planned": n, "ready": n, "sent": n}
    with ins.processing(worker): ...  # outcome ok, or error if the block raises
    ins.set_worker_lag(worker, seconds)

and what it did with the broker, for the broker-truth checks (docs/broker-truth.md)::

    ins.order_sent(strategy); ins.fill_recorded(strategy)
    ins.set_position(account, symbol, quantity)   # its own book, signed

Labels: ``endpoint`` is the route template (``/intents/{id}``), with mount prefixes and
``include_router`` prefixes, never the raw path and never the ``root_path`` a proxy adds;
requests no route matched share the one value ``<unmatched>``. ``method`` is the HTTP
method (unknown ones fold into ``OTHER``), ``status`` the response status code; an
exception escaping the app is counted as ``500`` and re-raised. ``/metrics`` itself is not
measured: scrapes are not trading traffic and would skew the API latency alert.
Websocket and lifespan traffic pass through untouched. Middleware added after
``instrument(app)`` wraps it (Starlette puts the newest outermost) and so is not timed.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry
from prometheus_client.exposition import choose_encoder
from starlette.responses import Response

from trademon.contract import API, metrics_for_job
from trademon.metrics import JobMetrics
from trademon.instrument.broker import BrokerRecord
from trademon.instrument.intents import STATE_METRICS, IntentCounters, IntentStatesCollector, StatesFn
from trademon.instrument.middleware import RequestDurationMiddleware
from trademon.instrument.routes import UNMATCHED, RouteTemplates
from trademon.instrument.workers import WorkerMetrics

__all__ = ["instrument", "Instrumentation", "UNMATCHED"]

_STATE_KEY = "trademon_instrumentation"


class Instrumentation:
    """What :func:`instrument` returns: the helpers and the registry ``/metrics`` serves."""

    def __init__(self, job: str = API):
        # The state gauges come from a collector read at scrape time, the rest from the contract.
        state_names = {m.name for m in STATE_METRICS.values()}
        self.metrics = JobMetrics(job, names=[m.name for m in metrics_for_job(job) if m.name not in state_names])
        self.registry: CollectorRegistry = self.metrics.registry
        self._states = IntentStatesCollector()
        self.registry.register(self._states)
        m = self.metrics
        self._intents = IntentCounters(
            m["order_intents_created_total"], m["order_intents_duplicate_total"], m["order_intents_error_total"]
        )
        self._workers = WorkerMetrics(
            m["worker_intents_processed_total"], m["worker_processing_duration_seconds"], m["worker_lag_seconds"]
        )
        self._broker = BrokerRecord(m["trading_orders_sent_total"], m["trading_fills_recorded_total"],
                                    m["trading_position_quantity"])
        self.request_duration = m["api_request_duration_seconds"]
        # Bound once: the hot path calls these without attribute lookups on self._*.
        self.intent_created = self._intents.created
        self.intent_duplicate = self._intents.duplicate
        self.intent_error = self._intents.error
        self.processing = self._workers.processing
        self.set_worker_lag = self._workers.set_lag
        self.order_sent = self._broker.order_sent
        self.fill_recorded = self._broker.fill_recorded
        self.set_position = self._broker.set_position

    def track_intent_states(self, fn: StatesFn) -> None:
        """Read intent counts by state from ``fn()`` at each scrape (in the event loop
        when served by ``/metrics``, so ``fn`` may read loop-owned state without locks)."""
        self._states.track(fn)

    async def metrics_endpoint(self, request) -> Response:
        encode, content_type = choose_encoder(request.headers.get("accept", ""))
        return Response(encode(self.registry), headers={"Content-Type": content_type})


def instrument(app, *, metrics_path: str = "/metrics") -> Instrumentation:
    """Instrument a FastAPI/Starlette app (before it starts serving); see the module doc."""
    if not hasattr(app, "add_middleware") or not hasattr(app, "router"):
        raise TypeError(f"instrument() needs a FastAPI or Starlette application, got {type(app).__name__}")
    if getattr(app.state, _STATE_KEY, None) is not None:
        raise RuntimeError("this app is already instrumented: call instrument(app) once and keep what it returns")
    if app.middleware_stack is not None:
        raise RuntimeError("instrument(app) must run before the app serves its first request (it adds a middleware)")
    ins = Instrumentation()
    serve_metrics = ins.metrics_endpoint  # one bound method object: routing hands back this one
    app.add_route(metrics_path, serve_metrics, methods=["GET"], include_in_schema=False)
    templates = RouteTemplates(app.router.routes, skip_endpoints=[serve_metrics])
    app.add_middleware(RequestDurationMiddleware, histogram=ins.request_duration, templates=templates)
    setattr(app.state, _STATE_KEY, ins)
    return ins
