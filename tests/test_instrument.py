"""trademon.instrument on real FastAPI apps: labels, statuses, /metrics, helpers, isolation."""

from __future__ import annotations

import asyncio
import threading
import time
from collections import Counter

import httpx
import pytest
import uvicorn
from fastapi import APIRouter, FastAPI, Header, HTTPException
from prometheus_client.openmetrics.parser import text_string_to_metric_families as openmetrics_families
from prometheus_client.parser import text_string_to_metric_families
from pydantic import BaseModel
from starlette.applications import Starlette
from starlette.responses import PlainTextResponse, StreamingResponse
from starlette.routing import Mount, Route

from trademon import contract
from trademon.instrument import UNMATCHED, instrument
from tests.support.procs import free_port, wait_http

DURATION = "api_request_duration_seconds"


class IntentIn(BaseModel):
    strategy: str
    quantity: float


def order_app(**fastapi_kwargs) -> FastAPI:
    app = FastAPI(**fastapi_kwargs)
    seen: set[str] = set()

    @app.post("/intents", status_code=201)
    async def create(body: IntentIn, idempotency_key: str = Header()):
        if idempotency_key in seen:
            raise HTTPException(409, "duplicate")
        seen.add(idempotency_key)
        return {"id": idempotency_key, "state": "pending"}

    @app.get("/intents/{id}")
    async def get_intent(id: str):
        if id == "boom":
            raise RuntimeError("handler failed")
        if id == "missing":
            raise HTTPException(404, "no such intent")
        if id == "stream-fails":
            async def chunks():
                yield b"partial"
                raise RuntimeError("stream failed")
            return StreamingResponse(chunks())
        if id == "slow":
            await asyncio.sleep(0.03)
        return {"id": id}

    return app


def fetch(app, *reqs, root_path: str = "", raise_app_exceptions: bool = False) -> list[httpx.Response]:
    """Send requests to the ASGI app in-process; a request is a path or (method, path, kwargs)."""

    async def go():
        transport = httpx.ASGITransport(app=app, root_path=root_path, raise_app_exceptions=raise_app_exceptions)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            out = []
            for r in reqs:
                method, path, kw = ("GET", r, {}) if isinstance(r, str) else r
                out.append(await client.request(method, path, follow_redirects=False, **kw))
            return out

    return asyncio.run(go())


def families(text: str) -> dict:
    return {f.name: f for f in text_string_to_metric_families(text)}


def scrape(app, path: str = "/metrics", root_path: str = "") -> dict:
    (r,) = fetch(app, root_path + path, root_path=root_path)
    assert r.status_code == 200, r.text
    return families(r.text)


def request_counts(fams: dict) -> Counter:
    """(endpoint, method, status) -> requests observed, from the histogram's _count samples."""
    fam = fams[DURATION]
    return Counter({
        (s.labels["endpoint"], s.labels["method"], s.labels["status"]): int(s.value)
        for s in fam.samples if s.name == DURATION + "_count"
    })


def test_endpoint_is_the_route_template_never_the_raw_path():
    app = order_app()
    instrument(app)
    fetch(app, "/intents/abc", "/intents/def", "/intents/ghi")
    (r,) = fetch(app, "/metrics")
    assert request_counts(families(r.text)) == {("/intents/{id}", "GET", "200"): 3}
    assert "abc" not in r.text and "/intents/def" not in r.text


def test_include_router_prefixes_and_mounted_apps_give_full_templates():
    app = order_app()
    router = APIRouter(prefix="/v1")

    @router.get("/items/{item_id}")
    async def item(item_id: int):
        return {"item": item_id}

    app.include_router(router, prefix="/api")
    app.include_router(router, prefix="/legacy")  # the same route objects under two prefixes
    sub = FastAPI()

    @sub.get("/positions/{symbol}")
    async def position(symbol: str):
        return {}

    app.mount("/accounts/{account}", sub)
    app.mount("/st", Starlette(routes=[
        Route("/x/{y}", lambda request: PlainTextResponse("x")),
        Mount("/deep", routes=[Route("/z/{q}", lambda request: PlainTextResponse("z"))]),
    ]))

    async def raw_asgi(scope, receive, send):
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"raw"})

    app.mount("/raw", raw_asgi)

    async def shared(request):  # one plain Starlette handler behind two paths
        return PlainTextResponse("shared")

    app.add_route("/one/{x}", shared)
    app.add_route("/two/{x}", shared)
    instrument(app)
    paths = ["/api/v1/items/1", "/legacy/v1/items/2", "/accounts/DU1/positions/AAPL", "/accounts/DU2/positions/MSFT",
             "/st/x/1", "/st/deep/z/2", "/raw/any/file.txt", "/two/a", "/one/b", "/accounts/DU1/nothing-here"]
    assert [r.status_code for r in fetch(app, *paths)] == [200] * 9 + [404]
    assert request_counts(scrape(app)) == {
        ("/api/v1/items/{item_id}", "GET", "200"): 1,
        ("/legacy/v1/items/{item_id}", "GET", "200"): 1,
        ("/accounts/{account}/positions/{symbol}", "GET", "200"): 2,
        ("/st/x/{y}", "GET", "200"): 1,
        ("/st/deep/z/{q}", "GET", "200"): 1,
        ("/raw/{path}", "GET", "200"): 1,
        ("/one/{x}", "GET", "200"): 1,
        ("/two/{x}", "GET", "200"): 1,
        (UNMATCHED, "GET", "404"): 1,
    }


def test_unmatched_paths_fold_into_one_value_but_a_route_404_keeps_its_template():
    app = order_app()
    instrument(app)
    scanner = [f"/wp-admin/{n}.php" for n in range(20)] + ["/", "/intents/a/b"]
    assert {r.status_code for r in fetch(app, *scanner)} == {404}
    (missing,) = fetch(app, "/intents/missing")
    assert missing.status_code == 404
    (redirect,) = fetch(app, "/intents/")  # Starlette's slash redirect: no route ran either
    assert redirect.status_code == 307
    assert request_counts(scrape(app)) == {
        (UNMATCHED, "GET", "404"): 22,
        ("/intents/{id}", "GET", "404"): 1,
        (UNMATCHED, "GET", "307"): 1,
    }


def test_status_label_is_the_response_status():
    app = order_app()
    instrument(app)
    body = {"strategy": "momentum", "quantity": 1}
    statuses = [r.status_code for r in fetch(
        app,
        ("POST", "/intents", {"json": body, "headers": {"Idempotency-Key": "k1"}}),
        ("POST", "/intents", {"json": body, "headers": {"Idempotency-Key": "k1"}}),
        ("POST", "/intents", {"json": {"strategy": "x"}, "headers": {"Idempotency-Key": "k2"}}),
        ("DELETE", "/intents/abc", {}),
        ("BREW", "/intents/abc", {}),
    )]
    assert statuses == [201, 409, 422, 405, 405]
    assert request_counts(scrape(app)) == {
        ("/intents", "POST", "201"): 1,
        ("/intents", "POST", "409"): 1,
        ("/intents", "POST", "422"): 1,
        ("/intents/{id}", "DELETE", "405"): 1,
        ("/intents/{id}", "OTHER", "405"): 1,  # client-chosen methods cannot add series
    }


def test_an_exception_in_the_app_counts_as_500_and_is_re_raised():
    app = order_app()
    instrument(app)
    with pytest.raises(RuntimeError, match="handler failed"):
        fetch(app, "/intents/boom", raise_app_exceptions=True)
    (r,) = fetch(app, "/intents/boom")
    assert r.status_code == 500
    # Failing after the response started: the client saw 200 and a cut body; still a 500.
    with pytest.raises(RuntimeError, match="stream failed"):
        fetch(app, "/intents/stream-fails", raise_app_exceptions=True)
    assert request_counts(scrape(app)) == {("/intents/{id}", "GET", "500"): 3}


def test_durations_are_measured():
    app = order_app()
    instrument(app)
    fetch(app, "/intents/slow")
    fam = scrape(app)[DURATION]
    total = next(s.value for s in fam.samples if s.name == DURATION + "_sum")
    assert total >= 0.03
    below = {float(s.labels["le"]): s.value for s in fam.samples if s.name == DURATION + "_bucket"}
    # Never faster than the handler's sleep; on a loaded machine it may be slower, so the one
    # observation is looked for in the bucket its own measured duration belongs to.
    assert below[0.025] == 0
    first_bucket_holding_it = min(le for le in below if le >= total)
    assert below[first_bucket_holding_it] == 1
    assert all(below[le] == 0 for le in below if le < total)


def test_metrics_endpoint_is_not_measured_and_appears_in_no_schema():
    app = order_app()
    instrument(app)
    for _ in range(3):
        scrape(app)
    fams = scrape(app)
    assert request_counts(fams) == {}
    (openapi,) = fetch(app, "/openapi.json")
    assert "/metrics" not in openapi.json()["paths"]


def test_metrics_match_the_contract_types_and_labels():
    app = order_app()
    ins = instrument(app)
    fetch(app, "/intents/1")
    ins.intent_created("momentum")
    ins.intent_duplicate("momentum")
    ins.intent_error("momentum", "validation")
    ins.track_intent_states(lambda: {"pending": 1, "planned": 2, "ready": 3, "sent": 4})
    with ins.processing("planner"):
        pass
    ins.set_worker_lag("planner", 0.0)
    ins.order_sent("momentum")
    ins.fill_recorded("momentum")
    ins.set_position("DU1", "AAPL", -10)
    fams = scrape(app)
    expected = contract.metrics_for_job(contract.API)
    assert {f.name for f in fams.values() if f.samples} >= {
        m.name[: -len("_total")] if m.type == contract.COUNTER else m.name for m in expected
    }
    for m in expected:
        family_name = m.name[: -len("_total")] if m.type == contract.COUNTER else m.name
        fam = fams[family_name]
        assert fam.type == m.type, m.name
        for sample in fam.samples:
            if sample.name.endswith("_created"):
                continue
            assert sample.name in m.series_names, (m.name, sample.name)
            extra = {"le"} if sample.name.endswith("_bucket") else set()
            assert set(sample.labels) == set(m.labels) | extra, (m.name, sample)


def test_intent_counters_count_per_label():
    app = order_app()
    ins = instrument(app)
    for _ in range(3):
        ins.intent_created("momentum")
    ins.intent_created("meanrev")
    ins.intent_duplicate("momentum")
    ins.intent_error("pairs", "validation")
    ins.intent_error("pairs", "circuit_breaker_open")
    ins.intent_error("pairs", "validation")
    fams = scrape(app)

    def values(name):
        return {tuple(sorted(s.labels.items())): s.value for s in fams[name].samples if s.name.endswith("_total")}

    assert values("order_intents_created") == {(("strategy", "momentum"),): 3, (("strategy", "meanrev"),): 1}
    assert values("order_intents_duplicate") == {(("strategy", "momentum"),): 1}
    assert values("order_intents_error") == {
        (("reason", "validation"), ("strategy", "pairs")): 2,
        (("reason", "circuit_breaker_open"), ("strategy", "pairs")): 1,
    }


def test_worker_helpers_count_outcomes_and_time_the_work():
    app = order_app()
    ins = instrument(app)
    for _ in range(2):
        with ins.processing("planner"):
            time.sleep(0.02)
    with pytest.raises(ValueError, match="bad intent"):
        with ins.processing("planner"):
            raise ValueError("bad intent")
    with ins.processing("sender"):
        pass
    ins.set_worker_lag("planner", 12.5)
    ins.set_worker_lag("sender", 0)
    fams = scrape(app)
    processed = {(s.labels["worker"], s.labels["outcome"]): s.value
                 for s in fams["worker_intents_processed"].samples if s.name.endswith("_total")}
    assert processed == {("planner", "ok"): 2, ("planner", "error"): 1, ("sender", "ok"): 1, ("sender", "error"): 0}
    duration = {(s.name, s.labels["worker"]): s.value for s in fams["worker_processing_duration_seconds"].samples
                if not s.name.endswith("_bucket")}
    assert duration[("worker_processing_duration_seconds_count", "planner")] == 3
    assert duration[("worker_processing_duration_seconds_sum", "planner")] >= 0.04
    assert duration[("worker_processing_duration_seconds_count", "sender")] == 1
    lag = {s.labels["worker"]: s.value for s in fams["worker_lag_seconds"].samples}
    assert lag == {"planner": 12.5, "sender": 0}


@pytest.mark.parametrize("bad", [-1, float("nan"), float("inf")])
def test_a_bad_worker_lag_is_a_clear_error(bad):
    ins = instrument(order_app())
    with pytest.raises(ValueError, match=r"worker lag must be .* >= 0.*'planner'"):
        ins.set_worker_lag("planner", bad)


def state_values(fams: dict) -> dict:
    return {state: [s.value for s in fams[f"order_intents_{state}"].samples]
            for state in ("pending", "planned", "ready", "sent")}


def test_state_gauges_read_the_tracked_function_at_scrape_time():
    app = order_app()
    ins = instrument(app)
    assert state_values(scrape(app)) == {"pending": [], "planned": [], "ready": [], "sent": []}

    book = Counter({"pending": 5, "planned": 2})
    calls = []

    def states():
        calls.append(1)
        return book

    ins.track_intent_states(states)
    fetch(app, "/intents/1", "/intents/2")
    assert calls == []  # requests do no work for the gauges
    assert state_values(scrape(app)) == {"pending": [5], "planned": [2], "ready": [0], "sent": [0]}
    assert len(calls) == 1  # one consistent snapshot per scrape
    book.update({"pending": -5, "ready": 4, "sent": 1})
    assert state_values(scrape(app)) == {"pending": [0], "planned": [2], "ready": [4], "sent": [1]}


def test_a_failing_state_function_leaves_the_gauges_empty_but_the_scrape_succeeds(caplog):
    app = order_app()
    ins = instrument(app)

    def broken():
        raise KeyError("book not loaded")

    ins.track_intent_states(broken)
    fams = scrape(app)
    assert state_values(fams) == {"pending": [], "planned": [], "ready": [], "sent": []}
    assert DURATION in fams
    assert "intent state function failed" in caplog.text
    with pytest.raises(TypeError, match="function returning intent counts"):
        ins.track_intent_states({"pending": 1})


def test_two_apps_in_one_process_keep_separate_registries():
    a, b = order_app(), order_app()
    ins_a, ins_b = instrument(a), instrument(b)
    assert ins_a.registry is not ins_b.registry
    fetch(a, "/intents/1", "/intents/2")
    fetch(b, "/nothing")
    ins_a.intent_created("momentum")
    ins_a.track_intent_states(lambda: {"pending": 7})
    ins_b.track_intent_states(lambda: {"pending": 1})
    fams_a, fams_b = scrape(a), scrape(b)
    assert request_counts(fams_a) == {("/intents/{id}", "GET", "200"): 2}
    assert request_counts(fams_b) == {(UNMATCHED, "GET", "404"): 1}
    assert [s.value for s in fams_b["order_intents_created"].samples] == []
    assert state_values(fams_a)["pending"] == [7] and state_values(fams_b)["pending"] == [1]


def test_instrumenting_twice_or_too_late_is_refused():
    app = order_app()
    instrument(app)
    with pytest.raises(RuntimeError, match="already instrumented"):
        instrument(app)
    late = order_app()
    fetch(late, "/intents/1")
    with pytest.raises(RuntimeError, match="before the app serves its first request"):
        instrument(late)
    with pytest.raises(TypeError, match="FastAPI or Starlette application"):
        instrument(lambda scope, receive, send: None)


@pytest.mark.filterwarnings("ignore:The `root_path` parameter is deprecated")
@pytest.mark.parametrize("how", ["app-root-path", "server-root-path"])
def test_metrics_and_templates_work_behind_a_root_path(how):
    if how == "app-root-path":
        app, server_root = order_app(root_path="/trading"), ""
    else:
        app, server_root = order_app(), "/trading"
    instrument(app)
    fetch(app, "/trading/intents/1", root_path=server_root)
    fams = scrape(app, root_path="/trading") if server_root else families(fetch(app, "/trading/metrics")[0].text)
    assert request_counts(fams) == {("/intents/{id}", "GET", "200"): 1}


@pytest.fixture
def served():
    """Serve an app with a real uvicorn on a free port, with a root_path as behind a proxy."""
    servers = []

    def serve(app, root_path: str = "") -> str:
        port = free_port()
        config = uvicorn.Config(app, host="127.0.0.1", port=port, root_path=root_path, log_config=None,
                                access_log=False, lifespan="on")
        server = uvicorn.Server(config)
        thread = threading.Thread(target=server.run, daemon=True)
        thread.start()
        servers.append((server, thread))
        base = f"http://127.0.0.1:{port}"
        wait_http(base + "/metrics", timeout=10)
        return base

    yield serve
    for server, thread in servers:
        server.should_exit = True
        thread.join(timeout=10)


def test_a_real_uvicorn_serves_metrics_with_labels_by_template(served):
    app = order_app()
    ins = instrument(app)
    ins.track_intent_states(lambda: {"pending": 2})
    base = served(app, root_path="/trading")
    with httpx.Client(base_url=base) as client:
        assert client.get("/intents/abc").status_code == 200
        assert client.post("/intents", json={"strategy": "momentum", "quantity": 1},
                           headers={"Idempotency-Key": "k"}).status_code == 201
        assert client.get("/no/such/path").status_code == 404
        r = client.get("/metrics")
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/plain")
    fams = families(r.text)
    assert request_counts(fams) == {
        ("/intents/{id}", "GET", "200"): 1,
        ("/intents", "POST", "201"): 1,
        (UNMATCHED, "GET", "404"): 1,
    }
    assert state_values(fams)["pending"] == [2]


def test_metrics_speak_openmetrics_when_prometheus_asks_for_it():
    app = order_app()
    instrument(app)
    fetch(app, "/intents/1")
    (r,) = fetch(app, ("GET", "/metrics", {"headers": {"Accept": "application/openmetrics-text; version=1.0.0"}}))
    assert r.headers["content-type"].startswith("application/openmetrics-text")
    fams = {f.name: f for f in openmetrics_families(r.text)}
    assert fams[DURATION].type == "histogram"
    assert {s.labels["endpoint"] for s in fams[DURATION].samples} == {"/intents/{id}"}


def test_broker_record_counts_orders_fills_and_positions():
    app = order_app()
    ins = instrument(app)
    for _ in range(3):
        ins.order_sent("momentum")
    ins.fill_recorded("momentum")
    ins.set_position("DU1", "AAPL", 100)
    ins.set_position("DU1", "MSFT", 0)
    ins.set_position("DU1", "SPY", 5)
    ins.set_position("DU1", "SPY", float("nan"))  # not known: absent, not 0
    ins.set_position("DU1", "QQQ", None)  # never set: nothing to remove, no error
    fams = scrape(app)
    values = {(s.name, tuple(sorted(s.labels.items()))): s.value for f in fams.values() for s in f.samples}
    assert values[("trading_orders_sent_total", (("strategy", "momentum"),))] == 3
    assert values[("trading_fills_recorded_total", (("strategy", "momentum"),))] == 1
    positions = {k[1]: v for k, v in values.items() if k[0] == "trading_position_quantity"}
    assert positions == {(("account", "DU1"), ("symbol", "AAPL")): 100, (("account", "DU1"), ("symbol", "MSFT")): 0}
