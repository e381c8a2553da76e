"""imdb_rnn.dataset: the validation split, the whole prepare step and its outputs."""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import asdict
from pathlib import Path

import numpy as np
import pytest

from imdb_rnn.archive import read_reviews
from imdb_rnn.config import DataParams
from imdb_rnn.dataset import (
    Prepared,
    movie_split,
    prepare_dataset,
    stratified_split,
    validation_split,
    write_prepared,
)
from imdb_rnn.errors import DataError
from imdb_rnn.files import file_md5, load_npz, read_json
from imdb_rnn.text import (
    INDEX_FROM,
    OOV_ID,
    tokenize_batch,
)
from support.corpus import default_reviews, make_archive, movie_url, review_movies, url_lines

MODES = [(p, t) for p in ("pre", "post") for t in ("pre", "post")]
MODE_IDS = [f"pad-{p}-trunc-{t}" for p, t in MODES]
SMALL = DataParams(max_features=200, maxlen=40)


@pytest.fixture(scope="module")
def prepared_small(small_archive: Path) -> Prepared:
    return prepare_dataset(small_archive, SMALL)


# --- stratified split ---------------------------------------------------------------------


def test_stratified_split_sizes_balance_and_seed():
    labels = np.random.default_rng(3).permutation(np.array([0] * 40 + [1] * 20, dtype=np.uint8))
    train_idx, val_idx = stratified_split(labels, 0.25, seed=7)
    assert len(val_idx) == 15
    assert len(train_idx) == 45
    assert Counter(labels[val_idx].tolist()) == {0: 10, 1: 5}
    assert Counter(labels[train_idx].tolist()) == {0: 30, 1: 15}
    assert np.intersect1d(train_idx, val_idx).size == 0
    np.testing.assert_array_equal(np.union1d(train_idx, val_idx), np.arange(len(labels)))
    assert (np.diff(train_idx) > 0).all()
    assert (np.diff(val_idx) > 0).all()

    again = stratified_split(labels, 0.25, seed=7)
    np.testing.assert_array_equal(again[0], train_idx)
    np.testing.assert_array_equal(again[1], val_idx)
    other = stratified_split(labels, 0.25, seed=8)
    assert not np.array_equal(other[1], val_idx)
    assert Counter(labels[other[1]].tolist()) == {0: 10, 1: 5}


# --- split by movie ---------------------------------------------------------------------------


def _movie_corpus() -> tuple[np.ndarray, list[str]]:
    """600 movies of 1-30 reviews, most of them small (as in aclImdb); a third with both labels."""
    rng = np.random.default_rng(0)
    labels, movies = [], []
    for m, size in enumerate(np.minimum(rng.geometric(0.15, 600), 30)):
        pos_share = (0.0, 1.0, 0.5)[m % 3]
        labels += [int(rng.random() < pos_share) for _ in range(size)]
        movies += [f"tt{m:07d}"] * size
    return np.array(labels, dtype=np.uint8), movies


@pytest.mark.parametrize("seed", [0, 1, 42])
def test_movie_split_keeps_each_movie_on_one_side_with_balanced_labels(seed: int):
    labels, movies = _movie_corpus()
    train_idx, val_idx = movie_split(labels, movies, [], 0.2, seed)
    np.testing.assert_array_equal(np.union1d(train_idx, val_idx), np.arange(len(labels)))
    assert np.intersect1d(train_idx, val_idx).size == 0
    assert (np.diff(train_idx) > 0).all()
    assert (np.diff(val_idx) > 0).all()
    movies = np.array(movies)
    assert not set(movies[train_idx]) & set(movies[val_idx])
    # Tolerances: validation within 1 % of val_split, its positive share within 0.01 of the training part's;
    # each label gives at most its quota round(n_label * val_split), the fill stopping only when no movie fits.
    assert abs(len(val_idx) / len(labels) - 0.2) <= 0.01
    assert abs(labels[val_idx].mean() - labels[train_idx].mean()) <= 0.01
    quota = np.round(np.bincount(labels) * 0.2)
    assert (np.bincount(labels[val_idx], minlength=2) <= quota).all()


def test_movie_split_is_seeded():
    labels, movies = _movie_corpus()
    first = movie_split(labels, movies, [], 0.2, seed=7)
    again = movie_split(labels, movies, [], 0.2, seed=7)
    other = movie_split(labels, movies, [], 0.2, seed=8)
    for a, b in zip(first, again):
        np.testing.assert_array_equal(a, b)
    assert not np.array_equal(first[1], other[1])


def test_movies_also_in_the_test_set_go_to_validation():
    labels, movies = _movie_corpus()
    in_test = [movies[0], movies[-1]]  # as tt0406816 in aclImdb: 2 training, 23 test reviews
    for seed in range(5):
        train_idx, _ = movie_split(labels, movies, in_test + ["tt9999999"], 0.2, seed)
        assert not {movies[i] for i in train_idx} & set(in_test)


def test_too_few_movies_for_a_split_is_one_line():
    labels = np.array([0, 0, 1, 1], dtype=np.uint8)
    with pytest.raises(DataError) as err:
        movie_split(labels, ["tt1"] * 4, [], 0.2, seed=0)  # one movie: validation would be empty
    msg = str(err.value)
    assert "1 training movies" in msg
    assert "data.val_split_by: review" in msg
    assert "\n" not in msg


def test_review_split_is_the_stratified_split(small_archive: Path):
    """``val_split_by: review`` is exactly the split of before val_split_by existed."""
    splits = read_reviews(small_archive)
    params = DataParams(val_split_by="review", val_split=0.25, seed=3)
    got = validation_split(splits["train"], splits["test"], params)
    expected = stratified_split(np.array(splits["train"].labels, dtype=np.uint8), 0.25, 3)
    for a, b in zip(got, expected):
        np.testing.assert_array_equal(a, b)


def _titles(split: str, per_class: int = 40) -> list[str]:
    return [f"tt{t:07d}" for cls in ("neg", "pos") for t in review_movies(split, cls, per_class)]


def test_prepare_by_movie_reports_movies_and_no_overlap(small_archive: Path, prepared_small: Prepared):
    splits = read_reviews(small_archive)
    assert splits["train"].movies == _titles("train")
    assert splits["test"].movies == _titles("test")
    train_idx, val_idx = validation_split(splits["train"], splits["test"], SMALL)
    train_movies = {splits["train"].movies[i] for i in train_idx}
    val_movies = {splits["train"].movies[i] for i in val_idx}
    assert prepared_small.report["movies"] == {
        "train": len(train_movies),
        "val": len(val_movies),
        "test": len(set(_titles("test"))),
        "shared_train_val": 0,
        "shared_train_test": 0,
        "shared_val_test": 0,
    }
    assert len(train_movies) + len(val_movies) == len(set(_titles("train"))) == 18


def test_prepare_by_review_reports_the_overlap_as_it_is(small_archive: Path):
    movies = prepare_dataset(small_archive, DataParams(max_features=200, maxlen=40, val_split_by="review")).report[
        "movies"
    ]
    assert movies["train"] + movies["val"] - movies["shared_train_val"] == 18
    assert movies["shared_train_val"] > 0
    assert movies["shared_train_test"] == 0


def test_a_movie_with_train_and_test_reviews_is_not_trained_on(tmp_path: Path):
    """aclImdb has one (tt0406816): its training reviews go to validation, whatever the seed."""
    reviews = default_reviews()
    shared = review_movies("train", "neg", 40)[-1]
    test_urls = [movie_url(shared), *url_lines("test", "neg", 39)]
    archive = make_archive(tmp_path / "a.tar.gz", reviews, urls={("test", "neg"): "\n".join(test_urls).encode()})
    for seed in (0, 1, 2):
        movies = prepare_dataset(archive, DataParams(max_features=200, maxlen=40, seed=seed)).report["movies"]
        assert (movies["shared_train_test"], movies["shared_val_test"]) == (0, 1)


# --- the whole prepare step ------------------------------------------------------------------


def test_prepare_dataset_on_small_archive(prepared_small: Prepared):
    arrays, report = prepared_small.arrays, prepared_small.report
    assert set(arrays) == {"train", "val", "test"}
    shapes = {name: a["x"].shape for name, a in arrays.items()}
    n_train, n_val = shapes["train"][0], shapes["val"][0]
    assert n_train + n_val == 80
    assert shapes["test"] == (80, 40)
    assert {shapes["train"][1], shapes["val"][1]} == {40}
    for a in arrays.values():
        assert a["x"].dtype == np.uint16
        assert a["y"].dtype == np.uint8
        assert a["y"].shape == (a["x"].shape[0],)
        assert set(np.unique(a["y"]).tolist()) == {0, 1}
        assert a["x"].max() < SMALL.max_features
        assert not (a["x"] == 0).all(axis=1).any()  # no all-padding rows
    # by movie (runs of 1-6 reviews): each label gives at most its quota of 8 (at least 6 here)
    val_counts = np.bincount(arrays["val"]["y"], minlength=2)
    assert ((val_counts >= 6) & (val_counts <= 8)).all(), val_counts

    assert set(report) == {"splits", "movies", "skipped_files", "vocab_size", "maxlen"}
    assert report["maxlen"] == 40
    assert report["vocab_size"] == len(prepared_small.vocab) + INDEX_FROM <= SMALL.max_features
    for name, a in arrays.items():
        stats = report["splits"][name]
        assert (stats["reviews"], stats["neg"], stats["pos"]) == (len(a["y"]), *np.bincount(a["y"]).tolist())
        assert 0.0 <= stats["oov_rate"] <= 1.0
        assert 0.0 < stats["truncated_share"] < 1.0  # the corpus has long (> 60 token) reviews
        lt = stats["length_tokens"]
        assert lt["p50"] <= lt["p90"] <= lt["p95"] <= lt["p99"] <= lt["max"]
        assert lt["max"] > 60
    assert report["skipped_files"] == {s: {"empty": 0, "invalid_utf8": 0} for s in ("train", "test")}
    json.dumps(report)  # the report is plain JSON


def test_prepare_keeps_each_reviews_length_before_truncation(small_archive: Path, prepared_small: Prepared):
    """``lengths``: the review's tokens; what fits is all in ``x`` after its start id, the rest fills ``maxlen``."""
    test = prepared_small.arrays["test"]
    _, tokens = tokenize_batch(read_reviews(small_archive)["test"].texts)
    np.testing.assert_array_equal(test["lengths"], tokens)
    kept = (test["x"] != 0).sum(axis=1)
    fits = test["lengths"] + 1 <= SMALL.maxlen
    np.testing.assert_array_equal(kept[fits], test["lengths"][fits] + 1)
    assert (kept[~fits] == SMALL.maxlen).all() and (~fits).any() and fits.any()


def test_prepare_dataset_small_vocab_has_oov(small_archive: Path):
    report = prepare_dataset(small_archive, DataParams(max_features=10, maxlen=40)).report
    assert report["vocab_size"] == 10
    for stats in report["splits"].values():
        assert 0.0 < stats["oov_rate"] < 1.0


def test_vocabulary_comes_from_the_training_part_only(tmp_path: Path):
    """Words seen only in validation or test reviews must be out-of-vocabulary."""
    params = DataParams(max_features=1000, maxlen=60, val_split=0.25, val_split_by="review", seed=5)
    reviews = default_reviews(per_class=8)
    labels = np.array([0] * 8 + [1] * 8)  # read order: neg then pos, by numeric id
    _, val_idx = stratified_split(labels, params.val_split, params.seed)
    for i in val_idx:
        cls = "neg" if i < 8 else "pos"
        reviews[("train", cls)][i % 8] += " valonlyword"
    reviews[("test", "pos")][0] += " testonlyword"
    prepared = prepare_dataset(make_archive(tmp_path / "a.tar.gz", reviews), params)
    assert "valonlyword" not in prepared.vocab
    assert "testonlyword" not in prepared.vocab
    assert prepared.report["splits"]["train"]["oov_rate"] == 0.0
    assert prepared.report["splits"]["val"]["oov_rate"] > 0.0
    assert prepared.report["splits"]["test"]["oov_rate"] > 0.0
    assert (prepared.arrays["val"]["x"] == OOV_ID).any(axis=1).sum() == len(val_idx)


def _files(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir())}


def test_write_prepared_is_deterministic_and_loadable(tmp_path: Path, small_archive: Path, prepared_small):
    write_prepared(prepared_small, tmp_path / "a" / "prepared", SMALL)
    again = prepare_dataset(small_archive, SMALL)  # a fresh run, not the same object
    write_prepared(again, tmp_path / "b" / "prepared", SMALL)
    first, second = _files(tmp_path / "a" / "prepared"), _files(tmp_path / "b" / "prepared")
    assert sorted(first) == ["test.npz", "train.npz", "val.npz", "vocab.json"]
    assert first == second

    out = tmp_path / "a" / "prepared"
    for name in ("train", "val", "test"):
        loaded = load_npz(out / f"{name}.npz")
        assert set(loaded) == {"x", "y", "lengths"}
        for key in ("x", "y", "lengths"):
            np.testing.assert_array_equal(loaded[key], prepared_small.arrays[name][key])
            assert loaded[key].dtype == prepared_small.arrays[name][key].dtype
    vocab = read_json(out / "vocab.json")
    assert vocab["words"] == prepared_small.vocab
    assert (vocab["pad_id"], vocab["start_id"], vocab["oov_id"], vocab["index_from"]) == (0, 1, 2, 3)
    assert (vocab["max_features"], vocab["maxlen"], vocab["padding"], vocab["truncating"]) == (200, 40, "pre", "pre")
    # what MLflow records as each run's data source: the archive and every data param
    assert vocab["source"] == {"archive_md5": file_md5(small_archive), "params": asdict(SMALL)}


def test_write_prepared_replaces_existing_folder(tmp_path: Path, prepared_small: Prepared):
    out = tmp_path / "data" / "prepared"
    out.mkdir(parents=True)
    (out / "stale.npz").write_bytes(b"old")
    (out / "sub").mkdir()
    write_prepared(prepared_small, out, SMALL)
    assert sorted(p.name for p in out.iterdir()) == ["test.npz", "train.npz", "val.npz", "vocab.json"]
    assert [p.name for p in out.parent.iterdir()] == ["prepared"]  # no temp folders left
    assert out.stat().st_mode & 0o777 == 0o755


def test_failed_write_keeps_old_output_and_leaves_no_temp(tmp_path: Path, prepared_small: Prepared):
    out = tmp_path / "data" / "prepared"
    write_prepared(prepared_small, out, SMALL)
    before = _files(out)
    broken = Prepared(
        arrays={
            "train": prepared_small.arrays["train"],
            # object arrays need pickles, which save_npz refuses: fails after train.npz is written
            "val": {"x": np.array([object()], dtype=object), "y": np.zeros(1, np.uint8)},
        },
        vocab=prepared_small.vocab,
        report=prepared_small.report,
        source=prepared_small.source,
    )
    with pytest.raises(ValueError):
        write_prepared(broken, out, SMALL)
    assert _files(out) == before
    assert [p.name for p in out.parent.iterdir()] == ["prepared"]
