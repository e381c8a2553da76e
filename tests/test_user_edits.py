"""README tells users to edit params.yaml: the fast tests must hold after they do."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import pytest
import yaml

from support.commands import REPO_ROOT, run

pytestmark = pytest.mark.slow  # a pytest run inside the test

# The fast test files that read the project's files (params.yaml, dvc.yaml, the stages): the ones a
# workspace edit could reach.
READERS = [
    p.name
    for p in sorted((REPO_ROOT / "tests").glob("test_*.py"))
    if any(word in p.read_text(encoding="utf-8") for word in ("params.yaml", "REPO_ROOT", "shipped"))
    and "pytestmark = pytest.mark.slow" not in p.read_text(encoding="utf-8")
]


def _user_edits(raw: dict) -> dict:
    """What README's configuration section invites: other lengths, sizes, seeds, a new variant, one gone."""
    raw["data"]["maxlen"] = 100
    raw["train"].update(epochs=2, seeds=[7])
    raw["models"]["simple_rnn"]["units"] = 64
    raw["models"]["my_rnn"] = {"units": 16, "bidirectional": True}
    raw["models"].pop("best_rnn", None)
    return raw


def test_the_fast_tests_hold_after_the_user_edits_params(tmp_path: Path):
    project = tmp_path / "project"
    listed = run(["git", "ls-files", "-co", "--exclude-standard"], REPO_ROOT).stdout.splitlines()
    for name in listed:  # the working tree as a fresh clone has it (uncommitted test changes included)
        if (REPO_ROOT / name).is_file():
            (project / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(REPO_ROOT / name, project / name)
    run(["git", "init", "-q"], project)
    run(["git", "add", "-A"], project)
    run(["git", "-c", "user.name=T", "-c", "user.email=t@example.com", "commit", "-qm", "shipped"], project)
    params = project / "params.yaml"
    params.write_text(yaml.safe_dump(_user_edits(yaml.safe_load(params.read_text(encoding="utf-8")))))

    assert {"test_config.py", "test_model.py", "test_stage_start.py"} <= set(READERS), READERS
    proc = run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-m",
            "not slow",
            "-p",
            "no:cacheprovider",
            *(f"tests/{n}" for n in READERS),
        ],
        project,
        check=False,
        timeout=900,
    )
    assert proc.returncode == 0, proc.stdout[-4000:]
