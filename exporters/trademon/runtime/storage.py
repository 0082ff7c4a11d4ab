"""Whether a directory can take a write now: the readiness of the services that keep state on
disk (the alert-sink's record, the bot's outbox) tells the truth before, during and after a
full disk."""

from __future__ import annotations

import os
from pathlib import Path

MIN_FREE_BYTES = 256 * 1024  # below this the disk is (nearly) full: not ready
_PROBE = ".trademon-write-probe"


def existing(d: Path) -> Path:
    """``d``, or its nearest ancestor that exists (a state directory is created on first use)."""
    while not d.exists() and d != d.parent:
        d = d.parent
    return d


def has_room(d: Path, min_free: int = MIN_FREE_BYTES) -> bool:
    """Free space above ``min_free`` and the right to write, where ``d`` is (or will be)."""
    d = existing(d)
    try:
        st = os.statvfs(d)
    except OSError:
        return False
    return st.f_bavail * st.f_frsize >= min_free and os.access(d, os.W_OK)


def probe(d: Path) -> str | None:
    """Write a block into ``d`` and sync it (what failed before may work again once space is
    back); None when it worked, else why not."""
    path = existing(d) / _PROBE
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            os.write(fd, b"\0" * 4096)
            os.fsync(fd)
        finally:
            os.close(fd)
            os.unlink(path)
    except OSError as e:
        return e.strerror or str(e)
    return None
