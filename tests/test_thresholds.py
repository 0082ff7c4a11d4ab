"""Thresholds at run time (trademon.thresholds): monitoring/config.yml rendered into series
rules, a refused edit leaving the rules in force untouched, and the service's outcome metric."""

from __future__ import annotations

import contextlib
import http.server
import shutil
from pathlib import Path

import pytest
import yaml
from prometheus_client import CollectorRegistry, generate_latest

from tests.support.procs import serve
from trademon.settings import thresholds
from trademon.thresholds import render, watch

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[1]


def checkout(tmp_path: Path) -> Path:
    """A root with the shipped monitoring/config.yml and generated rules."""
    (tmp_path / "monitoring").mkdir()
    shutil.copy(ROOT / thresholds.CONFIG_FILE, tmp_path / thresholds.CONFIG_FILE)
    shutil.copytree(ROOT / "monitoring" / "rules", tmp_path / "monitoring" / "rules")
    return tmp_path


def edit(root: Path, section: str, key: str, value) -> None:
    cfg = yaml.safe_load((root / thresholds.CONFIG_FILE).read_text())
    if value is None:
        del cfg[section][key]
    else:
        cfg[section][key] = value
    (root / thresholds.CONFIG_FILE).write_text(yaml.safe_dump(cfg, sort_keys=False))


@contextlib.contextmanager
def answering_500(body: bytes):
    """A loopback server that answers every POST with 500 and ``body``; yields its port."""
    class Handler(http.server.BaseHTTPRequestHandler):
        def do_POST(self):  # noqa: N802
            self.send_response(500)
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *a):
            pass

    srv = http.server.HTTPServer(("127.0.0.1", 0), Handler)
    serve(srv)
    try:
        yield srv.server_port
    finally:
        srv.shutdown()


def live(renderer: watch.Renderer) -> str:
    registry = CollectorRegistry()
    registry.register(renderer)
    return generate_latest(registry).decode()


def test_every_number_is_a_series_and_every_override_one_more(tmp_path):
    root = checkout(tmp_path)
    cfg = yaml.safe_load((root / thresholds.CONFIG_FILE).read_text())
    cfg["accounts"] = {"DU1": {"daily_loss_limit": -2000}}
    (root / thresholds.CONFIG_FILE).write_text(yaml.safe_dump(cfg))
    (group,) = yaml.safe_load(render.render(root))["groups"]
    records = {(r["record"], (r.get("labels") or {}).get("account")): r["expr"] for r in group["rules"]}
    numbers = thresholds.numbers(root)
    assert {name for name, account in records if account is None} == {render.series(k) for k in numbers}
    assert records[("trademon:threshold:daily_loss_limit", None)] == "vector(-500)"
    assert records[("trademon:threshold:daily_loss_limit", "DU1")] == "vector(-2000)"
    assert "money_hold" not in numbers and "currency" not in numbers  # durations and the currency are not series
    assert group["interval"] == cfg["shared"]["money_evaluation_interval"]


def test_an_edit_goes_live_and_a_refused_one_changes_nothing(tmp_path):
    root = checkout(tmp_path)
    r = watch.Renderer(root, tmp_path / "out", [])
    assert r.check().live and "vector(-500)" in r.target.read_text()
    assert "trademon_thresholds_last_reload_successful 1.0" in live(r)
    assert r.check() is None  # unchanged file: nothing to do

    edit(root, "critical", "daily_loss_limit", -750)
    assert r.check().live and "vector(-750)" in r.target.read_text()

    before = r.target.read_text()
    for section, key, value, says in [
        ("critical", "daily_loss_limit", 750, "critical: daily_loss_limit: 750 is not a loss"),
        ("critical", "daily_loss_limit", "-1,000", "critical: daily_loss_limit: '-1,000' is neither a number nor a Prometheus duration"),
        ("warning", "intents_pending_max", None, "intents_pending_max missing: the alert rules compare with it"),
    ]:
        edit(root, section, key, value)
        outcome = r.check()
        assert not outcome.live and says in outcome.message and "thresholds in force are unchanged" in outcome.message, outcome.message
        assert r.target.read_text() == before
        assert "trademon_thresholds_last_reload_successful 0.0" in live(r)
        edit(root, section, key, {"daily_loss_limit": -750, "intents_pending_max": 50}[key])
    (root / thresholds.CONFIG_FILE).write_text("critical: [unclosed\n")
    assert not r.check().live and r.target.read_text() == before
    shutil.copy(ROOT / thresholds.CONFIG_FILE, root / thresholds.CONFIG_FILE)
    assert r.check().live and "vector(-500)" in r.target.read_text()
    assert "trademon_thresholds_last_reload_successful 1.0" in live(r)


def test_a_number_no_alert_reads_is_refused_with_the_key_it_resembles(tmp_path):
    """A misspelt key beside the real one (a tightened limit the trader believes in) would go
    "live" as a series nothing compares with: refused, naming the key it resembles."""
    root = checkout(tmp_path)
    r = watch.Renderer(root, tmp_path / "out", [])
    assert r.check().live
    before = r.target.read_text()
    edit(root, "warning", "intents_pending_maxx", 30)
    outcome = r.check()
    assert not outcome.live and r.target.read_text() == before, outcome.message
    assert "warning: intents_pending_maxx: no alert rule compares with it (monitoring/rules/)" in outcome.message, outcome.message
    assert "; did you mean intents_pending_max?" in outcome.message, outcome.message
    edit(root, "warning", "intents_pending_maxx", None)
    assert r.check().live


def test_a_duration_edited_is_not_live_until_the_rules_are_generated(tmp_path):
    """A duration (or the currency) is written into the alert rules by `trademon gen`, not a
    series: edited and reloaded, it was reported "thresholds live" while the alert kept the old
    one. Not live (it pages), named with the command that applies it; live once the rules carry it."""
    from trademon.gen import rules as gen_rules

    root = checkout(tmp_path)
    r = watch.Renderer(root, tmp_path / "out", [])
    assert r.check().live
    edit(root, "critical", "tws_lost_for", "2m")
    edit(root, "critical", "daily_loss_limit", -650)
    outcome = r.check()
    assert not outcome.live and "vector(-650)" in r.target.read_text(), outcome.message  # the number went live all the same
    assert "critical: tws_lost_for: 1m in the alert rules, 2m in monitoring/config.yml" in outcome.message, outcome.message
    assert "`trademon gen`" in outcome.message and "trademon_thresholds_last_reload_successful 0.0" in live(r)
    (root / gen_rules.ALERTS_FILE).write_text(gen_rules.render_alerts(root))  # the rules generated again
    assert r.check().live, r.outcome  # seen without another edit of the config


def test_a_prometheus_that_refuses_the_reload_is_not_live(tmp_path):
    """A reload answered with an error: not live (it pages), retried at the next poll."""
    with answering_500(b"failed to reload config") as port:
        r = watch.Renderer(checkout(tmp_path), tmp_path / "out", [f"http://127.0.0.1:{port}/-/reload"])
        outcome = r.check()
        assert not outcome.live and "HTTP 500 failed to reload config" in outcome.message
        assert r.check() is not None  # retried although the file did not change


def test_the_poll_and_a_reload_request_render_one_at_a_time(tmp_path, monkeypatch):
    """CI saw `trademon thresholds --reload` answered by a bare 500 while the poll rendered the
    same edit: both wrote the one temporary file and one rename found it gone."""
    import threading
    import time

    r = watch.Renderer(checkout(tmp_path), tmp_path / "out", [])
    inside, most, lock = [0], [0], threading.Lock()
    real = render.render

    def slow_render(root):
        with lock:
            inside[0] += 1
            most[0] = max(most[0], inside[0])
        time.sleep(0.05)
        try:
            return real(root)
        finally:
            with lock:
                inside[0] -= 1

    monkeypatch.setattr(render, "render", slow_render)
    outcomes: list = []
    threads = [threading.Thread(target=lambda: outcomes.append(r.render_once())) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert most[0] == 1 and len(outcomes) == 4 and all(o.live for o in outcomes), (most, outcomes)


def test_a_render_that_cannot_write_is_refused_not_a_bare_500(tmp_path):
    """An output directory it cannot write to: not live, named, and the reload endpoint answers
    JSON (the CLI reads it) rather than an unhandled exception."""
    import asyncio
    import json

    (tmp_path / "out").write_text("a file where the rules directory should be")
    r = watch.Renderer(checkout(tmp_path), tmp_path / "out", [])
    outcome = r.render_once()
    assert not outcome.live and "could not write" in outcome.message, outcome.message

    sent: list[dict] = []

    async def call():
        async def receive():
            return {"type": "http.request", "body": b"", "more_body": False}

        async def send(message):
            sent.append(message)
        await watch.reload_app(r)({"type": "http", "path": "/reload", "method": "POST"}, receive, send)
    asyncio.run(call())
    assert sent[0]["status"] == 422 and "could not write" in json.loads(sent[1]["body"])["message"]


def test_reload_names_an_answer_that_is_not_an_outcome(capsys):
    """A bare 500 from the service is reported as what it is, not as a stack that is not running."""
    from trademon.thresholds import cli

    with answering_500(b"Internal Server Error") as port:
        assert cli.ask_reload({"TRADEMON_THRESHOLDS_PORT": str(port)}) == 2
    err = capsys.readouterr().err
    assert "answered HTTP 500 'Internal Server Error'" in err and "is the stack running" not in err, err


def test_the_documented_reload_commands_are_the_service_and_the_same_command():
    """docs/thresholds.md's two commands: the Docker one runs the native one inside the compose
    service that renders (the trademon image, whose entrypoint is `trademon`: nothing of Python
    on the host), and every doc that quotes a reload command quotes one of them. The container
    layer runs the Docker one as written (test_containers.py)."""
    import re

    doc = (ROOT / "docs" / "thresholds.md").read_text()
    docker = re.search(r"^\| Docker \| `([^`]+)` \|", doc, re.M).group(1)
    native = re.search(r"^\| native \(`trademon native`\) \| `([^`]+)` \|", doc, re.M).group(1)
    words = docker.split()
    assert words[:3] == ["docker", "compose", "exec"] and words[4:] == native.split() == ["trademon", "thresholds", "--reload"]
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())["services"][words[3]]
    assert compose["command"] == ["thresholds", "--watch"] and "TRADEMON_IMAGE" in compose["image"]
    assert re.search(r'^ENTRYPOINT \["trademon"\]$', (ROOT / "Dockerfile").read_text(), re.M)
    assert re.search(r"^ENV PATH=/opt/trademon/bin:", (ROOT / "Dockerfile").read_text(), re.M)  # exec finds `trademon`
    quoted = [ROOT / "README.md", ROOT / "monitoring" / "README.md", ROOT / thresholds.CONFIG_FILE, ROOT / "docker-compose.yml",
              *sorted((ROOT / "docs").glob("*.md"))]
    for f in quoted:
        for cmd in re.findall(r"docker compose exec \S+ \S+ thresholds --reload", f.read_text()):
            assert cmd == docker, (f.name, cmd)


DOCKER_GEN_ROW = r"^\| Docker \(in the trademon image\) \| `([^`]+)` \| `([^`]+)` \|"
GEN_QUOTE = r"docker compose run [^`\n]*? gen --root [^`\s]+"


def test_the_documented_gen_command_runs_in_the_image_against_the_checkout():
    """docs/thresholds.md's command for a duration or the currency on a host without Python:
    `trademon gen` in the trademon image (which installs the gen extra), run by compose as the
    host's user with the whole checkout mounted where `--root` points, then the Prometheus reload
    docs/operations.md gives; every doc that quotes it quotes this one. The container layer runs
    it as written (test_containers.py)."""
    import re
    import shlex

    doc = (ROOT / "docs" / "thresholds.md").read_text()
    gen, prom_reload = re.search(DOCKER_GEN_ROW, doc, re.M).groups()
    words = shlex.split(gen)
    assert words[:4] == ["docker", "compose", "run", "--rm"] and words[-3:-1] == ["gen", "--root"], words
    assert words[words.index("--user") + 1] == "$(id -u):$(id -g)", "the files it writes must stay the user's"
    host, _, mounted = words[words.index("-v") + 1].partition(":")
    assert host == "$PWD" and mounted == words[-1], (host, mounted, words[-1])
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())["services"][words[-4]]
    assert "TRADEMON_IMAGE" in compose["image"]
    assert all(not v.endswith(":" + mounted) and f":{mounted}/" not in v for v in compose.get("volumes", [])), "the checkout's mount shadowed"
    extras = re.search(r'pip install "\.\[([^\]]+)\]"', (ROOT / "Dockerfile").read_text()).group(1).split(",")
    assert "gen" in extras, extras
    operations = (ROOT / "docs" / "operations.md").read_text()
    assert prom_reload.endswith("localhost:9090/-/reload") and f"`{prom_reload}`" in operations
    quoted = [ROOT / "README.md", ROOT / "monitoring" / "README.md", ROOT / thresholds.CONFIG_FILE, ROOT / "docker-compose.yml",
              ROOT / "monitoring" / "runbooks.md", *sorted((ROOT / "docs").glob("*.md"))]
    seen = {f.name for f in quoted if re.search(GEN_QUOTE, f.read_text())}
    assert {"thresholds.md", "operations.md", "runbooks.md", "config.yml"} <= seen, seen
    for f in quoted:
        for cmd in re.findall(GEN_QUOTE, f.read_text()):
            assert cmd == gen, (f.name, cmd)


def test_gen_on_a_folder_that_is_not_the_checkout_writes_nothing_and_says_so(tmp_path, capsys):
    """`gen --root` on monitoring/ alone (the compose mount, not the checkout) wrote prometheus/
    and ended in a traceback at a file it reads; it refuses before writing, naming the fix."""
    import argparse

    from trademon import gen

    shutil.copytree(ROOT / "monitoring", tmp_path / "monitoring")
    before = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*"))
    with pytest.raises(SystemExit) as e:
        gen.main(argparse.Namespace(root=tmp_path, check=False))
    assert "not a trademon checkout" in str(e.value) and "the whole checkout" in str(e.value), e.value
    assert sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*")) == before
