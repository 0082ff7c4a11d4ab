"""The dashboards' ``host`` selection: a ``host`` matcher added to every series selector of a
PromQL expression, so one dashboard shows one trading host, several, or all of them when
several Prometheus servers write into one store (docs/scaling-out.md).

``host`` is an external label: a single Prometheus never has it on its own series, and
``host=~".*"`` (the variable's "All") matches a series without the label too, so on the
single-host stack the matcher changes nothing.

A small scanner, not a full parser: it knows strings, range and subquery brackets, label
matchers, function calls and the label lists of ``by``/``without``/``on``/``ignoring``/
``group_left``/``group_right``, which is all PromQL puts identifiers in. The dashboard tests
parse every resulting query with Prometheus' own grammar and run it against Prometheus and
VictoriaMetrics.
"""

from __future__ import annotations

import re

VARIABLE = "host"
MATCHER = 'host=~"$host"'

_KEYWORDS = {"by", "without", "on", "ignoring", "group_left", "group_right", "bool", "offset", "and", "or", "unless",
             "inf", "nan", "atan2"}
# Aggregations may be followed by `by (...)` before their parenthesis.
_KEYWORDS |= {"sum", "min", "max", "avg", "group", "stddev", "stdvar", "count", "count_values", "bottomk", "topk",
              "quantile", "limitk", "limit_ratio"}
_LABEL_LIST = {"by", "without", "on", "ignoring", "group_left", "group_right"}
_IDENT = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*")
_VARIABLE = re.compile(r"\$\{?\w+\}?")


def _skip_string(s: str, i: int) -> int:
    quote = s[i]
    i += 1
    while s[i] != quote:
        i += 2 if s[i] == "\\" else 1
    return i + 1


def _block_end(s: str, i: int) -> int:
    """The index after the ``}`` closing the matcher block opened at ``i``."""
    i += 1
    while s[i] != "}":
        i = _skip_string(s, i) if s[i] in "\"'`" else i + 1
    return i + 1


def _selector(matcher: str, block: str) -> str:
    """``block`` (``{...}``) with ``matcher`` first."""
    inner = block[1:-1]
    return "{" + matcher + (", " + inner.strip() if inner.strip() else "") + "}"


def _next_char(s: str, i: int) -> str:
    while i < len(s) and s[i].isspace():
        i += 1
    return s[i] if i < len(s) else ""


def with_host(expr: str, matcher: str = MATCHER) -> str:
    """``expr`` with ``matcher`` in every series selector."""
    out, i = [], 0
    while i < len(expr):
        c = expr[i]
        if c in "\"'`":
            j = _skip_string(expr, i)
            out.append(expr[i:j])
            i = j
        elif c == "[":  # a range or subquery: durations and variables, no selector
            j = expr.index("]", i) + 1
            out.append(expr[i:j])
            i = j
        elif c == "{":  # a selector without a metric name
            j = _block_end(expr, i)
            out.append(_selector(matcher, expr[i:j]))
            i = j
        elif c == "$" and (m := _VARIABLE.match(expr, i)):  # a Grafana variable ($__interval): not an identifier
            out.append(m.group(0))
            i = m.end()
        elif (m := _IDENT.match(expr, i)) and not (i and (expr[i - 1].isalnum() or expr[i - 1] in "._")):
            word, j = m.group(0), m.end()
            nxt = _next_char(expr, j)
            if word.lower() in _KEYWORDS or nxt == "(":
                out.append(word)
                i = j
                if word.lower() in _LABEL_LIST:  # its label list is not a selector
                    k = expr.index("(", j)
                    close = expr.index(")", k) + 1
                    out.append(expr[j:close])
                    i = close
                continue
            if nxt == "{":
                k = expr.index("{", j)
                end = _block_end(expr, k)
                out.append(word + _selector(matcher, expr[k:end]))
                i = end
            else:
                out.append(word + "{" + matcher + "}")
                i = j
        else:
            out.append(c)
            i += 1
    return "".join(out)


def apply(doc: dict) -> dict:
    """Every Prometheus query of a built dashboard (panels, rows' panels, annotations) with the
    host matcher. Selected by datasource type, so a datasource variable leaves it working."""
    def rewrite(target: dict, ds: dict | None) -> None:
        if "expr" in target and (target.get("datasource") or ds or {}).get("type") == "prometheus":
            target["expr"] = with_host(target["expr"])

    for panel in doc.get("panels", []):
        for sub in [panel, *panel.get("panels", [])]:
            for t in sub.get("targets", []):
                rewrite(t, sub.get("datasource"))
    for a in doc.get("annotations", {}).get("list", []):
        rewrite(a, None)
    return doc
