"""bench/repro_times.py will not time a project holding an interrupted training's checkpoint: its train stage
would resume it, and the figure would be only the rest (the forced, timed runs themselves: test_bench_scaling.py
and test_bench_serving.py, on the tiny pipeline)."""

from __future__ import annotations

import sys

from support.commands import REPO_ROOT, run
from support.projects import make_project


def test_a_checkpoint_left_by_an_interrupted_training_is_one_line_and_nothing_runs(tmp_path):
    repo = make_project(tmp_path)
    (repo / ".checkpoints" / "simple_rnn" / "key").mkdir(parents=True)
    (repo / ".checkpoints" / "simple_rnn" / "key" / "seed-42.weights.h5").write_bytes(b"state")
    times = tmp_path / "repro-times.json"
    cmd = [sys.executable, REPO_ROOT / "bench" / "repro_times.py", "--project", repo, "--json", times]
    proc = run(cmd, tmp_path, check=False)
    assert proc.returncode == 1
    assert proc.stderr.startswith("error: ") and proc.stderr.count("\n") == 1, proc.stderr
    assert "interrupted training's checkpoint" in proc.stderr and "dvc repro" in proc.stderr
    assert not times.exists() and not (repo / "data").exists()
