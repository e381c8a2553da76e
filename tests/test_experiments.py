"""Sweeps: a queued grid run two at a time lands in the workspace's MLflow store; new variants."""

import json
import time

import pandas as pd
import pytest
import yaml

from support.commands import run, start_queue
from support.params import TINY, write_params
from support.projects import make_project, ran_stages
from support.tracking import experiment_runs

pytestmark = pytest.mark.slow  # real dvc repro / queues / servers / signals

ONE_VARIANT = {**TINY, "models": {"simple_rnn": TINY["models"]["simple_rnn"]}}


@pytest.fixture(scope="module")
def baseline_repo(tmp_path_factory, small_archive):
    """A project with one tiny variant, reproduced and committed: the baseline for experiments."""
    repo = make_project(tmp_path_factory.mktemp("experiments"))
    (repo / "params.yaml").write_text(
        yaml.safe_dump({**yaml.safe_load((repo / "params.yaml").read_text()), **ONE_VARIANT}, sort_keys=False)
    )
    env = {"IMDB_SOURCE": small_archive}
    run(["dvc", "repro"], repo, env=env, timeout=600)
    run(["git", "add", "-A"], repo)
    run(["git", "commit", "-qm", "baseline"], repo)
    return repo, env


def wait_for_queue(repo, env, timeout=420):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        status = run(["dvc", "queue", "status"], repo, env=env).stdout
        if "Queued" not in status and "Running" not in status:
            return status
        time.sleep(3)
    run(["dvc", "queue", "kill", "--all"], repo, env=env, check=False)
    raise AssertionError(f"queue did not finish:\n{status}")


def run_queued_grid(repo, env, grid: str) -> str:
    """Queue ``-S grid``, run the queue two at a time, stop its workers; `dvc queue status` at the end."""
    run(["dvc", "exp", "run", "--queue", "-S", grid], repo, env=env)
    start_queue(repo, env)
    try:
        return wait_for_queue(repo, env)
    finally:
        run(["dvc", "queue", "stop"], repo, env=env, check=False)


def shown_experiments(repo, env) -> dict[str, tuple[int, float]]:
    """``dvc exp show``'s experiments: name -> (simple_rnn's units, its test accuracy)."""
    shown = json.loads(run(["dvc", "exp", "show", "--json"], repo, env=env).stdout)
    experiments = {}
    for exp in (e for entry in shown for e in entry.get("experiments") or []):
        data = exp["revs"][0]["data"]
        experiments[exp["name"]] = (
            data["params"]["params.yaml"]["data"]["models"]["simple_rnn"]["units"],
            data["metrics"]["reports/variants/simple_rnn/metrics.json"]["data"]["accuracy"],
        )
    return experiments


def test_queued_grid_runs_two_at_a_time_and_maps_to_mlflow_runs(baseline_repo):
    repo, env = baseline_repo
    _, before = experiment_runs(repo)
    status = run_queued_grid(repo, env, "models.simple_rnn.units=4,12")
    assert status.count("Success") == 2, status

    experiments = shown_experiments(repo, env)
    assert sorted(units for units, _ in experiments.values()) == [4, 12]

    _, after = experiment_runs(repo)
    new = [r for r in after if r.info.run_id not in {b.info.run_id for b in before}]
    by_name = {r.data.tags.get("dvc_exp_name"): r for r in new}
    assert set(by_name) == set(experiments), (set(by_name), set(experiments))
    _, seed_runs = experiment_runs(repo, "seed")
    for name, (units, accuracy) in experiments.items():
        mlflow_run = by_name[name]
        assert mlflow_run.info.status == "FINISHED"
        assert mlflow_run.data.params["model.units"] == str(units)
        assert mlflow_run.data.metrics["test_accuracy_mean"] == pytest.approx(accuracy, abs=1e-6)
        assert mlflow_run.info.run_name == f"{name}/simple_rnn"
        # the replicates: one nested run per seed, named and tagged after the experiment too
        children = [r for r in seed_runs if r.data.tags.get("mlflow.parentRunId") == mlflow_run.info.run_id]
        assert sorted(r.info.run_name for r in children) == [f"{name}/simple_rnn/seed {s}" for s in (42, 43)]
        assert {r.data.tags["dvc_exp_name"] for r in children} == {name}
    # the temporary workspaces wrote no store of their own
    assert not list((repo / ".dvc" / "tmp").rglob("mlflow.db"))

    names = sorted(experiments)
    diff = json.loads(run(["dvc", "plots", "diff", *names, "--json"], repo, env=env).stdout)
    points = diff["data"]["reports/variants/simple_rnn/history.csv"][0]["content"]["data"]["values"]
    assert {point["rev"] for point in points} == set(names)
    assert {point["epoch"] for point in points} == {"1", "2"}
    assert {point["seed"] for point in points} == {"42", "43"}


def test_readme_sequence_gives_every_experiment_its_mlflow_runs(baseline_repo):
    """README's sequence: an experiment in the workspace (its result stays there), then a queued grid that
    repeats its value. The repeat trains nothing (DVC finds its stages unchanged or in its run cache) and
    still has its MLflow runs: a summary named after it and a variant run linked to the one that trained."""
    repo, env = baseline_repo
    run(["dvc", "exp", "run", "-S", "models.simple_rnn.units=10"], repo, env=env, timeout=600)
    assert "units: 10" in run(["git", "diff", "params.yaml"], repo).stdout  # applied to the workspace
    before = set(shown_experiments(repo, env))
    status = run_queued_grid(repo, env, "models.simple_rnn.units=6,10")
    assert status.count("Success") >= 2, status

    experiments = shown_experiments(repo, env)
    _, variant_runs = experiment_runs(repo)
    _, summary_runs = experiment_runs(repo, "summary")
    for name in experiments:  # every experiment DVC shows, the earlier tests' included
        assert f"{name}/summary" in {r.info.run_name for r in summary_runs}, name
        assert name in {r.data.tags.get("dvc_exp_name") for r in variant_runs}, name
    repeat = next(name for name, (units, _) in experiments.items() if units == 10 and name not in before)
    (link,) = [r for r in variant_runs if r.data.tags.get("dvc_exp_name") == repeat]
    trained = next(name for name, (units, _) in experiments.items() if units == 10 and name in before)
    (source,) = [r for r in variant_runs if r.data.tags.get("dvc_exp_name") == trained]
    assert link.data.tags["restored_from"] == source.info.run_id

    run(["git", "checkout", "params.yaml", "dvc.lock"], repo)  # README's way back to the commit
    run(["dvc", "checkout"], repo, env=env)
    assert run(["git", "status", "--porcelain", "params.yaml", "dvc.lock"], repo).stdout == ""


def test_adding_a_variant_is_one_params_entry(baseline_repo):
    repo, env = baseline_repo
    write_params(repo / "params.yaml", {"models": {"wide_rnn": {"embedding_dim": 8, "units": 16, "layers": 2}}})
    proc = run(["dvc", "repro"], repo, env=env, timeout=600)
    assert ran_stages(proc.stdout) == {"validate", "train@wide_rnn", "evaluate@wide_rnn", "report", "register", "track"}
    summary = pd.read_csv(repo / "reports" / "summary.csv")
    assert sorted(summary["variant"]) == ["simple_rnn", "wide_rnn"]
    wide = summary.set_index("variant").loc["wide_rnn"]
    assert wide["units"] == 16
    assert wide["layers"] == 2
    _, runs = experiment_runs(repo)
    assert "wide_rnn" in {r.data.tags["variant"] for r in runs}


def test_a_variant_dvc_restores_still_shows_under_the_experiment(baseline_repo):
    """`dvc exp run` that changes one variant: DVC keeps the other's outputs without running its stages,
    and nothing would log it for this experiment; the report adds a run linking to the one that produced it."""
    repo, env = baseline_repo
    write_params(repo / "params.yaml", {"models": {"wide_rnn": {"embedding_dim": 8, "units": 16, "layers": 2}}})
    run(["dvc", "repro"], repo, env=env, timeout=600)
    run(["git", "add", "-A"], repo)
    run(["git", "commit", "-qm", "two variants"], repo)
    produced_by = json.loads((repo / "models" / "simple_rnn" / "run.json").read_text())["run_id"]

    out = run(["dvc", "exp", "run", "-n", "wider", "-S", "models.wide_rnn.units=12"], repo, env=env, timeout=600)
    assert "train@simple_rnn" not in ran_stages(out.stdout)
    assert "train@wide_rnn" in ran_stages(out.stdout)
    _, runs = experiment_runs(repo)
    mine = {r.data.tags["variant"]: r for r in runs if r.data.tags.get("dvc_exp_name") == "wider"}
    assert set(mine) == {"simple_rnn", "wide_rnn"}
    link = mine["simple_rnn"]
    assert link.data.tags["restored_from"] == produced_by
    assert link.info.run_name == "wider/simple_rnn (restored)"
    source = experiment_runs(repo)[0].get_run(produced_by)
    assert link.data.metrics["test_accuracy_mean"] == source.data.metrics["test_accuracy_mean"]
    assert "restored_from" not in mine["wide_rnn"].data.tags
