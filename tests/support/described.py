"""The test stacks' processes from the stack's description (trademon.stack.services), built
as `trademon native` builds them: the same commands, environment and health checks, on free
loopback ports. What a test stack changes (intervals, a log level) it says where it starts
them."""

from __future__ import annotations

from collections.abc import Collection, Mapping
from pathlib import Path

from trademon.settings.env import port_variable
from trademon.stack import native, services
from trademon.stack.native import Service

from .procs import Proc, start, wait_http

ROOT = Path(__file__).resolve().parents[2]


def layout(ports: Mapping[str, int], *, mode: str = "demo", ha: bool = False, env: Mapping[str, str] | None = None) -> services.Layout:
    """The layout with these ports: service name (or a job the simulator answers as, or
    ``<alertmanager>:cluster``) -> port."""
    values = dict(env or {})
    for name, port in ports.items():
        node, _, cluster = name.partition(":")
        part = services.BY_NAME.get(node)
        var = (part.cluster_port_var if cluster else part.port_var) if part else port_variable(node)
        values[str(var)] = str(port)
    return services.Layout(mode, ha, "127.0.0.1", values)


def built(lay: services.Layout, data: Path, names: Collection[str], am_cfg: Path | None = None,
          prom_files: Mapping[str, Path] | None = None, root: Path = ROOT) -> dict[str, Service]:
    """The services ``names`` of the layout, as native would start them with data in ``data``
    from the checkout ``root`` (a copy whose monitoring/config.yml a test edits)."""
    return {s.name: s for s in native.native_services(lay, root, data, am_cfg or data / "am-config" / "alertmanager.yml",
                                                      prom_files or {}, names=names)}


def start_service(svc: Service, log_dir: Path, env: Mapping[str, str] | None = None, extra_args: tuple[str, ...] = (),
                  timeout: float = 30, name: str | None = None) -> Proc:
    """Start it (the stack's variables over ``env``, as native's Supervisor does) and wait until healthy."""
    name = name or svc.name
    p = start(name, [*svc.cmd, *extra_args], {**(env or {}), **svc.env}, log_dir / f"{name}.log")
    try:
        wait_http(svc.health, timeout, p)
    except BaseException:
        p.close()  # not left running for the caller, which never got it
        raise
    return p
