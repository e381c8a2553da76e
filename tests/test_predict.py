"""`imdb-rnn predict`: same preprocessing as `prepare`, clear errors."""

import io
from dataclasses import replace

import numpy as np
import pytest

from imdb_rnn.archive import read_reviews
from imdb_rnn.config import DataParams, ModelParams, parse_params
from imdb_rnn.dataset import prepare_dataset
from imdb_rnn.errors import ConfigError, PredictError
from imdb_rnn.predict import model_path, read_texts
from imdb_rnn.text import INDEX_FROM, encode_texts
from support.commands import free_port, run
from support.shipped import shipped_params_file, shipped_params_raw


def test_predict_preprocessing_equals_prepare(small_archive):
    params = DataParams(max_features=200, maxlen=40)
    prepared = prepare_dataset(small_archive, params)
    test_texts = read_reviews(small_archive)["test"].texts
    ours = encode_texts(test_texts, prepared.vocab, params.maxlen, params.padding, params.truncating)
    np.testing.assert_array_equal(ours, prepared.arrays["test"]["x"])


def test_a_model_of_the_vocabularys_top_words_scores_raw_text(small_archive):
    """A variant with ``max_features`` below the prepared vocabulary's: words beyond its Embedding
    score as out-of-vocabulary, exactly as with a vocabulary of its size."""
    from imdb_rnn.model import build_model
    from imdb_rnn.scoring import score

    prepared = prepare_dataset(small_archive, DataParams(max_features=200, maxlen=40))
    texts = read_reviews(small_archive)["test"].texts
    model = build_model("top", ModelParams(max_features=50, embedding_dim=4, units=3, mask_padding=True))
    settings = {"maxlen": 40, "padding": "pre", "truncating": "pre"}
    full = score(texts, model, {**settings, "words": prepared.vocab})
    top = score(texts, model, {**settings, "words": prepared.vocab[: 50 - INDEX_FROM]})
    assert [p.probability for p in full] == [p.probability for p in top]


def test_raw_text_with_word_pairs_and_an_ensemble_scores_as_the_model_on_prepares_ids(small_archive):
    """The pairs are computed inside the model from the ids, so scoring raw text applies them exactly as
    training saw them; an ensemble of seeds is one model to score the same way."""
    import keras

    from imdb_rnn.model import build_model, served_model
    from imdb_rnn.scoring import score
    from imdb_rnn.text import limit_vocabulary

    prepared = prepare_dataset(small_archive, DataParams(max_features=200, maxlen=40))
    texts = read_reviews(small_archive)["test"].texts
    vocab = {"maxlen": 40, "padding": "pre", "truncating": "pre", "words": prepared.vocab}
    params = ModelParams(max_features=150, embedding_dim=4, units=3, mask_padding=True, bigram_buckets=301)
    seeds = {}
    for seed in (1, 2):
        keras.utils.set_random_seed(seed)
        seeds[seed] = build_model("pairs", params, 40)
    ensemble = served_model("pairs", replace(params, serve="ensemble"), seeds, 1)
    ids = limit_vocabulary(prepared.arrays["test"]["x"], 150).astype(np.int32)
    for model in (seeds[1], ensemble):
        scored = [p.probability for p in score(texts, model, vocab)]
        np.testing.assert_allclose(scored, np.asarray(model.predict_on_batch(ids)).ravel(), rtol=1e-6)
    expected = (np.asarray(seeds[1](ids)) + np.asarray(seeds[2](ids))).ravel() / 2
    np.testing.assert_allclose([p.probability for p in score(texts, ensemble, vocab)], expected, rtol=1e-5)


class FakeStdin(io.StringIO):
    def __init__(self, text="", tty=False):
        super().__init__(text)
        self._tty = tty

    def isatty(self):
        return self._tty


def test_read_texts_from_args_file_and_stdin(tmp_path):
    assert read_texts(["Great film.", "  "], None, FakeStdin()) == ["Great film."]
    reviews = tmp_path / "reviews.txt"
    reviews.write_text("first review\n\nsecond review\n", encoding="utf-8")
    assert read_texts([], str(reviews), FakeStdin()) == ["first review", "second review"]
    assert read_texts([], None, FakeStdin("piped one\npiped two\n")) == ["piped one", "piped two"]
    assert read_texts([], "-", FakeStdin("dash\n")) == ["dash"]


@pytest.mark.parametrize("stdin", [FakeStdin("", tty=True), FakeStdin("\n  \n")])
def test_empty_input_is_an_error(stdin):
    with pytest.raises(PredictError, match="no review text"):
        read_texts([], None, stdin)


def test_unknown_and_untrained_variants(tmp_path):
    params = parse_params(shipped_params_raw())
    with pytest.raises(ConfigError) as err:
        model_path(params, "nope", tmp_path)
    assert "simple_rnn, stacked_rnn" in str(err.value)
    with pytest.raises(PredictError, match=r"dvc repro train@stacked_rnn"):
        model_path(params, "stacked_rnn", tmp_path)


def test_cli_errors_are_one_line_and_exit_1(tmp_path):
    shipped_params_file(tmp_path)
    known = ", ".join(sorted(parse_params(shipped_params_raw()).models))
    cases = {
        ("--model", "nope", "text"): f"known variants are {known}",
        ("--model", "simple_rnn", "text"): "dvc repro train@simple_rnn",
        ("--model", "simple_rnn"): "no review text",
        ("--model", "s3://bucket/model", "text"): "not a variant name nor a model URI; give a variant or models:/",
        ("--model", "models:/imdb-rnn-sentiment@champion", "text"): "no MLflow store at",
    }
    unreachable = f"http://127.0.0.1:{free_port()}"
    for args, expected, env in [
        *((args, expected, None) for args, expected in cases.items()),
        (("--model", "models:/imdb-rnn-sentiment@champion", "text"), unreachable, {"MLFLOW_TRACKING_URI": unreachable}),
    ]:
        proc = run(["imdb-rnn", "predict", "--project", tmp_path, *args], tmp_path, env=env, check=False)
        assert proc.returncode == 1, proc.stderr
        assert proc.stderr.count("\n") == 1
        assert proc.stderr.startswith("error: ")
        assert expected in proc.stderr
