"""Fit one model once per seed: per-epoch history, best-epoch weights, early stopping, divergence stop.

The seeds of a variant train in one process on one compiled model: each seed starts from the
weights a fresh build with that seed would have and a reset optimizer, so it trains exactly as it
would alone, while TensorFlow's traced training step (tens of seconds to minutes to build for an
unrolled model) is built once. Nothing here writes a file or talks to MLflow: ``train`` does.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from .batches import length_buckets
from .checkpoints import SeedState
from .config import Params, TrainParams
from .errors import DivergedError
from .faults import injected_faults
from .model import build_model, compile_model

HISTORY_COLUMNS = ("seed", "epoch", "loss", "accuracy", "val_loss", "val_accuracy", "seconds")
EPOCH_METRICS = ("loss", "accuracy", "val_loss", "val_accuracy")
LOWER_LR = "lower train.learning_rate in params.yaml"
PROGRESS_EVERY = 30.0  # seconds between progress lines within an epoch


def seed_everything(seed: int, deterministic: bool) -> None:
    """Seed Python, NumPy and the backend; with ``deterministic`` also TensorFlow's op determinism."""
    import keras

    keras.utils.set_random_seed(seed)
    if deterministic and keras.backend.backend() == "tensorflow":
        import tensorflow as tf

        tf.config.experimental.enable_op_determinism()


@dataclass
class Divergence:
    """Where a seed's training became non-finite: the epoch, the batch (None: after the epoch's last
    update) and what was seen. The seed stops there and keeps its best finite epoch, if it has one."""

    epoch: int
    batch: int | None
    what: str  # "loss is nan", "the weights hold NaN or inf", ...

    def __str__(self) -> str:
        where = f"batch {self.batch}" if self.batch is not None else "its end"
        return f"{self.what} at epoch {self.epoch}, {where}"


@dataclass
class FitResult:
    seed: int
    history: list[dict] = field(default_factory=list)  # one row per finite epoch, HISTORY_COLUMNS
    best_epoch: int = 0
    best_val_accuracy: float = float("nan")
    kept_epoch: int = 0  # the epoch whose weights the seed ends with (best_epoch with restore_best)
    diverged: Divergence | None = None

    @property
    def train_seconds(self) -> float:
        return round(sum(row["seconds"] for row in self.history), 3)

    @property
    def has_model(self) -> bool:
        """A finite epoch to keep: a seed that diverged in its first epoch has none."""
        return bool(self.history)

    def to_meta(self) -> dict:
        """What a checkpoint keeps of the result (JSON)."""
        diverged = None if self.diverged is None else asdict(self.diverged)
        return {"history": self.history, "best_epoch": self.best_epoch, "best_val_accuracy": self.best_val_accuracy,
                "kept_epoch": self.kept_epoch, "diverged": diverged}  # fmt: skip

    def load_meta(self, meta: dict) -> None:
        self.history = list(meta["history"])
        self.best_epoch, self.best_val_accuracy = meta["best_epoch"], meta["best_val_accuracy"]
        self.kept_epoch = meta["kept_epoch"]
        self.diverged = Divergence(**meta["diverged"]) if meta["diverged"] else None


class _SeedDiverged(Exception):
    """Internal: ends ``model.fit`` at the first non-finite value (Keras' ``TerminateOnNaN`` would
    first finish the epoch and validate the NaN weights)."""

    def __init__(self, divergence: Divergence):
        super().__init__(str(divergence))
        self.divergence = divergence


def _epoch_callback(
    result: FitResult,
    on_epoch: Callable[[dict], None] | None,
    train_params: TrainParams,
    on_checkpoint: Callable[[SeedState], None] | None = None,
):
    import keras

    class EpochRecorder(keras.callbacks.Callback):
        """Times epochs, records history, keeps the best (or last) finite weights, stops early or
        at the first non-finite value."""

        def __init__(self):
            super().__init__()
            self.kept_weights = None  # the weights the seed ends with: best epoch's, or last finite one's

        def on_epoch_begin(self, epoch, logs=None):
            self.started, self.epoch = time.perf_counter(), epoch + 1
            self.last_said = self.started

        def diverge(self, batch: int | None, what: str) -> None:
            result.diverged = Divergence(self.epoch, batch, what)
            raise _SeedDiverged(result.diverged)

        def on_train_batch_end(self, batch, logs=None):
            loss = (logs or {}).get("loss")
            if loss is not None and not math.isfinite(float(loss)):
                self.diverge(batch + 1, f"loss is {float(loss)}")
            now = time.perf_counter()
            if now - self.last_said >= PROGRESS_EVERY:  # a long epoch (or the first one's tracing) says it lives
                self.last_said = now
                steps = self.params.get("steps") or "?"
                print(
                    f"seed {result.seed} epoch {self.epoch}/{train_params.epochs}: batch {batch + 1}/{steps}"
                    f" - loss {float(loss or 0):.4f} - {now - self.started:.0f} s",
                    flush=True,
                )

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
                    self.diverge(None, f"{what} is {value}")
            weights = self.model.get_weights()
            if not all(np.all(np.isfinite(w)) for w in weights):
                self.diverge(None, "the weights hold NaN or inf")
            result.history.append(row)
            better = not row["val_accuracy"] <= result.best_val_accuracy  # first epoch, or better
            if better:
                result.best_epoch, result.best_val_accuracy = row["epoch"], row["val_accuracy"]
            if better or not train_params.restore_best:
                self.kept_weights, result.kept_epoch = [w.copy() for w in weights], row["epoch"]
            patience = train_params.early_stopping_patience
            if patience and row["epoch"] - result.best_epoch >= patience:
                self.model.stop_training = True
            if on_checkpoint:  # before the epoch is logged or printed: an epoch a user saw finish is never retrained
                done = bool(self.model.stop_training) or row["epoch"] == train_params.epochs
                on_checkpoint(snapshot(self.model, result, self, row["epoch"], finished=done))
            if on_epoch:
                on_epoch(row)
            print(epoch_line(row, train_params.epochs), flush=True)

        def keep(self) -> None:
            """End with the kept weights: the best epoch's with ``restore_best``, else the last finite."""
            if self.kept_weights is not None:
                self.model.set_weights(self.kept_weights)

    return EpochRecorder()


def fit(
    model,
    train: dict,
    val: dict,
    train_params: TrainParams,
    seed: int,
    padding: str = "pre",
    on_epoch: Callable[[dict], None] | None = None,
    resume: SeedState | None = None,
    on_checkpoint: Callable[[SeedState], None] | None = None,
) -> FitResult:
    """Fit on ``train``, validate on ``val`` every epoch, one line printed per epoch; the model ends
    with the best epoch's weights when ``restore_best`` (the history still holds every epoch).

    A non-finite loss or weight stops the seed at once (``result.diverged``); it keeps its best
    finite epoch, if it had one (``result.has_model``). Each epoch's data order is a function of
    (seed, epoch) and the dropout generators' state is a model variable, so ``resume`` (the
    ``on_checkpoint`` state after an epoch) continues exactly as the uninterrupted fit would.
    """
    result = FitResult(seed=seed)
    recorder = _epoch_callback(result, on_epoch, train_params, on_checkpoint)
    recorder.set_model(model)  # fit sets it too; a finished seed's resume keeps weights without a fit
    first = 0
    if resume is not None:
        first = restore(model, resume, result, recorder)
        if resume.meta["finished"]:
            recorder.keep()
            return result
    callbacks = [recorder, *injected_faults(seed)]
    if train_params.bucketing:
        validation = length_buckets(val["x"], val["y"], 512, padding, None)
    else:
        validation = (np.asarray(val["x"], dtype=np.int32), np.asarray(val["y"], dtype=np.float32))
    try:
        for epoch in range(first, train_params.epochs):
            data, fit_kwargs = epoch_data(train, train_params, padding, seed, epoch)
            model.fit(
                data,
                initial_epoch=epoch,
                epochs=epoch + 1,
                validation_data=validation,
                verbose=0,
                callbacks=callbacks,
                **fit_kwargs,
            )
            if model.stop_training:  # early stopping (the recorder checkpointed the epoch as the last)
                break
    except _SeedDiverged as stop:
        print(divergence_line(result, stop.divergence, train_params.epochs), flush=True)
        if on_checkpoint:
            on_checkpoint(snapshot(model, result, recorder, stop.divergence.epoch, finished=True))
    recorder.keep()
    return result


def epoch_data(train: dict, train_params: TrainParams, padding: str, seed: int, epoch: int):
    """The epoch's training batches, shuffled by a generator seeded with (seed, epoch) alone."""
    order_seed = (seed, epoch)
    if train_params.bucketing:  # Keras would shuffle the batches again with Python's global RNG, which a resume lacks
        return length_buckets(train["x"], train["y"], train_params.batch_size, padding, order_seed), {"shuffle": False}
    order = np.random.default_rng(order_seed).permutation(len(train["y"]))
    x = np.asarray(train["x"], dtype=np.int32)[order]
    y = np.asarray(train["y"], dtype=np.float32)[order]
    return x, {"y": y, "batch_size": train_params.batch_size, "shuffle": False}


def snapshot(model, result: FitResult, recorder, epochs_done: int, finished: bool) -> SeedState:
    """The seed's state after ``epochs_done`` epochs, for ``checkpoints``."""
    return SeedState(
        meta={"epochs_done": epochs_done, "finished": finished, **result.to_meta()},
        variables=[np.asarray(v.numpy()) for v in model.variables],
        optimizer=[np.asarray(v.numpy()) for v in model.optimizer.variables],
        kept=list(recorder.kept_weights or []),
    )


def restore(model, state: SeedState, result: FitResult, recorder) -> int:
    """Put a checkpoint's state into the model, optimizer, result and recorder; the next epoch's index."""
    for variable, value in zip(model.variables, state.variables, strict=True):
        variable.assign(value)
    for variable, value in zip(model.optimizer.variables, state.optimizer, strict=True):
        variable.assign(value)
    result.load_meta(state.meta)
    recorder.kept_weights = list(state.kept) or None
    return int(state.meta["epochs_done"])


def divergence_line(result: FitResult, divergence: Divergence, epochs: int) -> str:
    """``seed 42 epoch 5/10: diverged (loss is nan at epoch 5, batch 143); keeps epoch 3 (val_accuracy 0.8462)``."""
    kept = (
        f"keeps epoch {result.kept_epoch} (val_accuracy {result.history[result.kept_epoch - 1]['val_accuracy']:.4f})"
        if result.has_model
        else "no finite epoch to keep"
    )
    return f"seed {result.seed} epoch {divergence.epoch}/{epochs}: diverged ({divergence}); {kept}"


def epoch_line(row: dict, epochs: int) -> str:
    """``seed 42 epoch 3/10: loss 0.4123 - accuracy 0.8123 - val_loss 0.4512 - val_accuracy 0.7991 - 8.3 s``."""
    metrics = " - ".join(f"{k} {row[k]:.4f}" for k in EPOCH_METRICS)
    return f"seed {row['seed']} epoch {row['epoch']}/{epochs}: {metrics} - {row['seconds']:.1f} s"


class SeedTrainer:
    """One variant's model, built and compiled once, trained from scratch once per seed."""

    def __init__(self, variant: str, params: Params):
        self.variant, self.params = variant, params
        self.train_params = params.train_for(variant)
        self.model: Any = None  # a Keras model once the first seed built it
        self._optimizer_start: list = []

    def build(self, seed: int):
        """The training model as a fresh build with ``seed`` makes it (no graph is traced here)."""
        seed_everything(seed, self.train_params.deterministic)
        return build_model(
            self.variant,
            self.params.model(self.variant),
            self.params.data.maxlen,
            unroll=self.train_params.unroll is True,  # train_for resolved `auto` to a bool
            padding=self.params.data.padding,
        )

    def fit_seed(
        self,
        seed: int,
        train: dict,
        val: dict,
        on_epoch: Callable[[dict], None] | None = None,
        resume: SeedState | None = None,
        on_checkpoint: Callable[[SeedState], None] | None = None,
    ) -> FitResult:
        """Train ``seed`` from a fresh build's start, or continue the checkpointed state ``resume``."""
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
        return fit(
            self.model, train, val, self.train_params, seed, self.params.data.padding, on_epoch, resume, on_checkpoint
        )


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


def require_finite_seeds(results: list[FitResult]) -> list[FitResult]:
    """The seeds that reached a finite epoch; an error when fewer than two did (the only seed, for one)."""
    finite = [r for r in results if r.has_model]
    needed = min(2, len(results))
    if len(finite) < needed:
        details = "; ".join(f"seed {r.seed}: {r.diverged}" for r in results if not r.has_model)
        raise DivergedError(
            f"training diverged: {len(results) - len(finite)} of {len(results)} seed(s) reached no finite epoch "
            f"({details}), fewer than {needed} have a model; {LOWER_LR} (or set train.clipnorm)"
        )
    return finite


def divergence_record(result: FitResult) -> dict:
    """What run.json and metrics.json say of a diverged seed."""
    d = result.diverged
    assert d is not None, "only a diverged seed has a divergence record"
    return {"at": str(d), "epoch": d.epoch, "batch": d.batch, "kept_epoch": result.kept_epoch or None}


def divergence_tags(result: FitResult) -> dict[str, str]:
    """The diverged seed's run: where it diverged, what it keeps, in tags and the run's note."""
    d = result.diverged
    assert d is not None, "only a diverged seed's run is tagged"
    kept = f"epoch {result.kept_epoch}" if result.has_model else "nothing (no finite epoch)"
    return {
        "diverged": str(d),
        "diverged_epoch": str(d.epoch),
        "diverged_batch": "end" if d.batch is None else str(d.batch),
        "kept_epoch": str(result.kept_epoch or "none"),
        "mlflow.note.content": f"Training diverged ({d}); the seed keeps {kept}.",
    }
