"""bench/cells.py on a tiny prepared corpus through the fit harness: each (cell, seed) recorded with its test accuracy,
parameters and machine; a stopped run resumes with the fits it lacks and a rerun trains nothing; the report names
the machine and has a row per cell, a row per fit and the gated cell's verdict against the SimpleRNN."""

from __future__ import annotations

import json
import shutil
import sys
from dataclasses import replace

import pytest

from imdb_rnn.config import load_params
from imdb_rnn.machine import describe_machine
from imdb_rnn.model import count_params
from support.commands import REPO_ROOT, run
from support.params import TINY, write_params
from support.projects import make_project

pytestmark = pytest.mark.slow  # dvc repro prepare, fits in fresh interpreters


def test_the_cells_are_scored_on_test_and_a_stopped_run_resumes(tmp_path, small_archive):
    repo = make_project(tmp_path)
    shutil.copytree(REPO_ROOT / "bench", repo / "bench", ignore=shutil.ignore_patterns("__pycache__"))
    write_params(repo / "params.yaml", TINY, True)
    run(["dvc", "repro", "prepare"], repo, env={"IMDB_SOURCE": small_archive})
    out = tmp_path / "cells.md"
    results = out.with_suffix(".jsonl")
    cmd = [sys.executable, "bench/cells.py", "--rows", "simple", "gru", "--seeds", "42", "43", "--epochs", "1"]
    cmd += ["--out", out]
    first = run(cmd, repo, timeout=600)
    assert [line for line in first.stderr.splitlines() if line.startswith("--- ")] == [
        "--- simple, simple_rnn, seed 42",  # seeds outermost: every cell of a seed, then the next seed
        "--- gru, simple_rnn, seed 42",
        "--- simple, simple_rnn, seed 43",
        "--- gru, simple_rnn, seed 43",
    ]
    fits = [json.loads(line) for line in results.read_text().splitlines()]
    model = load_params(repo / "params.yaml").model("simple_rnn")
    for fit in fits:
        assert fit["machine"] == describe_machine()
        assert len(fit["history"]) == 1 and fit["kept_epoch"] == 1
        assert fit["test"]["test_reviews"] == 80  # every test review of the tiny archive
        assert 0.0 <= fit["test"]["test_accuracy"] <= 1.0
        assert fit["test"]["parameters"] == count_params(replace(model, cell=fit["label"]))

    lines = results.read_text().splitlines()
    results.write_text("\n".join(lines[:-1]) + "\n")  # stopped during gru's seed 43
    resumed = run(cmd, repo, timeout=600)
    assert [line for line in resumed.stderr.splitlines() if line.startswith("--- ")] == ["--- gru, simple_rnn, seed 43"]
    again = run(cmd, repo, timeout=600)
    assert not [line for line in again.stderr.splitlines() if line.startswith("--- ")]
    assert len(results.read_text().splitlines()) == 4

    report = out.read_text()
    assert f"## Machine\n\n- {describe_machine()['cpu']} (" in report
    assert "**partial run**" in report  # --epochs: not the reference
    table = report.split("## Per cell\n\n")[1].split("\n\n")[0].splitlines()
    cells = [[c.strip() for c in row.split("|")[1:-1]] for row in table[2:]]
    assert [(c[0], c[1], c[2], c[8]) for c in cells] == [
        ("`simple`", "unrolled", "2", f"{count_params(model):,}"),
        ("`gru`", "Keras' loop, length buckets", "2", f"{count_params(replace(model, cell='gru')):,}"),
    ]
    assert all(" [" in c[3] and " [" in c[4] for c in cells)  # test and best val accuracy with their intervals
    seeds = report.split("## Per seed\n\n")[1].split("\n\n")[0].splitlines()[2:]
    assert [tuple(c.strip() for c in row.split("|")[1:3]) for row in seeds] == [
        ("`simple`", "42"),
        ("`simple`", "43"),
        ("`gru`", "42"),
        ("`gru`", "43"),
    ]
    verdict = report.split("## Verdict: what a gated cell buys and costs\n\n")[1].splitlines()
    assert verdict[0].startswith("- `gru`: ") and "test accuracy against `simple`" in verdict[0]
    assert ("TOST p" in verdict[0] or "not testable" in verdict[0]) and "the whole fit's time" in verdict[0]
    comparisons = [row.split("|")[1].strip() for row in verdict[2:] if row.startswith("| `")]
    assert comparisons == ["`gru` vs `simple`"]  # no control fits in this run
