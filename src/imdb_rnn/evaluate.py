"""Test-set metrics and the data behind the ROC and confusion-matrix plots."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from sklearn import metrics as sk_metrics

from . import plots, stats, tracking
from .config import Params
from .errors import ModelFileError
from .files import atomic_file, read_json, write_json
from .interrupts import call_interruptibly
from .model import load_model
from .prepared import load_split

METRICS = ("accuracy", "loss", "precision", "recall", "f1", "roc_auc")


def classification_metrics(y_true: np.ndarray, prob: np.ndarray, threshold: float = 0.5) -> dict[str, float]:
    """accuracy, loss (binary cross-entropy), precision, recall, F1, ROC AUC."""

    y_true = np.asarray(y_true).astype(int).ravel()
    prob = np.asarray(prob, dtype=np.float64).ravel()
    pred = (prob >= threshold).astype(int)
    return {
        "accuracy": float(sk_metrics.accuracy_score(y_true, pred)),
        "loss": float(sk_metrics.log_loss(y_true, np.clip(prob, 1e-7, 1 - 1e-7), labels=[0, 1])),
        "precision": float(sk_metrics.precision_score(y_true, pred, zero_division=0)),
        "recall": float(sk_metrics.recall_score(y_true, pred, zero_division=0)),
        "f1": float(sk_metrics.f1_score(y_true, pred, zero_division=0)),
        "roc_auc": float(sk_metrics.roc_auc_score(y_true, prob)) if len(set(y_true)) == 2 else float("nan"),
    }


def roc_points(y_true: np.ndarray, prob: np.ndarray):
    """(fpr, tpr, threshold) table for the ROC plot; intermediate collinear points dropped."""
    fpr, tpr, thresholds = sk_metrics.roc_curve(np.asarray(y_true).astype(int).ravel(), np.asarray(prob).ravel())
    return pd.DataFrame({"fpr": fpr, "tpr": tpr, "threshold": np.minimum(thresholds, 1.0)})


def confusion(y_true: np.ndarray, prob: np.ndarray, threshold: float = 0.5) -> np.ndarray:
    """2x2 counts, rows = actual (neg, pos), columns = predicted."""
    pred = (np.asarray(prob).ravel() >= threshold).astype(int)
    return sk_metrics.confusion_matrix(np.asarray(y_true).astype(int).ravel(), pred, labels=[0, 1])


def label_table(y_true: np.ndarray, prob: np.ndarray, threshold: float = 0.5):
    """One row per test review (actual, predicted label names): DVC's confusion template reads it."""
    names = np.array(["neg", "pos"])
    pred = (np.asarray(prob).ravel() >= threshold).astype(int)
    return pd.DataFrame({"actual": names[np.asarray(y_true).astype(int).ravel()], "predicted": names[pred]})


HEADLINE = ("accuracy", "roc_auc", "best_val_accuracy")  # also with std and 95% interval in metrics.json


def evaluate_variant(variant: str, params: Params, data_dir: Path, model_dir: Path, report_dir: Path) -> dict:
    """Score every seed's model on the test split; write metrics (means, intervals, per seed), plot
    data and figures; log each seed's test metrics into its run and the aggregates into the variant's."""
    data_dir, model_dir, report_dir = Path(data_dir), Path(model_dir), Path(report_dir)
    experiment_id = tracking.setup(params.mlflow.experiment)
    runs = read_json(model_dir / "run.json")
    test = load_split(data_dir, "test", params.model(variant).max_features)
    history = pd.read_csv(report_dir / "history.csv")

    parent = tracking.existing_run(runs["run_id"])  # the train stage's runs; new ones if the store was reset
    diverged = runs.get("diverged", {})  # seeds that diverged: those with a finite epoch are scored too
    with tracking.tracked_run(run_id=parent, experiment_id=experiment_id, run_name=None if parent else variant):
        per_seed, selected_prob = score_seeds(variant, runs, test, history, model_dir, experiment_id)
        summary = aggregate(per_seed)
        summary.update(
            diverged_seeds=len(diverged),
            selected_seed=runs["selected_seed"],
            per_seed=per_seed,
            diverged={seed: d["at"] for seed, d in diverged.items()},
        )
        figures = write_test_reports(test["y"], selected_prob, history, summary, report_dir)
        tracking.log_metrics(
            {  # the variant's run: mean, std and interval of every test metric over seeds
                name: value
                for key in METRICS
                for name, value in stats.prefixed(f"test_{key}", [row[key] for row in per_seed]).items()
            }
        )
        tracking.log_files(figures, "plots")
        tracking.log_files([report_dir / "history.csv", report_dir / "metrics.json"], "reports")
    return summary


def score_seeds(variant: str, runs: dict, test: dict, history: pd.DataFrame, model_dir: Path, experiment_id: str):
    """Each seed's test metrics (into its own run too) and the selected seed's probabilities, every seed
    through one traced predict function."""
    x_test = np.asarray(test["x"], dtype=np.int32)
    diverged = runs.get("diverged", {})
    per_seed, selected_prob, scorer = [], None, None
    for seed, seed_run in runs["seed_runs"].items():
        path = model_dir / f"seed_{seed}" / "model.keras"
        scorer = with_weights_of(scorer, load_model(path))
        prob = call_interruptibly(predict_probabilities, scorer, x_test)
        if not np.all(np.isfinite(prob)):
            raise ModelFileError(f"{path} predicts NaN; retrain it with `dvc repro`")
        metrics = classification_metrics(test["y"], prob)
        own = history[history["seed"] == int(seed)]
        best = own.loc[own["val_accuracy"].idxmax()]
        per_seed.append(
            {
                "seed": int(seed),
                **{k: round(v, 6) for k, v in metrics.items()},
                "best_val_accuracy": round(float(best["val_accuracy"]), 6),
                "best_epoch": int(best["epoch"]),
                "diverged": seed in diverged,
            }
        )
        tracking.log_to_run(
            seed_run,
            {f"test_{k}": round(v, 6) for k, v in metrics.items()},
            status="FAILED" if seed in diverged else "FINISHED",  # a diverged seed's run keeps its status
            experiment_id=experiment_id,
            run_name=f"{variant}/seed {seed}",
        )
        if int(seed) == runs["selected_seed"]:
            selected_prob = prob
    return per_seed, selected_prob


def write_test_reports(y_true, prob: np.ndarray, history: pd.DataFrame, summary: dict, report_dir: Path) -> list[Path]:
    """The selected seed's ROC and confusion data, the four figures and metrics.json; returns the figures."""
    roc = roc_points(y_true, prob)
    figures = [
        plots.training_curve(history, "accuracy", "Training and validation accuracy", report_dir / "accuracy.png"),
        plots.training_curve(history, "loss", "Training and validation loss", report_dir / "loss.png"),
        plots.confusion_matrix_figure(confusion(y_true, prob), report_dir / "confusion.png"),
        plots.roc_figure(roc, summary["roc_auc"], report_dir / "roc.png"),
    ]
    with atomic_file(report_dir / "roc.csv") as tmp:
        roc.to_csv(tmp, index=False, float_format="%.6g")
    with atomic_file(report_dir / "predictions.csv") as tmp:
        label_table(y_true, prob).to_csv(tmp, index=False)
    write_json(report_dir / "metrics.json", summary)
    return figures


def with_weights_of(scorer, model):
    """``model``'s weights in ``scorer`` (the first seed's model), so every seed of a variant runs
    through one traced predict function: a fresh model per seed traces its own, and TensorFlow warns
    about the retracing."""
    if scorer is None:
        return model
    scorer.set_weights(model.get_weights())
    return scorer


def predict_probabilities(model, x: np.ndarray, batch_size: int = 512) -> np.ndarray:
    """Positive probabilities for padded reviews, at the length the model was trained on. Every batch
    has that one shape (the last padded up to it), so the predict function is traced once: batches
    cut to their longest review would retrace an unrolled model at every length."""
    rows = len(x)
    full = -(-rows // batch_size) * batch_size
    padded = np.concatenate([x, np.zeros((full - rows, x.shape[1]), dtype=x.dtype)]) if full > rows else x
    prob = np.empty(full, dtype=np.float64)
    for start in range(0, full, batch_size):
        prob[start : start + batch_size] = np.asarray(
            model.predict_on_batch(padded[start : start + batch_size])
        ).ravel()
    return prob[:rows]


def aggregate(per_seed: list[dict]) -> dict:
    """Means over seeds of every metric; for the headline ones also std and the 95% interval."""
    out: dict = {}
    for key in (*METRICS, "best_val_accuracy"):
        values = [row[key] for row in per_seed]
        if key in HEADLINE:
            out.update({key if k == f"{key}_mean" else k: v for k, v in stats.prefixed(key, values).items()})
        else:
            out[key] = round(stats.summarize(values)["mean"], 6)
    out["seeds"] = len(per_seed)
    return out
