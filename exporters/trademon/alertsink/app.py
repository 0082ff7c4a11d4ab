"""alert-sink: Alertmanager's file-based webhook receiver (``trademon alert-sink``).

``POST /alerts`` takes Alertmanager's webhook payload (version 4) and appends it as one JSON
line to a file. It answers 200 only once the line is on disk (fsync), 400 with the reason
for a payload that is not a valid notification (Alertmanager does not retry a 4xx), 413 for a
body over 16 MiB (refused before it is read), and 500 when the file cannot be written, so
Alertmanager retries and nothing is lost silently.

Every acknowledged notification stays readable: a line is written whole or not at all. A
write that fails (disk full, I/O error) is cut back to where the file ended before it, and a
torn last line left by a crash mid-write (never acknowledged: the answer comes after fsync) is
cut off at start. /readyz says not ready while the file cannot be written or the disk is
nearly full. A notification the sink wrote but could not acknowledge (killed between fsync
and answer) comes again from Alertmanager's retry: at least once for those.

Metrics on /metrics: alert_sink_notifications_total{receiver,status} (at most 32 receiver
names, then receiver="__overflow__"), alert_sink_rejected_total{reason},
alert_sink_last_notification_timestamp_seconds.

With TRADEMON_API_TOKEN set, POST /alerts needs ``Authorization: Bearer <token>``
(``trademon am-config`` gives Alertmanager the same token as a credentials file).

Environment: TRADEMON_ALERT_SINK_HOST (default 127.0.0.1), TRADEMON_ALERT_SINK_PORT
(default 9112), TRADEMON_ALERT_SINK_FILE (default /var/lib/trademon/alerts.jsonl),
TRADEMON_LOG_LEVEL.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import time
from datetime import datetime, UTC
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from trademon import contract
from trademon.alertmanager.payload import MAX_BODY, Rejected, parse
from trademon.runtime import logs, storage
from trademon.bounded import BoundedValues
from trademon.settings.env import LOOPBACK, env_choice, env_str, job_port, port_variable
from trademon.metrics import JobMetrics
from trademon.runtime.service import Listener, Probes, Runner, basics_app

log = logging.getLogger("trademon.alertsink")

JOB = "alert-sink"
DEFAULT_FILE = "/var/lib/trademon/alerts.jsonl"
MAX_RECEIVERS = 32  # Alertmanager configs have a handful; a client inventing names gets "__overflow__"


class JsonLinesFile:
    """Appends one line per notification; returns only once the line is on disk, and leaves
    nothing of a line it could not write whole (see the module doc)."""

    def __init__(self, path: Path):
        self.path = path
        self._lock = asyncio.Lock()  # whole lines, never interleaved
        self.failing: str | None = None  # why the last write failed, until one succeeds
        self.torn = False  # a failed write could not be cut back: repair before the next

    def repair(self) -> int:
        """Cut a torn last line (no newline at the end) off the file; the bytes removed."""
        try:
            fd = os.open(self.path, os.O_RDWR)
        except FileNotFoundError:
            self.torn = False
            return 0
        try:
            size = os.fstat(fd).st_size
            end = size
            while end > 0:  # back to the last newline, 64 KiB at a time
                start = max(0, end - 65536)
                chunk = os.pread(fd, end - start, start)
                nl = chunk.rfind(b"\n")
                if nl >= 0:
                    end = start + nl + 1
                    break
                end = start
            if end != size:
                os.ftruncate(fd, end)
                os.fsync(fd)
                log.warning("cut a torn last line off the notification record (a write that was never acknowledged)",
                            extra={"file": str(self.path), "bytes_removed": size - end})
            self.torn = False
            return size - end
        finally:
            os.close(fd)

    def _append(self, line: bytes) -> None:
        if self.torn:
            self.repair()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            before = os.fstat(fd).st_size
            try:
                view = memoryview(line)
                while view:
                    view = view[os.write(fd, view):]
                os.fsync(fd)
            except OSError:
                try:  # leave no partial line behind: the next line must start on its own
                    os.ftruncate(fd, before)
                    os.fsync(fd)
                except OSError:
                    self.torn = True
                raise
        finally:
            os.close(fd)

    async def append(self, doc: dict) -> None:
        line = (json.dumps(doc, ensure_ascii=False, allow_nan=False, separators=(",", ":")) + "\n").encode("utf-8")
        async with self._lock:
            try:
                await asyncio.to_thread(self._append, line)
            except OSError as e:
                self.failing = e.strerror or str(e)
                raise
            self.failing = None

    def writable(self) -> bool:
        """A write would succeed now. After a failed one, a probe write decides (space may be
        back before the next notification comes: ready again without waiting for it)."""
        if self.failing is not None or self.torn:
            if storage.probe(self.path.parent) is not None:
                return False
            self.failing = None  # a torn line is cut by the next append, before it writes
        if not storage.has_room(self.path.parent):
            return False
        if self.path.exists():
            return self.path.is_file() and os.access(self.path, os.W_OK)
        return True


def build_app(sink: JsonLinesFile, jm: JobMetrics) -> FastAPI:
    app = FastAPI(title="trademon alert-sink", docs_url=None, redoc_url=None, openapi_url=None)
    receivers = BoundedValues(MAX_RECEIVERS)

    @app.post("/alerts")
    async def alerts(request: Request):
        try:
            doc = parse(await request.body())
        except Rejected as e:
            jm["alert_sink_rejected_total"].labels(reason=e.reason).inc()
            log.warning("payload rejected", extra={"reason": e.reason, "detail": e.detail[:500]})
            return JSONResponse({"error": e.reason, "detail": e.detail}, status_code=e.status)
        record = {"received_at": datetime.now(UTC).isoformat(timespec="milliseconds"), **doc}
        try:
            await sink.append(record)
        except OSError as e:
            jm["alert_sink_rejected_total"].labels(reason="write_failed").inc()
            log.error("cannot write the notification; Alertmanager will retry", extra={"file": str(sink.path), "error": str(e)})
            return JSONResponse({"error": "write_failed", "detail": f"cannot write {sink.path}: {e.strerror}"}, status_code=500)
        jm["alert_sink_notifications_total"].labels(receiver=receivers(doc["receiver"]), status=doc["status"]).inc()
        jm["alert_sink_last_notification_timestamp_seconds"].set(time.time())
        log.info("notification recorded", extra={"receiver": doc["receiver"][:100], "status": doc["status"], "alerts": len(doc["alerts"])})
        return {"status": "recorded", "alerts": len(doc["alerts"])}

    return app


def configure(parser) -> None:
    parser.add_argument("--host", default=None, help=f"listen address (env TRADEMON_ALERT_SINK_HOST, default {LOOPBACK})")
    parser.add_argument("--port", type=int, default=None, help=f"listen port (env TRADEMON_ALERT_SINK_PORT, default {contract.JOBS[JOB].port})")
    parser.add_argument("--file", default=None, help=f"JSON-lines file (env TRADEMON_ALERT_SINK_FILE, default {DEFAULT_FILE})")


def main(args) -> int:
    level = env_choice("TRADEMON_LOG_LEVEL", "info", ["debug", "info", "warning", "error"])
    logs.setup(JOB, level)
    host = args.host or env_str("TRADEMON_ALERT_SINK_HOST", LOOPBACK)
    port = args.port or job_port(JOB)
    sink = JsonLinesFile(Path(args.file or env_str("TRADEMON_ALERT_SINK_FILE", DEFAULT_FILE)))
    jm = JobMetrics(JOB)
    probes = Probes({"file writable": sink.writable})
    app = basics_app(jm.registry, probes, inner=build_app(sink, jm))
    runner = Runner([Listener(JOB, app, host, port, port_variable(JOB), token_paths=("/alerts",), max_body=MAX_BODY)])
    runner.bind_all()
    try:
        sink.repair()  # a crash mid-write left a torn line: cut it before appending after it
    except OSError as e:
        sink.torn = True
        log.error("cannot repair the notification record; not ready until it can be written",
                  extra={"file": str(sink.path), "error": str(e)})
    log.info("alert-sink writing", extra={"file": str(sink.path)})
    asyncio.run(runner.serve())
    return 0
