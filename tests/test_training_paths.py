"""bench/training_paths.py runs on today's params: a tiny prepared corpus, a variant whose vocabulary
(max_features 20) is smaller than the words the data has (about 50), the lesson's path and one pipeline
path, one epoch."""

from __future__ import annotations

import json
import shutil
import sys

import pytest

from imdb_rnn.files import read_json
from support.commands import REPO_ROOT, run
from support.params import TINY, deep_merge, write_params
from support.projects import make_project

pytestmark = pytest.mark.slow  # dvc repro prepare, two fits in fresh interpreters


def test_the_study_fits_a_variant_with_fewer_words_than_the_data(tmp_path, small_archive):
    repo = make_project(tmp_path)
    shutil.copytree(REPO_ROOT / "bench", repo / "bench", ignore=shutil.ignore_patterns("__pycache__"))
    write_params(repo / "params.yaml", deep_merge(TINY, {"models": {"stacked_rnn": {"max_features": 20}}}), True)
    run(["dvc", "repro", "prepare"], repo, env={"IMDB_SOURCE": small_archive})
    assert len(read_json(repo / "data" / "prepared" / "vocab.json")["words"]) > 20
    results = tmp_path / "paths.jsonl"
    cmd = [sys.executable, "bench/training_paths.py", "--variant", "stacked_rnn", "--paths", "plain", "unroll+dense"]
    run([*cmd, "--seeds", "42", "--epochs", "1", "--results", results], repo, timeout=600)
    fits = [json.loads(line) for line in results.read_text().splitlines()]
    assert [(f["path"], f["seed"], len(f["val_acc"])) for f in fits] == [("plain", 42, 1), ("unroll+dense", 42, 1)]
