"""The synthetic checks against the real simulator (and, for the alert path, real Prometheus
and Alertmanager with the project's configs): passing when healthy, failing, with
synthetic_check_success 0, when the breaker hook, the pipeline or a service is broken."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import pytest
import requests
import yaml

from trademon.stack import native, tools
from trademon.settings.env import ConfigError
from trademon.metrics import JobMetrics
from trademon.synthetic import checks as checks_mod
from trademon.synthetic import config as syn_config
from trademon.synthetic.runner import CheckRunner

from tests.support.amstack import AlertingStack
from tests.support.e2estack import render_thresholds
from tests.support.procs import ClosedPort, HangingServer, free_port, serve, start, wait_for, wait_http
from tests.support.sim import SimProcess

ROOT = Path(__file__).resolve().parents[1]
FAST = {f"TRADEMON_SYNTHETIC_{c.upper()}_{k}": v for c in syn_config.CHECKS for k, v in (("INTERVAL", "5"), ("TIMEOUT", "5"))}


def sim_env(sim: SimProcess, **extra: str) -> dict[str, str]:
    """Settings for checks against the simulator only (no Prometheus, no Alertmanager)."""
    env = {
        **FAST,
        "TRADEMON_SYNTHETIC_API_URL": sim.url("automatictrader-api"),
        "TRADEMON_SYNTHETIC_POSITION_MANAGER_URL": sim.url("position-manager"),
        "TRADEMON_SYNTHETIC_PROMETHEUS_URL": "off",
        "TRADEMON_SYNTHETIC_ALERTMANAGER_URL": "off",
        "TRADEMON_SYNTHETIC_HEALTH_TARGETS": ",".join(f"{j}={sim.url(j)}/healthz" for j in
                                                      ("automatictrader-api", "marketdata-stream", "position-manager", "ib-exporter")),
        "TRADEMON_SYNTHETIC_POLL_INTERVAL": "0.05",
    }
    env.update(extra)
    return env


def run_once(env: dict[str, str]) -> tuple[dict, JobMetrics]:
    settings = syn_config.load(env)
    metrics = JobMetrics("synthetic")

    async def go():
        async with httpx.AsyncClient(timeout=10) as client:
            checks, _ = checks_mod.build(client, settings)
            return await CheckRunner(checks, settings, metrics).run_all_once()

    return {r.check: r for r in asyncio.run(go())}, metrics


def success(metrics: JobMetrics, check: str) -> float | None:
    return metrics.registry.get_sample_value("synthetic_check_success", {"check": check})


def breaker_open(sim: SimProcess, breaker: str = "synthetic") -> bool:
    return requests.get(f"{sim.url('automatictrader-api')}/test/circuit-breaker/{breaker}", timeout=5).json()["open"]


@pytest.fixture(scope="module")
def sim(tmp_path_factory):
    s = SimProcess.start(tmp_path_factory.mktemp("sim"), speed=30)
    yield s
    s.close()


@pytest.fixture
def scenario(sim):
    active = []

    def on(name):
        sim.on(name)
        active.append(name)

    yield on
    for name in active:
        sim.off(name)


# --- configuration -----------------------------------------------------------------------

def test_defaults_come_from_the_contract():
    s = syn_config.load({})
    assert s.checks == syn_config.CHECKS
    assert s.api_url == "http://127.0.0.1:8080" and s.alertmanager_url == "http://127.0.0.1:9093"
    assert s.health_targets["prometheus"] == "http://127.0.0.1:9090/-/healthy"
    assert s.health_targets["ib-exporter"] == "http://127.0.0.1:9110/healthz"
    assert s.port == 9111
    assert s.alert_step
    moved = syn_config.load({"TRADEMON_POSITION_MANAGER_PORT": "18082"})
    assert moved.health_targets["position-manager"] == "http://127.0.0.1:18082/healthz"


@pytest.mark.parametrize("env, fragment", [
    ({"TRADEMON_SYNTHETIC_API_URL": "automatictrader-api:8080"}, "TRADEMON_SYNTHETIC_API_URL='automatictrader-api:8080': not an http(s) URL"),
    ({"TRADEMON_SYNTHETIC_PIPELINE_TIMEOUT": "90"}, "TRADEMON_SYNTHETIC_PIPELINE_TIMEOUT='90': longer than the check's interval"),
    ({"TRADEMON_SYNTHETIC_HEALTH_INTERVAL": "soon"}, "TRADEMON_SYNTHETIC_HEALTH_INTERVAL='soon': not a number"),
    ({"TRADEMON_SYNTHETIC_WATCHDOG_TIMEOUT": "0"}, "TRADEMON_SYNTHETIC_WATCHDOG_TIMEOUT='0': out of range"),
    ({"TRADEMON_SYNTHETIC_CHECKS": "pipeline,latency"}, "unknown value(s) latency; allowed: circuit_breaker, pipeline, health, watchdog"),
    ({"TRADEMON_SYNTHETIC_BREAKER": "daily_loss"}, "does not start with 'synthetic'"),
    ({"TRADEMON_SYNTHETIC_PIPELINE_STRATEGY": "synthetic"}, "the same as TRADEMON_SYNTHETIC_BREAKER"),
    ({"TRADEMON_SYNTHETIC_HEALTH_TARGETS": "prometheus"}, "not a name=URL pair"),
    ({"TRADEMON_SYNTHETIC_HEALTH_TARGETS": "a=http://x/h,a=http://y/h"}, "the name 'a' appears twice"),
    ({"TRADEMON_SYNTHETIC_PROMETHEUS_URL": "off", "TRADEMON_SYNTHETIC_POSITION_MANAGER_URL": "off"}, "needs circuit_breaker_open"),
])
def test_bad_settings_name_the_variable_and_the_fix(env, fragment):
    with pytest.raises(ConfigError) as e:
        syn_config.load(env)
    assert fragment in str(e.value)


def test_passwords_in_urls_never_reach_the_logs():
    from trademon.runtime.logs import redact

    syn_config.load({"TRADEMON_SYNTHETIC_PROMETHEUS_URL": "http://monitor:pr0m-s3cret@prometheus:9090",
                     "TRADEMON_SYNTHETIC_HEALTH_TARGETS": "api=https://u:h3alth-s3cret@api.example/healthz"})
    assert redact("GET http://monitor:pr0m-s3cret@prometheus:9090 and h3alth-s3cret") == "GET http://monitor:***@prometheus:9090 and ***"


def test_without_alertmanager_the_alert_step_and_watchdog_are_left_out_and_said_so():
    s = syn_config.load({"TRADEMON_SYNTHETIC_ALERTMANAGER_URL": "off"})
    assert not s.alert_step
    checks, notes = checks_mod.build(None, s)
    assert "watchdog" not in [c.name for c in checks]
    assert any("CircuitBreakerTripped" in n for n in notes) and any(n.startswith("watchdog") for n in notes)


def test_the_alerts_the_checks_look_for_are_rules_of_the_project():
    names = set()
    for path in (ROOT / "monitoring" / "rules").glob("*.yml"):
        for group in (yaml.safe_load(path.read_text()) or {}).get("groups", []):
            names |= {r["alert"] for r in group.get("rules", []) if "alert" in r}
    assert {syn_config.CIRCUIT_BREAKER_ALERT, syn_config.WATCHDOG_ALERT} <= names


# --- against the simulator ---------------------------------------------------------------

def test_all_checks_pass_when_the_simulator_is_healthy(sim):
    results, metrics = run_once(sim_env(sim))
    assert set(results) == {"circuit_breaker", "pipeline", "health:automatictrader-api", "health:marketdata-stream",
                            "health:position-manager", "health:ib-exporter"}
    for name, r in results.items():
        assert r.success, f"{name}: {r.detail}"
        assert success(metrics, name) == 1
        assert metrics.registry.get_sample_value("synthetic_check_last_run_timestamp_seconds", {"check": name}) > 0
    assert "pending -> planned -> ready -> sent" in results["pipeline"].detail
    assert not breaker_open(sim), "the check must leave the breaker reset"


def test_pipeline_fails_on_a_timeout_when_workers_stall(sim, scenario):
    scenario("intent-backlog")
    results, metrics = run_once(sim_env(sim, TRADEMON_SYNTHETIC_CHECKS="pipeline,circuit_breaker",
                                        TRADEMON_SYNTHETIC_PIPELINE_TIMEOUT="2"))
    r = results["pipeline"]
    assert not r.success and "timed out after 2s" in r.detail and "now pending" in r.detail, r.detail
    assert success(metrics, "pipeline") == 0
    # The other check is not held up by the stalled one and still passes.
    assert results["circuit_breaker"].success, results["circuit_breaker"].detail
    assert success(metrics, "circuit_breaker") == 1


def test_everything_touching_the_api_fails_when_it_is_down(sim, scenario):
    scenario("api-down")
    results, metrics = run_once(sim_env(sim))
    for name in ("circuit_breaker", "pipeline", "health:automatictrader-api"):
        assert not results[name].success, name
        assert "503" in results[name].detail, results[name].detail
        assert success(metrics, name) == 0
    assert results["health:position-manager"].success
    assert success(metrics, "health:position-manager") == 1


def test_breaker_check_fails_when_the_gauge_never_shows_the_trip_and_still_resets(sim):
    # marketdata-stream's /metrics has no circuit_breaker_open: the trip is never seen there.
    env = sim_env(sim, TRADEMON_SYNTHETIC_CHECKS="circuit_breaker", TRADEMON_SYNTHETIC_CIRCUIT_BREAKER_TIMEOUT="1.5",
                  TRADEMON_SYNTHETIC_POSITION_MANAGER_URL=sim.url("marketdata-stream"))
    results, metrics = run_once(env)
    r = results["circuit_breaker"]
    assert not r.success and 'waiting for circuit_breaker_open{breaker="synthetic"} == 1' in r.detail, r.detail
    assert success(metrics, "circuit_breaker") == 0
    assert not breaker_open(sim), "cleanup must reset the breaker after a failed run"


def test_breaker_check_fails_when_the_trip_does_not_take(sim):
    """A hook that answers 2xx but trips nothing (here: it trips another breaker)."""
    settings = syn_config.load(sim_env(sim, TRADEMON_SYNTHETIC_CHECKS="circuit_breaker"))
    metrics = JobMetrics("synthetic")

    async def go():
        async with httpx.AsyncClient(timeout=5) as client:
            (check,), _ = checks_mod.build(client, settings)
            real_trip = check.api.trip
            check.api.trip = lambda breaker: real_trip("synthetic-elsewhere")
            try:
                return await CheckRunner([check], settings, metrics).run_once(check)
            finally:
                await check.api.reset("synthetic-elsewhere")

    r = asyncio.run(go())
    assert not r.success and "says closed right after the trip" in r.detail, r.detail
    assert success(metrics, "circuit_breaker") == 0


def test_a_hanging_target_holds_only_its_own_check(sim):
    hang = HangingServer()
    env = sim_env(sim, TRADEMON_SYNTHETIC_CHECKS="health,pipeline",
                  TRADEMON_SYNTHETIC_HEALTH_TARGETS=f"stuck=http://127.0.0.1:{hang.port}/healthz",
                  TRADEMON_SYNTHETIC_HEALTH_INTERVAL="60", TRADEMON_SYNTHETIC_HEALTH_TIMEOUT="60",
                  TRADEMON_SYNTHETIC_PIPELINE_INTERVAL="0.2", TRADEMON_SYNTHETIC_PIPELINE_TIMEOUT="0.2")
    settings = syn_config.load(env)
    runs: list[str] = []

    async def go():
        async with httpx.AsyncClient(timeout=120) as client:
            checks, _ = checks_mod.build(client, settings)
            runner = CheckRunner(checks, settings, JobMetrics("synthetic"))
            real_record = runner.record
            runner.record = lambda r, t: (runs.append(r.check), real_record(r, t))
            task = asyncio.create_task(runner.run_forever())
            try:
                async with asyncio.timeout(30):
                    while runs.count("pipeline") < 3:
                        await asyncio.sleep(0.05)
            finally:
                task.cancel()
                await asyncio.gather(task, return_exceptions=True)

    try:
        asyncio.run(go())
    finally:
        hang.close()
    # Three pipeline runs recorded while the stuck target's first run is still waiting.
    assert runs.count("pipeline") >= 3 and "health:stuck" not in runs, runs


class LateServer:
    """A health endpoint that starts listening only when told: a service still starting."""

    def __init__(self, port: int):
        self.port, self.server = port, None

    def up(self):
        from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

        class H(BaseHTTPRequestHandler):
            def do_GET(self):
                self.send_response(200)
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, *a):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", self.port), H)
        serve(self.server)

    def down(self):
        if self.server:
            self.server.shutdown()
            self.server.server_close()
            self.server = None


def run_service_for(env: dict, steps) -> list:
    """Runs the checks as the service does (run_forever) while ``steps`` (an async function of
    the metrics) runs; returns what it returns."""
    settings = syn_config.load(env)
    metrics = JobMetrics("synthetic")

    async def go():
        async with httpx.AsyncClient(timeout=5) as client:
            checks, _ = checks_mod.build(client, settings)
            task = asyncio.create_task(CheckRunner(checks, settings, metrics).run_forever())
            try:
                return await steps(metrics)
            finally:
                task.cancel()
                await asyncio.gather(task, return_exceptions=True)

    return asyncio.run(go())


async def until(predicate, timeout: float, what: str):
    async with asyncio.timeout(timeout):
        while not predicate():
            await asyncio.sleep(0.05)
    return what


def test_cold_start_a_target_not_up_yet_is_not_run_then_checked_once_it_is(sim):
    """Issue 10.5: at a cold start the services start beside the checks. A check whose target
    does not accept connections yet records nothing (no synthetic_check_success 0 for
    SyntheticCheckFailed to fire on) and is tried again within seconds, not after its interval;
    once it has reached its target, a refused connection is a failure."""
    late = LateServer(free_port())
    env = sim_env(sim, TRADEMON_SYNTHETIC_CHECKS="health", TRADEMON_SYNTHETIC_HEALTH_TARGETS=f"late=http://127.0.0.1:{late.port}/",
                  TRADEMON_SYNTHETIC_HEALTH_INTERVAL="1", TRADEMON_SYNTHETIC_HEALTH_TIMEOUT="1")

    async def steps(metrics):
        await asyncio.sleep(2.5)  # refused connections all along
        before = success(metrics, "health:late")
        late.up()
        await until(lambda: success(metrics, "health:late") == 1, 5, "passes once up")
        late.down()
        await until(lambda: success(metrics, "health:late") == 0, 5, "fails once down again")
        return before

    try:
        assert run_service_for(env, steps) is None
    finally:
        late.down()


def test_cold_start_a_prometheus_still_starting_is_not_a_failed_run(sim):
    """Prometheus listens before it is ready and answers 503 meanwhile: under load, the
    synthetic's first circuit-breaker run met that 503 and counted a failure, so its next run
    (and the alert the HA test waits for) came an interval, five minutes, later."""
    class Starting503(BaseHTTPRequestHandler):
        def do_GET(self):
            self.send_response(503)
            self.end_headers()
            self.wfile.write(b"Service Unavailable")

        def log_message(self, *a):
            pass

    prom = ThreadingHTTPServer(("127.0.0.1", 0), Starting503)
    serve(prom)
    env = sim_env(sim, TRADEMON_SYNTHETIC_CHECKS="circuit_breaker",
                  TRADEMON_SYNTHETIC_PROMETHEUS_URL=f"http://127.0.0.1:{prom.server_address[1]}")

    async def steps(metrics):
        await asyncio.sleep(1.5)  # one run, within the start-up grace
        return success(metrics, "circuit_breaker")

    try:
        assert run_service_for(env, steps) is None  # not run, not failed: nothing recorded
    finally:
        prom.shutdown()
        prom.server_close()
    assert not breaker_open(sim), "the run's cleanup resets the breaker"


def test_cold_start_a_target_never_up_fails_after_the_grace(sim):
    with ClosedPort() as closed:
        env = sim_env(sim, TRADEMON_SYNTHETIC_CHECKS="health", TRADEMON_SYNTHETIC_HEALTH_TARGETS=f"never=http://127.0.0.1:{closed.port}/",
                      TRADEMON_SYNTHETIC_HEALTH_INTERVAL="0.5", TRADEMON_SYNTHETIC_HEALTH_TIMEOUT="0.5",
                      TRADEMON_SYNTHETIC_STARTUP_GRACE="1")

        async def steps(metrics):
            await until(lambda: success(metrics, "health:never") == 0, 5, "a failure after the grace")

        run_service_for(env, steps)


def test_once_mode_counts_a_refused_connection_as_a_failure():
    """`--once` (synthetic-tests.yml) runs against a stack that should be up: no grace."""
    with ClosedPort() as closed:
        env = {"TRADEMON_SYNTHETIC_CHECKS": "health", "TRADEMON_SYNTHETIC_HEALTH_TARGETS": f"down=http://127.0.0.1:{closed.port}/",
               "TRADEMON_SYNTHETIC_PROMETHEUS_URL": "off", "TRADEMON_SYNTHETIC_ALERTMANAGER_URL": "off"}
        results, metrics = run_once(env)
    assert not results["health:down"].success and "ConnectError" in results["health:down"].detail
    assert success(metrics, "health:down") == 0


def test_once_cli_exit_status_and_summary(sim, scenario):
    env = sim_env(sim, TRADEMON_SYNTHETIC_CHECKS="pipeline,health")
    ok = subprocess.run([sys.executable, "-m", "trademon", "synthetic", "--once"], env={**_base_env(), **env},
                        capture_output=True, text=True, timeout=60)
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert ok.stdout.strip().splitlines()[-1] == "5 passed, 0 failed"
    scenario("api-down")
    bad = subprocess.run([sys.executable, "-m", "trademon", "synthetic", "--once"], env={**_base_env(), **env},
                         capture_output=True, text=True, timeout=60)
    assert bad.returncode == 1, bad.stdout + bad.stderr
    assert bad.stdout.strip().splitlines()[-1] == "3 passed, 2 failed: pipeline, health:automatictrader-api"
    bad_cfg = subprocess.run([sys.executable, "-m", "trademon", "synthetic", "--once"],
                             env={**_base_env(), "TRADEMON_SYNTHETIC_HEALTH_TIMEOUT": "x"}, capture_output=True, text=True, timeout=60)
    assert bad_cfg.returncode == 2 and "TRADEMON_SYNTHETIC_HEALTH_TIMEOUT='x': not a number" in bad_cfg.stderr


def _base_env() -> dict[str, str]:
    import os

    return {k: v for k, v in os.environ.items() if not k.startswith("TRADEMON_")}


def test_service_serves_the_metrics_continuously(sim, tmp_path):
    port = free_port()
    env = sim_env(sim, TRADEMON_SYNTHETIC_CHECKS="pipeline,health", TRADEMON_SYNTHETIC_HOST="127.0.0.1",
                  TRADEMON_SYNTHETIC_PORT=str(port), TRADEMON_SYNTHETIC_PIPELINE_INTERVAL="0.5",
                  TRADEMON_SYNTHETIC_PIPELINE_TIMEOUT="0.5", TRADEMON_SYNTHETIC_HEALTH_INTERVAL="0.5",
                  TRADEMON_SYNTHETIC_HEALTH_TIMEOUT="0.5")
    proc = start("synthetic", [sys.executable, "-m", "trademon", "synthetic"], env, tmp_path / "synthetic.log")
    try:
        wait_http(f"http://127.0.0.1:{port}/readyz", 20, proc)
        from prometheus_client.parser import text_string_to_metric_families

        def stamps():
            text = requests.get(f"http://127.0.0.1:{port}/metrics", timeout=5).text
            fams = {f.name: f for f in text_string_to_metric_families(text)}
            return {s.labels["check"]: s.value for s in fams["synthetic_check_last_run_timestamp_seconds"].samples}, \
                   {s.labels["check"]: s.value for s in fams["synthetic_check_success"].samples}

        first, ok = stamps()
        assert ok == {c: 1.0 for c in ok} and "pipeline" in ok and "health:automatictrader-api" in ok, ok
        wait_for(lambda: stamps()[0]["pipeline"] > first["pipeline"], 10, what="a second pipeline run")
        assert '"check": "pipeline"' in proc.log_text() and '"service": "synthetic"' in proc.log_text()
    finally:
        proc.close()


# --- the whole alert path: simulator -> Prometheus -> Alertmanager --------------------------

@pytest.fixture(scope="module")
def alert_path(sim, tmp_path_factory):
    work = tmp_path_factory.mktemp("alert-path")
    stack = AlertingStack(work)
    prom_port = free_port()
    try:
        targets = {job: f"127.0.0.1:{sim.ports[job]}" for job in ("automatictrader-api", "marketdata-stream", "position-manager", "ib-exporter")}
        cfg = native.render_prometheus_config(ROOT, targets, f"127.0.0.1:{stack.am_port}", scrape_interval="1s", evaluation_interval="1s",
                                              thresholds_dir=render_thresholds(work / "thresholds"))
        (work / "prometheus.yml").write_text(yaml.safe_dump(cfg, sort_keys=False))
        # Alerts fired before Prometheus has discovered Alertmanager (a few seconds) are resent
        # only after --rules.alert.resend-delay (1m): shortened like the intervals.
        cmd = native.prometheus_cmd(work / "prometheus.yml", work / "prom-data", prom_port) + ["--rules.alert.resend-delay=1s"]
        prom = start("prometheus", cmd, None, work / "prometheus.log")
        stack.procs.append(prom)
        wait_http(f"http://127.0.0.1:{prom_port}/-/ready", 30, prom)
    except BaseException:
        stack.close()
        raise
    yield f"http://127.0.0.1:{prom_port}", stack
    stack.close()


def test_breaker_trip_reaches_prometheus_and_alertmanager_and_watchdog_is_there(sim, alert_path):
    tools.find("prometheus")  # a missing binary fails here with the install hint
    prom_url, stack = alert_path
    env = sim_env(sim, TRADEMON_SYNTHETIC_CHECKS="circuit_breaker,watchdog",
                  TRADEMON_SYNTHETIC_PROMETHEUS_URL=prom_url, TRADEMON_SYNTHETIC_ALERTMANAGER_URL=stack.am_url,
                  TRADEMON_SYNTHETIC_CIRCUIT_BREAKER_INTERVAL="30", TRADEMON_SYNTHETIC_CIRCUIT_BREAKER_TIMEOUT="30",
                  TRADEMON_SYNTHETIC_WATCHDOG_INTERVAL="30", TRADEMON_SYNTHETIC_WATCHDOG_TIMEOUT="30")
    results, metrics = run_once(env)
    cb = results["circuit_breaker"]
    assert cb.success, cb.detail
    assert "circuit_breaker_open 1 in Prometheus" in cb.detail and "CircuitBreakerTripped in Alertmanager" in cb.detail
    assert results["watchdog"].success, results["watchdog"].detail
    assert success(metrics, "circuit_breaker") == 1 and success(metrics, "watchdog") == 1
    assert not breaker_open(sim)


def test_alert_step_fails_when_the_alert_never_reaches_alertmanager(sim, alert_path):
    """Prometheus sees the trip, but this Alertmanager gets no alerts from it."""
    prom_url, _ = alert_path
    lonely = AlertingStack(Path(alert_path[1].dir) / "lonely")
    try:
        env = sim_env(sim, TRADEMON_SYNTHETIC_CHECKS="circuit_breaker,watchdog",
                      TRADEMON_SYNTHETIC_PROMETHEUS_URL=prom_url, TRADEMON_SYNTHETIC_ALERTMANAGER_URL=lonely.am_url,
                      # the Alertmanager step always runs out: the time before it (trip, 423,
                      # Prometheus's next scrape) must fit with room on a loaded machine
                      TRADEMON_SYNTHETIC_CIRCUIT_BREAKER_TIMEOUT="8", TRADEMON_SYNTHETIC_CIRCUIT_BREAKER_INTERVAL="8",
                      TRADEMON_SYNTHETIC_WATCHDOG_TIMEOUT="2")
        results, metrics = run_once(env)
    finally:
        lonely.close()
    assert not results["circuit_breaker"].success
    assert "waiting for CircuitBreakerTripped" in results["circuit_breaker"].detail, results["circuit_breaker"].detail
    assert not results["watchdog"].success
    assert "timed out after 2s while waiting for Watchdog in Alertmanager" in results["watchdog"].detail, results["watchdog"].detail
    assert success(metrics, "circuit_breaker") == 0 and success(metrics, "watchdog") == 0
    assert not breaker_open(sim)
