"""The champion gate: a candidate replaces the champion only when it is significantly better on the same
validation reviews, by the exact McNemar test on their per-review predictions.

Each variant's evaluation writes its served model's validation predictions (``val_predictions.csv``,
also logged to the variant's MLflow run), so the register stage can pair the candidate's with those the
champion's run logged. Why McNemar rather than a paired bootstrap: the question is whether two
classifiers differ on the same reviews, and their right/wrong outcomes pair review by review; only
the reviews on which they disagree carry evidence, and their count is exactly binomial under "equally
good", so the test is exact for the small counts a close race leaves, without resampling or a seed
(``stats.mcnemar_p``). The p-value is optimistic all the same: this validation set already chose the
epochs, the served seed and the configuration of both models.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from .files import atomic_file
from .stats import mcnemar_p

VAL_PREDICTIONS = "val_predictions.csv"  # in reports/variants/<variant>/, and the variant run's artifacts:
VAL_ARTIFACT_FOLDER = "validation"  # validation/val_predictions.csv
COLUMNS = ("review", "label", "tokens", "probability")
TEST = "exact McNemar (two-sided binomial test on the reviews only one model gets right)"


def write_predictions(path: Path, y: np.ndarray, tokens: np.ndarray, prob: np.ndarray) -> None:
    """One row per validation review, in prepare's order: its label, its length in tokens (with the
    labels, what tells two files apart as other reviews) and the served model's probability, written
    exactly (a rounded probability could cross 0.5)."""
    table = pd.DataFrame(
        {"review": np.arange(len(y)), "label": np.asarray(y).astype(int), "tokens": tokens, "probability": prob}
    )
    with atomic_file(path) as tmp:
        table.to_csv(tmp, index=False)


def read_predictions(path: Path) -> pd.DataFrame | None:
    """A predictions file as ``write_predictions`` wrote it, or None when it has other columns."""
    table = pd.read_csv(path)
    return table if tuple(table.columns) == COLUMNS else None


@dataclass(frozen=True)
class PairedCounts:
    """Two models on the same reviews: who gets which right."""

    reviews: int
    both_right: int
    candidate_only_right: int
    champion_only_right: int
    both_wrong: int

    @property
    def candidate_accuracy(self) -> float:
        return (self.both_right + self.candidate_only_right) / self.reviews

    @property
    def champion_accuracy(self) -> float:
        return (self.both_right + self.champion_only_right) / self.reviews


def paired_counts(candidate: pd.DataFrame, champion: pd.DataFrame) -> PairedCounts | None:
    """The 2 x 2 table of right and wrong, review by review; None when the two files are not the same
    reviews in the same order (their labels or lengths differ: other data params, another split)."""
    same = len(candidate) == len(champion) and len(candidate) > 0
    if not same or not all((candidate[c].to_numpy() == champion[c].to_numpy()).all() for c in ("label", "tokens")):
        return None
    label = candidate["label"].to_numpy()
    a = (candidate["probability"].to_numpy() >= 0.5).astype(int) == label
    b = (champion["probability"].to_numpy() >= 0.5).astype(int) == label
    return PairedCounts(len(label), int((a & b).sum()), int((a & ~b).sum()), int((~a & b).sum()), int((~a & ~b).sum()))


def gate(counts: PairedCounts, alpha: float) -> dict:
    """The test as champion.json records it; ``passed``: the candidate gets more reviews right and the
    p-value is below ``alpha`` (two-sided, so in effect a one-sided test at ``alpha / 2``)."""
    p = mcnemar_p(counts.candidate_only_right, counts.champion_only_right)
    better = counts.candidate_only_right > counts.champion_only_right
    return {
        "test": TEST,
        "alpha": alpha,
        **asdict(counts),
        "candidate_accuracy": round(counts.candidate_accuracy, 6),
        "champion_accuracy": round(counts.champion_accuracy, 6),
        "p_value": p,
        "passed": bool(better and p < alpha),
    }
