"""Read the labelled reviews straight out of the aclImdb ``.tar.gz``, checking every member.

No 50,000 small files on disk; and a member that would land outside the extraction folder (``../``,
an absolute path, a link pointing out, a device file) is refused with its name.
"""

from __future__ import annotations

import gzip
import io
import os
import posixpath
import re
import tarfile
import zlib
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from .errors import DataError

SPLITS = ("train", "test")
CLASSES = ("neg", "pos")  # label 0, label 1
# <split>/urls_<cls>.txt: line i is the IMDb page of the movie that review <split>/<cls>/i_<rating>.txt is about
URL_FILES = {f"urls_{cls}.txt": cls for cls in CLASSES}
TITLE_ID = re.compile(r"/title/(tt\d+)")
URL_FIX = "set data.val_split_by: review, or use the official aclImdb archive"


def check_member(member: tarfile.TarInfo) -> None:
    """Refuse a member that would land outside the extraction folder, or is no plain file/dir."""
    name = member.name
    parts = name.split("/")
    if name.startswith(("/", "\\")) or re.match(r"^[A-Za-z]:", name):
        raise DataError(f"unsafe archive member '{name}': absolute path; use the official aclImdb archive")
    if ".." in parts:
        raise DataError(
            f"unsafe archive member '{name}': '..' escapes the target folder; use the official aclImdb archive"
        )
    if member.issym() or member.islnk():
        base = posixpath.dirname(name) if member.issym() else ""
        target = posixpath.normpath(posixpath.join(base, member.linkname))
        if member.linkname.startswith("/") or target == ".." or target.startswith("../"):
            raise DataError(
                f"unsafe archive member '{name}': link to '{member.linkname}' points outside the target folder; "
                "use the official aclImdb archive"
            )
    elif not (member.isfile() or member.isdir()):
        raise DataError(f"unsafe archive member '{name}': device or special file; use the official aclImdb archive")


@dataclass
class Split:
    """The labelled reviews of one split, sorted by class then file name.

    ``movies`` is each review's IMDb title id, from the url files. Without usable url files it is
    None and ``movies_error`` says why: an error only for a validation split by movie.
    """

    texts: list[str] = field(default_factory=list)
    labels: list[int] = field(default_factory=list)
    names: list[str] = field(default_factory=list)
    skipped: Counter = field(default_factory=Counter)
    movies: list[str] | None = None
    movies_error: DataError | None = None


def _movie_ids(
    archive: str | os.PathLike, url_file: tuple[str, bytes] | None, split: str, cls: str, files: int, kept: list[str]
) -> list[str]:
    """The IMDb title id of each kept review of one class folder, from line i for file ``i_<rating>.txt``.

    The url file has a line for every review file, skipped ones included (their lines are dropped).
    """
    if url_file is None:
        raise DataError(
            f"archive {archive} lacks aclImdb/{split}/urls_{cls}.txt (the movie of each review, needed to "
            f"split validation by movie); {URL_FIX}"
        )
    where, data = url_file
    lines = data.decode("utf-8", errors="replace").splitlines()
    if len(lines) != files:
        raise DataError(
            f"archive {archive}: {where} has {len(lines)} lines for the {files} reviews of aclImdb/{split}/{cls}/ "
            f"(one line per review file); {URL_FIX}"
        )
    ids = []
    for name in kept:
        head = name.split("_", 1)[0]
        line = int(head) if head.isdigit() else files
        if line >= files:
            raise DataError(
                f"archive {archive}: review {split}/{cls}/{name} has no line in {where} "
                f"(review files are named <line>_<rating>.txt); {URL_FIX}"
            )
        match = TITLE_ID.search(lines[line])
        if not match:
            raise DataError(
                f"archive {archive}: {where} line {line + 1} has no IMDb title id (/title/tt<digits>): "
                f"{lines[line][:80]!r}; {URL_FIX}"
            )
        ids.append(match.group(1))
    return ids


def _review_key(name: str) -> tuple[float, str]:
    stem = name.rsplit(".", 1)[0]  # "<id>_<rating>"
    head = stem.split("_", 1)[0]
    return (int(head) if head.isdigit() else float("inf"), stem)


def read_reviews(archive: str | os.PathLike) -> dict[str, Split]:
    """Stream the labelled train/test reviews out of the archive, checking every member.

    An empty review, or one that is not valid UTF-8, is skipped and counted, not fatal. Each review's
    movie comes from the url files; missing or mismatched ones fail only a split by movie (``Split``).
    """
    found: dict[tuple[str, str], list[tuple[str, bytes]]] = {}
    urls: dict[tuple[str, str], tuple[str, bytes]] = {}
    seen_dirs: set[tuple[str, str]] = set()
    try:
        # Whole-archive decompression in C, then header walking over memory: about twice as
        # fast as tarfile's streaming mode (the labelled archive is ~110 MB unpacked).
        blob = gzip.decompress(Path(archive).read_bytes())

        def data(member: tarfile.TarInfo) -> bytes:
            end = member.offset_data + member.size
            if end > len(blob):
                raise EOFError(f"member {member.name} is cut short")
            return blob[member.offset_data : end]

        with tarfile.open(fileobj=io.BytesIO(blob), mode="r:") as tar:
            for member in tar:
                check_member(member)
                parts = [p for p in member.name.split("/") if p not in ("", ".")]
                if len(parts) == 3 and parts[1] in SPLITS and parts[2] in URL_FILES and member.isfile():
                    urls[(parts[1], URL_FILES[parts[2]])] = (member.name, data(member))
                if len(parts) < 3 or parts[1] not in SPLITS or parts[2] not in CLASSES:
                    continue
                seen_dirs.add((parts[1], parts[2]))
                if member.isfile() and len(parts) == 4 and parts[3].endswith(".txt"):
                    found.setdefault((parts[1], parts[2]), []).append((parts[3], data(member)))
            if blob[tar.offset : tar.offset + 1024] != bytes(1024):
                raise EOFError("no end-of-archive marker: the tar stream is cut short")
    except FileNotFoundError:
        raise DataError(f"archive not found: {archive}; run `dvc repro download` first") from None
    except (tarfile.ReadError, EOFError, zlib.error, gzip.BadGzipFile, OSError) as exc:
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise DataError(
            f"archive {archive} is truncated or corrupt ({reason}); delete it and rerun `dvc repro download`"
        ) from None

    splits: dict[str, Split] = {}
    for split in SPLITS:
        missing = [c for c in CLASSES if (split, c) not in seen_dirs]
        if missing:
            raise DataError(
                f"archive {archive} lacks {', '.join(f'aclImdb/{split}/{c}/' for c in missing)}: "
                "expected train/ and test/, each with pos/ and neg/; use the official aclImdb archive"
            )
        out = Split(movies=[])
        for label, cls in enumerate(CLASSES):
            files = sorted(found.get((split, cls), []), key=lambda item: _review_key(item[0]))
            kept = []
            for name, raw in files:
                try:
                    text = raw.decode("utf-8")
                except UnicodeDecodeError:
                    out.skipped["invalid_utf8"] += 1
                    continue
                if not text.strip():
                    out.skipped["empty"] += 1
                    continue
                out.texts.append(text)
                out.labels.append(label)
                out.names.append(f"{split}/{cls}/{name}")
                kept.append(name)
            if out.movies is not None:
                try:
                    out.movies += _movie_ids(archive, urls.get((split, cls)), split, cls, len(files), kept)
                except DataError as exc:
                    out.movies, out.movies_error = None, exc
        if not out.texts:
            raise DataError(f"archive {archive} has no readable {split} reviews; use the official aclImdb archive")
        splits[split] = out
    return splits
