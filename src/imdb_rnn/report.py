"""One table comparing every variant: its settings, size, best validation and test scores."""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path

from .errors import ImdbRnnError
from .files import atomic_file, read_json, write_text

SUMMARY_COLUMNS = (
    "variant", "embedding_dim", "units", "layers", "dropout", "recurrent_dropout", "param_count",
    "best_val_accuracy", "best_epoch", "test_accuracy", "test_f1", "test_roc_auc", "train_seconds",
)


def count_params(max_features: int, model_params) -> int:
    """Parameters of Embedding -> layers x SimpleRNN -> Dense(1), from the settings alone."""
    e, u = model_params.embedding_dim, model_params.units
    first = u * (e + u + 1)
    others = (model_params.layers - 1) * u * (2 * u + 1)
    return max_features * e + first + others + (u + 1)


def variant_row(variant: str, model_params, max_features: int, history, metrics: dict) -> dict:
    """One summary row from a variant's history table and test metrics."""
    best = history.loc[history["val_accuracy"].idxmax()]
    return {
        "variant": variant,
        **asdict(model_params),
        "param_count": count_params(max_features, model_params),
        "best_val_accuracy": round(float(best["val_accuracy"]), 4),
        "best_epoch": int(best["epoch"]),
        "test_accuracy": round(metrics["accuracy"], 4),
        "test_f1": round(metrics["f1"], 4),
        "test_roc_auc": round(metrics["roc_auc"], 4),
        "train_seconds": round(float(history["seconds"].sum()), 1),
    }


def collect(params, variants_dir: Path):
    """The summary table and each variant's history, for the variants declared in params."""
    import pandas as pd

    rows, histories = [], {}
    for variant, model_params in params.models.items():
        folder = Path(variants_dir) / variant
        for name in ("history.csv", "metrics.json"):
            if not (folder / name).is_file():
                raise ImdbRnnError(f"{folder / name} is missing; run `dvc repro` to train and evaluate every variant")
        history = pd.read_csv(folder / "history.csv")
        metrics = read_json(folder / "metrics.json")
        rows.append(variant_row(variant, model_params, params.data.max_features, history, metrics))
        histories[variant] = history
    table = pd.DataFrame(rows, columns=list(SUMMARY_COLUMNS))
    return table.sort_values("test_accuracy", ascending=False, kind="stable"), histories


def markdown(table) -> str:
    """The summary as a Markdown table (README-ready), best test accuracy first."""
    return "# Variant comparison (test split)\n\n" + table.to_markdown(index=False) + "\n"


SUMMARY_FILES = ("summary.csv", "summary.md", "comparison.png")


def write_summary(params, variants_dir: Path, out_dir: Path):
    """Write ``summary.csv``, ``summary.md`` and ``comparison.png`` into ``out_dir``."""
    from . import plots

    table, histories = collect(params, variants_dir)
    with atomic_file(out_dir / "summary.csv") as tmp:
        table.to_csv(tmp, index=False)
    write_text(out_dir / "summary.md", markdown(table))
    plots.comparison_figure(histories, out_dir / "comparison.png")
    return table


def log_summary(params, out_dir: Path, workspace: Path) -> str:
    """A `summary` run in the experiment: the table, chart and each variant's headline metrics."""
    import mlflow
    import pandas as pd

    from . import tracking

    experiment_id = tracking.setup(params.mlflow.experiment)
    tags = tracking.run_tags(workspace, summary="true")
    table = pd.read_csv(out_dir / "summary.csv")
    with tracking.tracked_run(experiment_id=experiment_id, run_name=tracking.run_name(tags, "summary"),
                              tags=tags) as run:
        mlflow.log_metrics({
            f"{row.variant}.{column}": float(getattr(row, column))
            for row in table.itertuples()
            for column in ("test_accuracy", "test_f1", "test_roc_auc", "best_val_accuracy")
        })
        for name in SUMMARY_FILES:
            mlflow.log_artifact(str(out_dir / name), artifact_path="summary")
        return run.info.run_id
