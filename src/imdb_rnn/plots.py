"""Figures as PNG: the lesson's two training curves, confusion matrix, ROC, comparison."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .files import atomic_file


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")  # no display needed; files only
    import matplotlib.pyplot as plt

    return plt


def _save(fig, path: Path) -> Path:
    with atomic_file(path) as tmp:
        fig.savefig(tmp, dpi=100, bbox_inches="tight", format="png")
    _pyplot().close(fig)
    return Path(path)


def training_curve(history, metric: str, title: str, path: Path) -> Path:
    """The lesson's figure: dots for training, a line for validation, per epoch."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6, 4))
    epochs = history["epoch"]
    label = "acc" if metric == "accuracy" else metric
    ax.plot(epochs, history[metric], "bo", label=f"Training {label}")
    ax.plot(epochs, history[f"val_{metric}"], "b", label=f"Validation {label}")
    ax.set_title(title)
    ax.set_xlabel("epoch")
    ax.legend()
    return _save(fig, path)


def confusion_matrix_figure(matrix: np.ndarray, path: Path, title: str = "Confusion matrix (test)") -> Path:
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(4, 4))
    ax.imshow(matrix, cmap="Blues")
    for (i, j), count in np.ndenumerate(matrix):
        ax.text(j, i, f"{count:,}", ha="center", va="center",
                color="white" if count > matrix.max() / 2 else "black")
    ax.set_xticks([0, 1], ["neg", "pos"])
    ax.set_yticks([0, 1], ["neg", "pos"])
    ax.set_xlabel("predicted")
    ax.set_ylabel("actual")
    ax.set_title(title)
    return _save(fig, path)


def roc_figure(roc, auc: float, path: Path) -> Path:
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(4.5, 4.5))
    ax.plot(roc["fpr"], roc["tpr"], "b", label=f"ROC (AUC = {auc:.3f})")
    ax.plot([0, 1], [0, 1], "k--", linewidth=0.8)
    ax.set_xlabel("false positive rate")
    ax.set_ylabel("true positive rate")
    ax.set_title("ROC curve (test)")
    ax.legend(loc="lower right")
    return _save(fig, path)


def comparison_figure(histories: dict, path: Path) -> Path:
    """Validation accuracy per epoch of every variant in one chart."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for variant, history in sorted(histories.items()):
        ax.plot(history["epoch"], history["val_accuracy"], marker="o", label=variant)
    ax.set_title("Validation accuracy per epoch")
    ax.set_xlabel("epoch")
    ax.set_ylabel("validation accuracy")
    ax.legend()
    ax.grid(alpha=0.3)
    return _save(fig, path)
