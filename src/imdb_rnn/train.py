"""Fit one variant: seeded, per-epoch history and timing, best-epoch weights, divergence stop."""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .errors import DivergedError
from .files import atomic_dir, atomic_file, load_npz

HISTORY_COLUMNS = ("epoch", "loss", "accuracy", "val_loss", "val_accuracy", "seconds")
LOWER_LR = "lower train.learning_rate in params.yaml"


def seed_everything(seed: int, deterministic: bool) -> None:
    """Seed Python, NumPy and the backend; with ``deterministic`` also TensorFlow's op determinism."""
    import keras

    keras.utils.set_random_seed(seed)
    if deterministic and keras.backend.backend() == "tensorflow":
        import tensorflow as tf

        tf.config.experimental.enable_op_determinism()


@dataclass
class FitResult:
    history: list[dict] = field(default_factory=list)  # one row per epoch, HISTORY_COLUMNS
    best_epoch: int = 0
    best_val_accuracy: float = float("nan")


def _epoch_callback(result: FitResult, on_epoch: Callable[[dict], None] | None, train_params):
    import keras

    class EpochRecorder(keras.callbacks.Callback):
        """Times epochs, records history, keeps the best weights, stops on non-finite loss or weights."""

        def __init__(self):
            super().__init__()
            self.best_weights = None

        def on_epoch_begin(self, epoch, logs=None):
            self.started = time.perf_counter()

        def on_train_batch_end(self, batch, logs=None):
            loss = (logs or {}).get("loss")
            if loss is not None and not math.isfinite(float(loss)):
                raise DivergedError(f"training diverged: loss is {float(loss)} at batch {batch + 1}; {LOWER_LR}")

        def on_epoch_end(self, epoch, logs=None):
            logs = logs or {}
            row = {"epoch": epoch + 1, **{k: float(logs[k]) for k in HISTORY_COLUMNS[1:5]},
                   "seconds": round(time.perf_counter() - self.started, 3)}
            # Each batch loss is computed before its update, so the epoch's last update can
            # overflow the weights unseen by any loss: the weights are checked too.
            for what, value in (("loss", row["loss"]), ("validation loss", row["val_loss"])):
                if not math.isfinite(value):
                    raise DivergedError(f"training diverged: {what} is {value} in epoch {epoch + 1}; {LOWER_LR}")
            if not all(np.all(np.isfinite(w)) for w in self.model.get_weights()):
                raise DivergedError(f"training diverged: the weights hold NaN or inf after epoch {epoch + 1}; "
                                    f"{LOWER_LR}")
            result.history.append(row)
            if not row["val_accuracy"] <= result.best_val_accuracy:  # first epoch, or better
                result.best_epoch, result.best_val_accuracy = row["epoch"], row["val_accuracy"]
                if train_params.restore_best:
                    self.best_weights = [w.copy() for w in self.model.get_weights()]
            if on_epoch:
                on_epoch(row)
            print(epoch_line(row, train_params.epochs), flush=True)

        def on_train_end(self, logs=None):
            if train_params.restore_best and self.best_weights is not None:
                self.model.set_weights(self.best_weights)

    return EpochRecorder()


def fit(model, train: dict, val: dict, train_params, on_epoch: Callable[[dict], None] | None = None) -> FitResult:
    """Fit on ``train``, validate on ``val`` every epoch; the model ends with the best epoch's
    weights when ``restore_best`` (the history still holds every epoch). Prints one line per epoch."""
    result = FitResult()
    model.fit(
        np.asarray(train["x"], dtype=np.int32), np.asarray(train["y"], dtype=np.float32),
        validation_data=(np.asarray(val["x"], dtype=np.int32), np.asarray(val["y"], dtype=np.float32)),
        epochs=train_params.epochs,
        batch_size=train_params.batch_size,
        shuffle=True,
        verbose=0,
        callbacks=[_epoch_callback(result, on_epoch, train_params)],
    )
    return result


def epoch_line(row: dict, epochs: int) -> str:
    """``epoch 3/10: loss 0.4123 - accuracy 0.8123 - val_loss 0.4512 - val_accuracy 0.7991 - 8.3 s``."""
    metrics = " - ".join(f"{k} {row[k]:.4f}" for k in HISTORY_COLUMNS[1:5])
    return f"epoch {row['epoch']}/{epochs}: {metrics} - {row['seconds']:.1f} s"


def write_history_csv(history: list[dict], path) -> None:
    """``history.csv``: one row per epoch (DVC plots read it)."""
    import pandas as pd

    with atomic_file(path) as tmp:
        pd.DataFrame(history, columns=list(HISTORY_COLUMNS)).to_csv(tmp, index=False, float_format="%.6g")


def model_requirements() -> list[str]:
    """Pinned requirements for the logged MLflow model (spares MLflow 6-9 s of inference)."""
    from importlib.metadata import PackageNotFoundError, version

    import keras

    reqs = [f"keras=={version('keras')}"]
    backend = keras.backend.backend()
    for dist in ("tensorflow-cpu", "tensorflow") if backend == "tensorflow" else ("jax",):
        try:
            reqs.append(f"{dist}=={version(dist)}")
            break
        except PackageNotFoundError:
            continue
    return reqs


def train_variant(variant: str, params, data_dir: Path, model_dir: Path, report_dir: Path,
                  workspace: Path) -> str:
    """Train one variant inside an MLflow run; write the model folder and history only on success.

    ``model_dir`` gets ``model.keras``, ``summary.txt`` and ``run.json`` (the MLflow run id
    the evaluate stage logs into); ``report_dir`` gets ``history.csv``. Returns the run id.
    """
    import mlflow

    from . import tracking
    from .interrupts import call_interruptibly
    from .model import build_model, compile_model, inference_copy, recurrent_params, summary_text

    model_params = params.model(variant)
    experiment_id = tracking.setup(params.mlflow.experiment)
    train, val = load_npz(data_dir / "train.npz"), load_npz(data_dir / "val.npz")
    tags = tracking.variant_tags(variant, workspace, data_dir)

    with tracking.tracked_run(experiment_id=experiment_id, run_name=tracking.run_name(tags, variant),
                              tags=tags) as run:
        mlflow.log_params(params.flat(variant))
        seed_everything(params.train.seed, params.train.deterministic)
        model = build_model(variant, model_params, params.data.max_features, params.data.maxlen,
                            unroll=params.train.unroll)
        compile_model(model, params.train.optimizer, params.train.learning_rate)
        summary = summary_text(inference_copy(model))  # the saved model's layers, as in the lesson
        print(summary)
        mlflow.log_text(summary, "model_summary.txt")
        mlflow.log_params({"param_count": model.count_params(), "recurrent_param_count": recurrent_params(model)})

        def log_epoch(row: dict) -> None:
            metrics = {k: row[k] for k in HISTORY_COLUMNS[1:5]}
            # explicit run id: fit runs in a worker thread, and MLflow's active run is per thread
            mlflow.log_metrics({**metrics, "epoch_seconds": row["seconds"]}, step=row["epoch"],
                               run_id=run.info.run_id)

        result = call_interruptibly(fit, model, train, val, params.train, on_epoch=log_epoch)
        mlflow.log_metrics({"best_epoch": result.best_epoch, "best_val_accuracy": result.best_val_accuracy,
                            "train_seconds": sum(r["seconds"] for r in result.history)})

        model = inference_copy(model)
        with atomic_dir(model_dir) as tmp:
            model.save(tmp / "model.keras")
            (tmp / "summary.txt").write_text(summary, encoding="utf-8")
            (tmp / "run.json").write_text(json.dumps({"run_id": run.info.run_id}) + "\n", encoding="utf-8")
            sample = np.asarray(val["x"][:2], dtype=np.int32)
            signature = mlflow.models.infer_signature(sample, model.predict(sample, verbose=0))
            mlflow.keras.log_model(model, name="model", signature=signature,
                                   pip_requirements=model_requirements())
            write_history_csv(result.history, report_dir / "history.csv")
        return run.info.run_id
