"""Every long-lived loop is supervised (service.Runner): a loop that dies is logged with its
exception, /readyz turns 503 naming it, and the process exits 1 for its supervisor (compose's
restart policy, `trademon native`) to start it again. A one-off task (the bot's chart warm-up)
may end; its failure is logged, not fatal.

The Runner in process first; then each long-lived loop of every service, in the real process,
made to raise (tests/support/dying.py) after the service has started."""

from __future__ import annotations

import asyncio
import json
import logging
import sys
from pathlib import Path

import pytest
import requests

from trademon.runtime import service
from trademon.settings import webconfig
from trademon.settings.env import port_variable
from trademon.sim.settings import SIM_JOBS

from tests.support.dying import INJECTED
from tests.support.procs import ClosedPort, free_port, start, wait_for, wait_http

ROOT = Path(__file__).resolve().parents[1]
DYING = ROOT / "tests" / "support" / "dying.py"


# ---- the Runner in process ---------------------------------------------------------------

def _runner(tasks, grace: float = 30.0) -> service.Runner:
    app = service.basics_app(service.CollectorRegistry(), service.Probes({"own check": lambda: True}))
    runner = service.Runner([service.Listener("t", app, "127.0.0.1", free_port())], tasks, web=webconfig.WebConfig())
    runner.exit_grace = grace
    return runner


async def _readyz(runner: service.Runner) -> tuple[int, str]:
    port = runner.listeners[0].port
    r = await asyncio.to_thread(requests.get, f"http://127.0.0.1:{port}/readyz", timeout=5)
    return r.status_code, r.text


async def _until_started(runner: service.Runner) -> None:
    async with asyncio.timeout(10):
        while not runner._servers or not all(s.started for s in runner._servers.values()):
            await asyncio.sleep(0.02)


@pytest.mark.parametrize("how", ["raised", "returned"])
def test_a_loop_that_ends_is_logged_turns_readiness_false_and_ends_the_process(how, caplog):
    go = asyncio.Event()

    async def outbox():
        await go.wait()
        if how == "raised":
            raise OSError("database or disk is full")

    async def other():
        await asyncio.Event().wait()

    runner = _runner([outbox, other])
    seen = {}

    async def main():
        serving = asyncio.create_task(runner.serve())
        await _until_started(runner)
        seen["before"] = await _readyz(runner)
        go.set()
        async with asyncio.timeout(10):
            while runner.died is None:
                await asyncio.sleep(0.01)
        seen["after"] = await _readyz(runner)
        runner.exit_grace = 0  # the grace already showed; let it go now
        runner.stop()
        with pytest.raises(service.TaskDied) as e:
            async with asyncio.timeout(10):
                await serving
        seen["died"] = e.value.name

    with caplog.at_level(logging.ERROR, logger="trademon.service"):
        asyncio.run(main())
    assert seen["before"] == (200, "ready\n")
    assert seen["after"] == (503, "not ready: background task outbox died\n")
    assert seen["died"] == "outbox"
    [record] = [r for r in caplog.records if r.getMessage().startswith("background task died")]
    assert record.task == "outbox" and record.ended == how
    assert (record.exc_info is not None and "disk is full" in str(record.exc_info[1])) == (how == "raised")


def test_the_process_exits_by_itself_after_the_grace():
    async def dies():
        raise RuntimeError("boom")

    runner = _runner([dies], grace=0.2)

    async def main():
        async with asyncio.timeout(10):
            await runner.serve()

    with pytest.raises(service.TaskDied):
        asyncio.run(main())


def test_a_one_off_task_may_end_and_its_failure_is_only_logged(caplog):
    async def warm_up():
        raise ImportError("no matplotlib")

    async def done_early():
        return None

    runner = _runner([service.Task(warm_up, once=True), service.Task(done_early, "quick", once=True)])
    seen = {}

    async def main():
        serving = asyncio.create_task(runner.serve())
        await _until_started(runner)
        await asyncio.sleep(0.2)
        seen["ready"] = await _readyz(runner)
        runner.stop()
        async with asyncio.timeout(10):
            await serving  # no TaskDied

    with caplog.at_level(logging.ERROR, logger="trademon.service"):
        asyncio.run(main())
    assert seen["ready"] == (200, "ready\n") and runner.died is None
    [record] = [r for r in caplog.records if r.getMessage().startswith("one-off")]
    assert record.task == "warm_up" and "matplotlib" in str(record.exc_info[1])


def test_a_shutdown_is_no_death(caplog):
    async def loop():
        await asyncio.Event().wait()

    runner = _runner([loop])

    async def main():
        serving = asyncio.create_task(runner.serve())
        await _until_started(runner)
        runner.stop()
        async with asyncio.timeout(10):
            await serving

    with caplog.at_level(logging.ERROR, logger="trademon.service"):
        asyncio.run(main())
    assert runner.died is None and not [r for r in caplog.records if r.levelno >= logging.ERROR]


# ---- each long-lived loop of every service, in the real process --------------------------

def _bot(tmp, port, closed):
    return ["bot"], {"TELEGRAM_BOT_TOKEN": "123456:AAbotTOKENforTESTS_x", "TELEGRAM_CHAT_ID": "-100777",
                     "TELEGRAM_API_URL": f"http://127.0.0.1:{closed}", "TRADEMON_BOT_PORT": str(port),
                     "TRADEMON_BOT_STATE_DIR": str(tmp / "bot"), "TRADEMON_BOT_PROMETHEUS_URL": f"http://127.0.0.1:{closed}",
                     "TRADEMON_BOT_ALERTMANAGER_URL": f"http://127.0.0.1:{closed}"}


def _synthetic(tmp, port, closed):
    return ["synthetic"], {port_variable("synthetic"): str(port), "TRADEMON_SYNTHETIC_CHECKS": "health",
                           "TRADEMON_SYNTHETIC_HEALTH_TARGETS": f"x=http://127.0.0.1:{closed}/healthz"}


def _am_config(tmp, port, closed):
    return (["am-config", "--watch", "--source", str(ROOT / "alertmanager"), "--out", str(tmp / "am")],
            {port_variable("alertmanager-config"): str(port)})


def _sim(tmp, port, closed):
    ports = {job: free_port() for job in SIM_JOBS}
    return ["sim"], {**{port_variable(job): str(p) for job, p in ports.items()}, "TRADEMON_SIM_CONTROL_PORT": str(port)}


def _ib(tmp, port, closed):
    return ["ib-exporter"], {"TRADEMON_IB_HOST": "127.0.0.1", "TRADEMON_IB_PORT": str(closed),
                             "TRADEMON_IB_EXPORTER_PORT": str(port)}


LOOPS = [  # (service, its loop, the task name the Runner reports)
    (_bot, "trademon.bot.webhook:Delivery.run_outbox", "outbox"),
    (_bot, "trademon.bot.poller:Poller.run", "poll"),
    (_bot, "trademon.bot.summary:Summary.run", "summary"),
    (_synthetic, "trademon.synthetic.runner:CheckRunner.loop", "checks"),
    (_am_config, "trademon.alertmanager.amwatch:Watcher.loop", "refresh"),
    (_sim, "trademon.sim.simulator:Simulator._tick", "tick"),
    (_sim, "trademon.sim.loadgen:LoadGenerator.run", "loadgen"),
    (_sim, "trademon.sim.workers:Worker.run", "worker "),
    (_ib, "trademon.ib.connection:Connection.run", "ib connection"),
]


@pytest.mark.e2e
@pytest.mark.parametrize("make, target, task", LOOPS, ids=[t for _, t, _ in LOOPS])
def test_each_loop_that_dies_ends_its_process_not_ready(tmp_path, make, target, task):
    port = free_port()
    trigger = tmp_path / "die-now"
    with ClosedPort() as closed:
        args, env = make(tmp_path, port, closed.port)
        env |= {"TRADEMON_EXIT_GRACE_SECONDS": "5", "TRADEMON_LOG_LEVEL": "info"}
        proc = start(target, [sys.executable, str(DYING), target, str(trigger), "--", *args], env, tmp_path / "service.log")
        try:
            url = f"http://127.0.0.1:{port}"
            wait_http(url + "/healthz", 30, proc)
            assert "died" not in requests.get(url + "/readyz", timeout=5).text
            trigger.touch()
            text = wait_for(lambda: (r := requests.get(url + "/readyz", timeout=5)).status_code == 503 and "died" in r.text and r.text,
                            10, 0.05, what="/readyz naming the dead task")
            assert text.startswith(f"not ready: background task {task}"), text
            assert proc.popen.wait(20) == 1, proc.tail()
        finally:
            proc.close()
    lines = [json.loads(line) for line in proc.log_text().splitlines() if line.startswith("{")]
    [died] = [line for line in lines if line.get("message", "").startswith("background task died")][:1]
    assert died["level"] == "error" and died["task"].startswith(task), died
    assert INJECTED in json.dumps(died), f"the exception is not in the log line: {died}"
