"""Where the project's own files are, found one way for every part.

Run from a source checkout, the checkout (monitoring/, alertmanager/, prometheus/, .tools/);
installed in the image, /etc/trademon, where compose and the Kubernetes base mount the same
folders.
"""

from __future__ import annotations

from pathlib import Path

# exporters/trademon/settings/paths.py -> the checkout (when this is one)
_HERE = Path(__file__).resolve().parents[3]
IMAGE_ROOT = Path("/etc/trademon")


def is_checkout(root: Path) -> bool:
    """Whether ``root`` is a source checkout (what `trademon gen` reads and writes)."""
    return (root / "pyproject.toml").is_file() and (root / "exporters").is_dir()


def checkout() -> Path | None:
    """The source checkout this package runs from, or None when it is installed."""
    return _HERE if is_checkout(_HERE) else None


def config_root() -> Path:
    """The folder holding monitoring/, alertmanager/ and prometheus/."""
    return checkout() or IMAGE_ROOT


def require_checkout(command: str) -> Path:
    root = checkout()
    if root is None:
        raise SystemExit(f"trademon {command}: run from a source checkout (git clone, then pip install -e .): "
                         f"the installed package has no prometheus/ or alertmanager/ folders next to it")
    return root
