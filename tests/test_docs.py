"""The documentation holds together: every relative Markdown link of the README and the pages
(README.md, docs/, every tracked .md) points at a file that exists and, with an anchor, at a
heading of that file; the README stays a five-minute read; its figures are the pages' figures."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

FENCE = re.compile(r"^(```|~~~).*?^\1", re.S | re.M)
CODE = re.compile(r"`[^`\n]*`")
LINK = re.compile(r"!?\[((?:[^\[\]]|\[[^\]]*\])*)\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")


def markdown_files() -> list[str]:
    out = subprocess.run(["git", "ls-files", "*.md"], cwd=ROOT, capture_output=True, text=True, check=True).stdout.split()
    return sorted(set(out) | {"README.md"} | {str(p.relative_to(ROOT)) for p in (ROOT / "docs").glob("*.md")})


def prose(text: str) -> str:
    """The text without fenced code blocks and code spans: a link written as code is no link."""
    return CODE.sub("", FENCE.sub("", text))


def slug(heading: str) -> str:
    """GitHub's anchor for a heading: the rendered text in lower case, punctuation dropped, spaces as hyphens."""
    text = LINK.sub(lambda m: m.group(1), heading).strip().lower()
    return re.sub(r"[^\w\- ]", "", text).replace(" ", "-")


def anchors(path: Path) -> set[str]:
    seen: dict[str, int] = {}
    out = set()
    for line in FENCE.sub("", path.read_text(encoding="utf-8")).splitlines():
        m = re.match(r"^#{1,6}\s+(.*?)\s*#*\s*$", line)
        if not m:
            continue
        base = slug(m.group(1))
        n = seen.get(base, 0)
        seen[base] = n + 1
        out.add(base if n == 0 else f"{base}-{n}")
    return out


def broken_links(rel: str, root: Path = ROOT) -> list[str]:
    source = root / rel
    problems = []
    for _, target in LINK.findall(prose(source.read_text(encoding="utf-8"))):
        if re.match(r"^[a-z][a-z0-9+.-]*:", target, re.I):  # http:, https:, mailto:: not checked here
            continue
        path_part, _, anchor = target.partition("#")
        dest = (source.parent / path_part).resolve() if path_part else source
        if not dest.exists():
            problems.append(f"{rel}: link to {target}: no file {path_part}")
        elif anchor and dest.suffix == ".md" and anchor not in anchors(dest):
            problems.append(f"{rel}: link to {target}: {dest.relative_to(root)} has no heading #{anchor}")
    return problems


def test_slugs_follow_github():
    assert slug("Without Docker (`trademon native`)") == "without-docker-trademon-native"
    assert slug("Adding Telegram, Slack or email") == "adding-telegram-slack-or-email"
    assert slug("Market hours and IB's schedule") == "market-hours-and-ibs-schedule"
    assert slug("Why Alertmanager sends to the bot, and why a page is not lost") == "why-alertmanager-sends-to-the-bot-and-why-a-page-is-not-lost"


def test_the_checker_finds_a_broken_link_and_a_missing_anchor(tmp_path):
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "a.md").write_text("# A\n\n## Two words\n")
    (tmp_path / "README.md").write_text("[ok](docs/a.md#two-words) [gone](docs/b.md) [no](docs/a.md#three) "
                                        "`[code](nowhere.md)` [web](https://example.org/x) [self](#a)\n\n```\n[x](y.md)\n```\n")
    assert broken_links("README.md", tmp_path) == ["README.md: link to docs/b.md: no file docs/b.md",
                                         "README.md: link to docs/a.md#three: docs/a.md has no heading #three",
                                         "README.md: link to #a: README.md has no heading #a"]


@pytest.mark.parametrize("rel", markdown_files())
def test_every_relative_link_resolves(rel):
    assert broken_links(rel) == []


def test_the_readme_is_a_five_minute_read():
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    assert len(text.splitlines()) <= 400, "README.md: move the detail to a page in docs/ and link it"
    first_screen = "\n".join(text.splitlines()[:40])
    assert "docker compose --profile demo up -d" in first_screen and "scripts/test" in first_screen


def test_every_page_in_docs_is_in_the_readme_map():
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    listed = {m for m in re.findall(r"^\| \[docs/([\w.-]+\.md)\]", text, re.M)}
    assert listed == {p.name for p in (ROOT / "docs").glob("*.md")}


def test_the_readme_figures_are_the_pages_figures():
    """Each number in the README's figures table is in the page its row links to."""
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    table = text[text.index("| what | figure | where |"):].split("\n\n", 1)[0].splitlines()[2:]
    assert len(table) >= 5
    for row in table:
        _, figure, where = (c.strip() for c in row.strip("|").split("|"))
        page = (ROOT / re.search(r"\]\(([^)#]+)", where).group(1)).read_text(encoding="utf-8")
        for number in re.findall(r"\d[\d,.]*\d|\d", figure):
            assert number in page, f"README figure {number!r} ({figure}) is not in {where}"


def test_the_readme_names_every_scenario():
    """The quick start's list of scenarios is the simulator's (trademon.sim.scenarios)."""
    from trademon.sim.scenarios import SCENARIOS

    line = next(line for line in (ROOT / "README.md").read_text(encoding="utf-8").split("\n\n") if line.startswith("Scenarios:"))
    assert re.findall(r"`([a-z-]+)`", line.split(";")[0]) == list(SCENARIOS), line
