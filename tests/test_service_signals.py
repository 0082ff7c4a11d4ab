"""service.Runner handles SIGTERM/SIGINT once, for all its servers: uvicorn's own per-server
signal capture stays off, so one signal stops every port together (Runner.stop), not one
server after another as each re-raises the signal to the handler it displaced."""

from __future__ import annotations

import asyncio
import signal

from trademon.runtime import service
from trademon.settings import webconfig


async def _app(scope, receive, send):  # a minimal ASGI app: the servers only need to start
    if scope["type"] == "lifespan":
        while (await receive())["type"] != "lifespan.shutdown":
            await send({"type": "lifespan.startup.complete"})
        await send({"type": "lifespan.shutdown.complete"})


def test_one_signal_handler_for_all_servers():
    # Port 0: the kernel picks a free port for each listener.
    runner = service.Runner([service.Listener(name, _app, "127.0.0.1", 0) for name in ("a", "b")], tasks=[],
                            web=webconfig.WebConfig())
    seen: dict[str, object] = {}

    async def go():
        task = asyncio.create_task(runner.serve())
        async with asyncio.timeout(10):
            while len(runner._servers) < 2 or not all(s.started for s in runner._servers.values()):
                await asyncio.sleep(0.02)
        seen["SIGTERM"], seen["SIGINT"] = signal.getsignal(signal.SIGTERM), signal.getsignal(signal.SIGINT)
        runner.stop()
        async with asyncio.timeout(10):
            await task

    asyncio.run(go())
    for sig, handler in seen.items():
        owner = getattr(handler, "__self__", None)
        assert not isinstance(owner, service.uvicorn.Server), \
            f"{sig} goes to one uvicorn server ({handler!r}), not to the Runner's loop handler"
