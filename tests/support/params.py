"""Tiny params for test pipelines, and writing params files (whole, or merged into the repository's)."""

from __future__ import annotations

import copy
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

from support.shipped import shipped_params_raw

# Complete tiny params with one variant (write a whole file with it: write_params deep-merges,
# so it cannot remove the repository's other variants).
ONE_VARIANT = {
    "data": {"max_features": 200, "maxlen": 40, "val_split": 0.2, "padding": "pre", "truncating": "pre", "seed": 42},
    "train": {
        "epochs": 2,
        "batch_size": 32,
        "optimizer": "rmsprop",
        "learning_rate": 0.001,
        "seeds": [42],
        "restore_best": True,
        "backend": "tensorflow",
        "unroll": True,
        "deterministic": True,
    },
    "models": {
        "simple_rnn": {
            "max_features": 200,
            "embedding_dim": 8,
            "units": 8,
            "layers": 1,
            "dropout": 0.0,
            "recurrent_dropout": 0.0,
        }
    },
    "mlflow": {"experiment": "imdb-rnn"},
}


def deep_merge(base: Any, overrides: Any) -> Any:
    """``overrides`` merged into a copy of ``base``: mappings recursively, anything else replaced."""
    if not (isinstance(base, dict) and isinstance(overrides, dict)):
        return copy.deepcopy(overrides)
    merged = copy.deepcopy(base)
    for key, value in overrides.items():
        merged[key] = deep_merge(merged[key], value) if key in merged else copy.deepcopy(value)
    return merged


def write_params(path: str | os.PathLike, overrides: Mapping[str, Any], only_their_variants: bool = False) -> dict:
    """Deep-merge ``overrides`` into the params file at ``path`` (rewritten in place); return the result.

    A missing file starts from the committed ``params.yaml`` (whatever the workspace's says). Comments are not kept.
    ``only_their_variants``: the variants are exactly those of ``overrides`` (the others are dropped).
    """
    path = Path(path)
    base = yaml.safe_load(path.read_text(encoding="utf-8")) if path.is_file() else shipped_params_raw()
    params = deep_merge(base or {}, dict(overrides))
    if only_their_variants:
        params["models"] = {name: params["models"][name] for name in overrides["models"]}
    path.write_text(yaml.safe_dump(params, sort_keys=False), encoding="utf-8")
    return params


# Two tiny variants (the lesson's two), deep-merged into the repository's params by write_params.
TINY = {
    "data": {"max_features": 200, "maxlen": 40},
    "train": {"epochs": 2, "batch_size": 32, "seeds": [42, 43]},
    "models": {
        "simple_rnn": {"max_features": 200, "embedding_dim": 8, "units": 8, "layers": 1},
        "stacked_rnn": {"max_features": 150, "embedding_dim": 8, "units": 8, "layers": 2},  # the top 150 words
    },
}


def write_yaml(path: Path, data: dict) -> None:
    """Write a whole params file (write_params merges instead)."""
    Path(path).write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
