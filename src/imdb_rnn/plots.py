"""Figures as PNG: the lesson's two training curves, confusion matrix, ROC, comparison, accuracy by length."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import matplotlib
import matplotlib.pyplot as plt
import numpy as np
from matplotlib.figure import Figure

from .files import atomic_file

if TYPE_CHECKING:
    import pandas as pd

matplotlib.use("Agg")  # no display needed; files only


def _save(fig: Figure, path: Path) -> Path:
    with atomic_file(path) as tmp:
        fig.savefig(tmp, dpi=100, bbox_inches="tight", format="png")
    plt.close(fig)
    return Path(path)


def training_curve(history: pd.DataFrame, metric: str, title: str, path: Path) -> Path:
    """The lesson's figure, one colour per seed: dots for training, a line for validation, per epoch."""
    fig, ax = plt.subplots(figsize=(6, 4))
    label = "acc" if metric == "accuracy" else metric
    for i, (seed, rows) in enumerate(history.groupby("seed", sort=True)):
        colour = f"C{i}"
        ax.plot(rows["epoch"], rows[metric], "o", color=colour, label=f"Training {label} (seed {seed})")
        ax.plot(rows["epoch"], rows[f"val_{metric}"], "-", color=colour, label=f"Validation {label} (seed {seed})")
    ax.set_title(title)
    ax.set_xlabel("epoch")
    ax.legend(fontsize="small")
    return _save(fig, path)


def confusion_matrix_figure(matrix: np.ndarray, path: Path, title: str = "Confusion matrix (test)") -> Path:
    fig, ax = plt.subplots(figsize=(4, 4))
    ax.imshow(matrix, cmap="Blues")
    for (i, j), count in np.ndenumerate(matrix):
        ax.text(j, i, f"{count:,}", ha="center", va="center", color="white" if count > matrix.max() / 2 else "black")
    ax.set_xticks([0, 1], ["neg", "pos"])
    ax.set_yticks([0, 1], ["neg", "pos"])
    ax.set_xlabel("predicted")
    ax.set_ylabel("actual")
    ax.set_title(title)
    return _save(fig, path)


def roc_figure(roc: pd.DataFrame, auc: float, path: Path) -> Path:
    fig, ax = plt.subplots(figsize=(4.5, 4.5))
    ax.plot(roc["fpr"], roc["tpr"], "b", label=f"ROC (AUC = {auc:.3f})")
    ax.plot([0, 1], [0, 1], "k--", linewidth=0.8)
    ax.set_xlabel("false positive rate")
    ax.set_ylabel("true positive rate")
    ax.set_title("ROC curve (test)")
    ax.legend(loc="lower right")
    return _save(fig, path)


def comparison_figure(table: pd.DataFrame, histories: dict[str, pd.DataFrame], path: Path) -> Path:
    """Left: mean validation accuracy per epoch of every variant (band: min to max over seeds).
    Right: test accuracy, mean with its 95% interval over seeds."""
    fig, (curves, bars) = plt.subplots(1, 2, figsize=(11, 4.5), gridspec_kw={"width_ratios": [3, 2]})
    for i, (variant, history) in enumerate(sorted(histories.items())):
        by_epoch = history.groupby("epoch")["val_accuracy"]
        mean = by_epoch.mean()
        curves.plot(mean.index, mean.values, marker="o", color=f"C{i}", label=variant)
        curves.fill_between(mean.index, by_epoch.min().values, by_epoch.max().values, color=f"C{i}", alpha=0.15)
    curves.set_title("Validation accuracy per epoch (mean over seeds)")
    curves.set_xlabel("epoch")
    curves.set_ylabel("validation accuracy")
    curves.legend()
    curves.grid(alpha=0.3)
    rows = table.sort_values("test_accuracy")
    mean = rows["test_accuracy"].to_numpy()
    low = rows["test_accuracy_ci95_low"].to_numpy(dtype=float)  # NaN where one seed gives no interval
    high = rows["test_accuracy_ci95_high"].to_numpy(dtype=float)
    errors = np.vstack([mean - low, high - mean])
    bars.barh(rows["variant"], mean, xerr=np.nan_to_num(errors), color="C0", alpha=0.7, capsize=4)
    for y, value in enumerate(mean):
        bars.text(value, y, f" {value:.4f}", va="bottom", fontsize="small")
    bars.set_xlim(max(0.0, float(np.nanmin(np.where(np.isnan(low), mean, low))) - 0.03), 1.0)
    bars.set_title("Test accuracy (mean, 95% interval)")
    bars.grid(alpha=0.3, axis="x")
    fig.tight_layout()
    return _save(fig, path)


def length_figure(table: pd.DataFrame, title: str, path: Path) -> Path:
    """Test accuracy per review-length group (``lengths.accuracy_by_length``): the served model's, and
    the mean of the seeds' own; each group's review count under its label."""
    fig, ax = plt.subplots(figsize=(6.5, 4))
    x = np.arange(len(table))
    ax.plot(x, table["accuracy"], "o-", color="C0", label="served model")
    ax.plot(x, table["seeds_mean_accuracy"], "s--", color="C1", alpha=0.8, label="seeds (mean of each seed's)")
    ax.set_xticks(x, [f"{label}\n{n:,} reviews" for label, n in zip(table["label"], table["reviews"])])
    ax.tick_params(axis="x", labelsize="small")
    ax.set_ylabel("test accuracy")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend()
    return _save(fig, path)


def length_comparison_figure(tables: dict[str, pd.DataFrame], path: Path) -> Path:
    """Every variant's served model: test accuracy per review-length group, one line each (the groups
    are the test set's, the same for every variant)."""
    fig, ax = plt.subplots(figsize=(7.5, 4.5))
    labels: list[str] = []
    for i, (variant, table) in enumerate(sorted(tables.items())):
        ax.plot(np.arange(len(table)), table["accuracy"], "o-", color=f"C{i}", label=variant)
        labels = max(labels, list(table["label"]), key=len)
    ax.set_xticks(np.arange(len(labels)), labels)
    ax.tick_params(axis="x", labelsize="small")
    ax.set_xlabel("review length (quartiles of the reviews that fit, then those cut at maxlen)")
    ax.set_ylabel("test accuracy")
    ax.set_title("Test accuracy by review length (served models)")
    ax.grid(alpha=0.3)
    ax.legend()
    return _save(fig, path)
