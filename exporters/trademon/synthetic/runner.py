"""Runs each check on its own interval with its own timeout, concurrently, and records
the outcome in the synthetic_check_* gauges and a JSON log line."""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass

from ..metrics import JobMetrics
from .api import Unexpected
from .checks import Check, CheckFailed, timing_key
from .config import Settings

log = logging.getLogger("trademon.synthetic")
CLEANUP_TIMEOUT = 10.0  # seconds a cleanup (e.g. the breaker reset) may take after a run


@dataclass
class Result:
    check: str
    success: bool
    duration: float
    detail: str


class CheckRunner:
    def __init__(self, checks: list[Check], settings: Settings, metrics: JobMetrics):
        self.checks, self.settings, self.metrics = checks, settings, metrics
        self.last: dict[str, Result] = {}

    def timing(self, check: Check):
        return self.settings.timing[timing_key(check)]

    async def run_once(self, check: Check) -> Result:
        timeout = self.timing(check).timeout
        check.step = "starting"
        start_wall, start = time.time(), time.monotonic()
        try:
            async with asyncio.timeout(timeout):
                detail = await check.run()
            success = True
        except TimeoutError:
            success, detail = False, f"timed out after {timeout:g}s while {check.step}"
        except asyncio.CancelledError:
            raise
        except (CheckFailed, Unexpected) as e:  # they say what went wrong themselves
            success, detail = False, str(e)
        except Exception as e:  # noqa: BLE001 - any error is this check's failure, never the runner's
            success, detail = False, f"{type(e).__name__} while {check.step}: {e}"
        finally:
            try:
                async with asyncio.timeout(CLEANUP_TIMEOUT):
                    await check.cleanup()
            except Exception as e:  # noqa: BLE001
                log.warning("cleanup failed", extra={"check": check.name, "error": f"{type(e).__name__}: {e}"})
        duration = time.monotonic() - start
        result = Result(check.name, success, duration, detail)
        self.record(result, start_wall + duration)
        return result

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
            await self.run_once(check)
            await asyncio.sleep(max(0.0, interval - (time.monotonic() - started)))

    async def run_forever(self) -> None:
        # One task per check: a slow or hanging target only holds its own check.
        await asyncio.gather(*(self.loop(c) for c in self.checks))

    async def run_all_once(self) -> list[Result]:
        return list(await asyncio.gather(*(self.run_once(c) for c in self.checks)))
