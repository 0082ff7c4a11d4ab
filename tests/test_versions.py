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


def compose_images(name: str = "docker-compose.yml") -> dict[str, str]:
    services = yaml.safe_load((ROOT / name).read_text())["services"]
    return {name: s["image"] for name, s in services.items() if "image" in s}


def test_compose_images_are_settings_whose_defaults_are_the_tested_versions():
    """A setting (${X_IMAGE:-default}) so that the test's stand-ins, or a mirror, run under names
    of their own; the default is what the suite tests (scripts/versions.env)."""
    v = versions()
    want = {"prometheus": f"${{PROMETHEUS_IMAGE:-prom/prometheus:v{v['PROMETHEUS_VERSION']}}}",
            "alertmanager": f"${{ALERTMANAGER_IMAGE:-prom/alertmanager:v{v['ALERTMANAGER_VERSION']}}}"}
    assert {k: compose_images()[k] for k in want} == want
    ha = compose_images("docker-compose.ha.yml")  # the second nodes, same settings
    assert (ha["prometheus-b"], ha["alertmanager-b"]) == (want["prometheus"], want["alertmanager"])
    version = re.search(r'^version = "([^"]+)"', (ROOT / "pyproject.toml").read_text(), re.M).group(1)
    assert compose_images()["alert-sink"] == f"${{TRADEMON_IMAGE:-trademon:{version}}}"


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


def test_prometheus_docs_say_the_upstream_support_status():
    """The tested line's support status and the supported LTS, as scripts/versions.env names
    them, are what docs/prometheus3.md tells, with what to check before moving."""
    v = versions()
    doc = (ROOT / "docs" / "prometheus3.md").read_text()
    tested_line = ".".join(v["PROMETHEUS_VERSION"].split(".")[:2])
    assert f"Prometheus {tested_line} LTS line left upstream support on {v['PROMETHEUS_SUPPORT_ENDED']}" in doc
    assert f"supports now is **{v['PROMETHEUS_SUPPORTED_LTS']}**" in doc
    assert f"### Before moving to {v['PROMETHEUS_SUPPORTED_LTS']} LTS" in doc
    assert f"`PROMETHEUS_IMAGE` in `.env` (default `prom/prometheus:v{v['PROMETHEUS_VERSION']}`" in doc
    # The checks the doc sends the reader to exist.
    for path in ("tests/test_prometheus3.py", "tests/test_dashboards_live.py", "tests/test_versions.py"):
        assert path in doc and (ROOT / path).exists(), path
