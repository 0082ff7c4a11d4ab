"""The runbooks shipped with the stack (monitoring/runbooks.md), shown in the chat.

A page's 📖 button and ``/runbook <alertname>`` answer with the alert's section, so the
trader reads what to do on the phone that got the page: no browser, no repository to reach.
The file is read once at start; without it the bot logs so once and pages keep their links
only (a page never fails for a runbook).

Markdown -> Telegram HTML, line by line so ``render.split_lines`` can cut anywhere between
lines: everything escaped, headings and **bold** bold, `code` as <code>, bullets as •, table
rows as bullets, fenced blocks one <code> per line, http(s) links kept, other links as text.
"""

from __future__ import annotations

import hashlib
import html
import logging
import re
import textwrap
from collections.abc import Iterable
from pathlib import Path

from trademon.bot import render

log = logging.getLogger("trademon.bot.runbooks")

RELATIVE_PATH = Path("monitoring") / "runbooks.md"
MAX_BUTTONS = 5      # runbook buttons under one page (distinct alert names); the rest: /runbook
MAX_MESSAGES = 5     # one runbook answer, at most this many messages
MAX_SECTION_CHARS = 16000
LINE_UNITS = 3000    # a longer line (one huge paragraph) goes as plain text in pieces: split_lines would cut inside a tag

_HEADING = re.compile(r"(#{1,6})\s+(.+?)\s*#*\s*")
_FENCE = re.compile(r"\s*(```|~~~)")
_BULLET = re.compile(r"(\s*)[-*+]\s+(.*)")
_NUMBERED = re.compile(r"(\s*)(\d{1,3}[.)])\s+(.*)")
_TABLE_RULE = re.compile(r"\|?(\s*:?-{3,}:?\s*\|)+\s*:?-*:?\s*")
_CODE = re.compile(r"`([^`]+)`")
_BOLD = re.compile(r"\*\*(.+?)\*\*")
_LINK = re.compile(r"\[([^\]]+)\]\(([^)\s]+)\)")


def parse(text: str) -> dict[str, str]:
    """``## Name`` sections (outside fenced blocks) -> {Name: the markdown under the heading}."""
    sections: dict[str, list[str]] = {}
    cur: list[str] | None = None
    fenced = False
    for line in text.splitlines():
        if _FENCE.match(line):
            fenced = not fenced
        elif not fenced and line.startswith("#"):
            m = _HEADING.fullmatch(line)
            if m and len(m.group(1)) <= 2:  # a `#` or `##` heading ends the section; `###` is inside it
                cur = sections.setdefault(m.group(2), []) if len(m.group(1)) == 2 else None
                continue
        if cur is not None:
            cur.append(line)
    return {name: "\n".join(lines).strip("\n") for name, lines in sections.items()}


def key(name: str) -> str:
    """The short, fixed-length reference of a runbook in callback data (alert names can be
    long; Telegram allows 64 bytes)."""
    return hashlib.sha256(name.lower().encode()).hexdigest()[:12]


def _inline(text: str) -> str:
    codes: list[str] = []

    def stash(m: re.Match) -> str:
        codes.append(f"<code>{html.escape(m.group(1), quote=False)}</code>")
        return f"\x00{len(codes) - 1}\x00"

    out = html.escape(_CODE.sub(stash, text.replace("\x00", "")), quote=False)
    out = _BOLD.sub(r"<b>\1</b>", out)
    out = _LINK.sub(lambda m: f'<a href="{html.escape(html.unescape(m.group(2)))}">{m.group(1)}</a>'
                    if m.group(2).startswith(("http://", "https://")) else m.group(1), out)
    return re.sub(r"\x00(\d+)\x00", lambda m: codes[int(m.group(1))], out)


def _fit(line: str) -> list[str]:
    """A line too long for one message: as plain text, in pieces no cut can break (700
    characters escape to at most 3500, under split_lines' budget)."""
    if render.units(line) <= LINE_UNITS:
        return [line]
    plain = html.unescape(re.sub(r"<[^>]+>", "", line))
    return [html.escape(p, quote=False) for p in textwrap.wrap(plain, 700)]


def _cells(row: str) -> list[str]:
    return [c.strip() for c in row.strip().strip("|").split("|")]


def to_html(markdown: str) -> str:
    out: list[str] = []
    joinable = False  # the last line is a paragraph or bullet a wrapped line continues
    raw: list[str] = []  # its markdown, joined (so `code` or **bold** across a line break holds)
    prefix = ""
    fenced = False

    def flush() -> None:
        nonlocal raw
        if raw:
            out.append(prefix + _inline(" ".join(raw)))
            raw = []

    for line in markdown.splitlines():
        if _FENCE.match(line):
            flush()
            fenced, joinable = not fenced, False
            continue
        if fenced:
            out.append(f"<code>{html.escape(line, quote=False)}</code>" if line.strip() else "")
            continue
        stripped = line.strip()
        if not stripped:
            flush()
            joinable = False
            if out and out[-1] != "":
                out.append("")
            continue
        heading, bullet, numbered = _HEADING.fullmatch(stripped), _BULLET.fullmatch(line), _NUMBERED.fullmatch(line)
        if stripped.startswith("|"):
            flush()
            joinable = False
            if _TABLE_RULE.fullmatch(stripped):  # the header row above it becomes bold
                if out and out[-1].startswith("• "):
                    out[-1] = f"<b>{out[-1][2:]}</b>"
                continue
            out.append("• " + " — ".join(_inline(c) for c in _cells(stripped)))
        elif heading:
            flush()
            joinable = False
            out.append(f"<b>{_inline(heading.group(2))}</b>")
        elif bullet:
            flush()
            joinable, prefix, raw = True, f"{bullet.group(1)}• ", [bullet.group(2)]
        elif numbered:
            flush()
            joinable, prefix, raw = True, f"{numbered.group(1)}{numbered.group(2)} ", [numbered.group(3)]
        elif joinable:
            raw.append(stripped)
        else:
            flush()
            joinable, prefix, raw = True, "", [stripped]
    flush()
    while out and out[-1] == "":
        out.pop()
    return "\n".join(piece for line in out for piece in _fit(line))


class Runbooks:
    """The sections, looked up by alert name (case-insensitive) or by ``key``."""

    def __init__(self, sections: dict[str, str], source: Path | None = None):
        self.source = source
        self._by_name = {n.lower(): (n, md) for n, md in sections.items()}
        self._by_key = {key(n): n for n in sections}

    def names(self) -> list[str]:
        return [n for n, _ in self._by_name.values()]

    def find(self, name: str) -> tuple[str, str] | None:
        return self._by_name.get(name.lower())

    def by_key(self, k: str) -> str | None:
        return self._by_key.get(k)

    def for_alerts(self, alerts: Iterable[dict]) -> list[str]:
        """The runbooks of these alerts (label sets), each once, in order, at most MAX_BUTTONS."""
        out: list[str] = []
        for labels in alerts:
            found = self.find(str(labels.get("alertname", "")))
            if found and found[0] not in out:
                out.append(found[0])
        return out[:MAX_BUTTONS]

    def messages(self, name: str) -> list[str]:
        """The section as Telegram messages (HTML), or [] when there is none."""
        found = self.find(name)
        if not found:
            return []
        name, md = found
        text = f"📖 <b>Runbook: {html.escape(name, quote=False)}</b>\n\n" + to_html(md[:MAX_SECTION_CHARS])
        parts = render.split_lines(text)
        if len(parts) > MAX_MESSAGES:
            parts = parts[:MAX_MESSAGES]
            parts[-1] += "\n\n… cut here: the rest is in monitoring/runbooks.md"
        return parts


def load(config_root: Path) -> Runbooks:
    """<config_root>/monitoring/runbooks.md; without it (or unreadable) no runbooks, said once."""
    path = config_root / RELATIVE_PATH
    try:
        return Runbooks(parse(path.read_text(encoding="utf-8")), path)
    except (OSError, UnicodeDecodeError) as e:
        log.warning(f"runbooks: cannot read {path} ({type(e).__name__}): pages carry links only, no 📖 button and no /runbook answer; "
                    "mount monitoring/runbooks.md there (docker-compose.yml does) or set TRADEMON_BOT_CONFIG_ROOT",
                    extra={"path": str(path)})
        return Runbooks({}, None)
