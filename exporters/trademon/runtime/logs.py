"""JSON logs on stdout, one object per line, with secrets masked.

Every line has time, level, logger, message and service; whatever is passed as
``extra={...}`` is the event's context and is kept as its own keys, so Promtail/Alloy
can lift level, logger and service into labels and leave the rest in the line.

Secrets are masked twice: every value registered with ``register_secret`` (what the
configuration read as a secret), and anything shaped like one (trademon.runtime.redaction: bot
tokens, webhook paths, passwords in URLs...). The same event repeated fast (a failing accept()
loop at the file-descriptor limit, a client hammering a bad request) is written at most
``RepeatLimiter.burst`` times per window; the next line that gets through says how many were
held back (``repeats_suppressed``).
"""

from __future__ import annotations

import json
import math
import logging
import sys
import time

from trademon.runtime.redaction import redact_shapes

_STANDARD = set(vars(logging.makeLogRecord({}))) | {"message", "asctime", "taskName"}
_secrets: set[str] = set()


def register_secret(value: str | None) -> None:
    """Mask this value wherever it would appear in a log line."""
    if value and len(value) >= 4:
        _secrets.add(value)


def redact(text: str) -> str:
    for s in _secrets:
        if s in text:
            text = text.replace(s, "***")
    return redact_shapes(text)


# ``extra={..., **DISTINCT}``: a line told apart by its context (a stack's "service up", one
# per service) is never a repeat, whatever its template; the mark itself is not written.
DISTINCT = {"_distinct": True}


class RepeatLimiter(logging.Filter):
    """At most ``burst`` records per (logger, level, message template) per ``window`` seconds;
    records marked DISTINCT always pass."""

    def __init__(self, burst: int = 5, window: float = 10.0, max_keys: int = 1000, clock=time.monotonic):
        super().__init__()
        self.burst, self.window, self.max_keys, self.clock = burst, window, max_keys, clock
        self._seen: dict[tuple, list] = {}  # key -> [window start, count, suppressed]

    def filter(self, record: logging.LogRecord) -> bool:
        if getattr(record, "_distinct", False):
            return True
        key = (record.name, record.levelno, str(record.msg))
        now = self.clock()
        st = self._seen.get(key)
        if st is None or now - st[0] >= self.window:
            suppressed = st[2] if st else 0
            if st is None and len(self._seen) >= self.max_keys:
                self._seen.clear()  # bounded memory; at worst a few extra lines
            self._seen[key] = [now, 1, 0]
            if suppressed:
                record.repeats_suppressed = suppressed
            return True
        st[1] += 1
        if st[1] <= self.burst:
            return True
        st[2] += 1
        return False


class JsonFormatter(logging.Formatter):
    def __init__(self, service: str):
        super().__init__()
        self.service = service

    def format(self, record: logging.LogRecord) -> str:
        t = record.created
        doc = {
            "time": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(t)) + f".{int(t % 1 * 1000):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
            "service": self.service,
        }
        for k, v in record.__dict__.items():
            if k not in _STANDARD and not k.startswith("_") and k not in doc:
                doc[k] = v
        if record.exc_info:
            doc["exception"] = self.formatException(record.exc_info)
        return redact(standard_json(doc))


def _standard(v):
    """``v`` with what RFC 8259 has no form for made text: a non-finite number as its name, a
    lone surrogate escaped (so a strict parser reads every line and the stream can encode it)."""
    if isinstance(v, float) and not math.isfinite(v):
        return repr(v)
    if isinstance(v, str):
        return v.encode("utf-8", "backslashreplace").decode("utf-8")
    if isinstance(v, dict):
        return {_standard(str(k)): _standard(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [_standard(x) for x in v]
    return v


def standard_json(doc) -> str:
    """One line of standard JSON, whatever ``doc`` holds (the fast path when it is clean)."""
    try:
        text = json.dumps(doc, default=str, ensure_ascii=False, allow_nan=False)
        text.encode("utf-8")
        return text
    except (ValueError, UnicodeEncodeError):
        return json.dumps(_standard(doc), default=lambda o: _standard(str(o)), ensure_ascii=False, allow_nan=False)


def setup(service: str, level: str = "info", stream=None) -> None:
    """Send every logger's records, uvicorn's included, to stdout as JSON."""
    handler = logging.StreamHandler(stream or sys.stdout)
    handler.setFormatter(JsonFormatter(service))
    handler.addFilter(RepeatLimiter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        lg = logging.getLogger(name)
        lg.handlers[:] = []
        lg.propagate = True
    # One line per request is noise at 15 s scrapes; warnings and errors still show.
    logging.getLogger("uvicorn.access").setLevel(logging.WARNING)
