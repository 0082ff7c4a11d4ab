"""``trademon check-exposure``: refuse to publish Grafana beyond this host with its default login.

With no .env the stack starts on 127.0.0.1 with Grafana's own first-login flow (admin/admin,
then Grafana asks for a new password). That is safe only while nobody else can reach the port.
docker compose cannot branch in interpolation, so this one-shot step runs before Grafana
(``depends_on: condition: service_completed_successfully``) and stops the start-up with a
message when TRADEMON_BIND_ADDRESS publishes the ports wider and GRAFANA_ADMIN_PASSWORD is
unset or the default.
"""

from __future__ import annotations

import ipaddress
import os
import sys
from collections.abc import Mapping

DEFAULT_PASSWORD = "admin"


def loopback(address: str) -> bool:
    a = address.strip().strip("[]")
    if a in ("", "localhost"):
        return a == "localhost"
    try:
        return ipaddress.ip_address(a).is_loopback
    except ValueError:
        return False


def problem(env: Mapping[str, str]) -> str | None:
    """Why the stack must not start, or None."""
    bind = (env.get("TRADEMON_BIND_ADDRESS") or "127.0.0.1").strip()
    password = (env.get("GRAFANA_ADMIN_PASSWORD") or "").strip()
    if loopback(bind) or (password and password != DEFAULT_PASSWORD):
        return None
    return (f"TRADEMON_BIND_ADDRESS={bind} publishes Grafana, Prometheus and Alertmanager beyond this host, and "
            f"GRAFANA_ADMIN_PASSWORD is {'the default' if password else 'not set'}, so anyone who can reach "
            f"port 3000 could log in as admin/admin. Set GRAFANA_ADMIN_PASSWORD in .env (a long random one), "
            f"or keep TRADEMON_BIND_ADDRESS=127.0.0.1.")


def configure(parser) -> None:
    pass


def main(args=None) -> int:
    p = problem(os.environ)
    if p:
        print(f"trademon check-exposure: refusing to start: {p}", file=sys.stderr)
        return 1
    print("trademon check-exposure: ok (ports on this host only, or Grafana has its own password)", file=sys.stderr)
    return 0
