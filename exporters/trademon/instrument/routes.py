"""The route template of a request, read from what the router left in the ASGI scope.

Routing has already run when the middleware asks, so no path is matched twice: Starlette
and FastAPI put the matched route object in ``scope["route"]``, and templates are cached per
route object, so the hot path is two dict lookups. Only requests through a mount whose own
path has parameters (``Mount("/acct/{id}", ...)``) do regex work, and only on the mount.
"""

from __future__ import annotations

from starlette.routing import Host, Mount

UNMATCHED = "<unmatched>"
"""The one endpoint label of every request no route matched (404s of unknown paths,
slash redirects), so scanners and typos cannot grow the series count."""


def _routes_with_endpoint(routes, endpoint) -> list:
    found = []
    for route in routes:
        if getattr(route, "endpoint", None) is endpoint:
            found.append(route)
        if isinstance(route, (Mount, Host)):
            found += _routes_with_endpoint(route.routes, endpoint)
    return found


def _raw_prefix_to_template(routes, raw: str) -> str | None:
    """Turn the concrete path a request's mounts consumed (``/acct/DU1/v2``) back into
    their templates (``/acct/{id}/v2``) by walking the app's Mount routes."""
    for route in routes:
        if isinstance(route, Host):
            found = _raw_prefix_to_template(route.routes, raw)
            if found is not None:
                return found
        if not isinstance(route, Mount):
            continue
        match = route.path_regex.match(raw + "/")
        if match is None:
            continue
        rest = "/" + match.group("path")
        if rest == "/":
            return route.path
        inner = _raw_prefix_to_template(route.routes, rest.rstrip("/"))
        if inner is not None:
            return route.path + inner
    return None


class RouteTemplates:
    """Maps a finished request's scope to its endpoint label, or ``None`` to skip it."""

    def __init__(self, app_routes, skip_endpoints=()):
        self._app_routes = app_routes  # the live list: routes added later are still found
        self._skip = tuple(skip_endpoints)
        # id(route) -> (route, template); the route is kept so a recycled id never matches.
        self._by_route: dict[int, tuple[object, str | None]] = {}
        self._static_prefixes: dict[str, str] = {}
        self._by_endpoint: dict[int, tuple[object, list]] = {}

    def endpoint(self, scope: dict, root_path_before: str, status: int) -> str | None:
        route = scope.get("route")
        if route is None and "endpoint" in scope:
            # FastAPI's router records scope["route"] for its APIRoutes only; plain
            # Starlette routes (add_route, /docs, /metrics) leave just the endpoint.
            route = self._route_of_endpoint(scope, scope["endpoint"])
        mounted = scope.get("root_path", "") != root_path_before
        if route is None or isinstance(route, Mount):
            if not mounted or status == 404:
                return UNMATCHED
            # A mounted app that is no Starlette router (static files, a raw ASGI app).
            prefix = self._prefix(scope, root_path_before)
            return UNMATCHED if prefix is None else prefix + "/{path}"
        key = _effective_route(scope, route)
        entry = self._by_route.get(id(key))
        if entry is None or entry[0] is not key:
            entry = self._by_route[id(key)] = (key, self._template(key))
        template = entry[1]
        if not mounted or template is None:
            return template
        prefix = self._prefix(scope, root_path_before)
        return UNMATCHED if prefix is None else prefix + template

    def _route_of_endpoint(self, scope: dict, endpoint):
        entry = self._by_endpoint.get(id(endpoint))
        if entry is None or entry[0] is not endpoint:
            entry = self._by_endpoint[id(endpoint)] = (endpoint, _routes_with_endpoint(self._app_routes, endpoint))
        routes = entry[1]
        if len(routes) == 1:
            return routes[0]
        # One handler behind several paths (rare): tell them apart by their regex.
        root, path = scope.get("root_path", ""), scope["path"]
        if root and path.startswith(root):
            path = path[len(root):] or "/"
        for route in routes:
            if route.path_regex.match(path):
                return route
        return None

    def _template(self, route) -> str | None:
        if getattr(route, "endpoint", None) in self._skip:
            return None
        return getattr(route, "path_format", None) or getattr(route, "path", None) or UNMATCHED

    def _prefix(self, scope: dict, root_path_before: str) -> str | None:
        raw = scope["root_path"][len(root_path_before):]
        found = self._static_prefixes.get(raw)
        if found is not None:
            return found
        found = _raw_prefix_to_template(self._app_routes, raw)
        if found is not None and "{" not in found:
            # Cache only parameter-free mounts: their raw prefixes are a fixed, small set.
            self._static_prefixes[raw] = found
        return found


def _effective_route(scope: dict, route):
    """Recent FastAPI (0.165 when this was written) includes routers by reference: ``scope["route"]`` is then the
    router's own APIRoute, whose path lacks the ``include_router(prefix=...)``; the
    effective route (with the full path) is kept under ``scope["fastapi"]``."""
    fastapi_scope = scope.get("fastapi")
    if fastapi_scope:
        ctx = fastapi_scope.get("effective_route_context")
        if ctx is not None and getattr(ctx, "original_route", None) is route:
            return ctx
    return route
