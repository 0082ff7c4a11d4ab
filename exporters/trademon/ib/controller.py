"""The gateway controller's health, polled: ibg-controller (IBC's successor) serves ``/health``
(the controller and the gateway process it runs are alive) and ``/ready`` (the gateway is logged
in and its API port usable). Each poll sets ``ib_gateway_controller_up{check}`` to 1 for an
answer 200 and 0 for anything else (another status, a timeout, a refused connection); only the
status is read, never the body, so a change in what the controller writes there breaks nothing.

Only with TRADEMON_IB_CONTROLLER_URL set; otherwise the series are absent (nothing is known).
The exporter never restarts the gateway itself (docs/ib-gateway.md: a blind restart sends
another 2FA push).
"""

from __future__ import annotations

import asyncio
import logging

import httpx

from trademon.contract import IB_CONTROLLER_CHECKS
from trademon.runtime import http

log = logging.getLogger("trademon.ib.controller")


class ControllerPoller:
    def __init__(self, url: str, interval: float, timeout: float, metrics):
        self.base = url.rstrip("/")
        self.interval, self.timeout = interval, timeout
        self.up = metrics["ib_gateway_controller_up"]
        self.state: dict[str, bool] = {}  # check -> answered 200 at the last poll

    def checks(self) -> dict[str, bool]:
        return dict(self.state)

    async def poll_once(self, client: httpx.AsyncClient) -> None:
        for check in IB_CONTROLLER_CHECKS:
            try:
                ok = (await client.get(f"{self.base}/{check}")).status_code == 200
            except http.Error as e:
                ok = False
                if self.state.get(check, True):  # said once per outage, not every poll
                    log.warning("gateway controller does not answer", extra={"check": check, "error": repr(e)})
            self.state[check] = ok
            self.up.labels(check).set(1 if ok else 0)

    async def run(self) -> None:
        async with http.async_client(self.timeout) as client:
            while True:
                await self.poll_once(client)
                await asyncio.sleep(self.interval)
