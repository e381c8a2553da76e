"""Throw-away git + DVC projects holding a copy of the pipeline, and reading what their stages printed."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

from support.commands import REPO_ROOT, run
from support.shipped import shipped_params_file

PROJECT_FILES = ("dvc.yaml", "params.yaml", ".gitignore", ".dvcignore")


PROJECT_DIRS = ("stages", "src")


_IGNORE = shutil.ignore_patterns("__pycache__", "*.pyc", "*.egg-info", ".pytest_cache")


def make_project(folder: Path) -> Path:
    """Copy the project's pipeline files into ``folder`` and make it a committed git + DVC repo."""
    for name in PROJECT_FILES:
        shutil.copy2(REPO_ROOT / name, folder / name)
    for name in PROJECT_DIRS:
        shutil.copytree(REPO_ROOT / name, folder / name, ignore=_IGNORE)
    shipped_params_file(folder)  # the committed defaults, whatever the user's workspace params say
    run(["git", "init", "-q"], folder)
    run(["git", "config", "user.name", "Test User"], folder)
    run(["git", "config", "user.email", "test@example.com"], folder)
    run(["git", "config", "commit.gpgsign", "false"], folder)
    run(["dvc", "init", "-q"], folder)
    run(["dvc", "config", "core.analytics", "false"], folder)
    copy_plot_settings(folder)
    run(["git", "add", "-A"], folder)
    run(["git", "commit", "-q", "-m", "test project"], folder)
    return folder


def copy_plot_settings(folder: Path) -> None:
    """The project's plot templates (``.dvc/plots``) and its ``[plots]`` config (the offline page template),
    so ``dvc plots`` in a test project draws what it draws in the repository."""
    from configobj import ConfigObj  # DVC's own config reader

    shutil.copytree(REPO_ROOT / ".dvc" / "plots", folder / ".dvc" / "plots")
    config = ConfigObj(str(folder / ".dvc" / "config"))
    config["plots"] = ConfigObj(str(REPO_ROOT / ".dvc" / "config"))["plots"]
    config.write()


def ran_stages(output: str) -> set[str]:
    """The stages a `dvc repro` / `dvc exp run` output says it ran."""
    return {line.split("'")[1] for line in output.splitlines() if line.startswith("Running stage '")}


# Native log lines no user can act on: stages and the served model filter them (native_logs).
NATIVE_NOISE = re.compile(
    r"absl::InitializeLog|oneDNN custom operations|oneDNN supports DT_BOOL|use_unbounded_threadpool|INFO mlflow"
)


def stage_stderr(text: str) -> list[str]:
    """The non-empty stderr lines of a stage: what it printed itself, as nothing else may appear."""
    return [line for line in text.splitlines() if line.strip()]
