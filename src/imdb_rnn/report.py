"""One table comparing every variant over its seeds: settings, size, validation and test scores with
95% intervals, and which differences the seeds can tell apart (Welch's t-test)."""

from __future__ import annotations

from itertools import combinations
from pathlib import Path

import pandas as pd

from . import plots, stats
from .errors import ImdbRnnError
from .files import atomic_file, read_json, write_text
from .lengths import LENGTH_TABLE
from .model import CELLS, count_params

SETTINGS = (
    "max_features",
    "embedding_dim",
    "cell",
    "units",
    "layers",
    "bidirectional",
    "mask_padding",
    "pooling",
    "dropout",
    "recurrent_dropout",
    "spatial_dropout",
    "bigram_buckets",
    "serve",
)
SUMMARY_COLUMNS = (
    "variant",
    *SETTINGS,
    "param_count",
    "seeds",
    "diverged_seeds",
    "best_val_accuracy",
    "best_val_accuracy_ci95_low",
    "best_val_accuracy_ci95_high",
    "test_accuracy",
    "test_accuracy_ci95_low",
    "test_accuracy_ci95_high",
    "test_accuracy_per_seed",
    "ensemble_test_accuracy",
    "ensemble_test_roc_auc",
    "ensemble_val_accuracy",
    "served",
    "served_test_accuracy",
    "served_val_accuracy",
    "test_f1",
    "test_roc_auc",
    "epochs",
    "train_seconds",
)


def variant_row(variant: str, model_params, history, metrics: dict) -> dict:
    """One summary row from a variant's per-seed history and its test metrics over seeds."""
    per_seed = metrics["per_seed"]
    return {
        "variant": variant,
        **{key: getattr(model_params, key) for key in SETTINGS},
        "param_count": count_params(model_params),
        "seeds": len(per_seed),
        "diverged_seeds": metrics.get("diverged_seeds", 0),
        **{f"best_val_accuracy{s}": metrics[f"best_val_accuracy{s}"] for s in ("", "_ci95_low", "_ci95_high")},
        **{f"test_accuracy{s}": metrics[f"accuracy{s}"] for s in ("", "_ci95_low", "_ci95_high")},
        "test_accuracy_per_seed": " ".join(f"{row['accuracy']:.4f}" for row in per_seed),
        "ensemble_test_accuracy": metrics["ensemble_accuracy"],
        "ensemble_test_roc_auc": metrics["ensemble_roc_auc"],
        "ensemble_val_accuracy": metrics["ensemble_val_accuracy"],
        "served": "ensemble" if metrics["serve"] == "ensemble" else f"seed {metrics['selected_seed']}",
        "served_test_accuracy": metrics["served_accuracy"],
        "served_val_accuracy": metrics["served_val_accuracy"],
        "test_f1": metrics["f1"],
        "test_roc_auc": metrics["roc_auc"],
        "epochs": round(float(history.groupby("seed")["epoch"].max().mean()), 1),
        "train_seconds": round(float(history["seconds"].sum()), 1),
    }


def collect(params, variants_dir: Path):
    """The summary table (the served model's best validation accuracy first: register's criterion), each
    variant's history, its per-seed test accuracies and its accuracy by review length."""
    rows, histories, accuracies, by_length = [], {}, {}, {}
    for variant, model_params in params.models.items():
        folder = Path(variants_dir) / variant
        for name in ("history.csv", "metrics.json", LENGTH_TABLE):
            if not (folder / name).is_file():
                raise ImdbRnnError(f"{folder / name} is missing; run `dvc repro` to train and evaluate every variant")
        history = pd.read_csv(folder / "history.csv")
        metrics = read_json(folder / "metrics.json")
        rows.append(variant_row(variant, model_params, history, metrics))
        histories[variant] = history
        accuracies[variant] = [row["accuracy"] for row in metrics["per_seed"]]
        by_length[variant] = pd.read_csv(folder / LENGTH_TABLE)
    table = pd.DataFrame(rows, columns=list(SUMMARY_COLUMNS))
    return table.sort_values("served_val_accuracy", ascending=False, kind="stable"), histories, accuracies, by_length


def significance_lines(table, accuracies: dict[str, list[float]]) -> list[str]:
    """Each pair of variants: the difference of mean test accuracy and whether the seeds separate them."""
    lines = []
    order = list(table["variant"])
    for a, b in combinations(order, 2):
        diff = stats.summarize(accuracies[a])["mean"] - stats.summarize(accuracies[b])["mean"]
        lines.append(f"- {a} vs {b}: test accuracy {diff:+.4f}, {stats.welch_verdict(accuracies[a], accuracies[b])}")
    return lines


def model_in_words(row) -> str:
    """A variant's architecture as a reader says it, e.g. "4 x SimpleRNN(32), 10,000 words x 32, masked"."""
    cell = f"{'bidirectional ' if row['bidirectional'] else ''}{CELLS[row['cell']]}({row['units']})"
    parts = [f"{row['layers']} x {cell}" if row["layers"] > 1 else cell]
    if row["pooling"] != "last":
        parts.append(f"{row['pooling'].replace('_', '+')} pooling")
    parts.append(f"{row['max_features']:,} words x {row['embedding_dim']}")
    if row["bigram_buckets"]:
        parts.append(f"word pairs in {row['bigram_buckets']:,} buckets")
    drops = [f"{name} {row[key]:g}" for key, name in _DROPOUTS if row[key]]
    return ", ".join(parts + drops + (["masked"] if row["mask_padding"] else []))


_DROPOUTS = (("dropout", "dropout"), ("recurrent_dropout", "recurrent dropout"), ("spatial_dropout", "spatial"))


def brief(table):
    """The columns a reader compares (the rest is in summary.csv): variant, model, test accuracy (the
    seeds' mean, the seeds' ensemble, the served model), validation accuracy, ROC AUC, diverged seeds
    and training time."""

    def interval(column: str) -> list[str]:
        ends = zip(table[column], table[f"{column}_ci95_low"], table[f"{column}_ci95_high"])
        return [stats.format_interval(*r) for r in ends]

    return pd.DataFrame(
        {
            "variant": table["variant"],
            "model": [model_in_words(row) for _, row in table.iterrows()],
            "test accuracy": interval("test_accuracy"),
            "ensemble test acc": table["ensemble_test_accuracy"].map("{:.4f}".format),
            "served: test (val) acc": [
                f"{s}: {t:.4f} ({v:.4f})"
                for s, t, v in zip(table["served"], table["served_test_accuracy"], table["served_val_accuracy"])
            ],
            "val accuracy": interval("best_val_accuracy"),
            "ROC AUC": table["test_roc_auc"].map("{:.4f}".format),
            "seeds (diverged)": [f"{n} ({d})" for n, d in zip(table["seeds"], table["diverged_seeds"])],
            "train s": table["train_seconds"].map("{:.0f}".format),
        }
    )


def brief_markdown(table) -> str:
    """``brief`` as a Markdown table (what the report stage prints too)."""
    aligned = ["left", "left", "left", "right", "left", "left", "right", "right", "right"]
    return brief(table).to_markdown(index=False, colalign=aligned, disable_numparse=True)  # "0.8700" stays


def markdown(table, accuracies: dict[str, list[float]]) -> str:
    """The summary as Markdown: one short row per variant, then the pairwise tests."""
    return "\n".join(
        [
            "# Variant comparison",
            "",
            "Means over seeds with 95% confidence intervals (Student's t). `ensemble test acc`: one model",
            "averaging the seeds' probabilities; `served`: what `model.keras`, `predict` and the registry use",
            "(`serve: ensemble`, or the seed with the best validation accuracy). Sorted by the served model's",
            "validation accuracy, the selection criterion (`register` compares what it would serve); test accuracy",
            "is reported, never used to choose. Every setting, the per-seed accuracies and F1 are in `summary.csv`;",
            "test accuracy by review length in `length.png`.",
            "",
            brief_markdown(table),
            "",
            "## Differences in test accuracy (Welch's t-test over seeds, 0.05 level)",
            "",
            *(significance_lines(table, accuracies) or ["- one variant: nothing to compare"]),
            "",
        ]
    )


def write_summary(params, variants_dir: Path, out_dir: Path):
    """Write ``summary.csv``, ``summary.md``, ``comparison.png`` and ``length.png`` into ``out_dir``."""
    table, histories, accuracies, by_length = collect(params, variants_dir)
    with atomic_file(out_dir / "summary.csv") as tmp:
        table.to_csv(tmp, index=False)
    write_text(out_dir / "summary.md", markdown(table, accuracies))
    plots.comparison_figure(table, histories, out_dir / "comparison.png")
    plots.length_comparison_figure(by_length, out_dir / "length.png")
    return table
