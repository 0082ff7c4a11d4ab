"""Which credential opens which path (runtime/httpguard.py), called as ASGI in-process:
with any credential configured, every path but the health checks asks for one."""

from __future__ import annotations

import asyncio
import base64

import bcrypt
import pytest

from trademon.runtime import httpguard
from trademon.settings.webconfig import WebConfig

pytestmark = pytest.mark.unit

TOKEN = "tok-" + "0123abcd" * 6
WEBHOOK_TOKEN = "hook-" + "9876fedc" * 6
PASSWORD = "basic-Passw0rd-xyz"
BEARER = f"Bearer {TOKEN}"
BASIC = "Basic " + base64.b64encode(f"prometheus:{PASSWORD}".encode()).decode()


async def _app(scope, receive, send):
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b"ok"})


def status(web: WebConfig, path: str, auth: str = "", token_paths: tuple[str, ...] = (), path_token: str | None = None) -> int:
    app = httpguard.guard(_app, web, httpguard.Limits(), token_paths, path_token=path_token)
    sent: list[dict] = []

    async def receive():
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(msg):
        sent.append(msg)

    headers = [(b"authorization", auth.encode())] if auth else []
    asyncio.run(app({"type": "http", "method": "GET", "path": path, "headers": headers}, receive, send))
    return sent[0]["status"]


def users() -> dict[str, bytes]:
    return {"prometheus": bcrypt.hashpw(PASSWORD.encode(), bcrypt.gensalt(4))}


def test_token_alone_asks_every_path_but_the_health_checks_for_it():
    web = WebConfig(token=TOKEN)
    for path in ("/metrics", "/positions", "/scenarios", "/state", "/anything"):
        assert status(web, path) == 401, path
        assert status(web, path, "Bearer wrong-token-wrong-token") == 401, path
        assert status(web, path, BEARER) == 200, path
    for path in ("/healthz", "/readyz"):
        assert status(web, path) == 200, path


@pytest.mark.parametrize("auth", [BEARER, BASIC], ids=["bearer", "basic"])
def test_with_both_configured_either_credential_opens_the_other_paths(auth):
    """A Prometheus scrape config has basic_auth or authorization, never both: either is enough."""
    web = WebConfig(token=TOKEN, users=users())
    assert status(web, "/metrics") == 401
    assert status(web, "/metrics", auth) == 200


def test_with_both_configured_the_control_paths_take_the_token_only():
    web = WebConfig(token=TOKEN, users=users())
    assert status(web, "/scenarios/api-down", BASIC, token_paths=("/scenarios",)) == 401
    assert status(web, "/scenarios/api-down", BEARER, token_paths=("/scenarios",)) == 200


def test_a_webhook_token_of_its_own_opens_only_its_paths():
    """The bot's webhook asks for its own token; its /metrics asks for the shared one."""
    web = WebConfig(token=TOKEN)
    assert status(web, "/alerts", f"Bearer {WEBHOOK_TOKEN}", ("/alerts",), WEBHOOK_TOKEN) == 200
    assert status(web, "/alerts", BEARER, ("/alerts",), WEBHOOK_TOKEN) == 401
    assert status(web, "/metrics", f"Bearer {WEBHOOK_TOKEN}", ("/alerts",), WEBHOOK_TOKEN) == 401
    assert status(web, "/metrics", BEARER, ("/alerts",), WEBHOOK_TOKEN) == 200
    assert status(WebConfig(), "/metrics", "", ("/alerts",), WEBHOOK_TOKEN) == 200  # nothing shared configured: open


def test_nothing_configured_leaves_every_path_open():
    for path in ("/metrics", "/state", "/healthz"):
        assert status(WebConfig(), path) == 200


def test_the_guided_demo_sends_the_token_from_the_env_file(tmp_path, monkeypatch):
    """`trademon demo` beside a stack started from a .env with TRADEMON_API_TOKEN: the scenario
    switch asks for the token, so the tour reads the same file (or --env-file) and sends it."""
    import argparse

    from trademon.runtime import http
    from trademon.stack import tour

    monkeypatch.delenv("TRADEMON_API_TOKEN", raising=False)
    monkeypatch.delenv("TRADEMON_API_TOKEN_FILE", raising=False)
    env_file = tmp_path / "stack.env"
    env_file.write_text(f"TRADEMON_API_TOKEN={TOKEN}\nTRADEMON_SIM_CONTROL_PORT=19119\n")
    asked: list[tuple[str, dict]] = []

    def request(method, url, *, timeout, headers=None, verify=True):
        asked.append((url, dict(headers or {})))
        raise http.Error("no stack here")

    monkeypatch.setattr(http, "request", request)
    parser = argparse.ArgumentParser()
    tour.configure(parser)
    assert tour.main(parser.parse_args(["--env-file", str(env_file), "--wait", "0"])) == 2
    control = [h for url, h in asked if url.startswith("http://127.0.0.1:19119/")]
    assert control and all(h.get("Authorization") == BEARER for h in control), asked
