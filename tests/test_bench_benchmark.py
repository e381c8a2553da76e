"""bench/benchmark.py for real on a tiny prepared corpus: the lesson's model (which the plain script fits) in
its three arms, interleaved seed by seed, and a variant the script cannot fit; the report leads with the whole
fits, tests accuracy by equivalence, names the machine, and renders again from its JSON alone."""

from __future__ import annotations

import json
import shutil
import sys

import pytest

from imdb_rnn.machine import describe_machine
from support.commands import REPO_ROOT, run
from support.params import TINY, deep_merge, write_params
from support.projects import make_project

pytestmark = pytest.mark.slow  # dvc repro prepare, nine fits in fresh interpreters

LESSON = {"max_features": 10000, "embedding_dim": 32, "units": 32, "layers": 1}  # the plain script's layers
PARAMS = {
    # by review: 64 training and 16 validation reviews, the 4:1 the lesson's validation_split=0.2 takes
    "data": {"max_features": 10000, "val_split_by": "review"},
    "train": {"epochs": 4},  # the benchmark fits 2: the whole fit at 4 is extrapolated
    "models": {"simple_rnn": LESSON, "stacked_rnn": {"max_features": 150}},  # stacked_rnn: TINY's small layers
}


def test_the_benchmark_interleaves_the_arms_and_reports_whole_fits(tmp_path, small_archive):
    repo = make_project(tmp_path)
    shutil.copytree(REPO_ROOT / "bench", repo / "bench", ignore=shutil.ignore_patterns("__pycache__"))
    write_params(repo / "params.yaml", deep_merge(TINY, PARAMS), True)
    run(["dvc", "repro", "prepare"], repo, env={"IMDB_SOURCE": small_archive})
    out = tmp_path / "bench.md"
    cmd = [sys.executable, "bench/benchmark.py", "--seeds", "2", "--epochs", "2", "--replicates", "2"]
    run([*cmd, "--prepare-runs", "1", "--archive", small_archive, "--out", out], repo, timeout=900)

    measured = json.loads(out.with_suffix(".json").read_text())
    order = [(f["variant"], f["arm"], f["seed"]) for f in measured["fits"]]
    assert order[:6] == [
        ("simple_rnn", arm, seed) for seed in (42, 43) for arm in ("plain", "lesson-exact", "default")
    ]  # interleaved: every arm of a seed, then the next seed
    assert order[6:] == [("stacked_rnn", "default", 42)]  # the plain script cannot fit it: one seed, one arm
    assert all(len(f["history"]) == 2 and f["machine"] == describe_machine() for f in measured["fits"])

    report = out.read_text()
    assert f"## Machine\n\n- {describe_machine()['cpu']} (" in report
    headline = report.split("## Headline: whole fits, pipeline vs the plain script\n")[1].split("\n## ")[0]
    rows = [line for line in headline.splitlines() if line.startswith("| simple_rnn")]
    assert [row.split(" | ")[0] for row in rows] == [
        "| simple_rnn, pipeline, lesson-exact",
        "| simple_rnn, pipeline, default",
    ]
    assert all("4 epochs: " in row and "(extrapolated)" in row and "within +-0.01" in row for row in rows)
    assert "## stacked_rnn" in report and "| whole fit s |" in report
    assert "| simple_rnn | 2 |" in report  # replicates
    targets = report.split("## Targets\n")[1].split("\n## ")[0]
    assert "simple_rnn, pipeline, default: first epoch <= 1x plain" in targets
    assert "simple_rnn, pipeline, lesson-exact: best val acc equivalent to plain within +-0.01" in targets
    assert "| prepare <= 10 s |" in targets

    run([*cmd, "--out", out, "--report-only"], repo)
    assert out.read_text() == report
