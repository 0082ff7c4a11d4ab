"""The TWS API client library: ib_async, or ib_insync only where that is what is installed.

ib_async is the maintained fork of ib_insync and has the same classes and events; the rest of
the package imports IB and Contract from here and never names either library. Differences:
- ib_insync's ``connectAsync`` has no ``fetchFields``: it always fetches positions, executions
  and account updates at connect (slower, otherwise harmless); ``CONNECT_OPTIONS`` holds the
  extra keyword only where the library takes it;
- ib_insync negotiates server versions 157..176, ib_async 157..178.
Do not install both in one environment: ib_async's event library (aeventkit) and ib_insync's
(eventkit) both ship the ``eventkit`` package, so the second install overwrites the first.
"""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

try:
    from ib_async import IB, Contract
    from ib_async.ib import StartupFetchNONE

    NAME = "ib_async"
    # the exporter asks for what it shows itself; nothing else at connect
    CONNECT_OPTIONS: dict = {"fetchFields": StartupFetchNONE}
except ImportError as first:
    try:
        from ib_insync import IB, Contract  # type: ignore[no-redef]  # the same two names, from the fallback library
    except ImportError:
        raise ImportError("the IB exporter needs ib_async (pip install 'ib_async>=2.1,<3'); "
                          f"ib_insync is not installed either ({first})") from None
    NAME = "ib_insync"
    CONNECT_OPTIONS = {}


def _version() -> str:
    try:
        return version(NAME)
    except PackageNotFoundError:  # e.g. put on sys.path by hand, without package metadata
        return getattr(__import__(NAME), "__version__", "unknown")


VERSION = _version()

__all__ = ["IB", "Contract", "NAME", "VERSION", "CONNECT_OPTIONS"]
