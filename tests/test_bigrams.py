"""Word pairs in the input: the hash (exact, in range, 0 only at padding, no int32 overflow), the same ids
inside the model, a review's ids independent of its batch, and pairs that reach the head only through
the recurrence."""

from __future__ import annotations

import sys
from dataclasses import replace

import keras
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from keras import ops

from imdb_rnn.bigrams import pair_ids
from imdb_rnn.config import BIGRAM_BUCKETS_MAX, ModelParams, TrainParams
from imdb_rnn.model import build_model, compile_model, count_params, inference_copy
from support.commands import run

VOCABULARY_MAX = 1_000_000  # config's bound on max_features


def exact(ids: np.ndarray, max_features: int, buckets: int) -> np.ndarray:
    """The documented formula in Python integers (no overflow possible): the reference."""
    out = np.zeros(ids.shape, dtype=object)
    for r, row in enumerate(ids.tolist()):
        for t, word in enumerate(row):
            prev = row[t - 1] if t else 0
            out[r, t] = 0 if word == 0 else (prev * max_features + word) % (buckets - 1) + 1
    return out.astype(np.int64)


@st.composite
def reviews(draw):
    """Pre- or post-padded int32 reviews of ids below a vocabulary up to config's bound."""
    max_features = draw(st.integers(3, VOCABULARY_MAX))
    steps = draw(st.integers(1, 12))
    rows = draw(st.integers(1, 4))
    ids = np.zeros((rows, steps), dtype=np.int32)
    for r in range(rows):
        length = draw(st.integers(0, steps))
        words = draw(st.lists(st.integers(1, max_features - 1), min_size=length, max_size=length))
        if draw(st.booleans()):
            ids[r, steps - length :] = words
        else:
            ids[r, :length] = words
    return ids, max_features


buckets = st.one_of(st.integers(2, 50), st.integers(2, BIGRAM_BUCKETS_MAX), st.just(BIGRAM_BUCKETS_MAX))


@settings(max_examples=300, deadline=None)
@given(review=reviews(), buckets=buckets)
def test_pair_ids_are_the_exact_formula_in_range_and_zero_only_at_padding(review, buckets):
    ids, max_features = review
    got = pair_ids(ids, max_features, buckets)
    assert got.dtype == np.int32  # computed in int32 throughout, as on JAX
    np.testing.assert_array_equal(got, exact(ids, max_features, buckets))  # no int32 overflow anywhere
    assert ((got == 0) == (ids == 0)).all()
    assert ((got[ids != 0] >= 1) & (got[ids != 0] <= buckets - 1)).all()


@settings(max_examples=100, deadline=None)
@given(review=reviews(), buckets=buckets, cut=st.integers(0, 12))
def test_leading_padding_cut_off_changes_no_pair(review, buckets, cut):
    """What length bucketing does to a pre-padded batch: the first kept token pairs with padding either way."""
    ids, max_features = review
    cut = min(cut, int((ids != 0).argmax(axis=1).min()) if (ids != 0).any() else ids.shape[1])
    np.testing.assert_array_equal(
        pair_ids(ids[:, cut:], max_features, buckets), pair_ids(ids, max_features, buckets)[:, cut:]
    )


@settings(max_examples=25, deadline=None)
@given(review=reviews(), buckets=buckets)
def test_the_model_computes_the_same_pairs_with_keras_ops(review, buckets):
    ids, max_features = review
    np.testing.assert_array_equal(
        np.asarray(pair_ids(ops.convert_to_tensor(ids), max_features, buckets, ops)),
        pair_ids(ids, max_features, buckets),
    )


def pre_padded(rows: int = 6, maxlen: int = 10, vocab: int = 40, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    x = np.zeros((rows, maxlen), dtype=np.int32)
    for r in range(rows):
        length = int(rng.integers(1, maxlen - 2))  # every review shorter than maxlen: padding to cut off
        x[r, maxlen - length :] = rng.integers(1, vocab, size=length)
    return x


PAIRED = {
    "masked-bidi-max_mean": ModelParams(
        max_features=40, embedding_dim=5, units=4, mask_padding=True, bidirectional=True, pooling="max_mean",
        bigram_buckets=97,
    ),
    "masked-last-gru": ModelParams(max_features=40, embedding_dim=5, units=4, mask_padding=True, bigram_buckets=31,
                                   cell="gru"),
    "masked-mean-lstm-2": ModelParams(max_features=40, embedding_dim=5, units=3, layers=2, mask_padding=True,
                                      pooling="mean", bigram_buckets=50, cell="lstm", spatial_dropout=0.2),
}  # fmt: skip


@pytest.mark.parametrize("model_params", PAIRED.values(), ids=PAIRED.keys())
def test_a_masked_model_with_pairs_reads_a_review_alike_in_any_batch_width(model_params):
    """Length bucketing cuts the leading padding: the scores stay those of the full-width batch."""
    keras.utils.set_random_seed(2)
    model = build_model("m", model_params)
    x = pre_padded()
    cut = int((x != 0).argmax(axis=1).min())
    np.testing.assert_allclose(model(x[:, cut:]), model(x), rtol=1e-5, atol=1e-6)
    assert count_params(model_params) == model.count_params()


def consumers(model, name: str) -> set[str]:
    """The layers that read ``name``'s output, from the saved configuration (what the file holds)."""
    found = set()
    for layer in model.get_config()["layers"]:
        text = repr(layer.get("inbound_nodes", []))
        if f"'{name}'" in text:
            found.add(layer["name"])
    return found


def test_pairs_join_the_words_before_the_recurrence_and_nowhere_else():
    """Summed with the word vectors into the recurrence's input: a pair table of zeros gives exactly the
    model without pairs, and the sum feeds the first recurrent layer only (no path around it)."""
    with_pairs = PAIRED["masked-bidi-max_mean"]
    keras.utils.set_random_seed(5)
    model = build_model("m", with_pairs, 10)
    assert consumers(model, "pair_embedding") == {"word_and_pair"}
    assert consumers(model, "word_and_pair") == {"bidirectional_0"}
    words_only = build_model("w", replace(with_pairs, bigram_buckets=0), 10)
    pairs = model.get_layer("pair_embedding")
    x = pre_padded(maxlen=10)
    assert not np.allclose(model(x), words_only(x), atol=1e-4)  # the pairs change the scores
    for layer in words_only.layers:
        if layer.weights:
            layer.set_weights(model.get_layer(layer.name).get_weights())
    pairs.set_weights([np.zeros_like(pairs.get_weights()[0])])
    np.testing.assert_allclose(model(x), words_only(x), rtol=1e-6, atol=1e-7)


def test_the_unrolled_training_model_and_its_saved_copy_agree_and_load_without_this_package(tmp_path):
    params = ModelParams(max_features=40, embedding_dim=5, units=4, mask_padding=True, pooling="max", bigram_buckets=64)
    keras.utils.set_random_seed(4)
    trained = build_model("m", params, 10, unroll=True)
    compile_model(trained, TrainParams(learning_rate=0.01))
    x = pre_padded(maxlen=10)
    trained.fit(x, np.arange(len(x)) % 2, epochs=1, verbose=0)
    copy = inference_copy(trained, "m", params)
    np.testing.assert_allclose(copy.predict(x, verbose=0), trained.predict(x, verbose=0), rtol=1e-4, atol=1e-6)
    copy.save(tmp_path / "model.keras")
    np.save(tmp_path / "x.npy", x)
    np.save(tmp_path / "expected.npy", copy.predict(x, verbose=0))
    script = (
        "import sys, numpy as np, keras\n"
        f"m = keras.saving.load_model({str(tmp_path / 'model.keras')!r}, safe_mode=True)\n"
        f"p = m.predict(np.load({str(tmp_path / 'x.npy')!r}), verbose=0)\n"
        f"np.testing.assert_allclose(p, np.load({str(tmp_path / 'expected.npy')!r}), rtol=1e-6)\n"
        "assert not any(name.startswith('imdb_rnn') for name in sys.modules)\n"
    )
    run([sys.executable, "-c", script], tmp_path, env={"KERAS_BACKEND": "tensorflow"})
