"""Every pipeline execution in MLflow, even one in which DVC ran no stage of its own.

The `track` stage runs on every `dvc repro` and `dvc exp run` (``always_changed``): under an
experiment it records a summary run named after it and links each variant DVC skipped or
restored to the run that trained it, so `dvc exp show` rows and MLflow runs map one to one.
Outside an experiment it records a summary only when the results changed since the last one.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import pandas as pd

from . import paths, tracking
from .config import Params
from .files import read_json

SUMMARY_FILES = ("summary.csv", "summary.md", "comparison.png", "length.png")


def results_digest(summary_csv: Path, variant_runs: dict[str, str]) -> str:
    """What a summary run records: the summary table's bytes and the variants' run ids."""
    digest = hashlib.md5(Path(summary_csv).read_bytes(), usedforsecurity=False)
    digest.update(repr(sorted(variant_runs.items())).encode())
    return digest.hexdigest()


def log_execution(params: Params, models_dir: Path, reports_dir: Path, workspace: Path) -> str | None:
    """A `summary` run (table, chart, each variant's headline metrics and run id) in the summaries
    experiment, with a link run for each variant this DVC experiment did not train; returns its id,
    or None when the latest summary run outside an experiment already records these results."""

    experiment_id = tracking.setup(params.mlflow.experiment)
    tags = tracking.run_tags(workspace)
    variant_runs = {v: read_json(paths.model_dir(v, models_dir) / "run.json")["run_id"] for v in params.models}
    if "dvc_exp_name" in tags:
        for variant, run_id in variant_runs.items():
            variant_runs[variant] = tracking.link_restored(variant, run_id, experiment_id, tags)
    digest = results_digest(reports_dir / "summary.csv", variant_runs)
    summaries_id = tracking.setup(params.mlflow.summaries_experiment)
    if "dvc_exp_name" not in tags and latest_digest(summaries_id) == digest:
        return None
    table = pd.read_csv(reports_dir / "summary.csv")
    with tracking.tracked_run(
        experiment_id=summaries_id,
        run_name=tracking.run_name(tags, "summary"),
        tags={
            **tags,
            "run_kind": "summary",
            "results_digest": digest,
            **{f"run.{v}": run_id for v, run_id in variant_runs.items()},
        },
    ) as run:
        tracking.log_metrics(
            {
                f"{row.variant}.{column}_mean": getattr(row, column)
                for row in table.itertuples()
                for column in ("test_accuracy", "best_val_accuracy")
            }
        )  # means over seeds
        tracking.log_files([reports_dir / name for name in SUMMARY_FILES], "summary")
        return run.info.run_id


def latest_digest(summaries_id: str) -> str | None:
    """The ``results_digest`` of the newest summary run made outside an experiment."""
    import mlflow

    runs = mlflow.MlflowClient().search_runs(
        [summaries_id], "tags.run_kind = 'summary'", order_by=["attributes.start_time DESC"], max_results=20
    )
    outside = [run for run in runs if "dvc_exp_name" not in run.data.tags]
    return outside[0].data.tags.get("results_digest") if outside else None
