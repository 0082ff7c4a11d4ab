"""Tested versions are shipped versions: scripts/versions.env names each engine's version once;
the compose pins, the installed binaries the suite runs and the docs (README, docs/) follow it."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
TOOLS = ROOT / ".tools" / "bin"


def versions() -> dict[str, str]:
    out = {}
    for line in (ROOT / "scripts" / "versions.env").read_text().splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            k, _, v = line.partition("=")
            out[k.strip()] = v.strip()
    return out


def compose_images() -> dict[str, str]:
    services = yaml.safe_load((ROOT / "docker-compose.yml").read_text())["services"]
    return {name: s["image"] for name, s in services.items() if "image" in s}


def test_compose_pins_the_tested_versions():
    v = versions()
    images = compose_images()
    assert images["prometheus"] == f"prom/prometheus:v{v['PROMETHEUS_VERSION']}"
    assert images["alertmanager"] == f"prom/alertmanager:v{v['ALERTMANAGER_VERSION']}"


@pytest.mark.promtool
@pytest.mark.amtool
@pytest.mark.compose
@pytest.mark.e2e  # also runs prometheus and alertmanager (--version)
def test_installed_binaries_are_the_pinned_versions():
    v = versions()
    for binary, want in (("prometheus", v["PROMETHEUS_VERSION"]), ("promtool", v["PROMETHEUS_VERSION"]),
                         ("alertmanager", v["ALERTMANAGER_VERSION"]), ("amtool", v["ALERTMANAGER_VERSION"])):
        out = subprocess.run([str(TOOLS / binary), "--version"], capture_output=True, text=True, timeout=20)
        got = re.search(r"\d+\.\d+\.\d+", out.stdout + out.stderr).group(0)
        assert got == want, f"{binary} {got} runs in the tests, scripts/versions.env pins {want}"
    out = subprocess.run([str(TOOLS / "docker-compose"), "version"], capture_output=True, text=True, timeout=20)
    assert f"version {v['DOCKER_COMPOSE_VERSION']}." in out.stdout
    # Debian's VictoriaMetrics build prints no version of its own: the installer records each package's.
    packages = dict(line.split(" ", 1) for line in (TOOLS.parent / "packages.txt").read_text().splitlines())
    assert packages["victoria-metrics"].startswith(f"{v['VICTORIA_METRICS_VERSION']}.")


def test_installer_reads_the_versions_file():
    script = (ROOT / "scripts" / "install-tools.sh").read_text()
    assert ". \"$root/scripts/versions.env\"" in script
    # No version literal of its own: the file is the one place.
    assert not re.search(r"\b(3\.5\.3|0\.33\.1|2\.53|0\.28)\b", script)


@pytest.mark.parametrize("doc", ["README.md", "docs/operations.md", "docs/development.md"])
def test_readme_names_the_pinned_versions(doc):
    """The README and the pages that name the shipped versions (upgrade, development)."""
    v = versions()
    readme = (ROOT / doc).read_text()
    for name, key in (("Prometheus", "PROMETHEUS_VERSION"), ("Alertmanager", "ALERTMANAGER_VERSION")):
        mentioned = set(re.findall(rf"{name} v?(\d+\.\d+(?:\.\d+)?)", readme))
        assert mentioned, f"{doc} names no {name} version"
        stale = {m for m in mentioned if not v[key].startswith(m)}
        assert not stale, f"{doc} names {name} {sorted(stale)}, scripts/versions.env pins {v[key]}"
