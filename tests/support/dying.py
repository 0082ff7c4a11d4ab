"""Run a trademon command with one of its long-lived loops made to die: the loop (a
``module:Class.method`` or ``module:function``) is replaced, before the command starts, by one
that waits until a trigger file exists and then raises. What happens next is the real process's
own supervision.

    python tests/support/dying.py TARGET TRIGGER_FILE -- trademon-args...
"""

from __future__ import annotations

import asyncio
import functools
import importlib
import sys
from pathlib import Path

INJECTED = "injected fault"


def make_dying(target: str, trigger: Path) -> None:
    module, _, attr = target.partition(":")
    *path, name = attr.split(".")
    owner = functools.reduce(getattr, path, importlib.import_module(module))
    if not callable(getattr(owner, name, None)):
        raise SystemExit(f"{target}: no such loop to replace")

    async def dying(*_args, **_kwargs):
        while not trigger.exists():
            await asyncio.sleep(0.05)
        raise RuntimeError(f"{INJECTED} in {target}")

    setattr(owner, name, dying)


if __name__ == "__main__":
    target, trigger, sep, *argv = sys.argv[1:]
    assert sep == "--", "usage: dying.py TARGET TRIGGER_FILE -- trademon-args..."
    make_dying(target, Path(trigger))
    from trademon.cli import main

    sys.exit(main(argv))
