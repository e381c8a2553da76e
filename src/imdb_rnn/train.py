"""The `train` stage's steps in order: load the prepared data once, fit every seed, record, write.

The fitting is ``fitting``'s, the MLflow calls ``tracking``'s; this module orders them. MLflow gets
one parent run for the variant (params, summary, the seeds' mean/CI of best validation accuracy,
the raw-text model of the served model, named after the variant) with one nested run per seed
(curves, its Keras model); each records the prepared data as its input.
"""

from __future__ import annotations

import functools
from pathlib import Path

import pandas as pd

from . import paths, stats, text_model, tracking
from .checkpoints import CheckpointStore, code_digest, key_material
from .config import Params
from .files import atomic_dir, atomic_file, write_json
from .fitting import (
    EPOCH_METRICS,
    HISTORY_COLUMNS,
    FitResult,
    SeedTrainer,
    divergence_record,
    divergence_tags,
    mean_curves,
    require_finite_seeds,
    select_seed,
)
from .interrupts import call_interruptibly, stopping
from .model import inference_copy, param_counts, served_model, summary_text
from .prepared import PreparedData, load_training_data

TRAIN_STAGE = Path("stages/train.py")  # its code is part of a checkpoint's key


def train_variant(
    variant: str, params: Params, data_dir: Path, model_dir: Path, report_dir: Path, workspace: Path
) -> str:
    """Train one variant once per seed; write the model folder and history when enough seeds succeed.

    ``model_dir`` gets each seed's ``seed_<s>/model.keras``, the served ``model.keras`` (the selected
    seed's, or with ``serve: ensemble`` the mean of every seed's),
    ``summary.txt`` and ``run.json`` (run ids for the evaluate stage); ``report_dir`` gets
    ``history.csv``. Returns the parent run id. A seed that diverges keeps its best finite epoch and
    counts like any other (its run ends FAILED, tagged where it diverged); the variant fails only
    when fewer than two seeds (its only seed, when it has one) reach a finite epoch.
    """
    import mlflow

    data = load_training_data(data_dir, params.model(variant).max_features)
    experiment_id = tracking.setup(params.mlflow.experiment)
    tags = tracking.variant_tags(variant, workspace, data.data_hash)
    trainer = SeedTrainer(variant, params)
    store = CheckpointStore(
        paths.project_root(workspace),
        variant,
        key_material(data.data_hash, params.flat(variant), code_digest(Path(__file__).parent, workspace / TRAIN_STAGE)),
    )
    runs = {"parent": None, "seeds": {}, "logged": [], **store.open()}  # run ids of an interrupted training
    resumed = tracking.existing_run(runs["parent"]) if runs["parent"] else None
    start = {"run_id": resumed} if resumed else {"run_name": tracking.run_name(tags, variant), "tags": tags}

    with store, tracking.tracked_run(experiment_id=experiment_id, **start) as parent:
        runs["parent"] = parent.info.run_id
        store.save_runs(runs)
        if resumed:
            print(f"{variant}: resuming its interrupted training (MLflow run {resumed}) from {store.folder}")
        else:
            mlflow.set_tag("run_kind", "variant")
            mlflow.log_params(params.flat(variant))
            tracking.log_training_data(data.source, data.data_hash)
        lesson_form = inference_copy(trainer.build(trainer.train_params.seeds[0]), variant, params.model(variant))
        summary = summary_text(lesson_form)
        print(summary)
        if not resumed:
            mlflow.log_text(summary, "model_summary.txt")
            mlflow.log_params({f"param_count.{k}": v for k, v in param_counts(lesson_form).items()})

        results, saved = [], {}  # saved: seed -> its inference model, written at the end
        for seed in trainer.train_params.seeds:
            result, model = train_seed(trainer, seed, data, experiment_id, tags, store, runs)
            results.append(result)
            if model is not None:
                saved[seed] = model
        finite = require_finite_seeds(results)
        selected = select_seed(finite)
        diverged = {str(r.seed): divergence_record(r) for r in results if r.diverged}
        log_variant_outcome(results, finite, selected, diverged)
        run_record = {
            "run_id": parent.info.run_id,
            "seed_runs": {seed: run for seed, run in runs["seeds"].items() if int(seed) in saved},
            "selected_seed": selected.seed,
            "diverged": {seed: {**d, "run_id": runs["seeds"][seed]} for seed, d in diverged.items()},
        }
        served = served_model(variant, params.model(variant), saved, selected.seed)
        write_outputs(variant, data, saved, served, summary, run_record, results, model_dir, report_dir)
    return run_record["run_id"]


def train_seed(
    trainer: SeedTrainer,
    seed: int,
    data: PreparedData,
    experiment_id: str,
    tags: dict,
    store: CheckpointStore,
    runs: dict,
):
    """One seed in its nested run: fit (interruptibly, checkpointed every epoch), log its curves, outcome
    and Keras model. A seed the interrupted training finished is not retrained; one it left midway
    continues after its last finished epoch, in the same MLflow run.

    Returns the fit and the seed's inference model (None when it reached no finite epoch).
    """
    import mlflow

    variant, params = trainer.variant, trainer.params
    state = store.load_seed(seed)
    checkpoint = functools.partial(store.save_seed, seed)
    if state is not None and state.meta["finished"] and str(seed) in runs["logged"]:
        result = call_interruptibly(trainer.fit_seed, seed, data.train, data.val, resume=state)
        print(f"seed {seed}: finished before the interruption ({len(result.history)} epochs); not retrained")
        return result, inference_copy(trainer.model, variant, params.model(variant)) if result.has_model else None

    previous = tracking.existing_run(runs["seeds"][str(seed)]) if str(seed) in runs["seeds"] else None
    start = (
        {"run_id": previous}
        if previous
        else {"run_name": tracking.run_name(tags, f"{variant}/seed {seed}"), "tags": {**tags, "seed": str(seed)}}
    )
    with tracking.tracked_run(experiment_id=experiment_id, nested=True, **start) as child:
        run_id = runs["seeds"][str(seed)] = child.info.run_id
        store.save_runs(runs)

        def log_epoch(row: dict) -> None:
            # explicit run id: fit runs in a worker thread, and MLflow's active run is per thread
            if stopping():  # interrupted: the main thread is closing the runs; this thread is abandoned
                return
            metrics = {**{k: round(row[k], 6) for k in EPOCH_METRICS}, "epoch_seconds": row["seconds"]}
            mlflow.log_metrics(metrics, step=row["epoch"], run_id=run_id)

        if not previous:
            mlflow.set_tag("run_kind", "seed")
            mlflow.log_params({**params.flat(variant), "seed": seed})
            tracking.log_training_data(data.source, data.data_hash)
            for row in state.meta["history"] if state is not None else []:  # a new run: the curve so far
                log_epoch(row)
        if state is not None:
            mlflow.set_tag("resumed_after_epoch", str(state.meta["epochs_done"]))
            print(f"seed {seed}: resuming after epoch {state.meta['epochs_done']} from its checkpoint", flush=True)
        result = call_interruptibly(
            trainer.fit_seed, seed, data.train, data.val, log_epoch, resume=state, on_checkpoint=checkpoint
        )
        tracking.log_metrics(
            {
                "best_epoch": result.best_epoch or None,
                "epochs_run": len(result.history),
                "best_val_accuracy": round(result.best_val_accuracy, 6) if result.has_model else None,
                "train_seconds": result.train_seconds,
            }
        )
        if result.diverged:
            child.status = "FAILED"
            mlflow.set_tags(divergence_tags(result))
        model = inference_copy(trainer.model, variant, params.model(variant)) if result.has_model else None
        if model is not None:
            tracking.log_keras_model(model, f"{variant}-seed{seed}", data.val["x"])
    runs["logged"].append(str(seed))
    store.save_runs(runs)
    return result, model


def log_variant_outcome(results: list[FitResult], finite: list[FitResult], selected: FitResult, diverged: dict) -> None:
    """Into the variant's run: the seeds' mean and interval, the selected seed, the diverged ones, the mean curves."""
    import mlflow

    tracking.log_metrics(
        {
            **stats.prefixed("best_val_accuracy", [r.best_val_accuracy for r in finite]),
            "train_seconds_total": round(sum(r.train_seconds for r in results), 3),
            "diverged_seeds": len(diverged),
        }
    )
    mlflow.set_tag("selected_seed", str(selected.seed))  # names a seed, measures nothing: a tag, not a chart
    if diverged:
        mlflow.set_tag("diverged_seeds", ", ".join(f"{seed}: {d['at']}" for seed, d in diverged.items()))
    for step, means in mean_curves(finite).items():  # the variant's curves in the MLflow Chart view
        mlflow.log_metrics(means, step=step)


def write_outputs(
    variant: str,
    data: PreparedData,
    saved: dict,
    served,
    summary: str,
    run_record: dict,
    results: list[FitResult],
    model_dir: Path,
    report_dir: Path,
) -> None:
    """The model folder, swapped in whole (and the raw-text model logged from it), then the history."""
    import keras

    with atomic_dir(model_dir) as tmp:
        for seed, model in saved.items():
            (tmp / f"seed_{seed}").mkdir()
            model.save(tmp / f"seed_{seed}" / "model.keras")
        served.save(tmp / "model.keras")
        text_model.log_text_model(
            variant,
            tmp / "model.keras",
            data.vocab_path,
            keras.backend.backend(),
            tracking.model_requirements(*text_model.REQUIRES),
        )
        (tmp / "summary.txt").write_text(summary, encoding="utf-8")
        write_json(tmp / "run.json", run_record)
        write_history_csv([row for r in results for row in r.history], report_dir / "history.csv")


def write_history_csv(history: list[dict], path: Path) -> None:
    """``history.csv``: one row per seed and epoch (DVC plots and the report read it)."""
    with atomic_file(path) as tmp:
        pd.DataFrame(history, columns=list(HISTORY_COLUMNS)).to_csv(tmp, index=False, float_format="%.6g")
