"""Panel, query and variable builders shared by the trademon dashboards.

Thin helpers over grafana-foundation-sdk so that each dashboard reads as a list of panels:
a panel is a title, a query (or a few), a unit and its thresholds. Every datasource
reference goes through a dashboard variable (``${datasource}``, ``${loki_datasource}``)
whose default is the datasource provisioned in grafana/provisioning/datasources: the
dashboards work as provisioned and import into any Grafana (no uid is hard-wired).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from grafana_foundation_sdk.builders import common as cb
from grafana_foundation_sdk.builders import dashboard as db
from grafana_foundation_sdk.builders import heatmap, logs, loki, prometheus, stat, statetimeline, table, timeseries
from grafana_foundation_sdk.cog.builder import Builder
from grafana_foundation_sdk.models import common as cm
from grafana_foundation_sdk.models import dashboard as dm
from grafana_foundation_sdk.models import heatmap as hm
from grafana_foundation_sdk.models.prometheus import PromQueryFormat

from trademon import contract


@dataclass(frozen=True)
class Datasource:
    uid: str
    type: str
    name: str
    url: str  # as seen from the grafana container on the compose network
    variable: str  # the dashboard variable that picks a datasource of this type

    @property
    def ref(self) -> dm.DataSourceRef:
        """What panels, queries, variables and annotations name: the variable, never the uid."""
        return dm.DataSourceRef(type_val=self.type, uid=f"${{{self.variable}}}")

    def selector(self) -> db.DatasourceVariable:
        """The dashboard variable: any datasource of this type, the provisioned one by default."""
        return (db.DatasourceVariable(self.variable).label(self.name).type(self.type).regex("")
                .multi(False).include_all(False).current(dm.VariableOption(selected=True, text=self.name, value=self.uid)))


def _url(job: str) -> str:
    return f"http://{job}:{contract.JOBS[job].port}"


# The datasources Grafana is provisioned with; dashboards refer to them by these uids.
PROMETHEUS = Datasource("trademon-prometheus", "prometheus", "Prometheus", _url("prometheus"), "datasource")
LOKI = Datasource("trademon-loki", "loki", "Loki", _url("loki"), "loki_datasource")
ALERTMANAGER = Datasource("trademon-alertmanager", "alertmanager", "Alertmanager", _url("alertmanager"), "alertmanager_datasource")
DATASOURCES = (PROMETHEUS, LOKI, ALERTMANAGER)

# Money is in the accounts' base currency, `currency` of monitoring/config.yml. Grafana
# 12's currency units (@grafana/data valueFormats/categories.ts), by ISO code; another
# currency (CAD, AUD, HKD, SGD...) is shown as a plain suffix.
GRAFANA_CURRENCIES = frozenset({"USD", "GBP", "EUR", "JPY", "RUB", "UAH", "BRL", "DKK", "ISK", "NOK", "SEK", "CZK", "CHF",
                                "PLN", "ZAR", "INR", "KRW", "IDR", "PHP", "VND", "TRY", "MYR", "XPF", "BGN", "PYG", "UYU", "ILS"})


def money_unit(currency: str) -> str:
    """The Grafana unit of an amount in ``currency`` (an ISO 4217 code, checked by thresholds)."""
    return f"currency{currency}" if currency in GRAFANA_CURRENCIES else f"suffix: {currency}"


BPS = "suffix: bp"  # basis points (Grafana's "bps" unit means bits per second)
TIMES = "suffix:×"  # leverage, a plain ratio shown as "1.4×"

GREEN, YELLOW, ORANGE, RED, BLUE = "green", "yellow", "orange", "red", "blue"

# Prometheus series that exist without any exporter (Prometheus makes them itself).
PROMETHEUS_BUILTIN_SERIES = frozenset({"up", "scrape_duration_seconds", "scrape_samples_scraped",
                                       "scrape_series_added", "ALERTS", "ALERTS_FOR_STATE"})
# The stack's own engines' series that rules and panels use (scraped as jobs alertmanager and
# prometheus); remote write's only where it is configured (the HA layout).
ALERTMANAGER_SERIES = frozenset({"alertmanager_notifications_failed_total", "alertmanager_config_last_reload_successful",
                                 "alertmanager_cluster_members", "alertmanager_config_hash"})
PROMETHEUS_SERIES = frozenset({"prometheus_rule_evaluation_failures_total", "prometheus_config_last_reload_successful",
                               "prometheus_notifications_queue_length", "prometheus_notifications_queue_capacity",
                               "prometheus_notifications_dropped_total", "prometheus_notifications_errors_total",
                               "prometheus_notifications_sent_total", "prometheus_notifications_alertmanagers_discovered"})
REMOTE_WRITE_SERIES = frozenset({"prometheus_remote_storage_highest_timestamp_in_seconds",
                                 "prometheus_remote_storage_queue_highest_sent_timestamp_seconds"})
STACK_ENGINE_SERIES = ALERTMANAGER_SERIES | PROMETHEUS_SERIES | REMOTE_WRITE_SERIES

# Exporters that are not trademon's and whose metrics are not in the contract: a panel that
# queries them says so (Panel needs=...), and the live test, which cannot run them here,
# skips exactly those panels and lists them.
EXTERNAL_EXPORTERS: dict[str, dict] = {
    "alertmanager": {
        "what": "Alertmanager's own metrics (Prometheus job `alertmanager`)",
        "metrics": ALERTMANAGER_SERIES,
    },
    "remote_write": {
        "what": "remote_write configured (the HA layout's VictoriaMetrics: prometheus/prometheus.ha.yml)",
        "metrics": REMOTE_WRITE_SERIES,
    },
    "cadvisor": {
        "what": "cAdvisor (compose service `cadvisor`, Prometheus job `cadvisor`)",
        "metrics": frozenset({"container_cpu_usage_seconds_total", "container_memory_working_set_bytes",
                              "container_spec_memory_limit_bytes"}),
    },
}


def m(name: str) -> str:
    """A contract metric's name; a name the contract lacks fails at generation time."""
    return contract.metric(name).name


def series(name: str) -> str:
    """A sample name of the contract (``foo_count``, ``foo_bucket``) or one Prometheus makes itself."""
    if name in PROMETHEUS_BUILTIN_SERIES or name in contract.all_series_names():
        return name
    raise KeyError(f"{name!r} is not a series of the trademon contract (see docs/metrics.md) nor one Prometheus makes")


def bucket(name: str) -> str:
    metric = contract.metric(name)
    if metric.type != contract.HISTOGRAM:
        raise ValueError(f"{name} is a {metric.type}, not a histogram")
    return f"{metric.name}_bucket"


def rate(series: str, selector: str = "", window: str = "$__rate_interval") -> str:
    return f"rate({series}{{{selector}}}[{window}])" if selector else f"rate({series}[{window}])"


def quantile(q: float, histogram: str, selector: str = "", by: str = "") -> str:
    group = ", ".join(["le", *[b.strip() for b in by.split(",") if b.strip()]])
    return f"histogram_quantile({q}, sum by ({group}) ({rate(bucket(histogram), selector)}))"


# --- thresholds ------------------------------------------------------------------------


def steps(base: str, *pairs: tuple[float, str]) -> db.ThresholdsConfig:
    """Absolute thresholds: ``base`` colour below the first value, then each (value, colour)."""
    s = [dm.Threshold(color=base, value=None)] + [dm.Threshold(color=c, value=float(v)) for v, c in pairs]
    return db.ThresholdsConfig().mode(dm.ThresholdsMode.ABSOLUTE).steps(s)


def above(limit: float, warn_at: float | None = None) -> db.ThresholdsConfig:
    """Green, (yellow from ``warn_at``), red from ``limit``: for values that must stay low."""
    pairs = ([(warn_at, YELLOW)] if warn_at is not None else []) + [(limit, RED)]
    return steps(GREEN, *pairs)


def below(limit: float) -> db.ThresholdsConfig:
    """Red below ``limit``, green from it: for values that must stay high (P&L, fill ratio)."""
    return steps(RED, (limit, GREEN))


def two_states(zero: tuple[str, str], one: tuple[str, str]) -> list:
    """A 0/1 gauge's value mappings: (text, color) for 0 and for 1."""
    return [dm.ValueMap(options={"0": dm.ValueMappingResult(text=zero[0], color=zero[1]),
                                 "1": dm.ValueMappingResult(text=one[0], color=one[1])})]


UP_DOWN = two_states(("DOWN", RED), ("UP", GREEN))
OPEN_CLOSED = two_states(("closed", GREEN), ("OPEN", RED))
PASS_FAIL = two_states(("FAIL", RED), ("pass", GREEN))


# --- queries ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Q:
    """One query of a panel: PromQL (or LogQL on a Loki panel) and its legend."""

    expr: str
    legend: str = ""
    instant: bool = False
    limit: bool = False  # a limit the data is held against: drawn as a dashed red line


# How a limit line (Q.limit) looks: as Grafana draws a panel's own thresholds (dashed, red).
LIMIT_LINE = [dm.DynamicConfigValue(id_val="custom.lineStyle", value={"fill": "dash", "dash": [10, 10]}),
              dm.DynamicConfigValue(id_val="color", value={"mode": "fixed", "fixedColor": RED}),
              dm.DynamicConfigValue(id_val="custom.fillOpacity", value=0)]


def _prom_target(q: Q, ref: str, fmt: PromQueryFormat | None = None) -> prometheus.Dataquery:
    t = prometheus.Dataquery().expr(q.expr).ref_id(ref).datasource(PROMETHEUS.ref)
    if q.legend:
        t = t.legend_format(q.legend)
    if q.instant:
        t = t.instant().format(PromQueryFormat.TABLE)
    elif fmt:
        t = t.format(fmt)
    else:
        t = t.range()
    return t


def _loki_target(q: Q, ref: str) -> loki.Dataquery:
    t = loki.Dataquery().expr(q.expr).ref_id(ref).datasource(LOKI.ref)
    return t.legend_format(q.legend) if q.legend else t


def _refs(n: int) -> list[str]:
    return [chr(ord("A") + i) for i in range(n)]


# --- panels ----------------------------------------------------------------------------


@dataclass
class Panel:
    """A panel of a dashboard: the SDK builder plus what the generator knows about it."""

    builder: Builder[dm.Panel]
    needs: str | None = None  # an EXTERNAL_EXPORTERS key when the panel queries that exporter


def _common(p, title: str, description: str, unit: str, w: int, h: int, links: list | None):
    p = p.title(title).description(description).unit(unit).span(w).height(h)
    if links:
        p = p.links(links)
    return p


def _needs(description: str, needs: str | None) -> str:
    if needs is None:
        return description
    if needs not in EXTERNAL_EXPORTERS:
        raise KeyError(f"unknown exporter {needs!r}; known: {', '.join(EXTERNAL_EXPORTERS)}")
    return f"{description} Needs {EXTERNAL_EXPORTERS[needs]['what']}."


def timeseries_panel(title: str, queries: list[Q], *, unit: str, description: str, thresholds=None,
                     draw_thresholds: bool = False, w: int = 12, h: int = 8, links=None, stack: bool = False,
                     bars: bool = False, min_value: float | None = None, needs: str | None = None) -> Panel:
    p = timeseries.Panel().datasource(PROMETHEUS.ref)
    p = _common(p, title, _needs(description, needs), unit, w, h, links)
    for q, ref in zip(queries, _refs(len(queries))):
        p = p.with_target(_prom_target(q, ref))
        if q.limit:
            p = p.override_by_query(ref, LIMIT_LINE)
    p = p.thresholds(thresholds or steps(GREEN)).fill_opacity(10).line_width(1)
    p = p.legend(cb.VizLegendOptions().display_mode(cm.LegendDisplayMode.LIST).placement(cm.LegendPlacement.BOTTOM).show_legend(True))
    p = p.tooltip(cb.VizTooltipOptions().mode(cm.TooltipDisplayMode.MULTI).sort(cm.SortOrder.DESCENDING))
    if draw_thresholds:  # a fixed limit (not an alert's threshold: Q.limit lines of its series) dashed across the graph
        p = p.thresholds_style(cb.GraphThresholdsStyleConfig().mode(cm.GraphThresholdsStyleMode.DASHED))
    if stack:
        p = p.stacking(cb.StackingConfig().mode(cm.StackingMode.NORMAL)).fill_opacity(40)
    if bars:
        p = p.draw_style(cm.GraphDrawStyle.BARS).fill_opacity(60)
    if min_value is not None:
        p = p.min(min_value)
    return Panel(p, needs)


def stat_panel(title: str, queries: list[Q], *, unit: str, description: str, thresholds=None, mappings=None,
               w: int = 4, h: int = 4, links=None, decimals: int | None = None) -> Panel:
    p = stat.Panel().datasource(PROMETHEUS.ref)
    p = _common(p, title, description, unit, w, h, links)
    for q, ref in zip(queries, _refs(len(queries))):
        p = p.with_target(_prom_target(q, ref))
    p = p.thresholds(thresholds or steps(GREEN)).color_mode(cm.BigValueColorMode.BACKGROUND)
    p = p.graph_mode(cm.BigValueGraphMode.AREA).reduce_options(cb.ReduceDataOptions().calcs(["lastNotNull"]).values(False))
    if mappings:
        p = p.mappings(mappings)
    if decimals is not None:
        p = p.decimals(decimals)
    return Panel(p)


def state_panel(title: str, queries: list[Q], *, description: str, mappings, thresholds=None,
                w: int = 12, h: int = 6, links=None) -> Panel:
    """A state timeline: each series a row, coloured by its (mapped) state over time."""
    p = statetimeline.Panel().datasource(PROMETHEUS.ref)
    p = _common(p, title, description, "none", w, h, links)
    for q, ref in zip(queries, _refs(len(queries))):
        p = p.with_target(_prom_target(q, ref))
    p = p.mappings(mappings).thresholds(thresholds or steps(GREEN)).show_value(cm.VisibilityMode.NEVER)
    return Panel(p)


def table_panel(title: str, queries: list[Q], *, unit: str, description: str, thresholds=None,
                w: int = 12, h: int = 8, links=None) -> Panel:
    """An instant table: one row per series, labels as columns, the value last."""
    p = table.Panel().datasource(PROMETHEUS.ref)
    p = _common(p, title, description, unit, w, h, links)
    for q, ref in zip(queries, _refs(len(queries))):
        p = p.with_target(_prom_target(Q(q.expr, q.legend, instant=True), ref))
    p = p.thresholds(thresholds or steps(GREEN))
    p = p.with_transformation(dm.DataTransformerConfig(id_val="organize", options={
        "excludeByName": {"Time": True, "__name__": True, "instance": True, "job": True}}))
    return Panel(p)


def heatmap_panel(title: str, histogram: str, selector: str, *, unit: str, description: str,
                  w: int = 12, h: int = 9, links=None) -> Panel:
    """A latency heatmap straight from a histogram's buckets (Grafana does no bucketing itself)."""
    expr = f"sum by (le) ({rate(bucket(histogram), selector)})"
    p = heatmap.Panel().datasource(PROMETHEUS.ref)
    p = _common(p, title, description, unit, w, h, links)
    p = p.with_target(_prom_target(Q(expr, "{{le}}"), "A", PromQueryFormat.HEATMAP))
    p = p.calculate(False).y_axis(heatmap.YAxisConfig().unit(unit))
    p = p.color(heatmap.HeatmapColorOptions().mode(hm.HeatmapColorMode.SCHEME).scheme("Oranges")
                .scale(hm.HeatmapColorScale.EXPONENTIAL).exponent(0.5).steps(64).fill("dark-orange").reverse(False))
    p = p.cell_values(heatmap.CellValues().unit("reqps")).show_color_scale(True)
    p = p.rows_frame(heatmap.RowsHeatmapOptions().layout(cm.HeatmapCellLayout.LE))
    return Panel(p)


def logs_panel(title: str, expr: str, *, description: str, w: int = 24, h: int = 10, links=None,
               repeat: str | None = None) -> Panel:
    p = logs.Panel().datasource(LOKI.ref)
    p = _common(p, title, description, "none", w, h, links)
    p = p.with_target(_loki_target(Q(expr), "A"))
    p = p.show_time(True).show_labels(False).wrap_log_message(True).enable_log_details(True)
    p = p.sort_order(cm.LogsSortOrder.DESCENDING).dedup_strategy(cm.LogsDedupStrategy.NONE).prettify_log_message(False)
    if repeat:
        p = p.repeat(repeat).repeat_direction("v")
    return Panel(p)


def loki_timeseries_panel(title: str, queries: list[Q], *, unit: str, description: str, thresholds=None,
                          w: int = 12, h: int = 8, links=None, stack: bool = True) -> Panel:
    p = timeseries.Panel().datasource(LOKI.ref)
    p = _common(p, title, description, unit, w, h, links)
    for q, ref in zip(queries, _refs(len(queries))):
        p = p.with_target(_loki_target(q, ref))
    p = p.thresholds(thresholds or steps(GREEN)).draw_style(cm.GraphDrawStyle.BARS).fill_opacity(70)
    if stack:
        p = p.stacking(cb.StackingConfig().mode(cm.StackingMode.NORMAL))
    return Panel(p)


# --- variables, links, annotations -----------------------------------------------------


def prom_variable(name: str, label: str, metric: str, label_name: str | None = None) -> db.QueryVariable:
    """A multi-value variable over a label's values; "All" is ``.*`` so ``=~"$var"`` matches every series."""
    label_name = label_name or name
    query = f"label_values({series(metric)}, {label_name})"
    # qryType 1 is "label values"; Grafana's editor rebuilds the query from metric and label.
    return (db.QueryVariable(name).label(label).datasource(PROMETHEUS.ref)
            .query({"qryType": 1, "metric": series(metric), "label": label_name, "query": query,
                    "refId": "PrometheusVariableQueryEditor-VariableQuery"})
            .refresh(dm.VariableRefresh.ON_TIME_RANGE_CHANGED).sort(dm.VariableSort.ALPHABETICAL_ASC)
            .multi(True).include_all(True).all_value(".*")
            .current(dm.VariableOption(selected=True, text="All", value="$__all")))


def loki_variable(name: str, label: str, stream: str, label_name: str | None = None) -> db.QueryVariable:
    return (db.QueryVariable(name).label(label).datasource(LOKI.ref)
            .query({"type": 1, "label": label_name or name, "stream": stream, "refId": "LokiVariableQueryEditor-VariableQuery"})
            .refresh(dm.VariableRefresh.ON_TIME_RANGE_CHANGED).sort(dm.VariableSort.ALPHABETICAL_ASC)
            .multi(True).include_all(True).all_value(".*")
            .current(dm.VariableOption(selected=True, text="All", value="$__all")))


def custom_variable(name: str, label: str, values: list[str]) -> db.CustomVariable:
    return (db.CustomVariable(name).label(label).values(",".join(values)).multi(True).include_all(True)
            .all_value(".*").current(dm.VariableOption(selected=True, text="All", value="$__all")))


def link(title: str, url: str, *, tooltip: str = "", keep_time: bool = True, new_tab: bool = False) -> db.DashboardLink:
    return (db.DashboardLink(title).type(dm.DashboardLinkType.LINK).url(url).tooltip(tooltip or title)
            .keep_time(keep_time).include_vars(False).target_blank(new_tab).as_dropdown(False).icon("external link"))


def alert_annotation(name: str, alerts: list[str] | None, color: str) -> db.AnnotationQuery:
    """Firing alerts from Prometheus' ALERTS series: a region while each alert fires."""
    selector = 'alertstate="firing"'
    if alerts:
        selector += f', alertname=~"{"|".join(alerts)}"'
    else:
        selector += ', severity="critical"'
    a = (db.AnnotationQuery().name(name).datasource(PROMETHEUS.ref).enable(True).hide(False)
         .icon_color(color).expr(f"ALERTS{{{selector}}}"))
    return a


# --- Grafana's interpolation, for checking queries outside Grafana ---------------------

_VAR = re.compile(r"\$(\w+)|\$\{(\w+)(?::\w+)?\}|\[\[(\w+)\]\]")


def interpolate(expr: str, values: dict[str, str]) -> str:
    """Replace Grafana variables the way Grafana does before a query reaches its datasource.

    ``values`` maps a variable (``strategy``, ``__rate_interval``...) to its text; an
    unknown variable raises, so a query can never silently keep a ``$``.
    """

    def sub(mt: re.Match) -> str:
        name = mt.group(1) or mt.group(2) or mt.group(3)
        if name not in values:
            raise KeyError(f"variable ${name} has no value (known: {', '.join(sorted(values))}) in: {expr}")
        return values[name]

    return _VAR.sub(sub, expr)
