"""Test accuracy by review length: the lesson's point that a SimpleRNN forgets long inputs, measured.

The groups: the quartiles of the token counts of the test reviews that fit in ``data.maxlen``, and
the reviews cut at ``maxlen`` (the model never saw all of them) as a fifth group of their own. They
depend on the test set and ``maxlen`` alone, so every variant's table has the same rows and the
report draws them in one figure. Lengths are counted before truncation: prepare keeps them.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

LENGTH_TABLE = "length.csv"  # in reports/variants/<variant>/: the table the report's length.png draws
QUARTILES = ("q1", "q2", "q3", "q4")
CUT = "cut"
GROUPS = (*QUARTILES, CUT)
COLUMNS = ("group", "label", "tokens_min", "tokens_max", "reviews", "accuracy", "seeds_mean_accuracy")


def review_tokens(split: dict[str, np.ndarray], maxlen: int) -> np.ndarray:
    """Tokens per review before truncation: prepare's ``lengths``; for data prepared before it kept
    them, read off the padded ids (a review that fills ``maxlen`` then counts as cut)."""
    if "lengths" in split:
        return np.asarray(split["lengths"], dtype=np.int64)
    kept = (np.asarray(split["x"]) != 0).sum(axis=1).astype(np.int64)  # the start id and the tokens kept
    return np.where(kept >= maxlen, maxlen, kept - 1)


def length_groups(tokens: np.ndarray, maxlen: int) -> np.ndarray:
    """Each review's group as an index into ``GROUPS``: 0-3 the quartile of its length among the
    reviews that fit (a length at a quartile's upper edge belongs to it), 4 cut (tokens plus the
    start id exceed ``maxlen``)."""
    tokens = np.asarray(tokens, dtype=np.int64)
    cut = tokens + 1 > maxlen
    fits = tokens[~cut]
    edges = np.quantile(fits, [0.25, 0.5, 0.75]) if len(fits) else np.zeros(3)
    return np.where(cut, len(QUARTILES), np.searchsorted(edges, tokens, side="left"))


def accuracy_by_length(
    tokens: np.ndarray, maxlen: int, y: np.ndarray, served: np.ndarray, seeds: list[np.ndarray]
) -> pd.DataFrame:
    """One row per non-empty group: its length range, its reviews, the served model's accuracy and
    the mean over seeds of each seed's accuracy, from positive-class probabilities (0.5 threshold)."""
    group = length_groups(tokens, maxlen)
    y = np.asarray(y).astype(int).ravel()

    def right(prob: np.ndarray) -> np.ndarray:
        return (np.asarray(prob).ravel() >= 0.5).astype(int) == y

    rows = []
    for index, name in enumerate(GROUPS):
        members = group == index
        if not members.any():
            continue
        low, high = int(tokens[members].min()), int(tokens[members].max())
        rows.append(
            {
                "group": name,
                "label": f"cut ({low}+ tokens)" if name == CUT else f"{low}-{high} tokens",
                "tokens_min": low,
                "tokens_max": high,
                "reviews": int(members.sum()),
                "accuracy": round(float(right(served)[members].mean()), 6),
                "seeds_mean_accuracy": round(float(np.mean([right(p)[members].mean() for p in seeds])), 6),
            }
        )
    return pd.DataFrame(rows, columns=list(COLUMNS))
