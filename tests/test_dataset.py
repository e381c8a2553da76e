"""imdb_rnn.dataset: the validation split, the whole prepare step and its outputs."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from helpers import default_reviews, make_archive
from imdb_rnn.config import DataParams
from imdb_rnn.dataset import Prepared, load_vocab, prepare_dataset, stratified_split, write_prepared
from imdb_rnn.files import load_npz
from imdb_rnn.text import (
    INDEX_FROM,
    OOV_ID,
)

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
    assert len(val_idx) == 15 and len(train_idx) == 45
    assert Counter(labels[val_idx].tolist()) == {0: 10, 1: 5}
    assert Counter(labels[train_idx].tolist()) == {0: 30, 1: 15}
    assert np.intersect1d(train_idx, val_idx).size == 0
    np.testing.assert_array_equal(np.union1d(train_idx, val_idx), np.arange(len(labels)))
    assert (np.diff(train_idx) > 0).all() and (np.diff(val_idx) > 0).all()

    again = stratified_split(labels, 0.25, seed=7)
    np.testing.assert_array_equal(again[0], train_idx)
    np.testing.assert_array_equal(again[1], val_idx)
    other = stratified_split(labels, 0.25, seed=8)
    assert not np.array_equal(other[1], val_idx)
    assert Counter(labels[other[1]].tolist()) == {0: 10, 1: 5}


# --- the whole prepare step ------------------------------------------------------------------


def test_prepare_dataset_on_small_archive(prepared_small: Prepared):
    arrays, report = prepared_small.arrays, prepared_small.report
    assert set(arrays) == {"train", "val", "test"}
    shapes = {name: a["x"].shape for name, a in arrays.items()}
    assert shapes == {"train": (64, 40), "val": (16, 40), "test": (80, 40)}
    for a in arrays.values():
        assert a["x"].dtype == np.uint16 and a["y"].dtype == np.uint8
        assert a["y"].shape == (a["x"].shape[0],)
        assert set(np.unique(a["y"]).tolist()) == {0, 1}
        assert a["x"].max() < SMALL.max_features
        assert not (a["x"] == 0).all(axis=1).any()  # no all-padding rows
    n_val, n_train = len(arrays["val"]["y"]), len(arrays["train"]["y"])
    assert n_val / (n_val + n_train) == pytest.approx(SMALL.val_split)
    assert np.bincount(arrays["val"]["y"]).tolist() == [8, 8]

    assert set(report) == {"splits", "skipped_files", "vocab_size", "maxlen"}
    assert report["maxlen"] == 40
    assert report["vocab_size"] == len(prepared_small.vocab) + INDEX_FROM <= SMALL.max_features
    expected = {"train": (64, 32, 32), "val": (16, 8, 8), "test": (80, 40, 40)}
    for name, (reviews, neg, pos) in expected.items():
        stats = report["splits"][name]
        assert (stats["reviews"], stats["neg"], stats["pos"]) == (reviews, neg, pos)
        assert 0.0 <= stats["oov_rate"] <= 1.0
        assert 0.0 < stats["truncated_share"] < 1.0  # the corpus has long (> 60 token) reviews
        lt = stats["length_tokens"]
        assert lt["p50"] <= lt["p90"] <= lt["p95"] <= lt["p99"] <= lt["max"] and lt["max"] > 60
    assert report["skipped_files"] == {s: {"empty": 0, "invalid_utf8": 0} for s in ("train", "test")}
    json.dumps(report)  # the report is plain JSON


def test_prepare_dataset_small_vocab_has_oov(small_archive: Path):
    report = prepare_dataset(small_archive, DataParams(max_features=10, maxlen=40)).report
    assert report["vocab_size"] == 10
    for stats in report["splits"].values():
        assert 0.0 < stats["oov_rate"] < 1.0


def test_vocabulary_comes_from_the_training_part_only(tmp_path: Path):
    """Words seen only in validation or test reviews must be out-of-vocabulary."""
    params = DataParams(max_features=1000, maxlen=60, val_split=0.25, seed=5)
    reviews = default_reviews(per_class=8)
    labels = np.array([0] * 8 + [1] * 8)  # read order: neg then pos, by numeric id
    _, val_idx = stratified_split(labels, params.val_split, params.seed)
    for i in val_idx:
        cls = "neg" if i < 8 else "pos"
        reviews[("train", cls)][i % 8] += " valonlyword"
    reviews[("test", "pos")][0] += " testonlyword"
    prepared = prepare_dataset(make_archive(tmp_path / "a.tar.gz", reviews), params)
    assert "valonlyword" not in prepared.vocab and "testonlyword" not in prepared.vocab
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
        assert set(loaded) == {"x", "y"}
        for key in ("x", "y"):
            np.testing.assert_array_equal(loaded[key], prepared_small.arrays[name][key])
            assert loaded[key].dtype == prepared_small.arrays[name][key].dtype
    vocab = load_vocab(out / "vocab.json")
    assert vocab["words"] == prepared_small.vocab
    assert (vocab["pad_id"], vocab["start_id"], vocab["oov_id"], vocab["index_from"]) == (0, 1, 2, 3)
    assert (vocab["max_features"], vocab["maxlen"], vocab["padding"], vocab["truncating"]) == (200, 40, "pre", "pre")


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
    )
    with pytest.raises(ValueError):
        write_prepared(broken, out, SMALL)
    assert _files(out) == before
    assert [p.name for p in out.parent.iterdir()] == ["prepared"]
