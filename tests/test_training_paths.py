"""bench/training_paths.py runs on today's params through the fit harness: a tiny prepared corpus, a variant
whose vocabulary (max_features 20) is smaller than the words the data has (about 50), the lesson's path and
one pipeline path, one epoch; the report names the machine the fits ran on."""

from __future__ import annotations

import json
import shutil
import sys

import pytest

from imdb_rnn.files import read_json
from imdb_rnn.machine import describe_machine
from support.commands import REPO_ROOT, run
from support.params import TINY, deep_merge, write_params
from support.projects import make_project

pytestmark = pytest.mark.slow  # dvc repro prepare, two fits in fresh interpreters


def test_the_study_fits_a_variant_with_fewer_words_than_the_data(tmp_path, small_archive):
    repo = make_project(tmp_path)
    shutil.copytree(REPO_ROOT / "bench", repo / "bench", ignore=shutil.ignore_patterns("__pycache__"))
    # by review: 64 training and 16 validation reviews, the 4:1 the lesson's validation_split=0.2 takes
    tiny = deep_merge(TINY, {"data": {"val_split_by": "review"}, "models": {"stacked_rnn": {"max_features": 20}}})
    write_params(repo / "params.yaml", tiny, True)
    run(["dvc", "repro", "prepare"], repo, env={"IMDB_SOURCE": small_archive})
    assert len(read_json(repo / "data" / "prepared" / "vocab.json")["words"]) > 20
    results, out = tmp_path / "paths.jsonl", tmp_path / "paths.md"
    cmd = [sys.executable, "bench/training_paths.py", "--variant", "stacked_rnn", "--paths", "plain", "unroll+dense"]
    run([*cmd, "--seeds", "42", "--epochs", "1", "--results", results, "--out", out], repo, timeout=600)
    fits = [json.loads(line) for line in results.read_text().splitlines()]
    assert [(f["label"], f["kind"], f["seed"], len(f["history"])) for f in fits] == [
        ("plain", "plain", 42, 1),
        ("unroll+dense", "pipeline", 42, 1),
    ]
    assert all(f["machine"]["cpu"] == describe_machine()["cpu"] for f in fits)
    report = out.read_text()
    assert f"## Machine\n\n- {describe_machine()['cpu']} (" in report
    assert [
        line.split(" | ")[0]
        for line in report.splitlines()
        if line.startswith("| plain") or line.startswith("| unroll")
    ] == [
        "| plain",
        "| unroll+dense",
    ]
