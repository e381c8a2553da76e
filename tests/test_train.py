"""Training: seeds in one process train exactly as alone and reuse the compiled step; early
stopping; length buckets; the selected seed."""

import random

import numpy as np
import pytest

from imdb_rnn.batches import length_buckets
from imdb_rnn.checkpoints import CheckpointStore, SeedState
from imdb_rnn.config import parse_params
from imdb_rnn.fitting import FitResult, SeedTrainer, select_seed

RNG = np.random.default_rng(0)


def tiny_data(n: int, maxlen: int = 12) -> dict:
    """Learnable reviews: id 3 ("good") in positives, id 4 ("bad") in negatives, pre-padded."""
    x = np.zeros((n, maxlen), dtype=np.uint16)
    y = (np.arange(n) % 2).astype(np.uint8)
    for row in range(n):
        length = int(RNG.integers(2, maxlen + 1))
        words = RNG.integers(5, 30, size=length)
        words[RNG.integers(0, length)] = 3 if y[row] else 4
        x[row, maxlen - length :] = words
    return {"x": x, "y": y}


TRAIN, VAL = tiny_data(96), tiny_data(32)
BUCKETED_DROPOUT = {"mask_padding": True, "dropout": 0.3, "spatial_dropout": 0.3, "bidirectional": True}


def params_with(train: dict, model: dict | None = None):
    return parse_params(
        {
            "data": {"max_features": 30, "maxlen": 12},
            "train": {"epochs": 3, "batch_size": 16, **train},
            "models": {"m": {"embedding_dim": 4, "units": 4, **(model or {})}},
        }
    )


def curves(result: FitResult) -> list[tuple]:
    return [(row["loss"], row["accuracy"], row["val_loss"], row["val_accuracy"]) for row in result.history]


@pytest.mark.parametrize(
    "train, model",
    [({"unroll": True}, {}), ({"unroll": False, "bucketing": True}, {"mask_padding": True})],
    ids=["unrolled", "bucketed-masked"],
)
def test_seeds_in_one_process_train_as_they_would_alone(train, model):
    params = params_with(train, model)
    shared = SeedTrainer("m", params)
    first = shared.fit_seed(7, TRAIN, VAL)
    step = shared.model.train_function
    second = shared.fit_seed(8, TRAIN, VAL)
    assert shared.model.train_function is step  # the compiled training step was reused
    alone = SeedTrainer("m", params).fit_seed(8, TRAIN, VAL)
    assert curves(second) == curves(alone)  # bit for bit: same start, same batches, same updates
    assert curves(first) != curves(second)


@pytest.mark.parametrize(
    "train, model",
    [({"unroll": True}, {}), ({"unroll": False, "bucketing": True}, {"mask_padding": True})],
    ids=["unrolled", "bucketed-masked"],
)
def test_the_training_step_is_traced_once(monkeypatch, train, model):
    """Tracing the step is a large part of a first epoch (an unrolled stack's 500 steps): a variant's seeds
    and epochs trace it once (on buckets, for any width). A metric made inside that trace (Keras makes
    ``metrics=["accuracy"]``'s there) would make TensorFlow trace it all again."""
    import keras

    traced = []
    step = keras.Model.train_step
    monkeypatch.setattr(keras.Model, "train_step", lambda self, data: traced.append(1) or step(self, data))
    trainer = SeedTrainer("m", params_with({**train, "epochs": 2}, model))
    for seed in (7, 8):
        assert len(trainer.fit_seed(seed, TRAIN, VAL).history) == 2
    assert len(traced) == 1


@pytest.mark.parametrize(
    "train, model",
    [
        ({"unroll": True}, {"dropout": 0.3}),
        ({"unroll": False, "bucketing": True}, BUCKETED_DROPOUT),
        ({"unroll": False, "bucketing": True}, {**BUCKETED_DROPOUT, "cell": "gru", "bigram_buckets": 40}),
        ({"unroll": True}, {"mask_padding": True, "bigram_buckets": 40, "serve": "ensemble"}),
    ],
    ids=["unrolled", "bucketed-dropout-bidirectional", "bucketed-gru-pairs", "unrolled-pairs"],
)
def test_a_seed_resumed_from_its_checkpoint_in_a_new_session_trains_as_uninterrupted(train, model, tmp_path):
    """The checkpoint holds all the state training reads (no global RNG): epochs 3-4 of a fresh
    model restored after epoch 2 equal the uninterrupted seed's."""
    import keras

    params = params_with({**train, "epochs": 4}, model)
    store = CheckpointStore(tmp_path, "m", {"data": "tiny"})
    store.open()

    def after_epoch(state: SeedState) -> None:
        if state.meta["epochs_done"] == 2:
            store.save_seed(42, state)

    uninterrupted = SeedTrainer("m", params).fit_seed(42, TRAIN, VAL, on_checkpoint=after_epoch)
    keras.backend.clear_session()
    random.seed(0)  # a new process's global RNGs are anywhere
    np.random.seed(0)
    resumed = SeedTrainer("m", params).fit_seed(42, TRAIN, VAL, resume=store.load_seed(42))
    assert curves(resumed) == curves(uninterrupted)


def test_early_stopping_keeps_the_best_epoch():
    # a learning rate too small to change anything: validation accuracy never improves after epoch 1
    result = SeedTrainer(
        "m", params_with({"epochs": 6, "early_stopping_patience": 2, "learning_rate": 1e-12})
    ).fit_seed(1, TRAIN, VAL)
    assert [row["epoch"] for row in result.history] == [1, 2, 3]
    assert result.best_epoch == 1


def test_length_buckets_cut_each_batch_to_its_longest_review():
    lengths = (TRAIN["x"] != 0).sum(axis=1)
    buckets = length_buckets(TRAIN["x"], TRAIN["y"], 16, "pre", seed=3)
    epochs = []
    for _ in range(2):
        seen, tokens, reviews = [], 0, 0
        for i in range(len(buckets)):
            x, y = buckets[i]
            assert x.dtype == np.int32 and y.dtype == np.float32 and len(x) == len(y) <= 16
            assert (x[:, 0] != 0).any()  # cut to the longest review in the batch: no all-padding column
            seen.append(x.shape[1])
            tokens, reviews = tokens + int((x != 0).sum()), reviews + len(y)
        assert (tokens, reviews) == (int(lengths.sum()), len(TRAIN["y"]))  # every review, whole, once
        epochs.append(seen)
        buckets.on_epoch_end()
    assert max(max(e) for e in epochs) <= lengths.max() and epochs[0] != epochs[1]  # reshuffled
    validation = length_buckets(VAL["x"], VAL["y"], 8, "pre", seed=None)
    widths = [validation[i][0].shape[1] for i in range(len(validation))]
    assert widths == sorted(widths)  # validation: in length order


def test_keras_sees_varying_widths_even_when_most_reviews_are_full_length():
    """Keras fixes the input shape from the first two batches: they must differ in width when any do."""
    x = np.ones((64, 12), dtype=np.uint16)
    x[::4, :6] = 0  # 16 short reviews (2 batches' worth) among 48 full-length ones
    y = (np.arange(64) % 2).astype(np.uint8)
    for seed in (1, 2, 3, None):
        buckets = length_buckets(x, y, 8, "pre", seed)
        assert sorted({buckets[i][0].shape[1] for i in range(len(buckets))}) == [6, 12]
        assert buckets[0][0].shape[1] != buckets[1][0].shape[1]
    params = params_with({"unroll": False, "bucketing": True, "epochs": 2, "batch_size": 8}, {"mask_padding": True})
    trainer = SeedTrainer("m", params)
    for seed in (1, 2):  # a new dataset per seed: both train
        assert len(trainer.fit_seed(seed, {"x": x, "y": y}, {"x": x[:16], "y": y[:16]}).history) == 2


@pytest.mark.parametrize("short", ["train", "val"])
def test_a_split_of_one_short_batch_trains_with_buckets(short):
    """A split that is one batch narrower than maxlen (a tiny corpus): Keras traces that one width, which the
    model, built for maxlen, must accept."""
    data = {"train": {k: v[:16].copy() for k, v in TRAIN.items()}, "val": {k: v[:8].copy() for k, v in VAL.items()}}
    data[short]["x"][:, :6] = 0
    params = params_with({"unroll": False, "bucketing": True, "epochs": 2}, BUCKETED_DROPOUT)
    assert len(SeedTrainer("m", params).fit_seed(1, data["train"], data["val"]).history) == 2


def test_select_seed_takes_the_best_validation_accuracy():
    results = [
        FitResult(seed=1, best_val_accuracy=0.85),
        FitResult(seed=2, best_val_accuracy=0.87),
        FitResult(seed=3, best_val_accuracy=0.87),
    ]
    assert select_seed(results).seed == 2  # ties: the smaller seed


def test_a_diverged_seed_stops_keeps_its_best_finite_epoch_and_the_next_seed_trains_as_alone(monkeypatch):
    """NaN weights after batch 2 of epoch 3 (a real non-finite loss follows): the seed stops there, ends with
    its best finite epoch's weights, and the next seed on the same compiled model trains exactly as alone."""
    from imdb_rnn.faults import FAULT_ENV

    params = params_with({"epochs": 4})
    monkeypatch.setenv(FAULT_ENV, "7:3:2")
    trainer = SeedTrainer("m", params)
    diverged = trainer.fit_seed(7, TRAIN, VAL)
    assert (diverged.diverged.epoch, diverged.diverged.batch) == (3, 3)  # the loss after the NaN update
    assert "nan" in diverged.diverged.what
    assert [row["epoch"] for row in diverged.history] == [1, 2]
    assert diverged.has_model
    assert diverged.kept_epoch == diverged.best_epoch
    assert all(np.isfinite(w).all() for w in trainer.model.get_weights())
    kept = trainer.model.predict(VAL["x"].astype(np.int32), verbose=0)
    assert np.isfinite(kept).all()
    after = trainer.fit_seed(8, TRAIN, VAL)
    monkeypatch.delenv(FAULT_ENV)
    alone = SeedTrainer("m", params).fit_seed(8, TRAIN, VAL)
    assert after.diverged is None
    assert curves(after) == curves(alone)


def test_a_seed_that_diverges_in_its_first_epoch_has_no_model(monkeypatch):
    from imdb_rnn.faults import FAULT_ENV

    monkeypatch.setenv(FAULT_ENV, "7:1:1")
    result = SeedTrainer("m", params_with({"epochs": 2})).fit_seed(7, TRAIN, VAL)
    assert result.diverged.epoch == 1
    assert not result.has_model
    assert result.history == []


@pytest.mark.parametrize("finite, total, fails", [(1, 3, True), (2, 3, False), (0, 1, True), (1, 1, False)])
def test_a_variant_needs_two_finite_seeds_or_its_only_one(finite, total, fails):
    from imdb_rnn.errors import DivergedError
    from imdb_rnn.fitting import Divergence, require_finite_seeds

    results = [
        FitResult(
            seed=s,
            history=[{"epoch": 1}] if s < finite else [],
            diverged=None if s < finite else Divergence(1, 3, "loss is nan"),
        )
        for s in range(total)
    ]
    if fails:
        with pytest.raises(DivergedError, match=r"training diverged: .*nan.*train\.learning_rate"):
            require_finite_seeds(results)
    else:
        assert [r.seed for r in require_finite_seeds(results)] == list(range(finite))
