"""Test-set metrics (per seed, their mean, their ensemble, the served model), the data behind the ROC,
confusion and length plots, and the served model's validation predictions."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from sklearn import metrics as sk_metrics

from . import plots, stats, tracking
from .config import Params
from .errors import ModelFileError
from .files import atomic_file, read_json, write_json
from .gate import VAL_ARTIFACT_FOLDER, VAL_PREDICTIONS, write_predictions
from .interrupts import call_interruptibly
from .lengths import LENGTH_TABLE, accuracy_by_length, review_tokens
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
    """Score every seed's model on the test and validation splits; write metrics (means, intervals, per
    seed; the seeds' ensemble; the served model), plot data, figures, accuracy by review length and the
    served model's validation predictions (the champion gate's); log each seed's test metrics into its
    run and the rest into the variant's.

    The ensemble is the mean of the seeds' probabilities, reported whichever model is served; the
    served model (``serve``) is that ensemble or the seed with the best validation accuracy. The ROC,
    confusion and length figures are the served model's.
    """
    data_dir, model_dir, report_dir = Path(data_dir), Path(model_dir), Path(report_dir)
    experiment_id = tracking.setup(params.mlflow.experiment)
    runs = read_json(model_dir / "run.json")
    model_params, maxlen = params.model(variant), params.data.maxlen
    splits = {name: load_split(data_dir, name, model_params.max_features) for name in ("test", "val")}
    history = pd.read_csv(report_dir / "history.csv")

    parent = tracking.existing_run(runs["run_id"])  # the train stage's runs; new ones if the store was reset
    diverged = runs.get("diverged", {})  # seeds that diverged: those with a finite epoch are scored too
    with tracking.tracked_run(run_id=parent, experiment_id=experiment_id, run_name=None if parent else variant):
        per_seed, probs = score_seeds(variant, runs, splits, history, model_dir, experiment_id)
        ensemble = {name: np.mean(list(by_seed.values()), axis=0) for name, by_seed in probs.items()}
        best = {name: by_seed[runs["selected_seed"]] for name, by_seed in probs.items()}
        served = ensemble if model_params.serve == "ensemble" else best
        test_y, val_y = splits["test"]["y"], splits["val"]["y"]
        served_test = classification_metrics(test_y, served["test"])
        summary = aggregate(per_seed)
        summary.update(
            diverged_seeds=len(diverged),
            selected_seed=runs["selected_seed"],
            **{f"ensemble_{k}": round(v, 6) for k, v in classification_metrics(test_y, ensemble["test"]).items()},
            ensemble_val_accuracy=round(classification_metrics(val_y, ensemble["val"])["accuracy"], 6),
            serve=model_params.serve,
            served_accuracy=round(served_test["accuracy"], 6),
            served_roc_auc=round(served_test["roc_auc"], 6),
            served_val_accuracy=round(classification_metrics(val_y, served["val"])["accuracy"], 6),
            per_seed=per_seed,
            diverged={seed: d["at"] for seed, d in diverged.items()},
        )
        tokens = review_tokens(splits["test"], maxlen)
        by_length = accuracy_by_length(tokens, maxlen, test_y, served["test"], list(probs["test"].values()))
        figures = write_test_reports(test_y, served["test"], history, summary, by_length, report_dir)
        write_predictions(report_dir / VAL_PREDICTIONS, val_y, review_tokens(splits["val"], maxlen), served["val"])
        tracking.log_metrics(
            {  # the variant's run: mean, std and interval of every test metric over seeds, the ensemble, by length
                **{
                    name: value
                    for key in METRICS
                    for name, value in stats.prefixed(f"test_{key}", [row[key] for row in per_seed]).items()
                },
                **{f"ensemble_test_{key}": summary[f"ensemble_{key}"] for key in METRICS},
                "ensemble_val_accuracy": summary["ensemble_val_accuracy"],
                "served_test_accuracy": summary["served_accuracy"],
                "served_val_accuracy": summary["served_val_accuracy"],
                **{f"test_accuracy_length_{row.group}": row.accuracy for row in by_length.itertuples()},
            }
        )
        tracking.log_files(figures, "plots")
        tracking.log_files([report_dir / n for n in ("history.csv", "metrics.json", LENGTH_TABLE)], "reports")
        tracking.log_files([report_dir / VAL_PREDICTIONS], VAL_ARTIFACT_FOLDER)
    return summary


def score_seeds(variant: str, runs: dict, splits: dict, history: pd.DataFrame, model_dir: Path, experiment_id: str):
    """Each seed's test metrics (into its own run too), and every seed's probabilities on each split
    (``{split: {seed: probabilities}}``), every seed and split through one traced predict function."""
    diverged = runs.get("diverged", {})
    per_seed, scorer = [], None
    probs: dict[str, dict[int, np.ndarray]] = {name: {} for name in splits}
    for seed, seed_run in runs["seed_runs"].items():
        path = model_dir / f"seed_{seed}" / "model.keras"
        scorer = with_weights_of(scorer, load_model(path))
        for name, split in splits.items():
            prob = call_interruptibly(predict_probabilities, scorer, np.asarray(split["x"], dtype=np.int32))
            if not np.all(np.isfinite(prob)):
                raise ModelFileError(f"{path} predicts NaN; retrain it with `dvc repro`")
            probs[name][int(seed)] = prob
        metrics = classification_metrics(splits["test"]["y"], probs["test"][int(seed)])
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
    return per_seed, probs


def write_test_reports(
    y_true, prob: np.ndarray, history: pd.DataFrame, summary: dict, by_length: pd.DataFrame, report_dir: Path
) -> list[Path]:
    """The served model's ROC and confusion data, accuracy by length, the five figures and metrics.json;
    returns the figures."""
    roc = roc_points(y_true, prob)
    figures = [
        plots.training_curve(history, "accuracy", "Training and validation accuracy", report_dir / "accuracy.png"),
        plots.training_curve(history, "loss", "Training and validation loss", report_dir / "loss.png"),
        plots.confusion_matrix_figure(confusion(y_true, prob), report_dir / "confusion.png"),
        plots.roc_figure(roc, summary["served_roc_auc"], report_dir / "roc.png"),
        plots.length_figure(by_length, "Test accuracy by review length", report_dir / "length.png"),
    ]
    with atomic_file(report_dir / "roc.csv") as tmp:
        roc.to_csv(tmp, index=False, float_format="%.6g")
    with atomic_file(report_dir / "predictions.csv") as tmp:
        label_table(y_true, prob).to_csv(tmp, index=False)
    with atomic_file(report_dir / LENGTH_TABLE) as tmp:
        by_length.to_csv(tmp, index=False)
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
