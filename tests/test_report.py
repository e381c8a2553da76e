"""The comparison: rows from per-seed histories and metrics, the aggregation over seeds, and the
verdict on each difference; plus the statistics behind them (known inputs, known answers)."""

import math

import pandas as pd
import pytest
from hypothesis import given
from hypothesis import strategies as st

from imdb_rnn import stats
from imdb_rnn.config import ModelParams
from imdb_rnn.evaluate import aggregate
from imdb_rnn.report import brief, brief_markdown, markdown, model_in_words, significance_lines, variant_row


def test_interval_of_a_known_sample():
    """[1, 2, 3]: mean 2, std 1, t(0.975, 2 df) = 4.3027 (tables), half-width 4.3027 / sqrt(3) = 2.4841."""
    s = stats.summarize([1.0, 2.0, 3.0])
    assert s["mean"] == 2.0
    assert s["std"] == 1.0
    assert s["n"] == 3
    assert s["ci95_low"] == pytest.approx(2 - 2.48414, abs=1e-4)
    assert s["ci95_high"] == pytest.approx(2 + 2.48414, abs=1e-4)
    one = stats.summarize([0.85])
    assert one["mean"] == 0.85
    assert math.isnan(one["std"])
    assert math.isnan(one["ci95_low"])
    assert stats.prefixed("acc", [0.85]) == {
        "acc_mean": 0.85,
        "acc_std": None,
        "acc_ci95_low": None,
        "acc_ci95_high": None,
    }


def test_welch_test_of_a_known_pair():
    """[1, 2, 3] vs [4, 5, 6]: t = -3.674 with 4 degrees of freedom, two-sided p = 0.0213 (tables)."""
    assert stats.welch_p([1.0, 2.0, 3.0], [4.0, 5.0, 6.0]) == pytest.approx(0.0213, abs=5e-4)
    assert math.isnan(stats.welch_p([1.0], [2.0, 3.0]))


def test_aggregate_gives_means_and_headline_intervals():
    per_seed = [
        {
            "seed": s,
            "accuracy": a,
            "loss": 0.3,
            "precision": 0.8,
            "recall": 0.9,
            "f1": 0.85,
            "roc_auc": 0.9 + s / 1000,
            "best_val_accuracy": 0.86,
            "best_epoch": 2,
        }
        for s, a in ((1, 0.84), (2, 0.85), (3, 0.86))
    ]
    out = aggregate(per_seed)
    assert out["accuracy"] == pytest.approx(0.85)
    assert out["seeds"] == 3
    assert out["accuracy_ci95_low"] < 0.85 < out["accuracy_ci95_high"]
    assert out["best_val_accuracy_std"] == 0.0
    assert out["loss"] == 0.3
    assert "loss_ci95_low" not in out  # intervals only for the headline metrics


def history_of(seeds_val_acc: dict[int, list[float]]) -> pd.DataFrame:
    rows = [
        {
            "seed": seed,
            "epoch": e + 1,
            "loss": 0.5,
            "accuracy": 0.8,
            "val_loss": 0.4,
            "val_accuracy": v,
            "seconds": 10.0,
        }
        for seed, accs in seeds_val_acc.items()
        for e, v in enumerate(accs)
    ]
    return pd.DataFrame(rows)


def metrics_of(accuracies: list[float], best_val: list[float], serve: str = "best_seed", ensemble: float = 0.9) -> dict:
    per_seed = [
        {
            "seed": i,
            "accuracy": a,
            "loss": 0.35,
            "precision": 0.8,
            "recall": 0.9,
            "f1": 0.85,
            "roc_auc": 0.93,
            "best_val_accuracy": v,
            "best_epoch": 2,
        }
        for i, (a, v) in enumerate(zip(accuracies, best_val))
    ]
    selected = max(per_seed, key=lambda row: row["best_val_accuracy"])
    return {
        **aggregate(per_seed),
        "selected_seed": selected["seed"],
        "ensemble_accuracy": ensemble,
        "ensemble_roc_auc": 0.95,
        "ensemble_val_accuracy": 0.91,
        "serve": serve,
        "served_accuracy": ensemble if serve == "ensemble" else selected["accuracy"],
        "served_val_accuracy": 0.91 if serve == "ensemble" else selected["best_val_accuracy"],
        "per_seed": per_seed,
    }


def test_variant_row_reports_means_intervals_and_seeds():
    history = history_of({42: [0.7, 0.86, 0.84], 43: [0.72, 0.85, 0.87]})
    row = variant_row("simple_rnn", ModelParams(), history, metrics_of([0.851, 0.853], [0.86, 0.87]))
    assert row["seeds"] == 2
    assert row["param_count"] == 322_113
    assert row["units"] == 32
    assert row["test_accuracy"] == pytest.approx(0.852)
    assert row["best_val_accuracy"] == pytest.approx(0.865)
    assert row["test_accuracy_ci95_low"] < 0.852 < row["test_accuracy_ci95_high"]
    assert row["test_accuracy_per_seed"] == "0.8510 0.8530"
    assert row["epochs"] == 3.0
    assert row["train_seconds"] == 60.0


def test_markdown_says_plainly_which_differences_the_seeds_support():
    accuracies = {"good": [0.88, 0.881, 0.879], "same": [0.878, 0.884, 0.876], "bad": [0.80, 0.801, 0.799]}
    rows = [
        variant_row(
            v, ModelParams(max_features=1000), history_of({1: [0.9], 2: [0.9], 3: [0.9]}), metrics_of(a, [0.9] * 3)
        )
        for v, a in accuracies.items()
    ]
    table = pd.DataFrame(rows)
    lines = significance_lines(table, accuracies)
    assert len(lines) == 3
    verdict = {tuple(line[2:].split(":")[0].split(" vs ")): line for line in lines}
    assert "not significant" in verdict[("good", "same")]
    assert "significant (p =" in verdict[("good", "bad")]
    assert "not significant" not in verdict[("good", "bad")]
    text = markdown(table, accuracies)
    assert text.startswith("# Variant comparison") and "Welch" in text and "| good" in text
    assert "0.8800 [" in text  # mean [low, high]


@pytest.mark.parametrize(
    "a, b, verdict",
    [
        ([0.88, 0.881, 0.879], [0.80, 0.801, 0.799], "significant (p = "),
        ([0.88, 0.881, 0.879], [0.878, 0.884, 0.876], "**not significant** (p = "),
        ([0.88], [0.80, 0.81], "not testable (a side has fewer than 2 seeds, or no spread)"),
        ([0.5, 0.5], [0.5, 0.5], "not testable (a side has fewer than 2 seeds, or no spread)"),
    ],
    ids=["apart", "together", "one-seed", "no-spread"],
)
def test_welch_verdict_is_the_sentence_every_report_uses(a, b, verdict):
    assert stats.welch_verdict(a, b).startswith(verdict)


def test_a_restored_variant_links_with_its_curves(tmp_path, request):
    """Under `dvc exp run` a variant DVC restored from its run cache gets a link run; the MLflow Chart view
    draws a run's curves from its metric history, so the link carries every epoch, not only the last one."""
    import mlflow

    from imdb_rnn import tracking
    from imdb_rnn.tracking import link_restored

    request.addfinalizer(lambda: mlflow.set_tracking_uri(None))  # the store of this test only
    experiment_id = tracking.setup("imdb-rnn", env={}, root=tmp_path)
    with tracking.tracked_run(experiment_id=experiment_id, tags={"variant": "simple_rnn", "dvc_exp_name": "a"}) as run:
        mlflow.log_params({"model.units": 8})
        for step, loss in ((1, 0.69), (2, 0.61)):
            mlflow.log_metrics({"loss": loss}, step=step)
        mlflow.log_metrics({"test_accuracy_mean": 0.75})
    link_id = link_restored("simple_rnn", run.info.run_id, experiment_id, {"dvc_exp_name": "b", "git_commit": "c"})

    client = mlflow.MlflowClient()
    link = client.get_run(link_id)
    assert link.data.tags["restored_from"] == run.info.run_id
    assert link.data.tags["dvc_exp_name"] == "b"
    assert link.data.tags["variant"] == "simple_rnn"
    assert link.data.params == {"model.units": "8"}
    history = client.get_metric_history(link_id, "loss")
    assert [m.step for m in history] == [1, 2]
    assert [m.value for m in history] == pytest.approx([0.69, 0.61])
    assert link.data.metrics["test_accuracy_mean"] == pytest.approx(0.75)


def test_the_lesson_models_in_words():
    stack = variant_row(
        "stacked_rnn", ModelParams(layers=4, mask_padding=True), history_of({1: [0.8]}), metrics_of([0.8], [0.8])
    )
    assert model_in_words(stack) == "4 x SimpleRNN(32), 10,000 words x 32, masked"


@given(
    model=st.builds(
        ModelParams,
        layers=st.integers(1, 64),
        units=st.integers(1, 4096),
        bidirectional=st.booleans(),
        pooling=st.sampled_from(["last", "max", "mean", "max_mean"]),
        dropout=st.sampled_from([0.0, 0.2, 0.5]),
        spatial_dropout=st.sampled_from([0.0, 0.3]),
        mask_padding=st.booleans(),
        cell=st.sampled_from(["simple", "gru", "lstm"]),
        bigram_buckets=st.sampled_from([0, 2, 100_000]),
    )
)
def test_every_architecture_reads_as_one_phrase_naming_what_differs(model):
    row = variant_row("v", model, history_of({1: [0.8]}), metrics_of([0.8], [0.8]))
    words = model_in_words(row)
    assert "\n" not in words
    cell = {"simple": "SimpleRNN", "gru": "GRU", "lstm": "LSTM"}[model.cell]
    assert f"{cell}({model.units})" in words
    assert ("word pairs" in words) == (model.bigram_buckets > 0)
    assert words.startswith(f"{model.layers} x ") == (model.layers > 1)
    assert ("bidirectional" in words) == model.bidirectional
    assert ("pooling" in words) == (model.pooling != "last")
    assert ("spatial" in words) == (model.spatial_dropout > 0)
    assert ("masked" in words) == model.mask_padding


def test_the_brief_table_has_the_columns_a_reader_compares():
    rows = [
        variant_row(v, ModelParams(), history_of({1: [0.9], 2: [0.9]}), metrics_of([0.85, 0.86], [0.9] * 2))
        for v in "ab"
    ]
    rows.append(
        variant_row(
            "c",
            ModelParams(serve="ensemble"),
            history_of({1: [0.9], 2: [0.9]}),
            metrics_of([0.85, 0.86], [0.9, 0.8], "ensemble", 0.87),
        )
    )
    shown = brief(pd.DataFrame(rows))
    assert list(shown.columns) == [
        "variant",
        "model",
        "test accuracy",
        "ensemble test acc",
        "served: test (val) acc",
        "val accuracy",
        "ROC AUC",
        "seeds (diverged)",
        "train s",
    ]
    assert shown["test accuracy"][0].startswith("0.8550 [")
    assert shown["ensemble test acc"].tolist() == ["0.9000", "0.9000", "0.8700"]
    assert shown["served: test (val) acc"].tolist() == [
        "seed 0: 0.8500 (0.9000)",
        "seed 0: 0.8500 (0.9000)",
        "ensemble: 0.8700 (0.9100)",
    ]
    assert shown["seeds (diverged)"][0] == "2 (0)"
    text = brief_markdown(pd.DataFrame(rows))
    last = [cell.strip() for cell in text.splitlines()[-1].split("|")]
    assert last[4:6] == ["0.8700", "ensemble: 0.8700 (0.9100)"]  # as formatted: trailing zeros kept


def test_a_gated_cell_with_word_pairs_in_words():
    row = variant_row(
        "g",
        ModelParams(cell="lstm", bidirectional=True, units=64, bigram_buckets=200_000, mask_padding=True),
        history_of({1: [0.8]}),
        metrics_of([0.8], [0.8]),
    )
    assert model_in_words(row) == ("bidirectional LSTM(64), 10,000 words x 32, word pairs in 200,000 buckets, masked")
    assert (row["cell"], row["bigram_buckets"], row["serve"], row["served"]) == ("lstm", 200_000, "best_seed", "seed 0")
