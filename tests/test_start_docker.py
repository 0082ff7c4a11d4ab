"""scripts/start-docker.sh, the test command's engine step, and scripts/with-docker.sh, which
stops the engine it started when the suite ends, run against stub commands (named stubs: a
`docker` CLI that answers only once a flag file exists and has `compose` only once another does,
a `dockerd` that creates the flag and keeps running until SIGTERM, an `id` that says root or not,
`apt-get`/`apt-cache` that record what they were asked). The machine's own engine is never
touched: TRADEMON_DOCKERD points at the stub, and the stub `docker` is first on PATH. The real
engine start runs in CI (tests/test_containers.py fails without an engine); here each branch of
the scripts is shown to do what it says."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "scripts" / "start-docker.sh"
WITH_DOCKER = ROOT / "scripts" / "with-docker.sh"


def stubs(tmp: Path, *, uid: int, engine_up: bool, dockerd_starts: bool = True, debootstrap: bool = True,
          compose: bool = True, apt_compose: str = "1.29.2-3") -> dict:
    bin_ = tmp / "bin"
    bin_.mkdir()
    flag, compose_flag, apt_log = tmp / "engine-up", tmp / "compose-plugin", tmp / "apt.log"
    if engine_up:
        flag.touch()
    if compose:
        compose_flag.touch()
    # The stub dockerd stays up, as the real one does, until SIGTERM (then it takes the engine down).
    dockerd = (f"touch {flag}\ntrap 'rm -f {flag}; exit 0' TERM\nwhile :; do sleep 0.1; done\n" if dockerd_starts
               else "echo refusing to start\n")
    scripts = {
        "docker": (f'#!/bin/sh\n[ "$1" = version ] && [ -e {flag} ] && echo 20.10.24 && exit 0\n'
                   f'[ "$1 $2" = "compose version" ] && [ -e {compose_flag} ] && echo v2.40.0 && exit 0\nexit 1\n'),
        "id": f"#!/bin/sh\necho {uid}\n",
        "dockerd": f"#!/bin/sh\necho stub dockerd\n{dockerd}",
        "apt-get": f'#!/bin/sh\necho "apt-get $*" >> {apt_log}\ncase "$*" in *docker-compose*) touch {compose_flag};; esac\n',
        "apt-cache": f"#!/bin/sh\necho 'docker-compose:'\necho '  Installed: (none)'\necho '  Candidate: {apt_compose}'\n",
    }
    if debootstrap:
        scripts["debootstrap"] = "#!/bin/sh\nexit 0\n"
    for name, text in scripts.items():
        (bin_ / name).write_text(text)
        (bin_ / name).chmod(0o755)
    plugin = tmp / "pinned-docker-compose"
    plugin.write_text("#!/bin/sh\necho stub compose v2\n")
    plugin.chmod(0o755)
    return {"PATH": f"{bin_}:/usr/bin:/bin", "TMPDIR": str(tmp),
            "TRADEMON_DOCKERD_LOG": str(tmp / "trademon-dockerd.log"), "TRADEMON_DOCKERD": str(bin_ / "dockerd"),
            "TRADEMON_DOCKERD_WAIT": "3", "TRADEMON_DOCKERD_STOP_WAIT": "5", "HOME": str(tmp),
            "TRADEMON_COMPOSE_PLUGIN_DIR": str(tmp / "cli-plugins"), "TRADEMON_COMPOSE_PLUGIN": str(plugin)}


def run(env: dict, script: Path = SCRIPT, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(["bash", str(script), *args], env=env, capture_output=True, text=True, timeout=30)


def stub_dockerds(env: dict) -> list[int]:
    """Pids of processes running this test's stub dockerd."""
    found = []
    for proc in Path("/proc").iterdir():
        try:
            if proc.name.isdigit() and env["TRADEMON_DOCKERD"].encode() in (proc / "cmdline").read_bytes():
                found.append(int(proc.name))
        except OSError:
            continue
    return found


def test_engine_up_nothing_to_do(tmp_path):
    r = run(stubs(tmp_path, uid=1000, engine_up=True))
    assert r.returncode == 0 and r.stderr == ""


def test_root_starts_dockerd_and_waits_for_it(tmp_path):
    env = stubs(tmp_path, uid=0, engine_up=False)
    try:
        r = run(env)
        assert r.returncode == 0, r.stderr
        assert "starting" in r.stderr and (tmp_path / "engine-up").exists()
        assert "stub dockerd" in (tmp_path / "trademon-dockerd.log").read_text()
    finally:
        for pid in stub_dockerds(env):
            os.kill(pid, signal.SIGTERM)


def test_an_engine_that_never_answers_fails_with_its_log(tmp_path):
    env = {**stubs(tmp_path, uid=0, engine_up=False, dockerd_starts=False), "TRADEMON_DOCKERD_WAIT": "1"}  # waited out in full
    r = run(env)
    assert r.returncode == 1
    assert "did not answer within 1 s" in r.stderr and "refusing to start" in r.stderr


def test_not_root_says_what_is_missing_and_leaves_the_failure_to_the_tests(tmp_path):
    r = run(stubs(tmp_path, uid=1000, engine_up=False))
    assert r.returncode == 0 and "no Docker engine answers and not root" in r.stderr
    other = tmp_path / "without-debootstrap"
    other.mkdir()
    r = run(stubs(other, uid=1000, engine_up=False, debootstrap=False))
    assert r.returncode == 0 and "apt-get install debootstrap" in r.stderr


def test_the_test_command_runs_the_suite_inside_with_docker():
    lines = (ROOT / "scripts" / "test").read_text().splitlines()
    suite = next(ln for ln in lines if "pytest" in ln and ln.startswith("exec"))
    assert suite.startswith("exec scripts/with-docker.sh python3 -m pytest ")
    assert "scripts/start-docker.sh" not in [ln.strip() for ln in lines], "started outside with-docker: never stopped"


# --- the compose v2 plugin ------------------------------------------------------------------

def test_compose_v2_from_debian_where_its_package_is_v2(tmp_path):
    env = stubs(tmp_path, uid=0, engine_up=True, compose=False, apt_compose="2.26.1-4")
    r = run(env)
    assert r.returncode == 0, r.stderr
    assert "apt-get -qq install -y docker-compose" in (tmp_path / "apt.log").read_text()
    assert not (tmp_path / "cli-plugins").exists()


def test_compose_v2_pinned_plugin_where_debian_has_only_v1(tmp_path):
    env = stubs(tmp_path, uid=0, engine_up=True, compose=False, apt_compose="1.29.2-3")
    r = run(env)
    assert r.returncode == 0, r.stderr
    plugin = tmp_path / "cli-plugins" / "docker-compose"
    assert plugin.read_text() == Path(env["TRADEMON_COMPOSE_PLUGIN"]).read_text() and os.access(plugin, os.X_OK)
    assert not (tmp_path / "apt.log").exists() or "docker-compose" not in (tmp_path / "apt.log").read_text()


def test_compose_missing_not_root_says_how_to_get_it(tmp_path):
    r = run(stubs(tmp_path, uid=1000, engine_up=True, compose=False))
    assert r.returncode == 0 and "apt-get install docker-compose" in r.stderr and "cli-plugins" in r.stderr
    assert not (tmp_path / "cli-plugins").exists()


def test_compose_present_nothing_installed(tmp_path):
    r = run(stubs(tmp_path, uid=0, engine_up=True))
    assert r.returncode == 0 and r.stderr == "" and not (tmp_path / "apt.log").exists()


# --- with-docker.sh: the engine the suite started is stopped ------------------------------------

def test_with_docker_stops_the_engine_it_started(tmp_path):
    env = stubs(tmp_path, uid=0, engine_up=False)
    r = run(env, WITH_DOCKER, "sh", "-c", f"test -e {tmp_path / 'engine-up'} && echo engine answered")
    assert r.returncode == 0, r.stderr
    assert "engine answered" in r.stdout and "stopping the dockerd this command started" in r.stderr
    assert stub_dockerds(env) == [] and not (tmp_path / "engine-up").exists()
    assert not list(tmp_path.glob("trademon-dockerd.??????")), "pid file left behind"


def test_with_docker_keeps_the_commands_failure_and_still_stops(tmp_path):
    env = stubs(tmp_path, uid=0, engine_up=False)
    r = run(env, WITH_DOCKER, "sh", "-c", "exit 3")
    assert r.returncode == 3
    assert stub_dockerds(env) == []


def test_with_docker_stops_it_on_ctrl_c(tmp_path):
    env = stubs(tmp_path, uid=0, engine_up=False)
    proc = subprocess.Popen(["bash", str(WITH_DOCKER), "sleep", "30"], env=env, start_new_session=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 10
        while not (tmp_path / "engine-up").exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert stub_dockerds(env), "the stub engine never started"
        os.killpg(proc.pid, signal.SIGINT)  # what a terminal's Ctrl-C sends: the whole foreground group
        proc.wait(timeout=15)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
        for pid in stub_dockerds(env):
            os.kill(pid, signal.SIGKILL)
    assert proc.returncode == 130
    assert stub_dockerds(env) == []


def test_with_docker_leaves_an_engine_already_running_alone(tmp_path):
    env = stubs(tmp_path, uid=0, engine_up=False)
    already = subprocess.Popen(["sh", env["TRADEMON_DOCKERD"]], env=env, stdout=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 10
        while not (tmp_path / "engine-up").exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        r = run(env, WITH_DOCKER, "true")
        assert r.returncode == 0 and "stopping" not in r.stderr and "starting" not in r.stderr, r.stderr
        assert already.poll() is None and stub_dockerds(env) == [already.pid]
    finally:
        already.terminate()
        already.wait(timeout=10)
