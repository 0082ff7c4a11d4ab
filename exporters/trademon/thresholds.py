"""The alert thresholds (prometheus/thresholds.yml), for the rule and dashboard generators."""

from __future__ import annotations

from pathlib import Path

import yaml


def load(root: Path) -> dict:
    path = root / "prometheus" / "thresholds.yml"
    with open(path, encoding="utf-8") as f:
        data = yaml.safe_load(f) or {}
    if not isinstance(data, dict):
        raise ValueError(f"{path}: expected a mapping of threshold names to values")
    return data
