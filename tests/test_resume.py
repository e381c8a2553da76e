"""No work lost to a kill -9: the next `dvc repro` resumes training where it stopped.

A real SIGKILL at an exact point of a tiny pipeline (``KILL_ENV``: the first epoch, mid-seed,
between seeds) or of its evaluate stage, then a plain `dvc repro`: the result equals an
uninterrupted run's bit for bit, only the missing epochs train, and no MLflow run stays RUNNING.
"""

from __future__ import annotations

import json
import re
import shutil
import signal
import subprocess
import time
from pathlib import Path

import pandas as pd
import pytest
import yaml

from imdb_rnn.faults import KILL_ENV
from support.commands import run, tool_env, wait_until
from support.params import ONE_VARIANT, write_yaml
from support.projects import make_project, ran_stages
from support.tracking import mlflow_client

pytestmark = pytest.mark.slow  # real dvc repro, real kill -9

VARIANT = "simple_rnn"
EPOCHS = 4
RESUME = {**ONE_VARIANT, "train": {**ONE_VARIANT["train"], "epochs": EPOCHS, "seeds": [42, 43]}}
EPOCH_LINE = re.compile(r"^seed (\d+) epoch (\d+)/\d+: loss", re.M)
ALL_EPOCHS = {(seed, epoch) for seed in (42, 43) for epoch in range(1, EPOCHS + 1)}


@pytest.fixture(scope="module")
def prepared(tmp_path_factory, small_archive):
    """A committed project with RESUME params and its data prepared: each test trains a copy of it."""
    folder = tmp_path_factory.mktemp("resume") / "project"
    folder.mkdir()
    repo = make_project(folder)
    write_yaml(repo / "params.yaml", RESUME)
    run(["git", "commit", "-qam", "resume params"], repo)
    env = {"IMDB_SOURCE": str(small_archive)}
    run(["dvc", "repro", "prepare"], repo, env=env)
    return repo, env


def copy_of(repo: Path, folder: Path) -> Path:
    return Path(shutil.copytree(repo, folder, symlinks=True))


def results(repo: Path) -> tuple[dict, pd.DataFrame]:
    reports = repo / "reports" / "variants" / VARIANT
    history = pd.read_csv(reports / "history.csv").drop(columns="seconds")
    return json.loads((reports / "metrics.json").read_text()), history


@pytest.fixture(scope="module")
def uninterrupted(prepared, tmp_path_factory):
    repo, env = prepared
    clone = copy_of(repo, tmp_path_factory.mktemp("uninterrupted") / "project")
    proc = run(["dvc", "repro"], clone, env=env, timeout=600)
    assert set(trained_epochs(proc.stdout)) == ALL_EPOCHS
    return results(clone)


def trained_epochs(stdout: str) -> list[tuple[int, int]]:
    return [(int(seed), int(epoch)) for seed, epoch in EPOCH_LINE.findall(stdout)]


def runs_of(repo: Path) -> list:
    client = mlflow_client(repo)
    experiment = client.get_experiment_by_name("imdb-rnn")
    return [r for r in client.search_runs([experiment.experiment_id]) if r.data.tags.get("variant") == VARIANT]


def assert_same_result_and_clean_runs(repo: Path, uninterrupted) -> None:
    metrics, history = results(repo)
    assert metrics == uninterrupted[0]  # test metrics of every seed, bit for bit
    pd.testing.assert_frame_equal(history, uninterrupted[1], check_exact=True)
    runs = runs_of(repo)
    assert [r.info.status for r in runs if r.info.status == "RUNNING"] == []
    kinds = sorted(r.data.tags["run_kind"] for r in runs)
    assert kinds == ["seed", "seed", "variant"]  # the interrupted runs continued: none doubled
    assert {r.info.status for r in runs} == {"FINISHED"}
    client = mlflow_client(repo)
    for seed_run in (r for r in runs if r.data.tags["run_kind"] == "seed"):
        steps = sorted({m.step for m in client.get_metric_history(seed_run.info.run_id, "val_accuracy")})
        assert steps == list(range(1, EPOCHS + 1))  # the curve goes on where it stopped
    left = [p for p in (repo / ".checkpoints").rglob("*") if p.is_file()]
    assert left == []  # spent once the stage completed


@pytest.mark.parametrize(
    "point, retrained",
    [
        ("42:1:1", ALL_EPOCHS),  # in the first epoch: nothing finished to keep
        ("42:3:1", ALL_EPOCHS - {(42, 1), (42, 2)}),  # mid-seed: seed 42 goes on after epoch 2
        ("43:1:0", {(43, epoch) for epoch in range(1, EPOCHS + 1)}),  # between seeds: seed 42 is done
    ],
    ids=["first-epoch", "mid-seed", "between-seeds"],
)
def test_killed_training_resumes_to_the_uninterrupted_result(prepared, uninterrupted, tmp_path, point, retrained):
    repo, env = prepared
    repo = copy_of(repo, tmp_path / "project")
    killed = run(["dvc", "repro"], repo, env={**env, KILL_ENV: point}, check=False, timeout=600)
    assert killed.returncode != 0
    assert "RUNNING" in {r.info.status for r in runs_of(repo)}  # kill -9: nothing ended them
    assert not (repo / "models" / VARIANT).exists()

    again = run(["dvc", "repro"], repo, env=env, timeout=600)
    assert f"train@{VARIANT}" in ran_stages(again.stdout)
    assert "left RUNNING by a process that died are now KILLED" in again.stdout
    assert set(trained_epochs(again.stdout)) == retrained
    assert len(trained_epochs(again.stdout)) == len(retrained)  # each missing epoch once, no other
    if point == "43:1:0":
        assert "seed 42: finished before the interruption (4 epochs); not retrained" in again.stdout
    assert_same_result_and_clean_runs(repo, uninterrupted)


def test_killed_evaluation_reruns_cleanly(prepared, uninterrupted, tmp_path):
    repo, env = prepared
    repo = copy_of(repo, tmp_path / "project")
    log = tmp_path / "repro.log"
    with log.open("w") as out:
        proc = subprocess.Popen(
            ["dvc", "repro"], cwd=repo, env=tool_env(env), stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
    try:
        wait_until(lambda: f"Running stage 'evaluate@{VARIANT}'" in log.read_text(), "evaluate starting", timeout=300)
        wait_until(lambda: any(r.info.status == "RUNNING" for r in runs_of(repo)), "evaluate's runs open", timeout=60)
        time.sleep(0.5)
        proc.send_signal(signal.SIGKILL)  # dvc itself; its stage goes with the group
        subprocess.run(["pkill", "-KILL", "-g", str(proc.pid)], check=False)
    finally:
        proc.wait(timeout=30)
    assert not (repo / "reports" / "variants" / VARIANT / "metrics.json").exists()

    again = run(["dvc", "repro"], repo, env=env, timeout=600)
    assert f"train@{VARIANT}" not in ran_stages(again.stdout)  # its outputs were complete: kept
    assert f"evaluate@{VARIANT}" in ran_stages(again.stdout)
    assert_same_result_and_clean_runs(repo, uninterrupted)


BUCKETED = {
    "train": {"bucketing": True, "unroll": False},
    "dropout": 0.3,
    "spatial_dropout": 0.3,
    "bidirectional": True,
}


def test_a_bucketed_dropout_model_resumes_to_the_uninterrupted_history(prepared, tmp_path):
    """best_rnn's path (length buckets, no unrolling, dropout, both directions), killed mid-seed."""
    repo, env = prepared
    histories = []
    for name, kill in (("uninterrupted", None), ("killed", "42:3:1")):
        clone = copy_of(repo, tmp_path / name)
        params = yaml.safe_load((clone / "params.yaml").read_text())
        params["models"][VARIANT] = {**params["models"][VARIANT], **BUCKETED}
        write_yaml(clone / "params.yaml", params)
        if kill:
            run(["dvc", "repro", f"train@{VARIANT}"], clone, env={**env, KILL_ENV: kill}, check=False, timeout=600)
        run(["dvc", "repro", f"train@{VARIANT}"], clone, env=env, timeout=600)
        histories.append(pd.read_csv(clone / "reports" / "variants" / VARIANT / "history.csv").drop(columns="seconds"))
    pd.testing.assert_frame_equal(histories[1], histories[0], check_exact=True)
