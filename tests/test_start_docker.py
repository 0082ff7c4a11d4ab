"""scripts/start-docker.sh, the test command's engine step, run against stub commands (named
stubs: a `docker` CLI that answers only once a flag file exists, a `dockerd` that creates it and
exits, an `id` that says root or not). The real engine start runs in CI (tests/test_containers.py
fails without an engine); here each branch of the script is shown to do what it says."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "scripts" / "start-docker.sh"


def stubs(tmp: Path, *, uid: int, engine_up: bool, dockerd_starts: bool = True, debootstrap: bool = True) -> dict:
    bin_ = tmp / "bin"
    bin_.mkdir()
    flag = tmp / "engine-up"
    if engine_up:
        flag.touch()
    scripts = {
        "docker": f'#!/bin/sh\n[ "$1" = version ] && [ -e {flag} ] && echo 20.10.24 && exit 0\nexit 1\n',
        "id": f"#!/bin/sh\necho {uid}\n",
        "dockerd": f"#!/bin/sh\necho stub dockerd\n{'touch ' + str(flag) if dockerd_starts else 'echo refusing to start'}\n",
    }
    if debootstrap:
        scripts["debootstrap"] = "#!/bin/sh\nexit 0\n"
    for name, text in scripts.items():
        (bin_ / name).write_text(text)
        (bin_ / name).chmod(0o755)
    return {"PATH": f"{bin_}:/usr/bin:/bin", "TMPDIR": str(tmp), "TRADEMON_DOCKERD": str(bin_ / "dockerd"),
            "TRADEMON_DOCKERD_WAIT": "3", "HOME": str(tmp)}


def run(env: dict) -> subprocess.CompletedProcess:
    return subprocess.run(["bash", str(SCRIPT)], env=env, capture_output=True, text=True, timeout=30)


def test_engine_up_nothing_to_do(tmp_path):
    r = run(stubs(tmp_path, uid=1000, engine_up=True))
    assert r.returncode == 0 and r.stderr == ""


def test_root_starts_dockerd_and_waits_for_it(tmp_path):
    r = run(stubs(tmp_path, uid=0, engine_up=False))
    assert r.returncode == 0, r.stderr
    assert "starting" in r.stderr and (tmp_path / "engine-up").exists()
    assert "stub dockerd" in (tmp_path / "trademon-dockerd.log").read_text()


def test_an_engine_that_never_answers_fails_with_its_log(tmp_path):
    r = run(stubs(tmp_path, uid=0, engine_up=False, dockerd_starts=False))
    assert r.returncode == 1
    assert "did not answer within 3 s" in r.stderr and "refusing to start" in r.stderr


def test_not_root_says_what_is_missing_and_leaves_the_failure_to_the_tests(tmp_path):
    r = run(stubs(tmp_path, uid=1000, engine_up=False))
    assert r.returncode == 0 and "no Docker engine answers and not root" in r.stderr
    other = tmp_path / "without-debootstrap"
    other.mkdir()
    r = run(stubs(other, uid=1000, engine_up=False, debootstrap=False))
    assert r.returncode == 0 and "apt-get install debootstrap" in r.stderr


def test_the_test_command_starts_the_engine_before_pytest():
    lines = (ROOT / "scripts" / "test").read_text().splitlines()
    assert lines.index("scripts/start-docker.sh") < next(i for i, l in enumerate(lines) if "pytest" in l and l.startswith("exec"))
