"""Every query the committed dashboards send, read back from their JSON (for the tests).

Panels, template variables and annotations each name a datasource (through the dashboard's
datasource variable, grafana_panels.Datasource.ref) and carry a
PromQL or LogQL expression; this walks a dashboard document and yields them, so the
checks (parse, metric names, run against Prometheus) see exactly what Grafana would run.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from collections.abc import Iterator

from trademon.gen.dashboards import DASHBOARD_DIR
from trademon.gen.grafana_panels import EXTERNAL_EXPORTERS, LOKI, PROMETHEUS, interpolate

LANG = {PROMETHEUS.ref.uid: "promql", LOKI.ref.uid: "logql"}

# What the tests give Grafana's built-in variables (Grafana computes them from the time range).
BUILTINS = {"__rate_interval": "1m", "__interval": "15s", "__auto": "15s", "__range": "1h"}


@dataclass(frozen=True)
class Query:
    dashboard: str  # uid
    where: str  # "panel <title>", "variable <name>" or "annotation <name>"
    datasource: str  # the reference's uid: "${datasource}" or "${loki_datasource}"
    expr: str
    kind: str  # "panel", "variable", "annotation"
    needs: str | None = None  # an external exporter the panel needs (EXTERNAL_EXPORTERS key)

    @property
    def lang(self) -> str:
        return LANG.get(self.datasource, "unknown")

    def concrete(self, values: dict[str, str] | None = None) -> str:
        """The expression as Grafana sends it with every variable set to "All" (``.*``)."""
        return interpolate(self.expr, {**BUILTINS, **(values or {})})

    def __str__(self) -> str:
        return f"{self.dashboard}: {self.where}: {self.expr}"


def dashboard_files(root: Path) -> list[Path]:
    return sorted((root / DASHBOARD_DIR).rglob("*.json"))


def load(root: Path) -> list[dict]:
    return [json.loads(p.read_text(encoding="utf-8")) for p in dashboard_files(root)]


def panel_needs(panel: dict) -> str | None:
    """The external exporter a panel needs, as its description says (the generator writes it)."""
    for key, spec in EXTERNAL_EXPORTERS.items():
        if f"Needs {spec['what']}" in panel.get("description", ""):
            return key
    return None


def variable_names(doc: dict) -> dict[str, str]:
    """Every template variable of a dashboard set to what "All" sends."""
    return {v["name"]: v.get("allValue") or ".*" for v in doc.get("templating", {}).get("list", [])}


def queries(doc: dict) -> Iterator[Query]:
    uid = doc["uid"]
    for panel in doc.get("panels", []):
        for sub in [panel, *panel.get("panels", [])]:  # rows may hold panels
            for t in sub.get("targets", []):
                ds = (t.get("datasource") or sub.get("datasource") or {}).get("uid", "")
                yield Query(uid, f"panel {sub['title']!r}", ds, t["expr"], "panel", panel_needs(sub))
    for v in doc.get("templating", {}).get("list", []):
        if v.get("type") == "query":
            q = v["query"]
            expr = q.get("query") if isinstance(q, dict) and "query" in q else q.get("stream") if isinstance(q, dict) else q
            # No query at all: an empty one, which the checks then report, rather than None.
            yield Query(uid, f"variable {v['name']}", v["datasource"]["uid"], expr or "", "variable")
    for a in doc.get("annotations", {}).get("list", []):
        if a.get("expr"):
            yield Query(uid, f"annotation {a['name']!r}", a["datasource"]["uid"], a["expr"], "annotation")
