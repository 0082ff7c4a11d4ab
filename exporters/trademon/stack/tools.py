"""Where the stack's binaries are: the project's .tools/bin first, then PATH."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from trademon.settings import paths

TOOLS = ("prometheus", "promtool", "alertmanager", "amtool", "docker-compose")


class ToolMissing(Exception):
    pass


def tools_dir() -> Path:
    env = os.environ.get("TRADEMON_TOOLS_DIR")
    if env:
        return Path(env)
    return (paths.checkout() or Path.cwd()) / ".tools" / "bin"


def find(name: str) -> str:
    local = tools_dir() / name
    if local.exists() and os.access(local, os.X_OK):
        return str(local)
    found = shutil.which(name)
    if found:
        return found
    raise ToolMissing(f"{name} not found in {tools_dir()} or on PATH: run scripts/install-tools.sh "
                      f"(fetches Prometheus, Alertmanager and their tools into .tools/bin)")
