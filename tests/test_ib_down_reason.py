"""Why IB is down, on /metrics and in the page (issue 14): the exporter, with the real ib_async
client, against the stand-in TWS refusing the client id (326), refusing the socket, accepting
it but never completing the handshake (a Gateway waiting for its login or two-factor approval),
and losing a session; then real Prometheus, with the generated alert rules, scraping it: the
TWSConnectionLost description names the reason and the fix."""

from __future__ import annotations

from pathlib import Path

import pytest
import requests
import yaml

from tests.support.ib import CLIENT_ID
from tests.support.procs import free_port, start, wait_for, wait_http
from trademon.stack import native

ROOT = Path(__file__).resolve().parents[1]


def reasons(ex) -> list[str]:
    """The reasons at 1 (at most one)."""
    return [dict(labels)["reason"] for (name, labels), v in ex.samples().items()
            if name == "ib_session_down_reason" and v == 1]


def wait_reason(ex, reason: str, timeout: float = 15) -> None:
    wait_for(lambda: reasons(ex) == [reason], timeout, what=f"ib_session_down_reason{{reason={reason!r}}} == 1 "
             f"alone (last: {reasons(ex)})")


def test_client_id_in_use(tws, exporter):
    tws.client_ids_in_use.add(CLIENT_ID)
    ex = exporter(tws)
    wait_reason(ex, "client_id_in_use")
    assert ex.value("ib_connected") == 0
    assert ex.value("ib_client_id") == CLIENT_ID
    tws.client_ids_in_use.clear()  # the other client went away
    ex.wait_value(1, "ib_connected", timeout=15)
    assert reasons(ex) == []


def test_refused_socket(tws, exporter):
    tws.go_down()
    ex = exporter(tws)
    wait_reason(ex, "socket_refused")
    tws.come_back()
    ex.wait_value(1, "ib_connected", timeout=15)
    assert reasons(ex) == []


def test_accepted_socket_without_handshake_is_not_a_refusal(tws, exporter):
    tws.answer_handshake = False  # listening, accepting, silent: login or 2FA pending
    ex = exporter(tws, TRADEMON_IB_CONNECT_TIMEOUT_SECONDS="1")
    wait_reason(ex, "handshake_timeout")
    assert tws.connections_total >= 1
    tws.answer_handshake = True  # approved on the phone
    ex.wait_value(1, "ib_connected", timeout=15)
    assert reasons(ex) == []


def test_session_losses(tws, exporter):
    ex = exporter(tws)
    ex.wait_value(1, "ib_connected")
    tws.error(1100, "Connectivity between IB and Trader Workstation has been lost.")
    wait_reason(ex, "connectivity_lost")
    tws.error(1102, "Connectivity between IB and Trader Workstation has been restored - data maintained.")
    ex.wait_value(1, "ib_connected")
    assert reasons(ex) == []
    tws.go_down()  # TWS closed the session (restart, logout)
    wait_reason(ex, "session_closed", timeout=5)
    tws.come_back()
    ex.wait_value(1, "ib_connected", timeout=15)
    tws.freeze()  # open socket, no answers
    wait_reason(ex, "heartbeat_timeout", timeout=10)


# ---- the page -------------------------------------------------------------------------

@pytest.fixture
def prometheus(tmp_path):
    """``prometheus(target)``: real Prometheus scraping one ib-exporter every second, with the
    project's generated alert rules (the ``for`` of TWSConnectionLost does not matter: a
    pending alert's annotations are rendered too)."""
    procs = []

    def run(target: str) -> str:
        port = free_port()
        cfg = native.render_prometheus_config(ROOT, {"ib-exporter": target}, None, "1s", "1s")
        cfg["rule_files"] = [str(ROOT / "monitoring" / "rules" / "trademon.alerts.yml")]
        path = tmp_path / "prometheus.yml"
        path.write_text(yaml.safe_dump(cfg, sort_keys=False))
        proc = start("prometheus", native.prometheus_cmd(path, tmp_path / "prom-data", port), {},
                     tmp_path / "prometheus.log")
        procs.append(proc)
        url = f"http://127.0.0.1:{port}"
        wait_http(url + "/-/ready", 30, proc)
        return url

    yield run
    for p in procs:
        p.close()


def tws_page(prom_url: str) -> str:
    alerts = requests.get(prom_url + "/api/v1/alerts", timeout=5).json()["data"]["alerts"]
    return next((a["annotations"]["description"] for a in alerts
                 if a["labels"]["alertname"] == "TWSConnectionLost"), "")


@pytest.mark.parametrize("setup, fix", [
    ("client_id", f"client id {CLIENT_ID} is used by another API client (IB code 326): set TRADEMON_IB_CLIENT_ID"),
    ("refused", "nothing accepts connections on the API port"),
    ("silent", "accepts the connection but does not complete the API handshake: it is waiting for a login, "
               "the two-factor approval"),
])
def test_the_page_names_the_reason_and_the_fix(tws, exporter, prometheus, setup, fix):
    if setup == "client_id":
        tws.client_ids_in_use.add(CLIENT_ID)
    elif setup == "refused":
        tws.go_down()
    else:
        tws.answer_handshake = False
    ex = exporter(tws, TRADEMON_IB_CONNECT_TIMEOUT_SECONDS="1")
    prom = prometheus(ex.url.removeprefix("http://"))
    wait_for(lambda: fix in tws_page(prom), 45, what=f"TWSConnectionLost saying {fix!r} (last: {tws_page(prom)!r})")
    assert "Why: " in tws_page(prom)


def test_the_reason_survives_the_telegram_cut():
    """The Telegram message (`trademon bot`, trademon/bot/render.py) cuts a description at a
    fixed length: the reason and its fix come before that, for every reason (the pages of
    monitoring/tests/ib_down.yml, one per reason of the contract and one without)."""
    import html
    import re

    from trademon import contract
    from trademon.bot import render

    cut = render.DESCRIPTION_CHARS
    (test,) = yaml.safe_load((ROOT / "monitoring" / "tests" / "ib_down.yml").read_text())["tests"]
    reasons = {m.group(1) for s in test["input_series"] for m in [re.search(r'ib_session_down_reason\{reason="(\w+)"', s["series"])]
               if m and s["values"].startswith("1")}
    assert reasons == set(contract.IB_DOWN_REASONS), "ib_down.yml: one ib-exporter per reason of contract.IB_DOWN_REASONS"
    fired = [a["exp_annotations"]["description"] for check in test["alert_rule_test"] for a in check["exp_alerts"]]
    assert len(fired) == len(contract.IB_DOWN_REASONS) + 1
    for description in fired:
        why = description[:description.index(". No order reaches the broker") + 1]
        long = re.sub(r"ib-gateway-\d+", "ib-exporter.trading.svc.cluster.local", why)  # a long instance
        assert len(html.escape(long)) <= cut, why
