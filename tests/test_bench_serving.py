"""bench/serving.py for real on a tiny project's champion (made by bench/repro_times.py, timed stage by
stage): concurrent clients, no errors, and a report that names the machine and the model it served (a tiny one
here, and it says so by the reviews it trained on)."""

from __future__ import annotations

import re
import sys

import pytest

from imdb_rnn.files import read_json
from imdb_rnn.machine import describe_machine
from support.commands import REPO_ROOT, run
from support.params import ONE_VARIANT, write_yaml
from support.projects import make_project

pytestmark = pytest.mark.slow  # dvc repro, a model server under load

ROW = re.compile(r"^\| (\d+) \| (\d+) \| (\d+) \| ([\d.]+) \| ([\d.]+) \| ([\d.]+) \|$")


def test_the_serving_benchmark_loads_the_champion_with_no_errors(tmp_path, small_archive):
    (tmp_path / "project").mkdir()
    repo = make_project(tmp_path / "project")
    write_yaml(repo / "params.yaml", ONE_VARIANT)
    times = tmp_path / "repro-times.json"  # the project made by bench/repro_times.py: a forced dvc repro, timed
    cmd = [sys.executable, REPO_ROOT / "bench" / "repro_times.py", "--project", repo, "--json", times]
    run([*cmd, "--out", tmp_path / "repro-times.md"], tmp_path, env={"IMDB_SOURCE": small_archive}, timeout=600)
    measured = read_json(times)
    assert {"prepare", "train@simple_rnn", "evaluate@simple_rnn", "register"} <= set(measured["stages_s"])
    assert sum(measured["stages_s"].values()) <= measured["total_s"]
    fits = measured["training"]["train@simple_rnn"]
    assert (fits["seeds"], fits["epochs"]) == (len(ONE_VARIANT["train"]["seeds"]), 2 * fits["seeds"])
    assert 0 < fits["first_epochs_s"] + fits["later_epochs_s"] < measured["stages_s"]["train@simple_rnn"]
    assert "| `train@simple_rnn` |" in (tmp_path / "repro-times.md").read_text().split("where their time goes")[1]
    out = tmp_path / "serving.md"
    cmd = [sys.executable, REPO_ROOT / "bench" / "serving.py", "--project", repo, "--clients", "1", "4"]
    run([*cmd, "--requests", "24", "--out", out], tmp_path, timeout=600)

    report = out.read_text()
    assert f"## Machine\n\n- {describe_machine()['cpu']} (" in report
    trained = read_json(repo / "reports" / "data.json")["splits"]["train"]["reviews"]
    model = "`simple_rnn` (SimpleRNN(8), 200 words x 8; maxlen 40)"
    assert f"version 1, {model}, trained on {trained:,} reviews for 2 epoch(s): a test model (the full data" in report
    memory = re.search(r"server memory \(RSS of its process tree\): (\d+) MB before the load, (\d+) MB after", report)
    assert memory and int(memory[1]) > 100 and int(memory[2]) > 100
    rows = [ROW.match(line) for line in report.split("## Load\n")[1].splitlines() if ROW.match(line)]
    assert [(int(r[1]), int(r[2]), int(r[3])) for r in rows] == [(1, 24, 0), (4, 24, 0)]  # clients, requests, errors
    assert all(float(r[4]) > 0 and 0 < float(r[5]) <= float(r[6]) for r in rows)  # requests/s, p50 <= p99
