"""Fit one variant once per seed: per-epoch history, best-epoch weights, early stopping, divergence stop.

The seeds of a variant train in one process on one compiled model: each seed starts from the
weights a fresh build with that seed would have and a reset optimizer, so it trains exactly as it
would alone, while TensorFlow's traced training step (tens of seconds to minutes to build for an
unrolled model) is built once.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .batches import length_buckets
from .errors import DivergedError
from .files import atomic_dir, atomic_file, load_npz, write_json
from .text import within_vocabulary

HISTORY_COLUMNS = ("seed", "epoch", "loss", "accuracy", "val_loss", "val_accuracy", "seconds")
EPOCH_METRICS = ("loss", "accuracy", "val_loss", "val_accuracy")
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
    seed: int
    history: list[dict] = field(default_factory=list)  # one row per epoch, HISTORY_COLUMNS
    best_epoch: int = 0
    best_val_accuracy: float = float("nan")

    @property
    def train_seconds(self) -> float:
        return round(sum(row["seconds"] for row in self.history), 3)


def _epoch_callback(result: FitResult, on_epoch: Callable[[dict], None] | None, train_params):
    import keras

    class EpochRecorder(keras.callbacks.Callback):
        """Times epochs, records history, keeps the best weights, stops early or on non-finite values."""

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
            row = {
                "seed": result.seed,
                "epoch": epoch + 1,
                **{k: float(logs[k]) for k in EPOCH_METRICS},
                "seconds": round(time.perf_counter() - self.started, 3),
            }
            # Each batch loss is computed before its update, so the epoch's last update can
            # overflow the weights unseen by any loss: the weights are checked too.
            for what, value in (("loss", row["loss"]), ("validation loss", row["val_loss"])):
                if not math.isfinite(value):
                    raise DivergedError(f"training diverged: {what} is {value} in epoch {epoch + 1}; {LOWER_LR}")
            if not all(np.all(np.isfinite(w)) for w in self.model.get_weights()):
                raise DivergedError(
                    f"training diverged: the weights hold NaN or inf after epoch {epoch + 1}; {LOWER_LR}"
                )
            result.history.append(row)
            if not row["val_accuracy"] <= result.best_val_accuracy:  # first epoch, or better
                result.best_epoch, result.best_val_accuracy = row["epoch"], row["val_accuracy"]
                if train_params.restore_best:
                    self.best_weights = [w.copy() for w in self.model.get_weights()]
            patience = train_params.early_stopping_patience
            if patience and row["epoch"] - result.best_epoch >= patience:
                self.model.stop_training = True
            if on_epoch:
                on_epoch(row)
            print(epoch_line(row, train_params.epochs), flush=True)

        def on_train_end(self, logs=None):
            if train_params.restore_best and self.best_weights is not None:
                self.model.set_weights(self.best_weights)

    return EpochRecorder()


def fit(
    model,
    train: dict,
    val: dict,
    train_params,
    seed: int,
    padding: str = "pre",
    on_epoch: Callable[[dict], None] | None = None,
) -> FitResult:
    """Fit on ``train``, validate on ``val`` every epoch, one line printed per epoch; the model ends
    with the best epoch's weights when ``restore_best`` (the history still holds every epoch)."""
    result = FitResult(seed=seed)
    callbacks = [_epoch_callback(result, on_epoch, train_params)]
    if train_params.bucketing:
        model.fit(
            length_buckets(train["x"], train["y"], train_params.batch_size, padding, seed),
            validation_data=length_buckets(val["x"], val["y"], 512, padding, None),
            epochs=train_params.epochs,
            verbose=0,
            callbacks=callbacks,
        )
    else:
        model.fit(
            np.asarray(train["x"], dtype=np.int32),
            np.asarray(train["y"], dtype=np.float32),
            validation_data=(np.asarray(val["x"], dtype=np.int32), np.asarray(val["y"], dtype=np.float32)),
            epochs=train_params.epochs,
            batch_size=train_params.batch_size,
            shuffle=True,
            verbose=0,
            callbacks=callbacks,
        )
    return result


def epoch_line(row: dict, epochs: int) -> str:
    """``seed 42 epoch 3/10: loss 0.4123 - accuracy 0.8123 - val_loss 0.4512 - val_accuracy 0.7991 - 8.3 s``."""
    metrics = " - ".join(f"{k} {row[k]:.4f}" for k in EPOCH_METRICS)
    return f"seed {row['seed']} epoch {row['epoch']}/{epochs}: {metrics} - {row['seconds']:.1f} s"


class SeedTrainer:
    """One variant's model, built and compiled once, trained from scratch once per seed."""

    def __init__(self, variant: str, params):
        self.variant, self.params = variant, params
        self.train_params = params.train_for(variant)
        self.model = None
        self._optimizer_start: list = []

    def build(self, seed: int):
        """The training model as a fresh build with ``seed`` makes it (no graph is traced here)."""
        from .model import build_model

        seed_everything(seed, self.train_params.deterministic)
        return build_model(
            self.variant,
            self.params.model(self.variant),
            self.params.data.maxlen,
            unroll=self.train_params.unroll,
            padding=self.params.data.padding,
        )

    def fit_seed(self, seed: int, train: dict, val: dict, on_epoch=None) -> FitResult:
        from .model import compile_model

        fresh = self.build(seed)
        if self.model is None:
            self.model = fresh
            compile_model(self.model, self.train_params)
            self.model.optimizer.build(self.model.trainable_variables)
            self._optimizer_start = [np.asarray(v.numpy()).copy() for v in self.model.optimizer.variables]
        else:  # the same start as a fresh build, on the compiled model
            for variable, value in zip(self.model.variables, fresh.variables, strict=True):
                variable.assign(value)
            for variable, value in zip(self.model.optimizer.variables, self._optimizer_start, strict=True):
                variable.assign(value)
        return fit(self.model, train, val, self.train_params, seed, self.params.data.padding, on_epoch)


def write_history_csv(history: list[dict], path) -> None:
    """``history.csv``: one row per seed and epoch (DVC plots and the report read it)."""
    import pandas as pd

    with atomic_file(path) as tmp:
        pd.DataFrame(history, columns=list(HISTORY_COLUMNS)).to_csv(tmp, index=False, float_format="%.6g")


def model_requirements(*extra: str) -> list[str]:
    """Pinned requirements for a logged MLflow model: Keras, its backend and the ``extra`` distributions
    (MLflow would otherwise infer them, slowly)."""
    from importlib.metadata import PackageNotFoundError, version

    import keras

    reqs = [f"keras=={version('keras')}", *(f"{dist}=={version(dist)}" for dist in extra)]
    backend = keras.backend.backend()
    for dist in ("tensorflow-cpu", "tensorflow") if backend == "tensorflow" else ("jax",):
        try:
            reqs.append(f"{dist}=={version(dist)}")
            break
        except PackageNotFoundError:
            continue
    return reqs


def mean_curves(results: list[FitResult]) -> dict[int, dict[str, float]]:
    """Per epoch, the mean over the seeds that reached it of each curve (early stopping ends some sooner)."""
    by_epoch: dict[int, list[dict]] = {}
    for result in results:
        for row in result.history:
            by_epoch.setdefault(row["epoch"], []).append(row)
    return {
        epoch: {
            key: round(float(np.mean([row[column] for row in rows])), 6)
            for key, column in (*((k, k) for k in EPOCH_METRICS), ("epoch_seconds", "seconds"))
        }
        for epoch, rows in sorted(by_epoch.items())
    }


def select_seed(results: list[FitResult]) -> FitResult:
    """The variant's model: the seed with the best validation accuracy (never chosen on test)."""
    return max(results, key=lambda r: (r.best_val_accuracy, -r.seed))


def train_variant(variant: str, params, data_dir: Path, model_dir: Path, report_dir: Path, workspace: Path) -> str:
    """Train one variant once per seed; write the model folder and history only when all succeed.

    MLflow: one parent run for the variant (params, summary, the seeds' mean/CI of best validation
    accuracy, the raw-text model of the selected seed named after the variant) with one nested run per
    seed (curves, its Keras model); each records the prepared data as its input. ``model_dir`` gets each seed's
    ``seed_<s>/model.keras``, the selected seed's ``model.keras``, ``summary.txt`` and ``run.json``
    (run ids for the evaluate stage); ``report_dir`` gets ``history.csv``. Returns the parent run id.
    """
    import keras
    import mlflow

    from . import stats, text_model, tracking
    from .interrupts import call_interruptibly
    from .model import inference_copy, param_counts, summary_text

    model_params, train_params = params.model(variant), params.train_for(variant)
    experiment_id = tracking.setup(params.mlflow.experiment)
    train, val = (
        within_vocabulary(load_npz(data_dir / f"{split}.npz"), model_params.max_features) for split in ("train", "val")
    )
    tags = tracking.variant_tags(variant, workspace, data_dir)
    trainer = SeedTrainer(variant, params)
    saved = {}  # seed -> the inference model, saved once every seed has finished

    with tracking.tracked_run(
        experiment_id=experiment_id, run_name=tracking.run_name(tags, variant), tags={**tags, "run_kind": "variant"}
    ) as parent:
        mlflow.log_params(params.flat(variant))
        tracking.log_training_data(data_dir, tags["data_hash"])
        lesson_form = inference_copy(trainer.build(train_params.seeds[0]), variant, model_params)
        summary = summary_text(lesson_form)
        print(summary)
        mlflow.log_text(summary, "model_summary.txt")
        mlflow.log_params({f"param_count.{k}": v for k, v in param_counts(lesson_form).items()})
        results, seed_runs = [], {}
        for seed in train_params.seeds:
            with tracking.tracked_run(
                experiment_id=experiment_id,
                nested=True,
                run_name=tracking.run_name(tags, f"{variant}/seed {seed}"),
                tags={**tags, "run_kind": "seed", "seed": str(seed)},
            ) as child:
                seed_runs[str(seed)] = child.info.run_id
                mlflow.log_params({**params.flat(variant), "seed": seed})
                tracking.log_training_data(data_dir, tags["data_hash"])

                def log_epoch(row: dict, run_id=child.info.run_id) -> None:
                    # explicit run id: fit runs in a worker thread, and MLflow's active run is per thread
                    mlflow.log_metrics(
                        {**{k: round(row[k], 6) for k in EPOCH_METRICS}, "epoch_seconds": row["seconds"]},
                        step=row["epoch"],
                        run_id=run_id,
                    )

                result = call_interruptibly(trainer.fit_seed, seed, train, val, log_epoch)
                mlflow.log_metrics(
                    {
                        "best_epoch": result.best_epoch,
                        "epochs_run": len(result.history),
                        "best_val_accuracy": round(result.best_val_accuracy, 6),
                        "train_seconds": result.train_seconds,
                    }
                )
                results.append(result)
                saved[seed] = inference_copy(trainer.model, variant, model_params)
                log_model(saved[seed], f"{variant}-seed{seed}", val)
        selected = select_seed(results)
        tracking.log_metrics(
            {
                **stats.prefixed("best_val_accuracy", [r.best_val_accuracy for r in results]),
                "train_seconds_total": round(sum(r.train_seconds for r in results), 3),
            }
        )
        mlflow.set_tag("selected_seed", str(selected.seed))  # names a seed, measures nothing: a tag, not a chart
        for step, means in mean_curves(results).items():  # the variant's curves in the MLflow Chart view
            mlflow.log_metrics(means, step=step)
        with atomic_dir(model_dir) as tmp:
            for seed, model in saved.items():
                (tmp / f"seed_{seed}").mkdir()
                model.save(tmp / f"seed_{seed}" / "model.keras")
            saved[selected.seed].save(tmp / "model.keras")
            text_model.log_text_model(
                variant,
                tmp / "model.keras",
                data_dir / "vocab.json",
                keras.backend.backend(),
                model_requirements(*text_model.REQUIRES),
            )
            (tmp / "summary.txt").write_text(summary, encoding="utf-8")
            write_json(
                tmp / "run.json", {"run_id": parent.info.run_id, "seed_runs": seed_runs, "selected_seed": selected.seed}
            )
            write_history_csv([row for r in results for row in r.history], report_dir / "history.csv")
        return parent.info.run_id


def log_model(model, name: str, val: dict) -> None:
    """A Keras model into the active run, named after its variant and seed, with an input signature."""
    import mlflow

    sample = np.asarray(val["x"][:2], dtype=np.int32)
    signature = mlflow.models.infer_signature(sample, model.predict(sample, verbose=0))
    mlflow.keras.log_model(model, name=name, signature=signature, pip_requirements=model_requirements())
