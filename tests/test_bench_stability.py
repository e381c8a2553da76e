"""bench/stability.py on a tiny prepared corpus through the fit harness: one row's seeds recorded with the machine
they ran on, a rerun resumes (trains nothing already recorded), and the report names the machine and the fits."""

from __future__ import annotations

import json
import shutil
import sys

import pytest

from imdb_rnn.machine import describe_machine
from support.commands import REPO_ROOT, run
from support.params import TINY, write_params
from support.projects import make_project

pytestmark = pytest.mark.slow  # dvc repro prepare, fits in fresh interpreters


def test_a_row_is_recorded_with_its_machine_and_a_rerun_trains_nothing_again(tmp_path, small_archive):
    repo = make_project(tmp_path)
    shutil.copytree(REPO_ROOT / "bench", repo / "bench", ignore=shutil.ignore_patterns("__pycache__"))
    write_params(repo / "params.yaml", TINY, True)
    run(["dvc", "repro", "prepare"], repo, env={"IMDB_SOURCE": small_archive})
    out = tmp_path / "stability.md"
    cmd = [sys.executable, "bench/stability.py", "--rows", "simple_rnn", "--seeds", "2", "--settings", "default"]
    cmd += ["--epochs", "1", "--out", out]
    run(cmd, repo, timeout=600)
    fits = [json.loads(line) for line in out.with_suffix(".jsonl").read_text().splitlines()]
    assert [(f["label"], f["setting"], f["seed"], len(f["history"])) for f in fits] == [
        ("simple_rnn", "default", 42, 1),
        ("simple_rnn", "default", 43, 1),
    ]
    assert all(f["machine"] == describe_machine() for f in fits)

    again = run(cmd, repo, timeout=600)
    assert "--- simple_rnn" not in again.stderr  # every seed recorded under its key: nothing trained
    assert len(out.with_suffix(".jsonl").read_text().splitlines()) == 2
    report = out.read_text()
    assert f"## Machine\n\n- {describe_machine()['cpu']} (" in report
    row = next(line for line in report.splitlines() if line.startswith("| simple_rnn "))
    cells = [cell.strip() for cell in row.split("|")[1:-1]]  # row, setting, code, fits, diverged, collapsed, ...
    assert (cells[1], cells[3], cells[4]) == ("default", "2", "0")
