"""Shared fixtures: synthetic aclImdb archives and throw-away DVC projects.

The plain helpers live in ``tests/helpers.py`` (``from helpers import make_archive, run,
write_params, REPO_ROOT``); the fixtures below hand the same functions to tests.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Callable

import pytest

from helpers import REPO_ROOT, make_archive, run

PROJECT_FILES = ("dvc.yaml", "params.yaml", ".gitignore", ".dvcignore")
PROJECT_DIRS = ("stages", "src")
_IGNORE = shutil.ignore_patterns("__pycache__", "*.pyc", "*.egg-info", ".pytest_cache")


@pytest.fixture(scope="session")
def imdb_archive_factory() -> Callable[..., Path]:
    """``make_archive(path, reviews=None, extra=None, top="aclImdb") -> Path`` (see helpers)."""
    return make_archive


@pytest.fixture(scope="session")
def small_archive(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The default synthetic corpus (40 reviews per split and class) as aclImdb_v1.tar.gz."""
    return make_archive(tmp_path_factory.mktemp("small_archive") / "aclImdb_v1.tar.gz")


@pytest.fixture(scope="session")
def run_cmd() -> Callable[..., object]:
    """``run(cmd, cwd, env=None, check=True) -> CompletedProcess`` (see helpers)."""
    return run


@pytest.fixture
def dvc_repo(tmp_path: Path) -> Path:
    """A fresh git + DVC project holding a copy of dvc.yaml, params.yaml, stages/ and src/."""
    return make_project(tmp_path)


def make_project(tmp_path: Path) -> Path:
    """Copy the project's pipeline files into ``tmp_path`` and make it a committed git + DVC repo."""
    for name in PROJECT_FILES:
        shutil.copy2(REPO_ROOT / name, tmp_path / name)
    for name in PROJECT_DIRS:
        shutil.copytree(REPO_ROOT / name, tmp_path / name, ignore=_IGNORE)
    run(["git", "init", "-q"], tmp_path)
    run(["git", "config", "user.name", "Test User"], tmp_path)
    run(["git", "config", "user.email", "test@example.com"], tmp_path)
    run(["git", "config", "commit.gpgsign", "false"], tmp_path)
    run(["dvc", "init", "-q"], tmp_path)
    run(["dvc", "config", "core.analytics", "false"], tmp_path)
    run(["git", "add", "-A"], tmp_path)
    run(["git", "commit", "-q", "-m", "test project"], tmp_path)
    return tmp_path
