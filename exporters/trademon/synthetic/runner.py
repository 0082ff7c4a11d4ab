"""Runs each check on its own interval with its own timeout, concurrently, and records
the outcome in the synthetic_check_* gauges and a JSON log line.

Cold start (issue 10.5): the services a check talks to start beside it and may not listen
yet. Until a check has once run through, and for at most the start-up grace, a run that
cannot connect, or gets Prometheus' 503 of a start (or, for the watchdog, does not find the
Watchdog Prometheus has not sent yet: ``Check.not_ready_errors``) is *not run*, not failed: nothing is recorded (the gauges
stay absent, never a false 0), and it is tried again within seconds rather than after its
interval. After that, the same error is a failure like any other."""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass

import httpx

from trademon.metrics import JobMetrics
from trademon.synthetic.api import Starting, Unexpected
from trademon.synthetic.checks import Check, CheckFailed, timing_key
from trademon.synthetic.config import Settings

log = logging.getLogger("trademon.synthetic")
CLEANUP_TIMEOUT = 10.0  # seconds a cleanup (e.g. the breaker reset) may take after a run
NOT_READY_RETRY = 5.0  # seconds before a not-yet-reachable check is tried again (at most its interval)


@dataclass
class Result:
    check: str
    success: bool
    duration: float
    detail: str


class NotReady(Exception):
    """During the start-up grace, the check met one of its not_ready_errors before its first run through."""


class CheckRunner:
    def __init__(self, checks: list[Check], settings: Settings, metrics: JobMetrics):
        self.checks, self.settings, self.metrics = checks, settings, metrics
        self.last: dict[str, Result] = {}
        self.reached: set[str] = set()  # checks that have once run through (passed or failed for a reason of their own)
        self.grace_until: float | None = None  # monotonic end of the start-up grace (service mode only)

    def _not_ready(self, check: Check, error: BaseException) -> bool:
        return (isinstance(error, check.not_ready_errors) and check.name not in self.reached
                and self.grace_until is not None and time.monotonic() < self.grace_until)

    def timing(self, check: Check):
        return self.settings.timing[timing_key(check)]

    async def run_once(self, check: Check) -> Result:
        timeout = self.timing(check).timeout
        check.step = "starting"
        start_wall, start = time.time(), time.monotonic()
        not_ready = False
        try:
            async with asyncio.timeout(timeout):
                detail = await check.run()
            success = True
        except TimeoutError as e:
            not_ready = self._not_ready(check, e)
            success, detail = False, f"timed out after {timeout:g}s while {check.step}"
        except asyncio.CancelledError:
            raise
        except httpx.ConnectError as e:
            not_ready = self._not_ready(check, e)
            success, detail = False, f"{type(e).__name__} while {check.step}: {e}"
        except Starting as e:  # Prometheus listening but not ready yet
            not_ready = self._not_ready(check, e)
            success, detail = False, str(e)
        except (CheckFailed, Unexpected) as e:  # they say what went wrong themselves
            success, detail = False, str(e)
        except Exception as e:  # noqa: BLE001 - any error is this check's failure, never the runner's
            success, detail = False, f"{type(e).__name__} while {check.step}: {e}"
        finally:
            await self._cleanup(check)  # also after a timeout or a cancel
        if not_ready:
            log.info("target not reachable yet: run not counted", extra={"check": check.name, "detail": detail})
            raise NotReady(check.name)
        self.reached.add(check.name)
        duration = time.monotonic() - start
        result = Result(check.name, success, duration, detail)
        self.record(result, start_wall + duration)
        return result

    async def _cleanup(self, check: Check) -> None:
        try:
            async with asyncio.timeout(CLEANUP_TIMEOUT):
                await check.cleanup()
        except Exception as e:  # noqa: BLE001
            log.warning("cleanup failed", extra={"check": check.name, "error": f"{type(e).__name__}: {e}"})

    def record(self, r: Result, finished_at: float) -> None:
        self.last[r.check] = r
        self.metrics["synthetic_check_success"].labels(check=r.check).set(1 if r.success else 0)
        self.metrics["synthetic_check_duration_seconds"].labels(check=r.check).set(r.duration)
        self.metrics["synthetic_check_last_run_timestamp_seconds"].labels(check=r.check).set(finished_at)
        log.log(logging.INFO if r.success else logging.WARNING, "check passed" if r.success else "check failed",
                extra={"check": r.check, "success": r.success, "duration_seconds": round(r.duration, 3), "detail": r.detail})

    async def loop(self, check: Check) -> None:
        interval = self.timing(check).interval
        while True:
            started = time.monotonic()
            try:
                await self.run_once(check)
                wait = interval
            except NotReady:
                wait = min(interval, NOT_READY_RETRY)
            await asyncio.sleep(max(0.0, wait - (time.monotonic() - started)))

    async def run_forever(self) -> None:
        self.grace_until = time.monotonic() + self.settings.startup_grace
        # One task per check: a slow or hanging target only holds its own check.
        await asyncio.gather(*(self.loop(c) for c in self.checks))

    async def run_all_once(self) -> list[Result]:
        return list(await asyncio.gather(*(self.run_once(c) for c in self.checks)))
