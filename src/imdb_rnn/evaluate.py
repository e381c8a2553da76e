"""Test-set metrics and the data behind the ROC and confusion-matrix plots."""

from __future__ import annotations

import numpy as np

from .errors import ModelFileError


def classification_metrics(y_true: np.ndarray, prob: np.ndarray, threshold: float = 0.5) -> dict[str, float]:
    """accuracy, loss (binary cross-entropy), precision, recall, F1, ROC AUC."""
    from sklearn import metrics

    y_true = np.asarray(y_true).astype(int).ravel()
    prob = np.asarray(prob, dtype=np.float64).ravel()
    pred = (prob >= threshold).astype(int)
    return {
        "accuracy": float(metrics.accuracy_score(y_true, pred)),
        "loss": float(metrics.log_loss(y_true, np.clip(prob, 1e-7, 1 - 1e-7), labels=[0, 1])),
        "precision": float(metrics.precision_score(y_true, pred, zero_division=0)),
        "recall": float(metrics.recall_score(y_true, pred, zero_division=0)),
        "f1": float(metrics.f1_score(y_true, pred, zero_division=0)),
        "roc_auc": float(metrics.roc_auc_score(y_true, prob)) if len(set(y_true)) == 2 else float("nan"),
    }


def roc_points(y_true: np.ndarray, prob: np.ndarray):
    """(fpr, tpr, threshold) table for the ROC plot; intermediate collinear points dropped."""
    import pandas as pd
    from sklearn.metrics import roc_curve

    fpr, tpr, thresholds = roc_curve(np.asarray(y_true).astype(int).ravel(), np.asarray(prob).ravel())
    return pd.DataFrame({"fpr": fpr, "tpr": tpr, "threshold": np.minimum(thresholds, 1.0)})


def confusion(y_true: np.ndarray, prob: np.ndarray, threshold: float = 0.5) -> np.ndarray:
    """2x2 counts, rows = actual (neg, pos), columns = predicted."""
    from sklearn.metrics import confusion_matrix

    pred = (np.asarray(prob).ravel() >= threshold).astype(int)
    return confusion_matrix(np.asarray(y_true).astype(int).ravel(), pred, labels=[0, 1])


def label_table(y_true: np.ndarray, prob: np.ndarray, threshold: float = 0.5):
    """One row per test review (actual, predicted label names): DVC's confusion template reads it."""
    import pandas as pd

    names = np.array(["neg", "pos"])
    pred = (np.asarray(prob).ravel() >= threshold).astype(int)
    return pd.DataFrame({"actual": names[np.asarray(y_true).astype(int).ravel()], "predicted": names[pred]})


def evaluate_variant(variant: str, params, data_dir, model_dir, report_dir) -> dict[str, float]:
    """Score the test split; write metrics, plot data and figures; log them into the train run."""
    from pathlib import Path

    import mlflow
    import pandas as pd

    from . import plots, tracking
    from .files import atomic_file, load_npz, read_json, write_json
    from .interrupts import call_interruptibly
    from .model import load_model

    data_dir, model_dir, report_dir = Path(data_dir), Path(model_dir), Path(report_dir)
    experiment_id = tracking.setup(params.mlflow.experiment)
    model = load_model(model_dir / "model.keras")
    run_id = read_json(model_dir / "run.json")["run_id"]
    test = load_npz(data_dir / "test.npz")
    history = pd.read_csv(report_dir / "history.csv")

    existing = _existing_run(run_id)  # keep the train run's name; a new run gets the variant's
    with tracking.tracked_run(run_id=existing, experiment_id=experiment_id,
                              run_name=None if existing else variant):
        prob = call_interruptibly(
            model.predict, np.asarray(test["x"], dtype=np.int32), batch_size=512, verbose=0
        ).ravel()
        if not np.all(np.isfinite(prob)):
            raise ModelFileError(f"{model_dir / 'model.keras'} predicts NaN; retrain it with `dvc repro`")
        metrics = classification_metrics(test["y"], prob)
        roc = roc_points(test["y"], prob)
        figures = [
            plots.training_curve(history, "accuracy", "Training and validation accuracy", report_dir / "accuracy.png"),
            plots.training_curve(history, "loss", "Training and validation loss", report_dir / "loss.png"),
            plots.confusion_matrix_figure(confusion(test["y"], prob), report_dir / "confusion.png"),
            plots.roc_figure(roc, metrics["roc_auc"], report_dir / "roc.png"),
        ]
        with atomic_file(report_dir / "roc.csv") as tmp:
            roc.to_csv(tmp, index=False, float_format="%.6g")
        with atomic_file(report_dir / "predictions.csv") as tmp:
            label_table(test["y"], prob).to_csv(tmp, index=False)
        mlflow.log_metrics({f"test_{k}": v for k, v in metrics.items()})
        for figure in figures:
            mlflow.log_artifact(str(figure), artifact_path="plots")
        mlflow.log_artifact(str(report_dir / "history.csv"), artifact_path="reports")
        write_json(report_dir / "metrics.json", {k: round(v, 6) for k, v in metrics.items()})
        mlflow.log_artifact(str(report_dir / "metrics.json"), artifact_path="reports")
    return metrics


def _existing_run(run_id: str) -> str | None:
    """The train stage's run if this store has it (a store can be reset), else None: a new run."""
    import mlflow

    try:
        mlflow.MlflowClient().get_run(run_id)
        return run_id
    except mlflow.exceptions.MlflowException:
        return None
