"""The notification text, from Alertmanager's webhook payload (HTML parse mode).

The same message the trader used to get from Alertmanager's Telegram template
(alertmanager/templates/telegram.tmpl): a header, one block per alert with its summary,
description and links (dashboard, runbook, silence), resolved alerts after. Every text from
an alert is HTML-escaped; fields are cut to fixed lengths; and instead of dropping the alerts
that do not fit, the text is split into messages on line boundaries (each line is complete
markup, so no cut ever falls inside a tag), at most MAX_PARTS of them.
"""

from __future__ import annotations

import html
import json
from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo
from urllib.parse import quote_plus

PART_BUDGET = 3600   # UTF-16 units of raw text per message: Telegram's 4096 visible, less room for the edit note
MAX_PARTS = 4        # a storm is summarised, not sent as 50 messages (Telegram allows ~20/min per group)
ICONS = {"critical": "🔴", "warning": "🟠"}
SUMMARY_CHARS, DESCRIPTION_CHARS = 200, 400  # each alert's text is cut here (the start says what and why)


@dataclass
class Links:
    grafana_url: str
    alertmanager_url: str


def fmt_clock(t: float, zone: ZoneInfo) -> str:
    """A time on a page, in the trader's zone: the hour (and the day, for another day's)."""
    local = datetime.fromtimestamp(t, zone)
    today = datetime.now(zone).date() == local.date()
    return local.strftime("%H:%M %Z" if today else "%a %d %b %H:%M %Z")


def units(text: str) -> int:
    """Telegram counts UTF-16 code units."""
    return len(text.encode("utf-16-le")) // 2


def _cut(text: str, n: int) -> str:
    """Escape, cutting the text (not the escaped form) at n characters."""
    return html.escape(text[:n], quote=False) + ("…" if len(text) > n else "")


def severity_of(payload: dict) -> str:
    return payload.get("commonLabels", {}).get("severity") or payload.get("groupLabels", {}).get("severity") or "unknown"


def header(payload: dict) -> str:
    sev = severity_of(payload)
    firing = [a for a in payload["alerts"] if a["status"] == "firing"]
    resolved = [a for a in payload["alerts"] if a["status"] == "resolved"]
    if firing:
        h = f"{ICONS.get(sev, '🔵')} <b>{_cut(sev, 20).upper()}</b> · {len(firing)} firing"
        return h + (f", {len(resolved)} resolved" if resolved else "")
    return f"✅ <b>RESOLVED</b> · {_cut(sev, 20)} · {len(resolved)} alert(s)"


def _go_quote(s: str) -> str:
    return json.dumps(s, ensure_ascii=False)


def silence_filter(labels: dict) -> str:
    """The filter of the silence link: the alert's labels but severity, alertname first (as
    Alertmanager's SortedPairs orders them)."""
    pairs = sorted(labels.items(), key=lambda kv: (kv[0] != "alertname", kv[0]))
    f = "{" + ",".join(f"{k}={_go_quote(v)}" for k, v in pairs if k != "severity") + "}"
    return f if len(f) <= 300 else "{alertname=" + _go_quote(labels.get("alertname", "")) + "}"


def _links(a: dict, links: Links) -> str:
    ann = a.get("annotations", {})
    out = []
    dash = ann.get("dashboard_url") or ann.get("dashboard") or ""
    if dash.startswith("/"):
        dash = links.grafana_url + dash
    elif not dash.startswith(("http://", "https://")):
        dash = links.grafana_url
    if len(dash) < 400:
        out.append(f'<a href="{html.escape(dash)}">dashboard</a>')
    rb = ann.get("runbook_url", "")
    if rb.startswith(("http://", "https://")) and len(rb) < 400:
        out.append(f'<a href="{html.escape(rb)}">runbook</a>')
    flt = quote_plus(silence_filter(a.get("labels", {})), safe="")
    out.append(f'<a href="{html.escape(links.alertmanager_url)}/#/silences/new?filter={flt}">silence</a>')
    return " · ".join(out)


def blocks(payload: dict, links: Links) -> list[list[str]]:
    """Per alert, its lines (firing first, then resolved)."""
    out = []
    for a in payload["alerts"]:
        if a["status"] != "firing":
            continue
        ann = a.get("annotations", {})
        name = _cut(a["labels"].get("alertname", ""), 80)
        lines = [f"<b>{name}</b> · {_cut(ann.get('summary', ''), SUMMARY_CHARS)}"]
        if ann.get("description"):
            lines.append(_cut(ann["description"], DESCRIPTION_CHARS).replace("\n", " "))
        lines.append(_links(a, links))
        out.append(lines)
    for a in payload["alerts"]:
        if a["status"] == "resolved":
            name = _cut(a["labels"].get("alertname", ""), 80)
            out.append([f"✅ resolved: <b>{name}</b> · {_cut(a.get('annotations', {}).get('summary', ''), SUMMARY_CHARS)}"])
    return out


def render(payload: dict, links: Links) -> list[str]:
    """The message(s): one unless the alerts do not fit in one."""
    head = header(payload)
    parts: list[list[str]] = [[]]
    omitted = 0
    for block in blocks(payload, links):
        text = "\n".join(block)
        size = units(text) + 2
        cur = parts[-1]
        if units(head) + 20 + sum(units(t) + 2 for t in cur) + size > PART_BUDGET:
            if len(parts) == MAX_PARTS:
                omitted += 1
                continue
            parts.append([])
            cur = parts[-1]
        cur.append(text)
    out = []
    n = len(parts)
    for i, p in enumerate(parts, 1):
        h = head + (f" · {i}/{n}" if n > 1 else "")
        out.append("\n\n".join([h, *p]))
    if omitted:
        out[-1] += f"\n\n… {omitted} more not shown: <a href=\"{html.escape(links.alertmanager_url)}\">Alertmanager</a>"
    return out


def split_lines(text: str, budget: int = 4000) -> list[str]:
    """Any text (command answers) into messages at line boundaries; a line over the budget
    is cut (answers are built of short, self-contained lines)."""
    out, cur = [], ""
    for line in text.split("\n"):
        if units(line) > budget:
            line = line[: budget // 2]
        if cur and units(cur) + 1 + units(line) > budget:
            out.append(cur)
            cur = line
        else:
            cur = f"{cur}\n{line}" if cur else line
    if cur or not out:
        out.append(cur)
    return out
