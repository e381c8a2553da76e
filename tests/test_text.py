"""imdb_rnn.text: the tokenizer, vocabulary, ids and padding (checked against Keras' pad_sequences)."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest

from imdb_rnn.config import DataParams
from imdb_rnn.text import (
    INDEX_FROM,
    OOV_ID,
    PAD_ID,
    START_ID,
    build_vocab,
    encode_batch,
    encode_texts,
    id_dtype,
    limit_vocabulary,
    pad_flat,
    tokenize_batch,
    within_vocabulary,
)
from support.corpus import default_reviews
from support.references import pad, tokenize

MODES = [(p, t) for p in ("pre", "post") for t in ("pre", "post")]
MODE_IDS = [f"pad-{p}-trunc-{t}" for p, t in MODES]
SMALL = DataParams(max_features=200, maxlen=40)


@pytest.fixture(scope="module")
def pad_sequences():
    keras = pytest.importorskip("keras")
    return keras.utils.pad_sequences


# --- tokenizer --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text, tokens",
    [
        ("Hello WORLD", ["hello", "world"]),
        ("one<br />two<br/>three<BR>four<br >five<br /><br />six", ["one", "two", "three", "four", "five", "six"]),
        ("The end.<br /><br />Next", ["the", "end", "next"]),
        ("Don't", ["don't"]),
        ("'quoted' and ''doubly''", ["quoted", "and", "doubly"]),
        ("rock'n'roll isn't", ["rock'n'roll", "isn't"]),
        ("' '' '''", []),
        ('good,bad.ugly!yes?no;(maybe)-[so]"ok"', ["good", "bad", "ugly", "yes", "no", "maybe", "so", "ok"]),
        ("snake_case_word", ["snake", "case", "word"]),
        ("Café naïve ÜBER Ωmega Фильм 映画", ["café", "naïve", "über", "ωmega", "фильм", "映画"]),
        ("10/10 in 1999, 3.5 stars 2nd", ["10", "10", "in", "1999", "3", "5", "stars", "2nd"]),
        ("tabs\tand\nnewlines  spaces", ["tabs", "and", "newlines", "spaces"]),
        ("", []),
        ("   !!! ... ", []),
    ],
    ids=[
        "lower",
        "br-forms",
        "br-joins",
        "apostrophe-inner",
        "apostrophe-outer",
        "apostrophe-multi",
        "apostrophes-only",
        "punctuation",
        "underscore",
        "unicode",
        "digits",
        "whitespace",
        "empty",
        "no-words",
    ],
)
def test_tokenize(text: str, tokens: list[str]):
    assert tokenize(text) == tokens


def test_tokenize_batch_matches_tokenize_per_review():
    texts = [t for texts in default_reviews(per_class=6).values() for t in texts]
    texts[3:3] = ["", "Don't stop<br />", "!!!", "café 42"]
    expected = [tokenize(t) for t in texts]
    for workers in (1, 2, 3, 7):
        flat, lengths = tokenize_batch(texts, workers=workers)
        assert lengths.tolist() == [len(e) for e in expected]
        assert flat.to_pylist() == [tok for e in expected for tok in e]
    flat, lengths = tokenize_batch([])
    assert len(flat) == 0
    assert len(lengths) == 0


# --- vocabulary and ids -------------------------------------------------------------------

VOCAB_TEXTS = ["b b b a a c c d e", "E d! <br />zebra", "c"]  # b3 c3 d2 e2 a2 zebra1


def test_build_vocab_most_frequent_first_ties_alphabetical():
    flat, _ = tokenize_batch(VOCAB_TEXTS)
    assert build_vocab(flat, 100) == ["b", "c", "a", "d", "e", "zebra"]
    assert build_vocab(flat, 3 + 4) == ["b", "c", "a", "d"]  # capped at max_features - 3
    assert build_vocab(flat, 3) == []


def test_build_vocab_matches_counter_reference():
    texts = [t for texts in default_reviews(per_class=10).values() for t in texts]
    flat, _ = tokenize_batch(texts)
    counts = Counter(flat.to_pylist())
    ranked = [w for w, _ in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))]
    for max_features in (3, 4, 10, 25, 1000):
        assert build_vocab(flat, max_features) == ranked[: max_features - INDEX_FROM]


def _reference_ids(text: str, vocab: list[str]) -> list[int]:
    index = {w: i + INDEX_FROM for i, w in enumerate(vocab)}
    return [START_ID] + [index.get(t, OOV_ID) for t in tokenize(text)]


def test_encode_batch_start_oov_and_word_ids():
    vocab = ["b", "c", "a"]
    flat, lengths = tokenize_batch(["a z b", "", "c c unknown"])
    ids, id_lengths = encode_batch(flat, lengths, vocab)
    assert id_lengths.tolist() == [4, 1, 4]
    assert ids.tolist() == [1, 5, 2, 3, 1, 1, 4, 4, 2]
    assert ids.min() >= START_ID
    assert ids.max() < len(vocab) + INDEX_FROM


def test_encode_texts_matches_keras_padding(pad_sequences):
    vocab = ["the", "movie", "great", "bad", "plot"]  # max_features = 8
    maxlen = 6
    texts = [
        "",  # start id only
        "great movie",  # shorter than maxlen
        "the plot was bad",  # shorter, one OOV
        "the movie plot great bad",  # start + 5 tokens == maxlen
        "the movie was great but the plot was bad bad",  # longer than maxlen
        "zzz yyy xxx www vvv uuu ttt",  # longer, all OOV
    ]
    expected_ids = [_reference_ids(t, vocab) for t in texts]
    assert [len(e) for e in expected_ids] == [1, 3, 5, 6, 11, 8]
    for padding, truncating in MODES:
        x = encode_texts(texts, vocab, maxlen, padding, truncating)
        expected = pad_sequences(expected_ids, maxlen=maxlen, padding=padding, truncating=truncating)
        assert x.shape == (len(texts), maxlen)
        assert x.dtype == np.uint16
        np.testing.assert_array_equal(x, expected, err_msg=f"{padding}/{truncating}")
        assert x.max() < len(vocab) + INDEX_FROM


def test_encode_texts_ids_below_max_features_on_corpus():
    texts = [t for texts in default_reviews().values() for t in texts]
    for max_features in (4, 10, 30):
        vocab = build_vocab(tokenize_batch(texts)[0], max_features)
        x = encode_texts(texts, vocab, 50, "pre", "post")
        assert x.max() < max_features
        assert ((x == START_ID).sum(axis=1) == 1).all()  # truncating=post keeps the start id


def test_a_limited_vocabulary_encodes_as_the_smaller_vocabulary():
    texts = [t for texts in default_reviews().values() for t in texts]
    flat = tokenize_batch(texts)[0]
    large = encode_texts(texts, build_vocab(flat, 60), 50, "pre", "pre")
    for max_features in (4, 10, 30):
        small = encode_texts(texts, build_vocab(flat, max_features), 50, "pre", "pre")
        assert (large >= max_features).any()  # the larger vocabulary knows words the smaller does not
        np.testing.assert_array_equal(limit_vocabulary(large, max_features), small)
        arrays = within_vocabulary({"x": large, "y": np.arange(len(large))}, max_features)
        np.testing.assert_array_equal(arrays["x"], small)
        assert arrays["x"].dtype == large.dtype
        assert arrays["y"] is not None


def test_id_dtype():
    assert id_dtype(10000) == np.uint16
    assert id_dtype(65536) == np.uint16
    assert id_dtype(65537) == np.int32


# --- padding against keras.utils.pad_sequences -----------------------------------------------


def _random_sequences(seed: int, n: int = 40, longest: int = 30) -> list[list[int]]:
    rng = np.random.default_rng(seed)
    return [rng.integers(1, 1000, size=int(rng.integers(0, longest + 1))).tolist() for _ in range(n)]


@pytest.mark.parametrize("padding, truncating", MODES, ids=MODE_IDS)
@pytest.mark.parametrize("maxlen", [1, 7, 30, 45])
def test_pad_matches_keras(pad_sequences, padding: str, truncating: str, maxlen: int):
    sequences = _random_sequences(seed=maxlen) + [[], [5] * maxlen, [6] * (maxlen + 1)]
    expected = pad_sequences(sequences, maxlen=maxlen, padding=padding, truncating=truncating)
    got = pad(sequences, maxlen, padding, truncating)
    assert got.dtype == np.int32
    np.testing.assert_array_equal(got, expected)

    lengths = np.array([len(s) for s in sequences], dtype=np.int64)
    flat = np.array([v for s in sequences for v in s], dtype=np.int32)
    for dtype in (np.int32, np.uint16):
        out = pad_flat(flat, lengths, maxlen, padding, truncating, dtype=dtype)
        assert out.dtype == dtype
        np.testing.assert_array_equal(out, expected)


def test_pad_all_empty_sequences(pad_sequences):
    for padding, truncating in MODES:
        got = pad([[], []], 4, padding, truncating)
        np.testing.assert_array_equal(got, pad_sequences([[], []], maxlen=4, padding=padding, truncating=truncating))
        assert (got == PAD_ID).all()


@pytest.mark.parametrize(
    "padding, truncating",
    MODES,
    ids=MODE_IDS,
)
def test_pad_and_encode_no_sequences(pad_sequences, padding: str, truncating: str):
    expected = pad_sequences([], maxlen=5, padding=padding, truncating=truncating)
    assert expected.shape == (0, 5)
    assert pad([], 5, padding, truncating).shape == (0, 5)
    assert encode_texts([], ["a"], 5, padding, truncating).shape == (0, 5)


def test_encode_batch_no_reviews():
    ids, lengths = encode_batch(*tokenize_batch([]), ["a"])
    assert len(lengths) == 0
    assert len(ids) == 0


def test_pad_rejects_unknown_mode():
    with pytest.raises(ValueError, match="pre"):
        pad([[1, 2]], 3, padding="middle")
    with pytest.raises(ValueError, match="pre"):
        pad([[1, 2]], 3, truncating="end")
