"""The prepared data as one object: read once by a stage and handed on, never re-read along the way.

``prepare`` writes ``train.npz``, ``val.npz``, ``test.npz`` and ``vocab.json``; a training run needs
the arrays, the vocabulary file (shipped with the raw-text model) and two facts for MLflow's Dataset
record: the folder's hash and what it was made from.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .files import folder_md5, load_npz, read_json
from .text import within_vocabulary

Split = dict[str, np.ndarray]  # "x" (padded ids), "y" (labels), and the split's own extras


@dataclass(frozen=True)
class PreparedData:
    folder: Path
    train: Split
    val: Split
    data_hash: str  # md5 of the folder's files: the MLflow Dataset digest and the runs' data_hash tag
    source: dict  # vocab.json's "source": the archive's md5 and the data params prepare used

    @property
    def vocab_path(self) -> Path:
        return self.folder / "vocab.json"


def load_split(folder: Path, split: str, max_features: int) -> Split:
    """One split's arrays, ids at or above ``max_features`` mapped to the out-of-vocabulary id."""
    return within_vocabulary(load_npz(Path(folder) / f"{split}.npz"), max_features)


def load_training_data(folder: Path, max_features: int) -> PreparedData:
    """What a training run reads: the train and validation splits, the hash and the provenance."""
    folder = Path(folder)
    return PreparedData(
        folder=folder,
        train=load_split(folder, "train", max_features),
        val=load_split(folder, "val", max_features),
        data_hash=folder_md5(folder),
        source=read_json(folder / "vocab.json")["source"],
    )
