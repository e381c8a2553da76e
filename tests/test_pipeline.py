"""`dvc repro` end to end on a small archive: stages, reports, MLflow store, incremental reruns."""

import json
import zipfile

import numpy as np
import pandas as pd
import pytest

from imdb_rnn.config import ModelParams
from imdb_rnn.model import count_params
from support.commands import run
from support.params import TINY, write_params
from support.projects import NATIVE_NOISE, make_project, ran_stages
from support.tracking import experiment_runs, mlflow_service

pytestmark = pytest.mark.slow  # real dvc repro / queues / servers / signals

VARIANTS = ("simple_rnn", "stacked_rnn")
SEED_DIRS = ("seed_42", "seed_43")  # TINY trains two seeds


def keras_members(path) -> dict[str, bytes]:
    """A .keras archive's config and weights, byte for byte; not metadata.json (its save time) or the members'
    zip timestamps, which differ between two saves of one model a second apart."""
    with zipfile.ZipFile(path) as archive:
        return {name: archive.read(name) for name in archive.namelist() if name != "metadata.json"}


@pytest.fixture(scope="module")
def repro_repo(tmp_path_factory, small_archive):
    """One full `dvc repro` in a fresh project, shared by the read-only checks below."""
    repo = make_project(tmp_path_factory.mktemp("pipeline"))
    write_params(repo / "params.yaml", TINY, only_their_variants=True)
    run(["git", "commit", "-qam", "tiny params"], repo)
    proc = run(["dvc", "repro"], repo, env={"IMDB_SOURCE": small_archive}, timeout=600)
    return repo, proc


def test_repro_runs_every_stage_and_writes_outputs(repro_repo):
    repo, proc = repro_repo
    expected = {"validate", "download", "prepare", "report", "register", "track"} | {
        f"{s}@{v}" for s in ("train", "evaluate") for v in VARIANTS
    }
    assert ran_stages(proc.stdout) == expected
    noise = [line for line in (proc.stdout + proc.stderr).splitlines() if NATIVE_NOISE.search(line)]
    assert noise == [], noise  # the stages print what a user can act on, nothing of TensorFlow's start-up
    retraced = [line for line in (proc.stdout + proc.stderr).splitlines() if "retracing" in line]
    assert retraced == [], retraced  # evaluate scores every seed through one traced predict
    for variant in VARIANTS:
        model_dir, report_dir = repo / "models" / variant, repo / "reports" / "variants" / variant
        assert {p.name for p in model_dir.iterdir()} == {"model.keras", "summary.txt", "run.json", *SEED_DIRS}
        run_json = json.loads((model_dir / "run.json").read_text())
        assert sorted(run_json["seed_runs"]) == ["42", "43"]
        assert run_json["selected_seed"] in (42, 43)
        selected = model_dir / f"seed_{run_json['selected_seed']}" / "model.keras"
        assert keras_members(model_dir / "model.keras") == keras_members(selected)  # the variant's model
        history = pd.read_csv(report_dir / "history.csv")
        assert list(history.columns) == ["seed", "epoch", "loss", "accuracy", "val_loss", "val_accuracy", "seconds"]
        assert history[["seed", "epoch"]].values.tolist() == [[42, 1], [42, 2], [43, 1], [43, 2]]
        metrics = json.loads((report_dir / "metrics.json").read_text())
        assert metrics["seeds"] == 2
        assert [row["seed"] for row in metrics["per_seed"]] == [42, 43]
        for key in ("accuracy", "precision", "recall", "f1", "roc_auc", "best_val_accuracy"):
            values = [row[key] for row in metrics["per_seed"]]
            assert all(0.0 <= v <= 1.0 for v in values), (variant, key, values)
            assert metrics[key] == pytest.approx(sum(values) / 2, abs=1e-6)  # the mean over seeds
        assert metrics["accuracy_ci95_low"] <= metrics["accuracy"] <= metrics["accuracy_ci95_high"]
        assert metrics["loss"] > 0
        for png in ("accuracy.png", "loss.png", "confusion.png", "roc.png", "length.png"):
            assert (report_dir / png).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        predictions = pd.read_csv(report_dir / "predictions.csv")
        assert len(predictions) == 80
        assert set(predictions["actual"]) == {"neg", "pos"}
        # the seeds' ensemble beside their mean; served: the selected seed (serve: best_seed, the default)
        assert metrics["serve"] == "best_seed"
        selected_row = next(row for row in metrics["per_seed"] if row["seed"] == run_json["selected_seed"])
        assert metrics["served_accuracy"] == selected_row["accuracy"]
        for key in ("accuracy", "precision", "recall", "f1", "roc_auc", "val_accuracy"):
            assert 0.0 <= metrics[f"ensemble_{key}"] <= 1.0
        by_length = pd.read_csv(report_dir / "length.csv")
        assert by_length["reviews"].sum() == 80
        assert by_length["group"].iloc[-1] == "cut"  # the corpus' long reviews pass maxlen 40
        assert by_length["tokens_max"].is_monotonic_increasing
        val_predictions = pd.read_csv(report_dir / "val_predictions.csv")
        val = np.load(repo / "data" / "prepared" / "val.npz")
        assert list(val_predictions.columns) == ["review", "label", "tokens", "probability"]
        assert val_predictions["label"].tolist() == val["y"].tolist()
        assert val_predictions["tokens"].tolist() == val["lengths"].tolist()
        right = (val_predictions["probability"] >= 0.5) == val_predictions["label"]
        assert metrics["served_val_accuracy"] == pytest.approx(right.mean(), abs=1e-6)
    assert "Embedding" in (repo / "models" / "stacked_rnn" / "summary.txt").read_text()


def test_dvc_metrics_and_plots_read_the_reports(repro_repo):
    repo, _ = repro_repo
    shown = json.loads(run(["dvc", "metrics", "show", "--json"], repo).stdout)
    files = next(iter(shown.values()))["data"]
    for variant in VARIANTS:
        assert "accuracy" in files[f"reports/variants/{variant}/metrics.json"]["data"]
    plots = run(["dvc", "plots", "show", "--json"], repo).stdout
    assert "reports/variants/simple_rnn/history.csv" in plots
    assert '"errors"' not in plots


def test_mlflow_holds_a_run_per_variant_with_a_nested_run_per_seed(repro_repo):
    import mlflow

    repo, _ = repro_repo
    mlflow.set_tracking_uri(f"sqlite:///{repo / 'mlflow.db'}")  # the fluent calls below read this project's store
    client, runs = experiment_runs(repo)
    _, seed_runs = experiment_runs(repo, "seed")
    assert sorted(r.data.tags["variant"] for r in runs) == sorted(VARIANTS)
    for r in runs:
        variant = r.data.tags["variant"]
        run_json = json.loads((repo / "models" / variant / "run.json").read_text())
        assert run_json["run_id"] == r.info.run_id
        assert r.info.status == "FINISHED"
        assert r.data.params["data.maxlen"] == "40"
        assert r.data.params["model.units"] == "8"
        assert r.data.params["param_count.total"] == str(count_params(ModelParams(**TINY["models"][variant])))
        assert r.data.tags["git_commit"]
        assert len(r.data.tags["data_hash"]) == 32
        # what differs between two machines' results: CPU, library versions, numerics settings
        assert r.data.tags["cpu"]
        assert r.data.tags["version.tensorflow"]
        assert r.data.tags["version.keras"]
        assert {"numerics.TF_ENABLE_ONEDNN_OPTS", "numerics.TF_NUM_INTRAOP_THREADS"} <= set(r.data.tags)
        metrics_file = json.loads((repo / "reports" / "variants" / variant / "metrics.json").read_text())
        # the variant's run: mean, std and interval over seeds of every test metric, mean curves per epoch
        assert r.data.metrics["test_accuracy_mean"] == pytest.approx(metrics_file["accuracy"], abs=1e-6)
        assert r.data.metrics["test_f1_ci95_low"] <= r.data.metrics["test_f1_mean"]
        assert r.data.metrics["best_val_accuracy_mean"] == pytest.approx(metrics_file["best_val_accuracy"], abs=1e-6)
        assert [m.step for m in client.get_metric_history(r.info.run_id, "val_accuracy")] == [1, 2]
        artifacts = {a.path for a in client.list_artifacts(r.info.run_id, "plots")}
        assert {"plots/accuracy.png", "plots/loss.png", "plots/confusion.png", "plots/roc.png"} <= artifacts
        assert "plots/length.png" in artifacts
        assert "reports/length.csv" in {a.path for a in client.list_artifacts(r.info.run_id, "reports")}
        logged = {a.path for a in client.list_artifacts(r.info.run_id, "validation")}
        assert logged == {"validation/val_predictions.csv"}  # what the champion gate fetches
        assert r.data.metrics["ensemble_test_accuracy"] == pytest.approx(metrics_file["ensemble_accuracy"], abs=1e-6)
        assert r.data.metrics["served_test_accuracy"] == pytest.approx(metrics_file["served_accuracy"], abs=1e-6)
        assert r.data.metrics["test_accuracy_length_cut"] >= 0.0
        assert "model_summary.txt" in {a.path for a in client.list_artifacts(r.info.run_id)}

        children = [c for c in seed_runs if c.data.tags.get("mlflow.parentRunId") == r.info.run_id]
        assert {c.data.tags["seed"]: c.info.run_id for c in children} == run_json["seed_runs"]
        for child in children:
            row = next(row for row in metrics_file["per_seed"] if str(row["seed"]) == child.data.tags["seed"])
            assert child.info.status == "FINISHED"
            assert child.data.params["seed"] == child.data.tags["seed"]
            assert child.data.metrics["test_accuracy"] == pytest.approx(row["accuracy"], abs=1e-6)
            assert [m.step for m in client.get_metric_history(child.info.run_id, "val_accuracy")] == [1, 2]
            name = f"{variant}-seed{child.data.tags['seed']}"
            logged = client.search_logged_models(
                [r.info.experiment_id], filter_string=f"source_run_id = '{child.info.run_id}'"
            )
            assert [m.name for m in logged] == [name]
            model = mlflow.pyfunc.load_model(f"models:/{logged[0].model_id}")
            x = np.load(repo / "data" / "prepared" / "test.npz")["x"][:5].astype(np.int32)
            prob = np.asarray(model.predict(x)).ravel()
            assert prob.shape == (5,)
            assert np.all((prob >= 0) & (prob <= 1))
    assert (repo / "mlartifacts").is_dir()


def test_report_compares_variants_in_files_and_mlflow(repro_repo):
    repo, _ = repro_repo
    summary = pd.read_csv(repo / "reports" / "summary.csv")
    assert sorted(summary["variant"]) == sorted(VARIANTS)
    assert summary["served_val_accuracy"].is_monotonic_decreasing  # selection order: validation, never test
    for row in summary.itertuples():
        metrics = json.loads((repo / "reports" / "variants" / row.variant / "metrics.json").read_text())
        assert row.test_accuracy == pytest.approx(metrics["accuracy"], abs=1e-6)
        assert row.seeds == 2
        assert row.test_accuracy_ci95_low <= row.test_accuracy <= row.test_accuracy_ci95_high
        assert row.epochs == 2
        assert row.param_count > 0
        assert row.ensemble_test_accuracy == pytest.approx(metrics["ensemble_accuracy"], abs=1e-6)
        assert row.served == f"seed {metrics['selected_seed']}"
    text = (repo / "reports" / "summary.md").read_text()
    assert "| simple_rnn" in text
    assert "Welch" in text
    assert "simple_rnn vs stacked_rnn" in text.replace("stacked_rnn vs simple_rnn", "simple_rnn vs stacked_rnn")
    assert (repo / "reports" / "comparison.png").read_bytes()[:4] == b"\x89PNG"
    assert (repo / "reports" / "length.png").read_bytes()[:4] == b"\x89PNG"
    assert "ensemble test acc" in text
    client, summary_runs = experiment_runs(repo, "summary")
    assert len(summary_runs) == 1
    assert summary_runs[0].info.status == "FINISHED"
    _, variant_runs = experiment_runs(repo)
    assert {summary_runs[0].data.tags[f"run.{r.data.tags['variant']}"] for r in variant_runs} == {
        r.info.run_id for r in variant_runs
    }
    files = {a.path for a in client.list_artifacts(summary_runs[0].info.run_id, "summary")}
    assert files == {"summary/summary.csv", "summary/summary.md", "summary/comparison.png", "summary/length.png"}
    champion = json.loads((repo / "reports" / "champion.json").read_text())  # the best by validation, never test
    assert champion["promoted"] is True
    assert champion["candidate"]["variant"] == summary["variant"].iloc[0]
    assert champion["gate"] == {"test": None, "why": "no champion before", "passed": True}


def test_second_repro_changes_nothing_and_one_variant_change_reruns_only_it(repro_repo):
    repo, _ = repro_repo
    lock_before = (repo / "dvc.lock").read_text()
    _, summaries_before = experiment_runs(repo, "summary")
    again = run(["dvc", "repro"], repo)
    assert ran_stages(again.stdout) == {"track"}  # it runs every time, and logs only new results
    assert "already records these results" in again.stdout
    assert len(experiment_runs(repo, "summary")[1]) == len(summaries_before)
    assert (repo / "dvc.lock").read_text() == lock_before
    _, runs_before = experiment_runs(repo)

    write_params(repo / "params.yaml", {"models": {"stacked_rnn": {"units": 4}}})
    changed = run(["dvc", "repro"], repo, timeout=600)
    expected = {"validate", "train@stacked_rnn", "evaluate@stacked_rnn", "report", "register", "track"}
    assert ran_stages(changed.stdout) == expected
    _, runs_after = experiment_runs(repo)
    new = [r for r in runs_after if r.info.run_id not in {b.info.run_id for b in runs_before}]
    assert [r.data.tags["variant"] for r in new] == ["stacked_rnn"]
    assert new[0].data.params["model.units"] == "4"


def test_predict_cli_scores_text_with_a_trained_variant(repro_repo):
    repo, _ = repro_repo
    proc = run(
        [
            "imdb-rnn",
            "predict",
            "--project",
            repo,
            "--model",
            "simple_rnn",
            "wonderful brilliant loved it",
            "awful boring waste",
        ],
        repo,
    )
    lines = [line.split("\t") for line in proc.stdout.strip().splitlines()]
    assert [line[2] for line in lines] == ["wonderful brilliant loved it", "awful boring waste"]
    for label, probability, _ in lines:
        assert label in ("pos", "neg")
        assert 0.0 <= float(probability) <= 1.0
        assert (label == "pos") == (float(probability) >= 0.5)


def test_mlflow_ui_serves_the_runs_metrics_and_figures(repro_repo, tmp_path):
    """The real `mlflow ui` on 127.0.0.1 against the store the pipeline filled, read over REST."""
    import requests

    repo, _ = repro_repo
    with mlflow_service("ui", f"sqlite:///{repo / 'mlflow.db'}", tmp_path) as (base, _):
        experiment = requests.get(
            f"{base}/api/2.0/mlflow/experiments/get-by-name", params={"experiment_name": "imdb-rnn"}, timeout=10
        ).json()["experiment"]
        runs = requests.post(
            f"{base}/api/2.0/mlflow/runs/search", json={"experiment_ids": [experiment["experiment_id"]]}, timeout=10
        ).json()["runs"]
        tags = [{tag["key"]: tag["value"] for tag in run["data"].get("tags", [])} for run in runs]
        by_variant = {t["variant"]: run for run, t in zip(runs, tags) if t.get("run_kind") == "variant"}
        assert set(VARIANTS) <= set(by_variant)
        for run_info in by_variant.values():  # the variant runs: means over seeds, mean curves
            metrics = {m["key"] for m in run_info["data"]["metrics"]}
            assert {"test_accuracy_mean", "test_roc_auc_ci95_low", "val_accuracy", "best_val_accuracy_mean"} <= metrics
            listed = requests.get(
                f"{base}/api/2.0/mlflow/artifacts/list",
                params={"run_id": run_info["info"]["run_id"], "path": "plots"},
                timeout=10,
            ).json()
            assert {"plots/accuracy.png", "plots/roc.png"} <= {f["path"] for f in listed["files"]}
