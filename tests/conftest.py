"""Suite-wide set-up: the tests always exercise the checkout they live in.

An editable install (or a second checkout, e.g. a git worktree) may point `import trademon`
at another tree; putting this checkout's package first, for this process and for every
subprocess the tests start (`python -m trademon ...`), makes a run test its own code.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

_PKG_ROOT = str(Path(__file__).resolve().parents[1] / "exporters")
if sys.path[:1] != [_PKG_ROOT]:
    sys.path.insert(0, _PKG_ROOT)
os.environ["PYTHONPATH"] = os.pathsep.join(p for p in (_PKG_ROOT, os.environ.get("PYTHONPATH", "")) if p)
