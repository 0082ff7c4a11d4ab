"""The notification text, from Alertmanager's webhook payload (HTML parse mode).

The same message the trader used to get from Alertmanager's Telegram template
(alertmanager/templates/telegram.tmpl): a header, one block per alert with its summary,
description and links (dashboard, runbook, silence), resolved alerts after. Every text from
an alert is HTML-escaped; fields are cut to fixed lengths. A notification is always ONE
message (one buzz, its buttons under all it shows): too many alerts for their full text, they
get a line each, and past that they are counted by name; none is dropped unsaid.
"""

from __future__ import annotations

import html
import ipaddress
import json
from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo
from urllib.parse import quote_plus, urlsplit

PART_BUDGET = 3600   # UTF-16 units of raw text per message: Telegram's 4096 visible, less room for the edit note
LINE_SUMMARY_CHARS = 100  # an alert's summary on its one line, when the full text does not fit
ICONS = {"critical": "🔴", "warning": "🟠"}
SUMMARY_CHARS, DESCRIPTION_CHARS = 200, 400  # each alert's text is cut here (the start says what and why)


LOCAL_ONLY_NOTE = ("ℹ️ Dashboard and silence links left out: {names} point at an address only this machine can open "
                   "(set them to ones the phone can reach; docs/telegram.md)")


def local_only(url: str) -> bool:
    """A base URL a phone cannot open (Telegram shows links to localhost as plain text): a
    loopback or unspecified address, localhost, or a bare host name (a container's)."""
    host = (urlsplit(url).hostname or "").lower()
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        return host == "localhost" or host.endswith(".localhost") or "." not in host
    return ip.is_loopback or ip.is_unspecified


@dataclass
class Links:
    """The external URLs of Grafana and Alertmanager (GRAFANA_URL, ALERTMANAGER_URL: the ones a
    browser uses, as Alertmanager's --web.external-url)."""

    grafana_url: str
    alertmanager_url: str

    @property
    def grafana_ok(self) -> bool:
        return not local_only(self.grafana_url)

    @property
    def alertmanager_ok(self) -> bool:
        return not local_only(self.alertmanager_url)

    def note(self) -> str | None:
        """Said once per page when a link had to be left out."""
        names = [n for n, ok in (("GRAFANA_URL", self.grafana_ok), ("ALERTMANAGER_URL", self.alertmanager_ok)) if not ok]
        return LOCAL_ONLY_NOTE.format(names=" and ".join(names)) if names else None


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
        dash = links.grafana_url + dash if links.grafana_ok else ""
    elif not dash.startswith(("http://", "https://")):
        dash = links.grafana_url if links.grafana_ok else ""
    elif local_only(dash):
        dash = ""
    if dash and len(dash) < 400:
        out.append(f'<a href="{html.escape(dash)}">dashboard</a>')
    rb = ann.get("runbook_url", "")
    if rb.startswith(("http://", "https://")) and len(rb) < 400 and not local_only(rb):
        out.append(f'<a href="{html.escape(rb)}">runbook</a>')
    if links.alertmanager_ok:
        flt = quote_plus(silence_filter(a.get("labels", {})), safe="")
        out.append(f'<a href="{html.escape(links.alertmanager_url)}/#/silences/new?filter={flt}">silence</a>')
    return " · ".join(out)


def blocks(payload: dict, links: Links) -> list[tuple[dict | None, list[str]]]:
    """Per alert, its labels (None for a resolved one) and its lines (firing first, then resolved)."""
    out: list[tuple[dict | None, list[str]]] = []
    for a in payload["alerts"]:
        if a["status"] != "firing":
            continue
        ann = a.get("annotations", {})
        name = _cut(a["labels"].get("alertname", ""), 80)
        lines = [f"<b>{name}</b> · {_cut(ann.get('summary', ''), SUMMARY_CHARS)}"]
        if ann.get("description"):
            lines.append(_cut(ann["description"], DESCRIPTION_CHARS).replace("\n", " "))
        shown = _links(a, links)
        if shown:
            lines.append(shown)
        out.append((a["labels"], lines))
    for a in payload["alerts"]:
        if a["status"] == "resolved":
            name = _cut(a["labels"].get("alertname", ""), 80)
            out.append((None, [f"✅ resolved: <b>{name}</b> · {_cut(a.get('annotations', {}).get('summary', ''), SUMMARY_CHARS)}"]))
    return out


def render(payload: dict, links: Links) -> list[str]:
    """The message: always one (see render_page)."""
    return render_page(payload, links)[0]


def render_page(payload: dict, links: Links) -> tuple[list[str], list[dict], bool]:
    """The message, the label sets of the firing alerts it shows (the page's buttons act on
    these, never on an alert the trader did not see), and whether it is short of the full text
    (its buttons then name how many they act on). Always ONE message, so a storm buzzes once
    and its buttons sit under everything it shows (four parts buzzed four times, with the
    buttons on the last only): each alert in full if that fits, else one line per alert, else
    the alerts counted by name (``digest_lines``)."""
    head = header(payload)
    firing = [a for a in payload["alerts"] if a["status"] == "firing"]
    resolved = [a for a in payload["alerts"] if a["status"] == "resolved"]
    note = links.note() if firing else None
    tail = "\n\n" + html.escape(note, quote=False) if note else ""
    full = "\n\n".join([head, *("\n".join(block) for _, block in blocks(payload, links))]) + tail
    if units(full) <= PART_BUDGET:
        return [full], [a["labels"] for a in firing], False
    lines = [_line(a) for a in firing] + [f"✅ resolved: {_line(a)}" for a in resolved]
    short = "\n".join([head, f"<i>{len(payload['alerts'])} alerts, one line each (the buttons act on all {len(firing)} firing)</i>",
                        *lines]) + tail
    if units(short) <= PART_BUDGET:
        return [short], [a["labels"] for a in firing], True
    listed, shown, more = digest_lines(firing, PART_BUDGET - units(head) - units(tail) - 400)
    done = digest_lines(resolved, 300)[0]
    text = "\n".join([head, f"<i>{len(payload['alerts'])} alerts, counted by name (the buttons act on the {len(shown)} listed)</i>",
                       *listed, *(f"✅ resolved: {x}" for x in done)])
    if more:
        where = f'<a href="{html.escape(links.alertmanager_url)}">Alertmanager</a>' if links.alertmanager_ok else "Alertmanager"
        text += f"\n… {more} more not listed: /alerts or {where}"
    return [text + tail], shown, True


def _line(a: dict) -> str:
    name = _cut(a["labels"].get("alertname", ""), 80)
    return f"<b>{name}</b> · {_cut(a.get('annotations', {}).get('summary', ''), LINE_SUMMARY_CHARS)}"


def digest_lines(alerts: list[dict], budget: int) -> tuple[list[str], list[dict], int]:
    """The alerts counted by name, critical first, then the most frequent: one line per name
    (``🔴 <b>Name</b> ×12``) while ``budget`` (UTF-16 units) allows. Returns the lines, the label
    sets of the alerts they count, and how many alerts did not fit."""
    by_name: dict[str, list[dict]] = {}
    for a in alerts:
        by_name.setdefault(a["labels"].get("alertname", ""), []).append(a)
    order = sorted(by_name.items(), key=lambda kv: (kv[1][0]["labels"].get("severity") != "critical", -len(kv[1]), kv[0]))
    lines: list[str] = []
    shown: list[dict] = []
    used = 0
    for name, group in order:
        icon = ICONS.get(group[0]["labels"].get("severity", ""), "🔵")
        line = f"{icon} <b>{_cut(name, 80)}</b> ×{len(group)}"
        if used + units(line) + 1 > budget:
            break
        used += units(line) + 1
        lines.append(line)
        shown.extend(a["labels"] for a in group)
    return lines, shown, len(alerts) - len(shown)


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
