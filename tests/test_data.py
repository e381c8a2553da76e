"""imdb_rnn.data: tokenizer, vocabulary, encoding/padding (checked against Keras), archive
safety, the train/val split and the prepared outputs. Real archives on disk, no mocks."""

from __future__ import annotations

import gzip
import io
import json
import os
import random
import tarfile
import uuid
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from helpers import default_reviews, file_member, link_member, make_archive  # noqa: E402
from imdb_rnn.config import DataParams  # noqa: E402
from imdb_rnn.data import (  # noqa: E402
    INDEX_FROM,
    OOV_ID,
    PAD_ID,
    START_ID,
    DataError,
    Prepared,
    build_vocab,
    check_member,
    encode_batch,
    encode_texts,
    id_dtype,
    load_npz,
    load_vocab,
    pad,
    pad_flat,
    prepare_dataset,
    read_reviews,
    stratified_split,
    tokenize,
    tokenize_batch,
    write_prepared,
)

MODES = [(p, t) for p in ("pre", "post") for t in ("pre", "post")]
MODE_IDS = [f"pad-{p}-trunc-{t}" for p, t in MODES]
SMALL = DataParams(max_features=200, maxlen=40)


@pytest.fixture(scope="module")
def pad_sequences():
    keras = pytest.importorskip("keras")
    return keras.utils.pad_sequences


@pytest.fixture(scope="module")
def prepared_small(small_archive: Path) -> Prepared:
    return prepare_dataset(small_archive, SMALL)


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
        ("good,bad.ugly!yes?no;(maybe)-[so]\"ok\"", ["good", "bad", "ugly", "yes", "no", "maybe", "so", "ok"]),
        ("snake_case_word", ["snake", "case", "word"]),
        ("Café naïve ÜBER Ωmega Фильм 映画", ["café", "naïve", "über", "ωmega", "фильм", "映画"]),
        ("10/10 in 1999, 3.5 stars 2nd", ["10", "10", "in", "1999", "3", "5", "stars", "2nd"]),
        ("tabs\tand\nnewlines  spaces", ["tabs", "and", "newlines", "spaces"]),
        ("", []),
        ("   !!! ... ", []),
    ],
    ids=["lower", "br-forms", "br-joins", "apostrophe-inner", "apostrophe-outer", "apostrophe-multi",
         "apostrophes-only", "punctuation", "underscore", "unicode", "digits", "whitespace", "empty", "no-words"],
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
    assert len(flat) == 0 and len(lengths) == 0


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
    assert ids.min() >= START_ID and ids.max() < len(vocab) + INDEX_FROM


def test_encode_texts_matches_keras_padding(pad_sequences):
    vocab = ["the", "movie", "great", "bad", "plot"]  # max_features = 8
    maxlen = 6
    texts = [
        "",                                             # start id only
        "great movie",                                  # shorter than maxlen
        "the plot was bad",                             # shorter, one OOV
        "the movie plot great bad",                     # start + 5 tokens == maxlen
        "the movie was great but the plot was bad bad",  # longer than maxlen
        "zzz yyy xxx www vvv uuu ttt",                  # longer, all OOV
    ]
    expected_ids = [_reference_ids(t, vocab) for t in texts]
    assert [len(e) for e in expected_ids] == [1, 3, 5, 6, 11, 8]
    for padding, truncating in MODES:
        x = encode_texts(texts, vocab, maxlen, padding, truncating)
        expected = pad_sequences(expected_ids, maxlen=maxlen, padding=padding, truncating=truncating)
        assert x.shape == (len(texts), maxlen) and x.dtype == np.uint16
        np.testing.assert_array_equal(x, expected, err_msg=f"{padding}/{truncating}")
        assert x.max() < len(vocab) + INDEX_FROM


def test_encode_texts_ids_below_max_features_on_corpus():
    texts = [t for texts in default_reviews().values() for t in texts]
    for max_features in (4, 10, 30):
        vocab = build_vocab(tokenize_batch(texts)[0], max_features)
        x = encode_texts(texts, vocab, 50, "pre", "post")
        assert x.max() < max_features
        assert ((x == START_ID).sum(axis=1) == 1).all()  # truncating=post keeps the start id


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
    assert len(lengths) == 0 and len(ids) == 0


def test_pad_rejects_unknown_mode():
    with pytest.raises(ValueError, match="pre"):
        pad([[1, 2]], 3, padding="middle")
    with pytest.raises(ValueError, match="pre"):
        pad([[1, 2]], 3, truncating="end")


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


# --- archive safety --------------------------------------------------------------------------


def _char_device(name: str) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type = tarfile.CHRTYPE
    info.devmajor, info.devminor = 1, 3
    return info


def _fifo(name: str) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type = tarfile.FIFOTYPE
    return info


UNSAFE = {
    "dotdot": (file_member("../evil.txt")[0], "'..'"),
    "dotdot-inside": (file_member("aclImdb/train/../../evil.txt")[0], "'..'"),
    "absolute": (file_member("/tmp/evil.txt")[0], "absolute"),
    "windows-drive": (file_member("C:/evil.txt")[0], "absolute"),
    "symlink-out": (link_member("aclImdb/train/pos/link.txt", "../../../../etc/passwd"), "outside"),
    "symlink-absolute": (link_member("aclImdb/train/pos/link.txt", "/etc/passwd"), "outside"),
    "hardlink-out": (link_member("aclImdb/train/pos/hard.txt", "../../etc/passwd", hard=True), "outside"),
    "hardlink-absolute": (link_member("aclImdb/train/pos/hard.txt", "/etc/passwd", hard=True), "outside"),
    "char-device": (_char_device("aclImdb/train/pos/dev.txt"), "special"),
    "fifo": (_fifo("aclImdb/train/pos/fifo.txt"), "special"),
}


@pytest.mark.parametrize("member, reason", UNSAFE.values(), ids=UNSAFE.keys())
def test_check_member_refuses_unsafe(member: tarfile.TarInfo, reason: str):
    with pytest.raises(DataError) as err:
        check_member(member)
    msg = str(err.value)
    assert f"unsafe archive member '{member.name}'" in msg and reason in msg and "\n" not in msg


@pytest.mark.parametrize(
    "member",
    [
        file_member("aclImdb/train/pos/0_9.txt")[0],
        file_member("./aclImdb/train/pos/0_9.txt")[0],
        file_member("aclImdb/train/pos/..hidden.txt")[0],
        link_member("aclImdb/train/pos/link.txt", "0_9.txt"),
        link_member("aclImdb/train/pos/link.txt", "../neg/0_1.txt"),
        link_member("aclImdb/train/pos/hard.txt", "aclImdb/train/neg/0_1.txt", hard=True),
    ],
    ids=["file", "dot-prefix", "dotdot-in-name", "symlink-sibling", "symlink-inside", "hardlink-inside"],
)
def test_check_member_accepts_safe(member: tarfile.TarInfo):
    check_member(member)


MALICIOUS = {
    "dotdot": lambda tag: [file_member(f"../evil-{tag}.txt")],
    "absolute": lambda tag: [file_member(f"/tmp/evil-{tag}.txt")],
    "symlink-out": lambda tag: [link_member("aclImdb/train/pos/link.txt", "../../../../etc/passwd")],
    "symlink-absolute": lambda tag: [link_member("aclImdb/train/pos/link.txt", "/etc/passwd")],
    "hardlink-out": lambda tag: [link_member("aclImdb/train/pos/hard.txt", "../../../etc/passwd", hard=True)],
}


@pytest.mark.parametrize("extra", MALICIOUS.values(), ids=MALICIOUS.keys())
def test_read_reviews_refuses_malicious_archive(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, extra):
    tag = uuid.uuid4().hex
    archive = make_archive(tmp_path / "src" / "evil.tar.gz", default_reviews(per_class=3), extra=extra(tag))
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    with pytest.raises(DataError) as err:
        read_reviews(archive)
    msg = str(err.value)
    assert "unsafe archive member" in msg and "official aclImdb archive" in msg and "\n" not in msg
    assert list(work.iterdir()) == []
    assert sorted(p.name for p in tmp_path.iterdir()) == ["src", "work"]
    assert [p.name for p in (tmp_path / "src").iterdir()] == ["evil.tar.gz"]
    assert not Path(f"/tmp/evil-{tag}.txt").exists()


def test_truncated_and_corrupt_archives(tmp_path: Path, small_archive: Path):
    blob = small_archive.read_bytes()
    cases = {
        "half.tar.gz": blob[: len(blob) // 2],
        "nearly.tar.gz": blob[:-9],
        "garbage.tar.gz": random.Random(0).randbytes(5000),
        "empty.tar.gz": b"",
        "not-a-tar.tar.gz": gzip.compress(b"<html>404 Not Found</html>" * 40),
        "plain.tar": gzip.decompress(blob),  # an uncompressed tar is not the .tar.gz asked for
    }
    for name, data in cases.items():
        path = tmp_path / name
        path.write_bytes(data)
        with pytest.raises(DataError) as err:
            read_reviews(path)
        msg = str(err.value)
        assert "truncated or corrupt" in msg and str(path) in msg and "dvc repro download" in msg, (name, msg)
        assert "\n" not in msg


def test_tar_cut_at_member_boundary_is_an_error(tmp_path: Path, small_archive: Path):
    raw = gzip.decompress(small_archive.read_bytes())
    with tarfile.open(fileobj=io.BytesIO(raw)) as tar:
        cut = [m for m in tar.getmembers() if m.name.startswith("aclImdb/test/pos/")][10].offset
    path = tmp_path / "cut.tar.gz"
    path.write_bytes(gzip.compress(raw[:cut]))
    with pytest.raises(DataError, match="truncated or corrupt"):
        read_reviews(path)


def test_missing_archive(tmp_path: Path):
    with pytest.raises(DataError, match="not found.*dvc repro download"):
        read_reviews(tmp_path / "nope.tar.gz")


@pytest.mark.parametrize("missing", [("test", "neg"), ("train", "pos")], ids=["test-neg", "train-pos"])
def test_missing_class_folder_is_named(tmp_path: Path, missing: tuple[str, str]):
    reviews = default_reviews(per_class=3)
    del reviews[missing]
    archive = make_archive(tmp_path / "a.tar.gz", reviews)
    with pytest.raises(DataError) as err:
        read_reviews(archive)
    assert f"aclImdb/{missing[0]}/{missing[1]}" in str(err.value)


def test_other_top_folder_name_is_accepted(tmp_path: Path):
    archive = make_archive(tmp_path / "a.tar.gz", default_reviews(per_class=2), top="imdb_copy")
    splits = read_reviews(archive)
    assert [len(splits[s].texts) for s in ("train", "test")] == [4, 4]


def test_empty_and_non_utf8_reviews_are_skipped_and_counted(tmp_path: Path):
    reviews = default_reviews(per_class=5)
    reviews[("train", "pos")] = reviews[("train", "pos")] + ["", "  \n\t ", b"\xff\xfe bad \x80 bytes"]
    reviews[("test", "neg")] = [b"\xc3\x28 latin"] + reviews[("test", "neg")]
    archive = make_archive(tmp_path / "a.tar.gz", reviews)
    splits = read_reviews(archive)
    assert splits["train"].skipped == Counter(empty=2, invalid_utf8=1)
    assert splits["test"].skipped == Counter(invalid_utf8=1)
    assert len(splits["train"].texts) == 10 and len(splits["test"].texts) == 10
    assert len(splits["train"].labels) == len(splits["train"].names) == 10

    report = prepare_dataset(archive, DataParams(max_features=50, maxlen=20, val_split=0.2)).report
    assert report["skipped_files"] == {
        "train": {"empty": 2, "invalid_utf8": 1},
        "test": {"empty": 0, "invalid_utf8": 1},
    }


def test_split_with_only_unreadable_reviews_is_an_error(tmp_path: Path):
    reviews = default_reviews(per_class=2)
    reviews[("test", "neg")] = [""]
    reviews[("test", "pos")] = [b"\xff"]
    with pytest.raises(DataError, match="no readable test reviews"):
        read_reviews(make_archive(tmp_path / "a.tar.gz", reviews))


def test_reviews_sorted_by_class_then_numeric_id(tmp_path: Path):
    reviews = {key: [f"{key[0]} {key[1]} review {i}" for i in range(12)] for key in default_reviews(per_class=1)}
    splits = read_reviews(make_archive(tmp_path / "a.tar.gz", reviews))
    train = splits["train"]
    assert train.labels == [0] * 12 + [1] * 12
    ids = [int(name.rsplit("/", 1)[1].split("_")[0]) for name in train.names]
    assert ids == list(range(12)) * 2
    assert train.names[0].startswith("train/neg/") and train.names[-1].startswith("train/pos/")
    assert train.texts[11] == "train neg review 11"


# --- the whole prepare step ------------------------------------------------------------------


def test_prepare_dataset_on_small_archive(prepared_small: Prepared):
    arrays, report = prepared_small.arrays, prepared_small.report
    assert set(arrays) == {"train", "val", "test"}
    shapes = {name: a["x"].shape for name, a in arrays.items()}
    assert shapes == {"train": (64, 40), "val": (16, 40), "test": (80, 40)}
    for name, a in arrays.items():
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
