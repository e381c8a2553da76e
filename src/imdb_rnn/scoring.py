"""Review text to a positive probability and a label: the one scoring rule of `imdb-rnn predict` and the
served MLflow model, through exactly `prepare`'s preprocessing (``text.encode_texts``).

It imports nothing of this package but ``text``, so it travels with the MLflow model (text_model.py).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from .text import encode_texts, limit_vocabulary

if TYPE_CHECKING:
    import keras

THRESHOLD = 0.5  # a probability at or above it is a positive review
BATCH_SIZE = 512  # reviews per forward pass: bounded memory for large requests


@dataclass(frozen=True)
class Prediction:
    label: str  # "pos" or "neg"
    probability: float  # probability of a positive review
    text: str


def score(texts: list[str], model: keras.Model, vocab: dict[str, Any]) -> list[Prediction]:
    """Label and positive-class probability per review, with the vocabulary and padding `prepare` wrote,
    limited to the words the model's Embedding has.

    ``predict_on_batch``, not ``predict``: Keras' ``predict`` sets up a data pipeline per call, which
    costs far more than scoring one review.
    """
    x = encode_texts(texts, vocab["words"], vocab["maxlen"], vocab["padding"], vocab["truncating"]).astype(np.int32)
    x = limit_vocabulary(x, embedding_rows(model))
    prob = np.concatenate(
        [
            np.asarray(model.predict_on_batch(x[i : i + BATCH_SIZE]), dtype=np.float64).ravel()
            for i in range(0, len(x), BATCH_SIZE)
        ]
    )
    return [Prediction("pos" if p >= THRESHOLD else "neg", float(p), t) for p, t in zip(prob, texts)]


def embedding_rows(model: keras.Model) -> int:
    """The words the model knows: its word Embedding's rows (a variant may use the top of the vocabulary).

    The word Embedding is the one named ``embedding`` (a model with word pairs has a second one), found
    inside nested models too (an ensemble holds one model per seed)."""
    tables = list(_embeddings(model))
    return next((rows for name, rows in tables if name == "embedding"), tables[0][1])


def _embeddings(model: Any):
    for layer in model.layers:
        if hasattr(layer, "input_dim"):
            yield layer.name, int(layer.input_dim)
        elif hasattr(layer, "layers"):
            yield from _embeddings(layer)
