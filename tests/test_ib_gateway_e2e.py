"""IB Gateway's week on /metrics (issue 26): the exporter, with the real ib_async client, against
the stand-in TWS and a STAND-IN gateway controller (trademon.testing.fake_controller: loopback
HTTP answering /health and /ready as ibg-controller does; not ibg-controller). The countdown to
the weekly re-authentication, the controller's checks, and "2FA required" when the gateway is
alive but not logged in."""

from __future__ import annotations

import time
from datetime import datetime, UTC

import pytest

from tests.support.procs import wait_for
from trademon.ib import week
from trademon.testing.fake_controller import FakeController

pytestmark = pytest.mark.e2e


@pytest.fixture
def controller():
    with FakeController() as c:
        yield c


def test_countdown_to_the_weekly_reauth(tws, exporter):
    ex = exporter(tws)
    ex.wait_value(1, "ib_connected", timeout=15)
    got, now = ex.value("ib_gateway_reauth_in_seconds"), time.time()
    want = week.next_reauth(datetime.fromtimestamp(now, UTC)).timestamp() - now
    assert got is not None and abs(got - want) < 5, (got, want)
    assert 0 < got <= 7 * 86400 + 3600
    assert ex.value("ib_gateway_2fa_required") == 0
    # No controller configured: its series are absent, not 0.
    assert not [n for n in ex.names() if n.startswith("ib_gateway_controller_up")]


def test_controller_alive_but_not_ready_with_the_session_down_is_a_2fa_wait(tws, exporter, controller):
    ex = exporter(tws, TRADEMON_IB_CONTROLLER_URL=controller.url, TRADEMON_IB_CONTROLLER_INTERVAL_SECONDS="0.2")
    ex.wait_value(1, "ib_connected", timeout=15)
    ex.wait_value(1, "ib_gateway_controller_up", check="health")
    ex.wait_value(1, "ib_gateway_controller_up", check="ready")
    assert ex.value("ib_gateway_2fa_required") == 0
    # IB ended the session: the gateway logs out, closes its API port and waits for the push.
    controller.set(ready=503)
    tws.go_down()
    ex.wait_value(0, "ib_connected", timeout=15)
    ex.wait_value(0, "ib_gateway_controller_up", check="ready")
    ex.wait_value(1, "ib_gateway_2fa_required")
    assert ex.value("ib_gateway_controller_up", check="health") == 1
    # Approved on the phone: ready again, the API port back.
    controller.set(ready=200)
    tws.come_back()
    ex.wait_value(1, "ib_connected", timeout=20)
    ex.wait_value(0, "ib_gateway_2fa_required")
    assert {"health", "ready"} <= set(controller.requests)


def test_controller_down_is_said_and_is_not_a_2fa_wait(tws, exporter, controller):
    ex = exporter(tws, TRADEMON_IB_CONTROLLER_URL=controller.url, TRADEMON_IB_CONTROLLER_INTERVAL_SECONDS="0.2",
                  TRADEMON_IB_CONTROLLER_TIMEOUT_SECONDS="0.5")
    ex.wait_value(1, "ib_connected", timeout=15)
    ex.wait_value(1, "ib_gateway_controller_up", check="health")
    controller.stop()  # nothing answers on its port any more
    ex.wait_value(0, "ib_gateway_controller_up", check="health")
    tws.go_down()
    ex.wait_value(0, "ib_connected", timeout=15)
    wait_for(lambda: ex.value("ib_session_down_reason", reason="socket_refused") == 1, 15, what="socket_refused")
    assert ex.value("ib_gateway_2fa_required") == 0


def test_handshake_stalled_at_login_is_a_2fa_wait_without_a_controller(tws, exporter):
    tws.answer_handshake = False  # the gateway accepts, then waits for its login
    ex = exporter(tws)
    wait_for(lambda: ex.value("ib_gateway_2fa_required") == 1, 20, what="ib_gateway_2fa_required == 1")
    tws.answer_handshake = True
    ex.wait_value(1, "ib_connected", timeout=20)
    ex.wait_value(0, "ib_gateway_2fa_required")
