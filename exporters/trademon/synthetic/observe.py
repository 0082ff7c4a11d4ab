"""What the checks read back: a gauge from Prometheus or from a /metrics page, and
alerts from Alertmanager's API v2."""

from __future__ import annotations

import re
from datetime import datetime

import httpx
from prometheus_client.parser import text_string_to_metric_families

from trademon.synthetic.api import Starting, Unexpected


async def prometheus_value(client: httpx.AsyncClient, base: str, query: str) -> float | None:
    """The value of an instant query that returns one series (max of several), or None."""
    r = await client.get(f"{base}/api/v1/query", params={"query": query})
    if not r.is_success:
        error = Starting if r.status_code == 503 else Unexpected
        raise error(f"Prometheus query {query!r} answered HTTP {r.status_code}: {r.text[:200]!r}")
    result = r.json().get("data", {}).get("result", [])
    values = [float(s["value"][1]) for s in result]
    return max(values) if values else None


async def exposition_value(client: httpx.AsyncClient, url: str, sample: str, labels: dict[str, str],
                           headers: dict[str, str] | None = None) -> float | None:
    """A sample's value from a Prometheus text exposition (e.g. position-manager /metrics)."""
    r = await client.get(url, headers=headers)
    if not r.is_success:
        raise Unexpected(f"GET {url} answered HTTP {r.status_code}")
    for family in text_string_to_metric_families(r.text):
        for s in family.samples:
            if s.name == sample and all(s.labels.get(k) == v for k, v in labels.items()):
                return s.value
    return None


def _parse_time(text: str) -> float:
    # Alertmanager writes RFC 3339 with up to nanoseconds; Python reads up to microseconds.
    text = re.sub(r"(\.\d{6})\d+", r"\1", text.replace("Z", "+00:00"))
    return datetime.fromisoformat(text).timestamp()


async def active_alerts(client: httpx.AsyncClient, base: str, labels: dict[str, str]) -> list[dict]:
    """Active alerts in Alertmanager whose labels match exactly, each with ``startsAt`` as Unix time."""
    params = (("active", "true"), *(("filter", f'{k}="{v}"') for k, v in labels.items()))
    r = await client.get(f"{base}/api/v2/alerts", params=params)
    if not r.is_success:
        raise Unexpected(f"Alertmanager /api/v2/alerts answered HTTP {r.status_code}: {r.text[:200]!r}")
    # active=true leaves out resolved alerts; silenced or inhibited ones still count as arrived.
    return [{**a, "startsAt": _parse_time(a["startsAt"])} for a in r.json()]
