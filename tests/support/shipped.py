"""The project's files as committed, not as the user's workspace has them.

README tells users to edit params.yaml; a test of the shipped defaults must hold while they do, so it
reads `git show HEAD:params.yaml`, never the workspace's file.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import yaml

from support.commands import REPO_ROOT


def shipped_text(name: str) -> str:
    """``name`` (relative to the repository root) as committed at HEAD."""
    return subprocess.run(
        ["git", "show", f"HEAD:{name}"], cwd=REPO_ROOT, capture_output=True, text=True, check=True
    ).stdout


def shipped_params_raw() -> dict:
    """The committed params.yaml as a plain mapping."""
    return yaml.safe_load(shipped_text("params.yaml"))


def shipped_params_file(folder: Path) -> Path:
    """A copy of the committed params.yaml in ``folder`` (for code that takes a path)."""
    path = Path(folder) / "params.yaml"
    path.write_text(shipped_text("params.yaml"), encoding="utf-8")
    return path
