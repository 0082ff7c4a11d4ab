"""The dashboards' host matcher (exporters/trademon/gen/hostfilter.py): every series selector
gets it, nothing else does (function names, aggregations, label lists, strings, ranges)."""

from pathlib import Path

import pytest
from trademon.gen import dashboard_queries as dq
from trademon.gen.hostfilter import MATCHER, with_host

ROOT = Path(__file__).resolve().parents[1]
H = MATCHER


@pytest.mark.parametrize("expr,want", [
    ("up", f"up{{{H}}}"),
    ('max by (job) (up{job=~"$job"})', f'max by (job) (up{{{H}, job=~"$job"}})'),
    ("histogram_quantile(0.99, sum by (le) (rate(a_bucket[$__rate_interval])))",
     f"histogram_quantile(0.99, sum by (le) (rate(a_bucket{{{H}}}[$__rate_interval])))"),
    ("time() - a_seconds", f"time() - a_seconds{{{H}}}"),
    ("sum(a) / on(job) group_left(x) b offset 5m > 1e3", f"sum(a{{{H}}}) / on(job) group_left(x) b{{{H}}} offset 5m > 1e3"),
    ('count_values("le", a{}) or vector(0)', f'count_values("le", a{{{H}}}) or vector(0)'),
    ('{__name__="up"}', f'{{{H}, __name__="up"}}'),
    ('a{b="{c} d"}', f'a{{{H}, b="{{c}} d"}}'),
    ("sum without (instance) (rate(a[5m:1m]))", f"sum without (instance) (rate(a{{{H}}}[5m:1m]))"),
    ("a $ b", f"a{{{H}}} $ b{{{H}}}"),  # a $ that starts no variable is kept as it is, not a crash
])
def test_every_selector_gets_the_matcher_and_nothing_else(expr, want):
    assert with_host(expr) == want


def test_every_prometheus_query_of_the_dashboards_selects_the_host():
    for doc in dq.load(ROOT):
        names = {v["name"] for v in doc.get("templating", {}).get("list", [])}
        for q in dq.queries(doc):
            if q.lang == "promql" and q.kind in ("panel", "annotation"):
                if doc["uid"] == "trademon-logs":
                    assert "$host" not in q.expr  # no host variable there
                else:
                    assert "host" in names and H in q.expr, str(q)
