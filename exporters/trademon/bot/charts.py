"""PNG line charts (matplotlib, Agg backend, no global pyplot state).

Each PNG carries what it plots in a ``tEXt`` chunk (key ``trademon-series``: per panel, per
series, the number of points and the last value; per panel, its limit lines), and the
query_range window it asked for, so a test can hold the picture against Prometheus without
reading pixels.
"""

from __future__ import annotations

import io
import json
from dataclasses import dataclass, field
from datetime import datetime
from zoneinfo import ZoneInfo

SERIES_KEY = "trademon-series"


@dataclass
class Panel:
    title: str
    series: dict[str, list[tuple[float, float]]]            # name -> [(unix time, value)]
    lines: list[tuple[str, float]] = field(default_factory=list)  # horizontal limits: (label, y)
    unit: str = ""


def chart(title: str, panels: list[Panel], zone: ZoneInfo, query: dict | None = None) -> bytes:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.dates import DateFormatter
    from matplotlib.figure import Figure

    fig = Figure(figsize=(8, 2.8 * len(panels) + 0.6), dpi=90)
    FigureCanvasAgg(fig)
    axes = fig.subplots(len(panels), 1, squeeze=False)[:, 0]
    meta: dict = {"query": query or {}, "panels": {}, "lines": {}}
    times = [t for p in panels for pts in p.series.values() for t, _ in pts]
    tick = "%H:%M:%S" if times and max(times) - min(times) < 600 else "%H:%M"  # minutes alone repeat on a short range
    for ax, p in zip(axes, panels):
        meta["panels"][p.title] = {}
        for name, points in sorted(p.series.items()):
            xs = [datetime.fromtimestamp(t, zone) for t, _ in points]
            ax.plot(xs, [v for _, v in points], label=name, linewidth=1.6)
            meta["panels"][p.title][name] = {"points": len(points), "last": points[-1][1] if points else None}
        meta["lines"][p.title] = [[label, y] for label, y in p.lines]
        for label, y in p.lines:
            ax.axhline(y, color="#d62728", linestyle="--", linewidth=1.2, label=label)
        if not p.series:
            ax.text(0.5, 0.5, "no data in Prometheus", ha="center", va="center", transform=ax.transAxes, color="#888")
        ax.set_title(p.title, fontsize=10, loc="left")
        ax.set_ylabel(p.unit)
        ax.grid(True, alpha=0.3)
        ax.xaxis.set_major_formatter(DateFormatter(tick, tz=zone))
        if p.series or p.lines:
            ax.legend(fontsize=8, loc="best")
    fig.suptitle(title, fontsize=11)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", metadata={SERIES_KEY: json.dumps(meta, sort_keys=True)})
    return buf.getvalue()


def warm_up() -> None:
    """Import matplotlib ahead of the first chart (the import is most of a first chart's second)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg  # noqa: F401
    from matplotlib.figure import Figure  # noqa: F401


def series_of(result: list[dict], label: str) -> dict[str, list[tuple[float, float]]]:
    """query_range result -> {label value: points}."""
    return {s["metric"].get(label, "?"): [(float(t), float(v)) for t, v in s["values"]] for s in result}


def png_series(png: bytes) -> dict:
    """What chart() wrote into the PNG (for tests and the benchmark)."""
    import struct

    pos, out = 8, {}
    while pos < len(png):
        (n,) = struct.unpack(">I", png[pos:pos + 4])
        kind = png[pos + 4:pos + 8]
        data = png[pos + 8:pos + 8 + n]
        if kind == b"tEXt":
            k, _, v = data.partition(b"\0")
            if k.decode("latin-1") == SERIES_KEY:
                out = json.loads(v.decode("latin-1"))
        pos += 12 + n
    return out
