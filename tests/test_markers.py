"""The markers say what a test needs: a unit test that starts a binary (promtool, amtool,
docker-compose, node, ...) or a service of the stack fails, naming the marker to add, so the
unit subset keeps running on a machine with none of them (tests/conftest.py)."""

from __future__ import annotations

import subprocess
import sys

import pytest

import conftest


class Item:
    """What the guard reads of a pytest item."""

    def __init__(self, marks: set[str]):
        self.nodeid = "tests/test_x.py::test_y"
        self.marks = marks

    def get_closest_marker(self, name):
        return name if name in self.marks else None


@pytest.mark.parametrize("cmd, program, marker", [
    (["/repo/.tools/bin/promtool", "test", "rules", "x.yml"], "promtool", "promtool"),
    (["amtool", "config", "routes", "test"], "amtool", "amtool"),
    (["/repo/.tools/bin/docker-compose", "config", "-q"], "docker-compose", "compose"),
    (["node", "parse.mjs"], "node", "node"),
    (["bash", "-euo", "pipefail", "-c", "cd /x && promtool check config p.yml"], "promtool", "promtool"),
    ("npm ci --prefix tools/logql", "npm", "node"),
    ([sys.executable, "-m", "trademon", "sim", "--speed", "30"], "trademon sim", "e2e"),
    (["/usr/bin/prometheus", "--config.file=p.yml"], "prometheus", "e2e"),
])
def test_a_unit_test_starting_a_binary_fails_naming_the_marker(cmd, program, marker):
    before = subprocess.Popen.__init__
    guard = conftest._guarded(Item({"unit"}))
    next(guard)
    with pytest.raises(conftest.UnitTestStartsAProgram) as caught:
        subprocess.run(cmd, shell=isinstance(cmd, str), capture_output=True, timeout=5)
    assert f"starts {program}: mark it @pytest.mark.{marker}" in str(caught.value)
    # Caught or not, the test fails: the guard raises again when the test ends.
    with pytest.raises(conftest.UnitTestStartsAProgram, match=f"mark it @pytest.mark.{marker}"):
        guard.send(None)
    assert subprocess.Popen.__init__ is before  # put back


def test_a_unit_test_looking_up_a_binary_of_the_stack_fails_too():
    from trademon.stack import tools

    guard = conftest._guarded(Item({"unit"}))
    next(guard)
    with pytest.raises(conftest.UnitTestStartsAProgram, match="needs alertmanager: mark it @pytest.mark.e2e"):
        tools.find("alertmanager")
    with pytest.raises(conftest.UnitTestStartsAProgram, match="needs alertmanager: mark it @pytest.mark.e2e"):
        guard.send(None)


def test_python_git_and_one_shot_commands_are_allowed_and_other_markers_are_not_guarded():
    guard = conftest._guarded(Item({"unit"}))
    next(guard)
    try:
        assert subprocess.run(["git", "--version"], capture_output=True, timeout=30).returncode == 0
        assert subprocess.run([sys.executable, "-c", "pass"], timeout=30).returncode == 0
    finally:
        with pytest.raises(StopIteration):
            guard.send(None)
    real = subprocess.Popen.__init__
    guard = conftest._guarded(Item({"promtool"}))
    next(guard)
    assert subprocess.Popen.__init__ is real  # not a unit test: nothing installed, nothing checked
    with pytest.raises(StopIteration):
        guard.send(None)


def test_every_test_not_marked_with_a_need_is_unit_and_no_test_is_both(pytestconfig):
    for marker in conftest.NEEDS + ("unit",):
        assert any(line.startswith(f"{marker}:") for line in pytestconfig.getini("markers")), f"{marker} is not registered in pyproject.toml"
