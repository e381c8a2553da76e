"""imdb_rnn.archive: reading reviews out of real archives on disk, and refusing unsafe or broken ones."""

from __future__ import annotations

import gzip
import io
import random
import tarfile
import uuid
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from imdb_rnn.archive import check_member, read_reviews
from imdb_rnn.config import DataParams
from imdb_rnn.dataset import prepare_dataset
from imdb_rnn.errors import DataError
from support.corpus import default_reviews, file_member, link_member, make_archive, movie_url, review_movies, url_lines

MODES = [(p, t) for p in ("pre", "post") for t in ("pre", "post")]
MODE_IDS = [f"pad-{p}-trunc-{t}" for p, t in MODES]
SMALL = DataParams(max_features=200, maxlen=40)


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
    assert f"unsafe archive member '{member.name}'" in msg
    assert reason in msg
    assert "\n" not in msg


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
    assert "unsafe archive member" in msg
    assert "official aclImdb archive" in msg
    assert "\n" not in msg
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
        assert "truncated or corrupt" in msg, (name, msg)
        assert str(path) in msg, (name, msg)
        assert "dvc repro download" in msg, (name, msg)
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
    assert len(splits["train"].texts) == 10
    assert len(splits["test"].texts) == 10
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
    assert train.names[0].startswith("train/neg/")
    assert train.names[-1].startswith("train/pos/")
    assert train.texts[11] == "train neg review 11"


# --- the url files: each review's movie --------------------------------------------------------


def test_movies_follow_the_url_files_and_skipped_reviews_drop_their_line(tmp_path: Path):
    reviews = default_reviews(per_class=12)
    reviews[("train", "pos")][3] = b"\xff not UTF-8"  # file 3_10.txt: line 4 of urls_pos.txt is dropped with it
    reviews[("train", "neg")][0] = "   "
    splits = read_reviews(make_archive(tmp_path / "a.tar.gz", reviews))
    titles = {cls: [f"tt{t:07d}" for t in review_movies("train", cls, 12)] for cls in ("neg", "pos")}
    assert splits["train"].movies == titles["neg"][1:] + titles["pos"][:3] + titles["pos"][4:]
    assert len(splits["train"].movies) == len(splits["train"].texts) == 22
    assert splits["test"].movies == [f"tt{t:07d}" for cls in ("neg", "pos") for t in review_movies("test", cls, 12)]
    assert splits["train"].movies_error is None


def _urls(split: str, cls: str, lines: list[str]) -> dict:
    return {(split, cls): "".join(line + "\n" for line in lines).encode()}


GOOD = url_lines("train", "pos", 40)
BAD_URLS = {  # id: (url file replacements, extra members, what the error names)
    "missing": ({("test", "neg"): None}, [], "lacks aclImdb/test/urls_neg.txt"),
    "line-short": (_urls("train", "pos", GOOD[:-1]), [], "aclImdb/train/urls_pos.txt has 39 lines for the 40"),
    "line-extra": (_urls("train", "neg", url_lines("train", "neg", 41)), [], "urls_neg.txt has 41 lines for the 40"),
    "no-title": (
        _urls("train", "pos", [*GOOD[:5], "http://www.imdb.com/search/usercomments", *GOOD[6:]]),
        [],
        "aclImdb/train/urls_pos.txt line 6 has no IMDb title id",
    ),
    "file-not-a-line": (
        _urls("train", "pos", [*GOOD, movie_url(99)]),
        [file_member("aclImdb/train/pos/extra_9.txt", b"fine")],
        "review train/pos/extra_9.txt has no line in aclImdb/train/urls_pos.txt",
    ),
}


@pytest.mark.parametrize("urls, extra, named", BAD_URLS.values(), ids=BAD_URLS.keys())
def test_bad_url_files_fail_a_split_by_movie_only(tmp_path: Path, urls: dict, extra: list, named: str):
    archive = make_archive(tmp_path / "a.tar.gz", urls=urls, extra=extra)
    with pytest.raises(DataError) as err:
        prepare_dataset(archive, SMALL)
    msg = str(err.value)
    assert named in msg
    assert "\n" not in msg
    assert msg.endswith("; set data.val_split_by: review, or use the official aclImdb archive")

    by_review = prepare_dataset(archive, DataParams(max_features=200, maxlen=40, val_split_by="review"))
    assert by_review.report["movies"] is None
    assert len(by_review.arrays["val"]["y"]) == 16


def test_no_url_files_at_all_is_fine_by_review(tmp_path: Path, small_archive: Path):
    reviews = default_reviews()
    archive = make_archive(tmp_path / "a.tar.gz", reviews, urls=dict.fromkeys(reviews))
    with pytest.raises(DataError, match="lacks aclImdb/train/urls_neg.txt"):
        prepare_dataset(archive, SMALL)
    params = DataParams(max_features=200, maxlen=40, val_split_by="review")
    without, with_urls = prepare_dataset(archive, params), prepare_dataset(small_archive, params)
    for name, arrays in without.arrays.items():
        for key in ("x", "y"):
            np.testing.assert_array_equal(arrays[key], with_urls.arrays[name][key])
