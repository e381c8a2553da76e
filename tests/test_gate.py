"""The champion gate: the exact McNemar test (known values, symmetry, bounds, monotony), the paired
table of two prediction files, and the register stage's decisions against a real MLflow registry."""

from __future__ import annotations

import json
import math
from fractions import Fraction
from pathlib import Path

import keras
import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from imdb_rnn import gate, registry, text_model, tracking
from imdb_rnn.config import ModelParams, parse_params
from imdb_rnn.model import build_model
from imdb_rnn.stats import mcnemar_p

counts = st.integers(0, 400)


def exact_p(b: int, c: int) -> float:
    """Two-sided exact McNemar p in rational arithmetic: twice the smaller binomial tail, at most 1."""
    n = b + c
    tail = sum(Fraction(math.comb(n, k), 2**n) for k in range(min(b, c) + 1))
    return float(min(Fraction(1), 2 * tail))


def test_mcnemar_known_values():
    assert mcnemar_p(6, 0) == pytest.approx(2 / 64)  # six discordant reviews, all one way
    assert mcnemar_p(10, 2) == pytest.approx(2 * (1 + 12 + 66) / 4096)
    assert mcnemar_p(0, 0) == 1.0  # no discordant review: no evidence either way
    assert mcnemar_p(5, 5) == 1.0


@settings(max_examples=50, deadline=None)
@given(
    st.lists(
        st.tuples(st.floats(0.4, 1.0), st.floats(0.4, 1.0)), min_size=1, max_size=6
    )  # per variant: its seeds' mean validation accuracy, its served model's
)
def test_the_candidate_is_the_variant_whose_served_model_is_best_on_validation(accuracies):
    """An ensemble is compared as the ensemble the registry would serve, not as its seeds' mean."""
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        models = Path(tmp) / "models"
        for i in range(len(accuracies)):
            (models / f"v{i}").mkdir(parents=True)
            (models / f"v{i}" / "run.json").write_text(json.dumps({"run_id": f"run{i}"}))
        table = pd.DataFrame(
            {
                "variant": [f"v{i}" for i in range(len(accuracies))],
                "best_val_accuracy": [mean for mean, _ in accuracies],
                "served_val_accuracy": [served for _, served in accuracies],
            }
        )
        table.to_csv(Path(tmp) / "summary.csv", index=False)
        candidate = registry.best_candidate(Path(tmp) / "summary.csv", models)
    best = max(served for _, served in accuracies)
    first = next(i for i, (_, served) in enumerate(accuracies) if served == best)
    assert candidate == registry.Candidate(f"v{first}", f"run{first}", pytest.approx(best))


@settings(max_examples=300, deadline=None)
@given(b=counts, c=counts)
def test_mcnemar_p_is_exact_symmetric_and_a_probability(b, c):
    p = mcnemar_p(b, c)
    assert 0.0 < p <= 1.0
    assert p == mcnemar_p(c, b)
    assert p == pytest.approx(exact_p(b, c), rel=1e-9, abs=1e-300)
    if b == c:
        assert p == 1.0


@settings(max_examples=300, deadline=None)
@given(b=counts, c=counts)
def test_more_reviews_won_one_way_never_raise_p(b, c):
    """One more review that only the leading model gets right is more evidence, never less."""
    if b >= c:
        assert mcnemar_p(b + 1, c) <= mcnemar_p(b, c)


def table(labels, probabilities, tokens=None) -> pd.DataFrame:
    labels = np.asarray(labels)
    tokens = np.arange(len(labels)) + 5 if tokens is None else np.asarray(tokens)
    return pd.DataFrame({"review": np.arange(len(labels)), "label": labels, "tokens": tokens,
                         "probability": np.asarray(probabilities, dtype=float)})  # fmt: skip


outcomes = st.lists(st.tuples(st.integers(0, 1), st.floats(0, 1), st.floats(0, 1)), min_size=1, max_size=200)


@settings(max_examples=200, deadline=None)
@given(rows=outcomes, alpha=st.floats(0.001, 0.5))
def test_the_paired_table_counts_every_review_once_and_the_gate_needs_a_win(rows, alpha):
    labels = np.array([r[0] for r in rows])
    candidate, champion = table(labels, [r[1] for r in rows]), table(labels, [r[2] for r in rows])
    c = gate.paired_counts(candidate, champion)
    assert c is not None
    assert c.both_right + c.candidate_only_right + c.champion_only_right + c.both_wrong == c.reviews == len(rows)
    assert c.candidate_accuracy == pytest.approx(np.mean((candidate["probability"] >= 0.5) == labels))
    swapped = gate.paired_counts(champion, candidate)
    assert swapped.candidate_only_right == c.champion_only_right
    assert swapped.champion_only_right == c.candidate_only_right
    decision = gate.gate(c, alpha)
    assert decision["p_value"] == mcnemar_p(c.candidate_only_right, c.champion_only_right)
    assert decision["passed"] == (c.candidate_only_right > c.champion_only_right and decision["p_value"] < alpha)
    json.dumps(decision)  # champion.json holds it


def test_other_reviews_cannot_be_paired():
    base = table([1, 0, 1], [0.9, 0.1, 0.8])
    assert gate.paired_counts(base, table([1, 0, 0], [0.9, 0.1, 0.8])) is None  # other labels
    assert gate.paired_counts(base, table([1, 0, 1], [0.9, 0.1, 0.8], tokens=[5, 6, 9])) is None  # other lengths
    assert gate.paired_counts(base, table([1, 0], [0.9, 0.1])) is None


def test_predictions_round_trip_exactly(tmp_path):
    prob = np.array([0.49999997, 0.5, 0.123456789123], dtype=np.float64)
    gate.write_predictions(tmp_path / "p.csv", np.array([1, 0, 1]), np.array([3, 4, 5]), prob)
    back = gate.read_predictions(tmp_path / "p.csv")
    assert list(back.columns) == list(gate.COLUMNS)
    np.testing.assert_array_equal(back["probability"].to_numpy(), prob)  # a rounded 0.49999997 would pass 0.5


# --- the register stage's decisions, on a real MLflow store and registry -----------------------------

LABELS = np.array([1, 0] * 30)  # 60 validation reviews


def predictions(wrong: list[int]) -> np.ndarray:
    """Probabilities right on every review but those listed."""
    right = np.where(LABELS == 1, 0.8, 0.2)
    right[wrong] = 1 - right[wrong]
    return right


@pytest.fixture
def store(tmp_path, request):
    import mlflow

    request.addfinalizer(lambda: mlflow.set_tracking_uri(None))
    experiment_id = tracking.setup("imdb-rnn", env={}, root=tmp_path)
    keras.utils.set_random_seed(0)
    build_model("v", ModelParams(max_features=20, embedding_dim=2, units=2)).save(tmp_path / "model.keras")
    (tmp_path / "vocab.json").write_text(json.dumps({"words": [], "maxlen": 5, "padding": "pre", "truncating": "pre"}))
    return tmp_path, experiment_id


def variant_run(store, variant: str, wrong: list[int] | None, tokens: int = 5) -> tuple[str, Path]:
    """A variant run as train and evaluate leave it: its raw-text model, and (None: not) its validation
    predictions, of reviews ``tokens``, ``tokens + 1``, ... long."""
    folder, experiment_id = store
    path = folder / variant / gate.VAL_PREDICTIONS
    path.parent.mkdir(exist_ok=True)
    gate.write_predictions(path, LABELS, np.arange(len(LABELS)) + tokens, predictions(wrong or []))
    with tracking.tracked_run(experiment_id=experiment_id, tags={"variant": variant}) as run:
        text_model.log_text_model(variant, folder / "model.keras", folder / "vocab.json", "tensorflow", [])
        if wrong is not None:
            tracking.log_files([path], gate.VAL_ARTIFACT_FOLDER)
    return run.info.run_id, path


def test_the_champion_moves_only_on_a_significant_paired_win(store):
    params = parse_params({"models": {"v": {}}, "mlflow": {"champion_alpha": 0.05}})
    first_id, first_path = variant_run(store, "first", wrong=list(range(0, 20)))  # 40 of 60 right
    first = registry.register(params, registry.Candidate("first", first_id, 0.70), first_path, env={})
    assert first["promoted"] and first["gate"] == {"test": None, "why": "no champion before", "passed": True}

    # higher mean validation accuracy, right on 3 more reviews and wrong on 1 more: not significant
    close_id, close_path = variant_run(store, "close", wrong=list(range(3, 20)) + [40])
    close = registry.register(params, registry.Candidate("close", close_id, 0.72), close_path, env={})
    assert not close["promoted"]
    assert close["gate"]["test"].startswith("exact McNemar")
    assert (close["gate"]["candidate_only_right"], close["gate"]["champion_only_right"]) == (3, 1)
    assert close["gate"]["p_value"] == pytest.approx(mcnemar_p(3, 1))
    assert close["reason"].startswith("not better than the champion (version 1, first)")
    assert close["champion"]["version"] == 1

    # right on 12 more, wrong on 1 more: p = 0.0034 < 0.05, the alias moves
    clear_id, clear_path = variant_run(store, "clear", wrong=list(range(12, 20)) + [40])
    clear = registry.register(params, registry.Candidate("clear", clear_id, 0.71), clear_path, env={})
    assert clear["promoted"] and clear["gate"]["passed"]
    assert (clear["gate"]["candidate_only_right"], clear["gate"]["champion_only_right"]) == (12, 1)
    assert "better than version 1, which keeps its version" in clear["reason"]
    assert clear["champion"]["version"] == 2


def test_a_champion_without_validation_predictions_is_compared_by_mean_validation_accuracy(store):
    """Registered before the gate logged predictions: no paired test, the earlier rule decides."""
    params = parse_params({"models": {"v": {}}})
    old_id, old_path = variant_run(store, "old", wrong=None)
    assert registry.register(params, registry.Candidate("old", old_id, 0.80), old_path, env={})["promoted"]
    new_id, new_path = variant_run(store, "new", wrong=list(range(30)))
    worse = registry.register(params, registry.Candidate("new", new_id, 0.79), new_path, env={})
    assert not worse["promoted"]
    assert worse["gate"]["test"] is None and "its run has no validation predictions" in worse["gate"]["why"]
    better = registry.register(params, registry.Candidate("new", new_id, 0.81), new_path, env={})
    assert better["promoted"] and better["champion"]["version"] == 2


def test_predictions_of_other_reviews_fall_back_to_mean_validation_accuracy(store):
    """Another validation split (other data params): the reviews cannot be paired, so no test is made."""
    params = parse_params({"models": {"v": {}}})
    old_id, old_path = variant_run(store, "old", wrong=[])
    assert registry.register(params, registry.Candidate("old", old_id, 0.80), old_path, env={})["promoted"]
    new_id, new_path = variant_run(store, "new", wrong=[], tokens=6)
    decision = registry.register(params, registry.Candidate("new", new_id, 0.79), new_path, env={})
    assert not decision["promoted"]
    assert decision["gate"]["test"] is None and "of other reviews" in decision["gate"]["why"]


def test_a_promotion_stays_on_record_only_for_the_version_it_promoted():
    """champion.json's ``promotion``: kept from the previous record while the alias names the version it
    promoted; gone once the alias names another (moved by hand), or when there is no earlier record."""
    promoted = {
        "promoted": True,
        "reason": "promoted: version 2",
        "gate": {"p_value": 0.004},
        "champion": {"version": 2},
    }
    carried = {"version": 2, "reason": "promoted: version 2", "gate": {"p_value": 0.004}}
    assert registry.promotion(promoted, None) == carried
    unchanged = {"promoted": False, "reason": "already the champion", "gate": None, "champion": {"version": 2}}
    assert registry.promotion(unchanged, promoted) == carried
    assert registry.promotion(unchanged, {**unchanged, "promotion": carried}) == carried  # and the next repro too
    moved = {**unchanged, "champion": {"version": 3}}
    assert registry.promotion(moved, {**unchanged, "promotion": carried}) is None
    assert registry.promotion(unchanged, None) is None
    assert registry.promotion({**unchanged, "champion": None}, promoted) is None
