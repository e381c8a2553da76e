"""Summary table: parameter counts from settings, best epoch, ranking."""

import os

os.environ.setdefault("KERAS_BACKEND", "tensorflow")

import pandas as pd
import pytest

from imdb_rnn.config import ModelParams
from imdb_rnn.model import build_model
from imdb_rnn.report import count_params, markdown, variant_row


@pytest.mark.parametrize(
    "settings", [ModelParams(), ModelParams(layers=4), ModelParams(embedding_dim=16, units=64, layers=2)]
)
def test_count_params_matches_keras(settings):
    assert count_params(1000, settings) == build_model("m", settings, 1000, 20).count_params()


def test_variant_row_takes_the_best_validation_epoch():
    history = pd.DataFrame({
        "epoch": [1, 2, 3], "loss": [0.6, 0.4, 0.3], "accuracy": [0.6, 0.8, 0.9],
        "val_loss": [0.5, 0.35, 0.4], "val_accuracy": [0.7, 0.86, 0.84], "seconds": [10.0, 9.5, 9.5],
    })
    metrics = {"accuracy": 0.851, "f1": 0.849, "roc_auc": 0.93, "loss": 0.35, "precision": 0.8, "recall": 0.9}
    row = variant_row("simple_rnn", ModelParams(), 10000, history, metrics)
    assert row["best_epoch"] == 2 and row["best_val_accuracy"] == 0.86
    assert row["param_count"] == 322_113 and row["train_seconds"] == 29.0
    assert row["test_accuracy"] == 0.851 and row["units"] == 32
    table = markdown(pd.DataFrame([row]))
    assert table.startswith("# Variant comparison") and "| simple_rnn" in table
