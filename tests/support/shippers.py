"""What Promtail and Alloy would ship, for the stages that change a line: their ``replace``
stages, applied in Python as the shippers apply them (every capture group of every match
replaced, RE2 expressions; the ones used here mean the same in Python's ``re`` with ASCII
classes, and tests/test_logging_configs.py has Go's regexp compiler (through promtool) accept
each). Neither shipper runs on this machine, so this is the stand-in for their pipelines."""

from __future__ import annotations

import json
import re
from pathlib import Path

import yaml

from trademon.runtime.redaction import replace_groups

ROOT = Path(__file__).resolve().parents[2]


def promtail_replace_stages(job: str) -> list[tuple[str, str]]:
    cfg = yaml.safe_load((ROOT / "promtail" / "promtail.yml").read_text())
    (sc,) = [s for s in cfg["scrape_configs"] if s["job_name"] == job]
    return [(s["replace"]["expression"], s["replace"]["replace"]) for s in sc["pipeline_stages"] if "replace" in s]


def alloy_replace_stages() -> list[tuple[str, str]]:
    """The stage.replace blocks of alloy/config.alloy, in order (every line passes loki.process "trademon_json")."""
    text = (ROOT / "alloy" / "config.alloy").read_text()
    out = []
    for body in re.findall(r"(?ms)stage\.replace\s*\{\n(.*?)^\s*\}\s*$", text):  # expressions hold braces: end at a lone }
        expr = re.search(r'^\s*expression\s*=\s*(".*")\s*$', body, re.M)[1]
        repl = re.search(r'^\s*replace\s*=\s*(".*")\s*$', body, re.M)[1]
        out.append((json.loads(expr), json.loads(repl)))  # Alloy's string escapes are JSON's for these
    return out


def ship(line: str, stages: list[tuple[str, str]]) -> str:
    for expr, repl in stages:
        line = replace_groups(re.compile(expr, re.ASCII), line, repl)
    return line


def shipped_by_both(text: str) -> dict[str, str]:
    """``text`` (many lines) as Promtail's containers job and Alloy would each ship it."""
    lines = text.splitlines()
    return {
        "promtail": "\n".join(ship(line, promtail_replace_stages("containers")) for line in lines),
        "promtail-files": "\n".join(ship(line, promtail_replace_stages("trading-files")) for line in lines),
        "alloy": "\n".join(ship(line, alloy_replace_stages()) for line in lines),
    }
