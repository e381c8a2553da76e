"""`imdb-rnn push-stage-results` on a tiny DVC project: what DVC alone leaves out of the remote, and
that the pushed files let a fresh clone restore a stage from the run cache instead of running it.

The project has one stage with a cached output and a ``cache: false`` metric, like the pipeline's
train and evaluate stages, and one DVC does not run-cache (``always_changed``). The fresh clone has
no dvc.lock and an empty DVC cache: what it restores came through the DVC remote.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from support.commands import VENV_BIN, run

pytestmark = pytest.mark.slow  # real dvc repro, push, clones

SCRIPT = """import json, os, pathlib, sys
os.makedirs("out", exist_ok=True)
pathlib.Path("out/copy.txt").write_text(pathlib.Path("in.txt").read_text())
json.dump({"words": len(pathlib.Path("in.txt").read_text().split())}, open("metrics.json", "w"))
print("RAN make.py")
"""
STAGES = {
    "stages": {
        "make": {
            "cmd": "python make.py",
            "deps": ["in.txt", "make.py"],
            "outs": ["out"],
            "metrics": [{"metrics.json": {"cache": False}}],
        },
        "stamp": {
            "cmd": "python -c \"open('stamp.txt', 'w').write('x')\"",
            "always_changed": True,
            "outs": [{"stamp.txt": {"cache": False}}],
        },
    }
}


@pytest.fixture
def project(tmp_path) -> dict:
    """The project, committed (dvc.lock does not exist yet) and pushed to a bare git remote; `dvc repro` run, the run
    cache pushed (`dvc push --run-cache`, what `dvc exp push --run-cache` sends)."""
    repo = tmp_path / "project"
    repo.mkdir()
    (repo / "in.txt").write_text("a few words of input\n")
    (repo / "make.py").write_text(SCRIPT)
    (repo / "dvc.yaml").write_text(yaml.safe_dump(STAGES, sort_keys=False))
    run(["git", "init", "-q", "-b", "main"], repo)
    for key, value in (("user.name", "Test User"), ("user.email", "test@example.com"), ("commit.gpgsign", "false")):
        run(["git", "config", key, value], repo)
    run(["dvc", "init", "-q"], repo)
    run(["dvc", "remote", "add", "-d", "store", tmp_path / "dvc-store"], repo)
    run(["git", "add", "-A"], repo)
    run(["git", "commit", "-qm", "tiny project"], repo)
    run(["git", "init", "-q", "--bare", tmp_path / "remote.git"], tmp_path)
    run(["git", "push", "-q", tmp_path / "remote.git", "main"], repo)
    assert "RAN make.py" in run(["dvc", "repro"], repo).stdout
    run(["dvc", "push", "--run-cache"], repo)
    return {"repo": repo, "remote": tmp_path / "remote.git", "tmp": tmp_path}


def repro_in_a_fresh_clone(project) -> str:
    clone = project["tmp"] / "clone"
    run(["git", "clone", "-q", "-b", "main", project["remote"], clone], project["tmp"])
    out = run(["dvc", "repro", "--pull", "make"], clone).stdout
    assert json.loads((clone / "metrics.json").read_text()) == {"words": 5}
    return out


def test_dvc_alone_leaves_the_cache_false_files_out_of_the_remote(project):
    """Why push-stage-results exists. When this fails, DVC pushes those files itself: remove the module."""
    out = repro_in_a_fresh_clone(project)
    assert "RAN make.py" in out, out


def test_pushed_stage_results_let_a_fresh_clone_restore_the_stage(project):
    proc = run([VENV_BIN / "imdb-rnn", "push-stage-results"], project["repo"])
    assert "Missing cache files" not in proc.stderr, proc.stderr  # stamp.txt, never in the cache, is left out
    assert not (project["repo"] / ".sweep-stage-results.dvc").exists()
    out = repro_in_a_fresh_clone(project)
    assert "Stage 'make' is cached - skipping run" in out, out
    assert "RAN make.py" not in out, out


RUNS_IN = "push-stage-results runs in a DVC project after `dvc exp run`"


def test_push_stage_results_outside_a_project_is_one_error_line(tmp_path):
    proc = run([VENV_BIN / "imdb-rnn", "push-stage-results"], tmp_path, check=False)
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert proc.returncode == 1, proc.stderr
    assert lines == [f"error: no dvc.lock in {Path(tmp_path).resolve()}: {RUNS_IN}"]
