"""A pure ASGI middleware timing every HTTP request into ``api_request_duration_seconds``.

Pure ASGI (not BaseHTTPMiddleware): no extra task, no request/response objects, no body
buffering. Per request it does one clock read at each end, a ``send`` wrapper to see the
status, and a dict lookup of the pre-bound histogram child for (endpoint, method, status).
"""

from __future__ import annotations

from time import perf_counter

from trademon.instrument.routes import RouteTemplates
from trademon.metrics import Children

# Clients choose the method string; anything else folds into one value so they cannot
# grow the series count.
_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "TRACE", "CONNECT"})
_OTHER_METHOD = "OTHER"


class RequestDurationMiddleware:
    def __init__(self, app, *, histogram, templates: RouteTemplates):
        self.app = app
        self._observers = Children(histogram, "observe")
        self._templates = templates

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        root_path = scope.get("root_path", "")
        # 500 unless a response starts: an app that returns without one gets a 500
        # from the server, and an exception is a 500 by definition.
        status = 500

        async def send_and_note_status(message):
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        start = perf_counter()
        try:
            await self.app(scope, receive, send_and_note_status)
        except Exception:
            status = 500
            self._observe(scope, root_path, status, perf_counter() - start)
            raise
        self._observe(scope, root_path, status, perf_counter() - start)

    def _observe(self, scope, root_path: str, status: int, seconds: float) -> None:
        endpoint = self._templates.endpoint(scope, root_path, status)
        if endpoint is None:  # an endpoint not to measure (/metrics)
            return
        method = scope["method"]
        if method not in _METHODS:
            method = _OTHER_METHOD
        self._observers(endpoint, method, str(status))(seconds)
