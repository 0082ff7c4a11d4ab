"""The core package is a light library: installed alone into a fresh virtual environment it
instruments a FastAPI app, pulls in none of the services' dependencies, and changes no global
state of the trader's process."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import venv
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

# Drives the app with raw ASGI calls, so the venv needs nothing beyond trademon and FastAPI.
APP = textwrap.dedent('''
    import asyncio, importlib.util, re, sys
    from fastapi import FastAPI
    from prometheus_client import REGISTRY, Counter
    import trademon
    from trademon.instrument import instrument

    mine = Counter("my_orders", "the trader's own counter", registry=REGISTRY)
    mine.inc()
    app = FastAPI()

    @app.get("/intents/{intent_id}")
    def get_intent(intent_id: str):
        return {"id": intent_id}

    ins = instrument(app)
    ins.intent_created("momo")

    async def call(path):
        sent = []
        scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "GET",
                 "scheme": "http", "path": path, "raw_path": path.encode(), "root_path": "",
                 "query_string": b"", "headers": [], "client": ("127.0.0.1", 1), "server": ("127.0.0.1", 80)}
        async def receive():
            return {"type": "http.request", "body": b"", "more_body": False}
        async def send(message):
            sent.append(message)
        await app(scope, receive, send)
        return b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body").decode()

    asyncio.run(call("/intents/42"))
    body = asyncio.run(call("/metrics"))
    assert 'api_request_duration_seconds_count{endpoint="/intents/{intent_id}",method="GET",status="200"} 1.0' in body, body
    assert 'order_intents_created_total{strategy="momo"} 1.0' in body, body
    assert not re.search(r"^\\w+_created[{ ]", body, re.M), "trademon's exposition has no _created series"
    from prometheus_client import generate_latest
    assert b"my_orders_created" in generate_latest(REGISTRY), "the trader's own registry keeps its _created series"
    missing = [m for m in ("ib_async", "uvicorn", "yaml", "requests", "httpx") if importlib.util.find_spec(m)]
    assert not missing, f"the core install pulled in {missing}"
    print("ok", trademon.__version__)
''')


@pytest.mark.slow
def test_core_package_alone_instruments_a_fastapi_app(tmp_path):
    # Nothing of this checkout on the path (tests/conftest.py puts it on PYTHONPATH): the venv
    # must see only what was installed into it.
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env_dir = tmp_path / "venv"
    venv.EnvBuilder(with_pip=True).create(env_dir)
    py = str(env_dir / "bin" / "python")
    wheels = tmp_path / "wheels"
    subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", str(wheels), str(ROOT)],
                   check=True, timeout=300, cwd=tmp_path)
    wheel = next(wheels.glob("trademon-*.whl"))
    # The trader's app brings FastAPI; trademon's core brings only prometheus_client and starlette.
    subprocess.run([py, "-m", "pip", "install", "-q", "--disable-pip-version-check", str(wheel), "fastapi"],
                   check=True, timeout=300, env=env)
    out = subprocess.run([py, "-c", APP], capture_output=True, text=True, timeout=60, cwd=tmp_path, env=env)
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith("ok ") and "0+unknown" not in out.stdout
    # The wheel carries the typing marker and the licence.
    import zipfile
    names = zipfile.ZipFile(wheel).namelist()
    assert "trademon/py.typed" in names
    assert any(n.endswith("licenses/LICENSE") or n.endswith("/LICENSE") for n in names)
    # A service subcommand without its extra says which extra to install.
    cli = subprocess.run([str(env_dir / "bin" / "trademon"), "sim", "--help"], capture_output=True, text=True, timeout=60, env=env)
    assert cli.returncode != 0 and "pip install 'trademon[sim]'" in cli.stderr


def test_importing_the_library_changes_no_global_state():
    code = ("from prometheus_client import REGISTRY, Counter, generate_latest\n"
            "import trademon.instrument, trademon.metrics\n"
            "Counter('x_orders', 'x', registry=REGISTRY).inc()\n"
            "assert b'x_orders_created' in generate_latest(REGISTRY)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
