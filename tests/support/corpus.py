"""A learnable synthetic IMDB corpus and aclImdb-style ``.tar.gz`` archives of it (safe or deliberately not)."""

from __future__ import annotations

import io
import itertools
import os
import random
import tarfile
from collections.abc import Iterable, Mapping
from pathlib import Path

SPLITS = ("train", "test")


CLASSES = ("neg", "pos")


POSITIVE_WORDS = (
    "great",
    "wonderful",
    "loved",
    "excellent",
    "brilliant",
    "superb",
    "enjoyable",
    "beautiful",
    "moving",
    "masterpiece",
    "fantastic",
    "charming",
)


NEGATIVE_WORDS = (
    "terrible",
    "awful",
    "boring",
    "hated",
    "waste",
    "dull",
    "worst",
    "poor",
    "stupid",
    "disappointing",
    "horrible",
    "mess",
)


FILLER_WORDS = (
    "the",
    "movie",
    "film",
    "plot",
    "actor",
    "story",
    "scene",
    "was",
    "and",
    "it",
    "this",
    "a",
    "of",
    "director",
    "character",
    "ending",
    "music",
    "i",
    "really",
    "very",
)


REVIEWS_PER_CLASS = 40


def _review(rng: random.Random, sentiment_words: tuple[str, ...], n_words: int) -> str:
    """A review of ``n_words`` words, about a third of them carrying the sentiment."""
    words = []
    for i in range(n_words):
        pool = sentiment_words if rng.random() < 0.35 else FILLER_WORDS
        word = rng.choice(pool)
        words.append(word.capitalize() if i == 0 else word)
        if i and i % 9 == 0:
            words[-1] += rng.choice((".", ",", "!", ". <br /><br />"))
    return " ".join(words) + "."


def default_reviews(per_class: int = REVIEWS_PER_CLASS) -> dict[tuple[str, str], list[str]]:
    """Deterministic synthetic reviews: (split, cls) -> texts; every 5th one is long (> 60 tokens)."""
    reviews = {}
    for s, split in enumerate(SPLITS):
        for c, cls in enumerate(CLASSES):
            rng = random.Random(1000 * s + c)
            words = POSITIVE_WORDS if cls == "pos" else NEGATIVE_WORDS
            reviews[(split, cls)] = [
                _review(rng, words, rng.randint(70, 120) if i % 5 == 0 else rng.randint(8, 40))
                for i in range(per_class)
            ]
    return reviews


def review_name(index: int, cls: str) -> str:
    """Official file naming ``<id>_<rating>.txt``: ratings 7-10 positive, 1-4 negative."""
    rating = (7 + index % 4) if cls == "pos" else (1 + index % 4)
    return f"{index}_{rating}.txt"


MOVIE_SIZES = (3, 1, 5, 2, 6, 4)  # reviews per synthetic movie, in turn


TEST_MOVIES_FROM = 500_001  # test movies are numbered apart: none has training reviews, as in the official data


def review_movies(split: str, cls: str, n: int) -> list[int]:
    """Synthetic IMDb title numbers of a class folder's ``n`` reviews, in file order.

    Runs of 1-6 reviews per movie. Positive movies are numbered from 7, negative ones from 1, so with
    more than a few reviews per class some movies have only negative reviews, some both, some only positive.
    """
    title = (1 if cls == "neg" else 7) + (0 if split == "train" else TEST_MOVIES_FROM - 1)
    titles: list[int] = []
    sizes = itertools.cycle(MOVIE_SIZES)
    while len(titles) < n:
        titles += [title] * next(sizes)
        title += 1
    return titles[:n]


def movie_url(title: int) -> str:
    """A review's movie as the official ``urls_*.txt`` lines give it."""
    return f"http://www.imdb.com/title/tt{title:07d}/usercomments"


def url_lines(split: str, cls: str, n: int) -> list[str]:
    """The synthetic ``urls_<cls>.txt`` of a class folder of ``n`` reviews (to write, or to corrupt)."""
    return [movie_url(title) for title in review_movies(split, cls, n)]


def _add(tar: tarfile.TarFile, info: tarfile.TarInfo, data: bytes | None = None) -> None:
    info.mtime = info.mtime or 1_000_000_000
    if data is not None:
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
    else:
        tar.addfile(info)


def _dir(name: str) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type = tarfile.DIRTYPE
    info.mode = 0o755
    return info


def make_archive(
    path: str | os.PathLike,
    reviews: Mapping[tuple[str, str], Iterable[str | bytes]] | None = None,
    extra: Iterable[tarfile.TarInfo | tuple[tarfile.TarInfo, bytes | None]] | None = None,
    top: str = "aclImdb",
    urls: Mapping[tuple[str, str], bytes | None] | None = None,
) -> Path:
    """Write a ``.tar.gz`` in the official layout ``<top>/{train,test}/{pos,neg}/<id>_<rating>.txt``.

    ``reviews`` maps (split, cls) to review texts (str is UTF-8 encoded, bytes are written
    as they are); default: ``default_reviews()``. Only the (split, cls) folders named in
    ``reviews`` are created, so leaving one out makes an archive that lacks that folder.
    Each folder gets its ``<top>/<split>/urls_<cls>.txt`` (``url_lines``: one line per review file);
    ``urls`` replaces some: (split, cls) -> the file's bytes, or None to leave it out
    (``urls=dict.fromkeys(reviews)`` leaves out every url file).
    ``extra`` members (a TarInfo, or a (TarInfo, bytes) pair) are appended raw, unchecked.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    reviews = default_reviews() if reviews is None else reviews
    with tarfile.open(path, "w:gz") as tar:
        _add(tar, _dir(top))
        _add(tar, tarfile.TarInfo(f"{top}/README"), b"Large Movie Review Dataset (synthetic test copy)\n")
        for split in SPLITS:
            if any(key[0] == split for key in reviews):
                _add(tar, _dir(f"{top}/{split}"))
            for cls in CLASSES:
                if (split, cls) not in reviews:
                    continue
                _add(tar, _dir(f"{top}/{split}/{cls}"))
                texts = list(reviews[(split, cls)])
                for i, text in enumerate(texts):
                    data = text.encode("utf-8") if isinstance(text, str) else bytes(text)
                    info = tarfile.TarInfo(f"{top}/{split}/{cls}/{review_name(i, cls)}")
                    info.mode = 0o644
                    _add(tar, info, data)
                lines = "".join(line + "\n" for line in url_lines(split, cls, len(texts))).encode("ascii")
                data = (urls or {}).get((split, cls), lines)
                if data is not None:
                    info = tarfile.TarInfo(f"{top}/{split}/urls_{cls}.txt")
                    info.mode = 0o644
                    _add(tar, info, data)
        for item in extra or ():
            info, data = item if isinstance(item, tuple) else (item, None)
            _add(tar, info, data)
    return path


def link_member(name: str, target: str, hard: bool = False) -> tarfile.TarInfo:
    """A symlink (or hard link) member ``name -> target``, for unsafe-archive tests."""
    info = tarfile.TarInfo(name)
    info.type = tarfile.LNKTYPE if hard else tarfile.SYMTYPE
    info.linkname = target
    return info


def file_member(name: str, data: bytes = b"pwned\n") -> tuple[tarfile.TarInfo, bytes]:
    """A regular-file member with an arbitrary (possibly unsafe) name."""
    return tarfile.TarInfo(name), data
