"""`make sweep` (bench/sweep.py) for real on a tiny project: two passes of queued DVC experiments and a
reports/sweep.md generated from what DVC and MLflow recorded, the machine included."""

from __future__ import annotations

import json
import shutil
import sys

import pytest

from imdb_rnn.machine import cpu_model
from support.commands import REPO_ROOT, run
from support.params import TINY, write_params
from support.projects import make_project

pytestmark = pytest.mark.slow

PLAN = """
variant: sweep_rnn
base:
  model: {embedding_dim: 8, units: 8, mask_padding: true, pooling: last}
  train: {bucketing: true, unroll: false}
first_pass:
  train: {seeds: [42], epochs: 1}
  configurations:
    masked-last: {}
    masked-max: {pooling: max}
second_pass:
  best: 1
  train: {seeds: [42, 43], epochs: 1}
"""


def test_two_passes_select_on_validation_and_report_every_configuration(tmp_path, small_archive):
    repo = make_project(tmp_path)
    shutil.copytree(REPO_ROOT / "bench", repo / "bench", ignore=shutil.ignore_patterns("__pycache__"))
    write_params(repo / "params.yaml", TINY, only_their_variants=True)
    (repo / "plan.yaml").write_text(PLAN)
    env = {"IMDB_SOURCE": small_archive}
    run(["dvc", "repro", "prepare"], repo, env=env)
    run(["git", "add", "-A"], repo)
    run(["git", "commit", "-qm", "prepared"], repo)

    run([sys.executable, "bench/sweep.py", "--plan", "plan.yaml", "--jobs", "2"], repo, env=env, timeout=900)

    shown = json.loads(run(["dvc", "exp", "show", "--json"], repo, env=env).stdout)
    results = {}
    for entry in shown:
        for experiment in entry.get("experiments") or []:
            data = experiment["revs"][0]["data"]
            params = data["params"]["params.yaml"]["data"]
            assert set(params["models"]) == {"sweep_rnn"}  # the lesson's variants left out
            metrics = data["metrics"]["reports/variants/sweep_rnn/metrics.json"]["data"]
            results[experiment["name"]] = (params["models"]["sweep_rnn"], metrics)
    assert set(results) == {"first-masked-last", "first-masked-max", f"second-{_best(results)}"}
    second_model, second = results[f"second-{_best(results)}"]
    assert second["seeds"] == 2
    assert second_model["train"]["seeds"] == [42, 43]

    report = (repo / "reports" / "sweep.md").read_text()
    for name, (_, metrics) in results.items():
        configuration = name.split("-", 1)[1]
        row = next(
            line
            for line in report.splitlines()
            if line.startswith(f"| {configuration} |") and f"| {metrics['seeds']} |" in line
        )
        assert f"{metrics['best_val_accuracy']:.4f}" in row
        assert f"{metrics['accuracy']:.4f}" in row
    assert f"`{_best(results)}`" in report.split("## Selected")[1]
    assert f"## Machine\n\n- {cpu_model()}; tensorflow " in report  # from the runs' tags: where they trained


def _best(results: dict) -> str:
    """The first-pass configuration with the best validation accuracy: the one the second pass took."""
    first = {name.split("-", 1)[1]: m for name, (_, m) in results.items() if name.startswith("first-")}
    return min(first, key=lambda name: (-first[name]["best_val_accuracy"], name))  # ties: by name, as the sweep
