"""Length bucketing: batches of reviews of similar length, each cut to its own longest review.

Reviews are padded to ``maxlen`` (500) but the median one has about 175 tokens: a model that masks
the padding reads the same review from a shorter batch, so cutting each batch to its longest
review turns masking into less work, in training and in prediction alike.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    import keras


def length_buckets(
    x: np.ndarray, y: np.ndarray, batch_size: int, padding: str, seed: int | tuple[int, ...] | None
) -> keras.utils.PyDataset:
    """A ``keras.utils.PyDataset`` of batches of similar-length reviews, each cut to its longest review.

    With ``seed``, every epoch shuffles the reviews, sorts each pool of 32 batches by length and
    shuffles the batch order (similar lengths together, yet a new mix each epoch); without, the
    batches go in length order (validation). Padding id 0 never occurs inside a review, so a
    review's length is its count of non-zero ids, kept at the end (``pre``) or start (``post``).
    """
    import keras

    class LengthBuckets(keras.utils.PyDataset):
        def __init__(self) -> None:
            super().__init__()
            self.lengths = np.maximum((x != 0).sum(axis=1), 1)
            self.rng = None if seed is None else np.random.default_rng(seed)
            self.batches = self.plan()

        def plan(self) -> list[np.ndarray]:
            if self.rng is None:
                order = np.argsort(self.lengths, kind="stable")
                return self.widths_vary_first([order[i : i + batch_size] for i in range(0, len(order), batch_size)])
            order, pool, batches = self.rng.permutation(len(y)), batch_size * 32, []
            for start in range(0, len(order), pool):
                part = order[start : start + pool]
                part = part[np.argsort(self.lengths[part], kind="stable")]
                batches += [part[i : i + batch_size] for i in range(0, len(part), batch_size)]
            return self.widths_vary_first([batches[i] for i in self.rng.permutation(len(batches))])

        def widths_vary_first(self, batches: list[np.ndarray]) -> list[np.ndarray]:
            """Keras infers the input shape from the first two batches: with two of the same width it
            would fix the time axis to that width and refuse the others, so the second batch is
            swapped with the first one of another width (if there is one)."""
            width = [int(self.lengths[b].max()) for b in batches]
            other = next((i for i in range(1, len(batches)) if width[i] != width[0]), None)
            if other is not None and other != 1:
                batches[1], batches[other] = batches[other], batches[1]
            return batches

        def __len__(self) -> int:
            return len(self.batches)

        def __getitem__(self, index: int) -> tuple[np.ndarray, np.ndarray]:
            rows = np.sort(self.batches[index])
            width = int(self.lengths[rows].max())
            cut = x[rows, -width:] if padding == "pre" else x[rows, :width]
            return cut.astype(np.int32), y[rows].astype(np.float32)

        def on_epoch_end(self) -> None:
            if self.rng is not None:
                self.batches = self.plan()

    return LengthBuckets()
