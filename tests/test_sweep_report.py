"""bench/sweep.py's report on real `dvc exp show` output: a tiny DVC project (one stage that writes the
variant's metrics.json, no training) whose queued experiments succeed, or fail in their stage."""

from __future__ import annotations

import re
import shutil
import sys

import pytest

from support.commands import REPO_ROOT, run

pytestmark = pytest.mark.slow  # a real DVC queue

STAGE = """import json, os, sys
import yaml
units = yaml.safe_load(open("params.yaml"))["models"]["sweep_rnn"]["units"]
if units == 13:
    sys.exit("error: unlucky units")
os.makedirs("reports/variants/sweep_rnn", exist_ok=True)
metrics = {"seeds": 1, "best_val_accuracy": units / 100, "accuracy": units / 200}
json.dump(metrics, open("reports/variants/sweep_rnn/metrics.json", "w"))
"""
DVC_YAML = """stages:
  train:
    cmd: python stage.py
    deps: [stage.py]
    params: [models]
    metrics:
      - reports/variants/sweep_rnn/metrics.json:
          cache: false
"""
PLAN = """
variant: sweep_rnn
base:
  model: {units: 4}
  train: {}
first_pass:
  train: {}
  configurations:
    good: {units: 8}
    bad: {units: 13}
second_pass:
  best: 1
  train: {}
"""


def test_a_failed_point_is_reported_failed_beside_the_others(tmp_path):
    repo = tmp_path / "project"
    (repo / "bench").mkdir(parents=True)
    shutil.copy2(REPO_ROOT / "bench" / "sweep.py", repo / "bench" / "sweep.py")
    shutil.copy2(REPO_ROOT / "params.yaml", repo / "params.yaml")
    (repo / "stage.py").write_text(STAGE)
    (repo / "dvc.yaml").write_text(DVC_YAML)
    (repo / "plan.yaml").write_text(PLAN)
    (repo / ".gitignore").write_text("mlflow.db\n")
    run(["git", "init", "-q"], repo)
    for key, value in (("user.name", "Test User"), ("user.email", "test@example.com"), ("commit.gpgsign", "false")):
        run(["git", "config", key, value], repo)
    run(["dvc", "init", "-q"], repo)
    run(["git", "add", "-A"], repo)
    run(["git", "commit", "-qm", "tiny project"], repo)

    proc = run([sys.executable, "bench/sweep.py", "--plan", "plan.yaml", "--passes", "first", "--jobs", "1"], repo)

    report = (repo / "reports" / "sweep.md").read_text()
    rows = dict(re.findall(r"^\| (good|bad) \| (.*)$", report, re.M))
    assert rows["bad"] == "units=13 | - | failed | | | | | |", report
    assert rows["good"].startswith("units=8 | 1 | 0.0800 | "), report
    assert "Traceback" not in proc.stderr, proc.stderr
