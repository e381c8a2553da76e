"""bench/checkpoint.py runs on a project's params and writes a row per variant of its report."""

from __future__ import annotations

import shutil
import sys

import pytest

from support.commands import REPO_ROOT, run
from support.params import TINY, write_params
from support.projects import make_project

pytestmark = pytest.mark.slow  # TensorFlow in a fresh interpreter


def test_the_checkpoint_benchmark_reports_every_variant(tmp_path):
    repo = make_project(tmp_path)
    shutil.copytree(REPO_ROOT / "bench", repo / "bench", ignore=shutil.ignore_patterns("__pycache__"))
    write_params(repo / "params.yaml", TINY, True)
    out = tmp_path / "checkpoint.md"
    run([sys.executable, "bench/checkpoint.py", "--repeats", "2", "--out", out], repo, timeout=300)
    rows = [line for line in out.read_text().splitlines() if line.startswith("| ") and "variant" not in line]
    assert [row.split("|")[1].strip() for row in rows] == list(TINY["models"])
    assert all("no history" in row for row in rows)  # nothing trained in this project yet
    sizes = [float(row.split("|")[3].split()[0]) for row in rows]
    assert all(size > 0 for size in sizes)
    assert not list(repo.glob("tmp*"))  # the timed checkpoints went with their folder
