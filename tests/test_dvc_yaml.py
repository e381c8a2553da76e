"""dvc.yaml tells the truth: each stage depends on its script and on exactly the modules it runs."""

from __future__ import annotations

import modulefinder
import sys

import pytest
import yaml

from support.commands import REPO_ROOT

STAGES = yaml.safe_load((REPO_ROOT / "dvc.yaml").read_text(encoding="utf-8"))["stages"]
# third-party packages are not followed (they are not the project's code)
THIRD_PARTY = [
    "dvc",
    "filelock",
    "jax",
    "keras",
    "matplotlib",
    "mlflow",
    "numpy",
    "pandas",
    "pyarrow",
    "requests",
    "sklearn",
    "tensorflow",
    "tqdm",
    "urllib3",
    "yaml",
]


def modules_run_by(script: str) -> set[str]:
    """Every file of src/imdb_rnn the script imports, lazily imported ones included (bytecode scan)."""
    finder = modulefinder.ModuleFinder(path=[str(REPO_ROOT / "src"), *sys.path], excludes=THIRD_PARTY)
    finder.run_script(str(REPO_ROOT / script))
    return {
        str(module.__file__).split(str(REPO_ROOT) + "/", 1)[1]
        for name, module in finder.modules.items()
        if name.split(".")[0] == "imdb_rnn" and module.__file__
    }


def declared_code_deps(stage: dict) -> tuple[str, set[str]]:
    """(the stage's script, its declared dependencies on src/)."""
    body = stage.get("do", stage)
    script = body["cmd"].split()[1]
    return script, {d for d in body.get("deps", []) if d.startswith("src/")}


@pytest.mark.parametrize("name", list(STAGES))
def test_each_stage_depends_on_exactly_the_modules_it_runs(name):
    script, declared = declared_code_deps(STAGES[name])
    assert script in STAGES[name].get("do", STAGES[name])["deps"], f"{name} does not depend on {script}"
    ran = modules_run_by(script)
    assert ran, f"{script} imports nothing from src/imdb_rnn?"
    assert declared == ran, f"{name}: missing {sorted(ran - declared)}, not run {sorted(declared - ran)}"
