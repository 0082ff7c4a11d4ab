"""What the bot reads and changes: Alertmanager's API v2, Prometheus' HTTP API, and the
notification record (the alert-sink)."""

from __future__ import annotations

import logging
import sqlite3
import time
from datetime import datetime, UTC

import httpx

from trademon.runtime import http

log = logging.getLogger("trademon.bot.upstream")
MAX_SERIES = 50  # labels come from outside: a chart or list shows at most this many


def iso(t: datetime) -> str:
    return t.astimezone(UTC).isoformat().replace("+00:00", "Z")


class UpstreamError(Exception):
    pass


class Alertmanager:
    def __init__(self, url: str, timeout: float = 5.0):
        self.url = url.rstrip("/")
        self._http = http.async_client(timeout)

    async def _req(self, method: str, path: str, **kw):
        try:
            r = await self._http.request(method, f"{self.url}/api/v2{path}", **kw)
        except httpx.HTTPError as e:
            raise UpstreamError(f"Alertmanager unreachable ({type(e).__name__})") from None
        if r.status_code >= 400:
            raise UpstreamError(f"Alertmanager {method} {path}: HTTP {r.status_code} {r.text[:200]}")
        return r.json() if r.content else None

    async def alerts(self, **params) -> list[dict]:
        return await self._req("GET", "/alerts", params={k: str(v).lower() for k, v in params.items()})

    async def silences(self) -> list[dict]:
        return await self._req("GET", "/silences")

    async def silence(self, matchers: dict[str, str], ends: datetime, by: str, comment: str, starts: datetime | None = None) -> str:
        body = {"matchers": [{"name": k, "value": v, "isRegex": False, "isEqual": True} for k, v in sorted(matchers.items())],
                "startsAt": iso(starts or datetime.now(UTC)), "endsAt": iso(ends), "createdBy": by, "comment": comment}
        return (await self._req("POST", "/silences", json=body))["silenceID"]

    async def expire(self, silence_id: str) -> None:
        await self._req("DELETE", f"/silence/{silence_id}")

    async def close(self):
        await self._http.aclose()


class Prometheus:
    def __init__(self, url: str, timeout: float = 5.0):
        self.url = url.rstrip("/")
        self._http = http.async_client(timeout)

    async def _get(self, path: str, params: dict):
        try:
            r = await self._http.get(f"{self.url}/api/v1/{path}", params=params)
            doc = r.json()
        except (httpx.HTTPError, ValueError) as e:
            raise UpstreamError(f"Prometheus unreachable ({type(e).__name__})") from None
        if doc.get("status") != "success":
            raise UpstreamError(f"Prometheus: {doc.get('error', r.status_code)}")
        return doc["data"]["result"]

    async def query(self, expr: str, at: float | None = None) -> list[tuple[dict, float]]:
        params = {"query": expr} if at is None else {"query": expr, "time": at}
        return [(s["metric"], float(s["value"][1])) for s in (await self._get("query", params))[:MAX_SERIES]]

    async def query_range(self, expr: str, start: float, end: float, step: float) -> list[dict]:
        return (await self._get("query_range", {"query": expr, "start": start, "end": end, "step": step}))[:MAX_SERIES]

    async def close(self):
        await self._http.aclose()


class Record:
    """Appends the bot's actions to the notification record, in the alert-sink's own format
    (a version 4 webhook payload, receiver ``telegram-bot``, with an ``action`` field)."""

    def __init__(self, url: str | None, token: str | None = None, timeout: float = 5.0, local=None):
        self.url = url
        self.local = local  # the bot's own record (trademon.bot.store.Store: /history), written first
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        self._http = http.async_client(timeout, headers)

    async def action(self, kind: str, alerts: list[dict], detail: dict) -> bool:
        if self.local is not None:
            self._local(kind, alerts, detail)
        if not self.url:
            return False
        now = iso(datetime.now(UTC))
        body = {"version": "4", "status": "firing", "receiver": "telegram-bot", "groupKey": f"telegram-bot/{kind}",
                "alerts": [{"status": "firing", "labels": a, "annotations": {}, "startsAt": now} for a in alerts],
                "action": {"kind": kind, "at": now, **detail}}
        try:
            r = await self._http.post(self.url, json=body)
            if r.status_code >= 400:
                log.error("the alert record refused the action", extra={"status": r.status_code, "kind": kind})
                return False
            return True
        except httpx.HTTPError as e:
            log.error("cannot record the action", extra={"error": type(e).__name__, "kind": kind})
            return False

    def _local(self, kind: str, alerts: list[dict], detail: dict) -> None:
        ends = detail.get("ends_at")
        try:
            until = datetime.fromisoformat(ends).timestamp() if ends else None
            self.local.record([(time.time(), kind, labels, detail.get("by"), until) for labels in alerts])
        except (ValueError, sqlite3.Error) as e:  # the action stands; only /history misses it
            log.error("cannot record the action in the bot's history", extra={"error": str(e)[:200], "kind": kind})

    async def close(self):
        await self._http.aclose()
