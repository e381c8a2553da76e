"""Scoring the test and validation sets: every seed of a variant through one traced predict function."""

from __future__ import annotations

import keras
import numpy as np

from imdb_rnn.config import ModelParams
from imdb_rnn.evaluate import predict_probabilities, with_weights_of
from imdb_rnn.model import build_model

MAXLEN = 24


def _seed_model(seed: int, params: ModelParams):
    keras.utils.set_random_seed(seed)
    model = build_model("v", params, MAXLEN)
    model.compile(loss="binary_crossentropy")
    return model


def test_every_seed_scores_through_one_trace_with_its_own_weights():
    params = ModelParams(
        max_features=50, embedding_dim=4, units=4, mask_padding=True, pooling="max_mean", bigram_buckets=40
    )
    rng = np.random.default_rng(0)
    x = np.zeros((1100, MAXLEN), dtype=np.int32)  # not a multiple of the batch: the last batch is padded up
    for row in range(len(x)):
        length = int(rng.integers(1, MAXLEN + 1))  # reviews of every length, pre-padded
        x[row, MAXLEN - length :] = rng.integers(3, 50, size=length)
    scorer = first = None
    for seed in (1, 2, 3):
        model = _seed_model(seed, params)
        expected = np.asarray(model(x, training=False)).ravel()  # the seed's own model, eagerly
        scorer = with_weights_of(scorer, model)
        first = first or scorer
        prob = predict_probabilities(scorer, x, batch_size=512)
        assert prob.shape == (len(x),)
        np.testing.assert_allclose(prob, expected, rtol=1e-5, atol=1e-6)
        val = x[:300]  # the validation split too (another row count, the same padded width)
        np.testing.assert_allclose(predict_probabilities(scorer, val), expected[:300], rtol=1e-5, atol=1e-6)
    assert scorer is first  # one model object, the others' weights loaded into it
    assert scorer.predict_function.experimental_get_tracing_count() == 1
