"""The Grafana dashboards' uids, defined once.

The dashboard generator gives each dashboard its uid from here, and the alert rules link
to ``/d/<uid>`` (the ``dashboard`` annotation), so a link can never point at a dashboard
that does not exist.
"""

from __future__ import annotations

# key -> uid. The key is what code refers to; the uid is what Grafana's URLs carry.
DASHBOARDS: dict[str, str] = {
    "overview": "trademon-overview",
    "pnl": "trademon-pnl",
    "latency": "trademon-latency",
    "risk": "trademon-risk",
    "broker": "trademon-broker-truth",
    "health": "trademon-health",
    "workers": "trademon-workers",
    "logs": "trademon-logs",
}


def path(key: str) -> str:
    """Grafana's path of a dashboard (``/d/<uid>``), relative to the Grafana root URL."""
    try:
        return f"/d/{DASHBOARDS[key]}"
    except KeyError:
        raise KeyError(f"no dashboard {key!r}; known: {', '.join(DASHBOARDS)}") from None
