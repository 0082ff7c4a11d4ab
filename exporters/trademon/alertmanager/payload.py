"""Alertmanager's webhook payload (version 4), read and checked once for every receiver of
trademon's (the alert-sink and the bot).

``parse`` returns the payload as a dict or raises ``Rejected`` with the HTTP status, a short
reason for metrics and a detail naming what is wrong: 413 for a body over ``MAX_BODY`` or
holding more than ``MAX_VALUES`` JSON values, 400 for anything that is not a version-4
notification (Alertmanager does not retry a 4xx).
"""

from __future__ import annotations

import json
import math
from typing import Annotated, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError

from trademon.runtime.httpguard import json_values_at_most

MAX_BODY = 16 * 1024 * 1024
# What a body parses into grows with the values it holds, not its bytes: 16 MiB of empty alerts
# (5.6 million) took the alert-sink past 1.3 GB and held its event loop over a minute. Counted
# in the raw body before parsing (every value but a container's first follows a comma; strings'
# commas count too: an upper bound); a large real notification of ~25 values an alert stays far
# below (8,000 alerts in one notification).
MAX_VALUES = 200_000


def _strings(v):
    """A label set is names to strings, checked as a whole: one error, not one per value (a set
    of 200,000 numbers made 200,000 errors, 300 MB)."""
    if isinstance(v, dict) and not all(isinstance(k, str) and isinstance(x, str) for k, x in v.items()):
        raise ValueError("every name and value must be a string")
    return v


Strings = Annotated[dict[str, str], BeforeValidator(_strings)]


class WebhookAlert(BaseModel):
    model_config = ConfigDict(extra="allow")
    status: Literal["firing", "resolved"]
    labels: Strings
    annotations: Strings = {}
    startsAt: str
    endsAt: str | None = None
    fingerprint: str | None = None


class WebhookPayload(BaseModel):
    """Alertmanager's webhook body, version 4 (fields beyond these are kept as they come)."""

    model_config = ConfigDict(extra="allow")
    version: Literal["4"]
    status: Literal["firing", "resolved"]
    receiver: str
    groupKey: str
    alerts: list[WebhookAlert] = Field(fail_fast=True)  # the first bad alert is the answer, not a million errors
    groupLabels: Strings = {}
    commonLabels: Strings = {}
    commonAnnotations: Strings = {}
    externalURL: str = ""


class Rejected(Exception):
    def __init__(self, status: int, reason: str, detail: str):
        super().__init__(detail)
        self.status, self.reason, self.detail = status, reason, detail


class NotStandard(ValueError):
    """JSON that Python reads but RFC 8259 does not allow, so no record may hold it."""


def _no_constant(name: str):
    raise NotStandard(f"{name} is not a JSON value")


def _finite(text: str) -> float:
    value = float(text)
    if math.isinf(value):
        raise NotStandard(f"the number {text[:40]} is out of range for a double")
    return value


def unencodable(doc) -> str | None:
    """Where (a dotted path) a string of ``doc`` cannot be encoded as UTF-8 (a lone surrogate
    that ``\\ud800`` in JSON makes), or None. Iterative: the depth is json.loads's."""
    stack: list[tuple[str, object]] = [("body", doc)]
    while stack:
        where, v = stack.pop()
        if isinstance(v, str) and not _encodable(v):
            return where
        if isinstance(v, dict):
            for k, x in v.items():
                if not _encodable(k):
                    return f"{where}.{k!a}"
                stack.append((f"{where}.{k}", x))
        elif isinstance(v, list):
            stack.extend((f"{where}[{i}]", x) for i, x in enumerate(v))
    return None


def _encodable(s: str) -> bool:
    try:
        s.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def parse(body: bytes) -> dict:
    """The payload as a dict, or Rejected naming what is wrong with it."""
    if len(body) > MAX_BODY:
        raise Rejected(413, "too_large", f"body of {len(body)} bytes is over the {MAX_BODY}-byte limit")
    if (values := json_values_at_most(body)) > MAX_VALUES:
        raise Rejected(413, "too_many_values", f"body holds up to {values} JSON values, over the limit of {MAX_VALUES} "
                                               "(an Alertmanager notification holds about 25 an alert)")
    try:
        doc = json.loads(body, parse_constant=_no_constant, parse_float=_finite)
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise Rejected(400, "not_json", f"body is not JSON: {e}") from None
    except NotStandard as e:
        raise Rejected(400, "not_json", f"body is not standard JSON: {e}") from None
    except RecursionError:
        raise Rejected(400, "too_deep", "body is JSON nested too deeply to parse (an Alertmanager payload is 4 levels deep)") from None
    if (where := unencodable(doc)) is not None:
        raise Rejected(400, "invalid_text", f"{where} holds a lone surrogate (\\ud800-\\udfff escaped alone): not text, cannot be written as UTF-8")
    if isinstance(doc, dict) and "version" in doc and doc["version"] != "4":
        raise Rejected(400, "unsupported_version", f"webhook payload version {doc['version']!r}; this sink reads version \"4\"")
    try:
        WebhookPayload.model_validate(doc)
    except ValidationError as e:
        first = e.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "body"
        raise Rejected(400, "invalid_payload", f"not an Alertmanager webhook payload: {where}: {first['msg']} ({e.error_count()} problem(s))") from None
    return doc
