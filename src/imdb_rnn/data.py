"""Read the aclImdb archive and turn reviews into padded integer sequences.

Reviews are read straight from the ``.tar.gz`` (no 50,000 small files on disk), after
checking that every member would extract safely. The index convention is Keras' IMDB
one: 0 padding, 1 start of review, 2 out-of-vocabulary, words from 3 by frequency,
so every id is below ``max_features`` and ``Embedding(max_features, ...)`` covers it.
"""

from __future__ import annotations

import contextlib
import gzip
import io
import itertools
import json
import os
import posixpath
import re
import shutil
import tarfile
import tempfile
import zipfile
import zlib
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

PAD_ID, START_ID, OOV_ID, INDEX_FROM = 0, 1, 2, 3
SPLITS = ("train", "test")
CLASSES = ("neg", "pos")  # label 0, label 1


class DataError(RuntimeError):
    """Bad or unsafe input data; the message is one line naming the problem and the fix."""


# --- text -----------------------------------------------------------------------------
# Tokenizing runs in Arrow's C++ kernels (GIL released, so chunks run on all cores):
# pure-Python regex tokenizing of 50,000 reviews alone took longer than the 10 s budget.

TOKEN_SEPARATORS = r"[^\pL\pN']+"


def _tokenize_chunk(texts: list[str]):
    import pyarrow as pa
    import pyarrow.compute as pc

    low = pc.utf8_lower(pa.array(texts, pa.large_string()))
    low = pc.replace_substring_regex(low, r"<br\s*/?>", " ")
    lists = pc.split_pattern_regex(low, TOKEN_SEPARATORS)
    flat = pc.utf8_trim(pc.list_flatten(lists), "'")
    keep = pc.greater(pc.utf8_length(flat), 0)
    parents = pc.list_parent_indices(lists).to_numpy()
    lengths = np.bincount(parents[keep.to_numpy(zero_copy_only=False)], minlength=len(texts))
    return pc.filter(flat, keep), lengths.astype(np.int64)


def tokenize_batch(texts: list[str], workers: int | None = None):
    """Tokenize many reviews: (flat Arrow array of tokens, tokens per review).

    Rule: lower-case; ``<br />`` (any ``<br>`` form) becomes a space; a token is a
    maximal run of Unicode letters, digits and apostrophes, with leading and trailing
    apostrophes stripped ("don't" stays one token, "'quoted'" becomes "quoted").
    """
    import pyarrow as pa

    workers = workers or os.cpu_count() or 1
    size = max(1, -(-len(texts) // workers))
    chunks = [texts[i : i + size] for i in range(0, len(texts), size)] or [[]]
    if len(chunks) == 1:
        results = [_tokenize_chunk(chunks[0])]
    else:
        with ThreadPoolExecutor(len(chunks)) as pool:
            results = list(pool.map(_tokenize_chunk, chunks))
    flat = pa.chunked_array([r[0] for r in results], pa.large_string())
    return flat, np.concatenate([r[1] for r in results])


def tokenize(text: str) -> list[str]:
    """Tokens of one review (same rule as ``tokenize_batch``)."""
    flat, _ = tokenize_batch([text], workers=1)
    return flat.to_pylist()


def build_vocab(flat_tokens, max_features: int) -> list[str]:
    """The ``max_features - 3`` most frequent tokens; ties broken by code point order (deterministic)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    counts = pc.value_counts(flat_tokens)
    table = pa.table({"word": counts.field("values"), "count": counts.field("counts")})
    order = pc.sort_indices(table, sort_keys=[("count", "descending"), ("word", "ascending")])
    return table["word"].take(order[: max_features - INDEX_FROM]).to_pylist()


def encode_batch(flat_tokens, lengths: np.ndarray, vocab: list[str]):
    """Token ids with a start id before each review: (flat ids, ids per review)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    ids = pc.index_in(flat_tokens, value_set=pa.array(vocab, pa.large_string()))
    ids = pc.fill_null(pc.add(ids, INDEX_FROM), OOV_ID).to_numpy()
    offsets = (np.cumsum(lengths) - lengths).astype(np.int64)
    return np.insert(ids.astype(np.int32), offsets, START_ID), lengths + 1


def pad_flat(flat: np.ndarray, lengths: np.ndarray, maxlen: int, padding: str = "pre",
             truncating: str = "pre", dtype=np.int32) -> np.ndarray:
    """Pad/truncate concatenated sequences to ``maxlen`` as ``keras.utils.pad_sequences`` does."""
    if padding not in ("pre", "post") or truncating not in ("pre", "post"):
        raise ValueError(f"padding/truncating must be 'pre' or 'post', got {padding!r}/{truncating!r}")
    n = len(lengths)
    keep = np.minimum(lengths, maxlen)
    offsets = (np.cumsum(lengths) - lengths).astype(np.int64)
    src_start = offsets + (lengths - keep if truncating == "pre" else 0)
    dst_start = maxlen - keep if padding == "pre" else np.zeros(n, np.int64)
    rows = np.repeat(np.arange(n), keep)
    within = np.arange(int(keep.sum())) - np.repeat(np.cumsum(keep) - keep, keep)
    out = np.full((n, maxlen), PAD_ID, dtype=dtype)
    out[rows, np.repeat(dst_start, keep) + within] = flat[np.repeat(src_start, keep) + within]
    return out


def pad(sequences: list[list[int]], maxlen: int, padding: str = "pre", truncating: str = "pre") -> np.ndarray:
    """``keras.utils.pad_sequences`` for lists of ids, without importing Keras."""
    lengths = np.fromiter(map(len, sequences), dtype=np.int64, count=len(sequences))
    flat = np.fromiter(itertools.chain.from_iterable(sequences), dtype=np.int32, count=int(lengths.sum()))
    return pad_flat(flat, lengths, maxlen, padding, truncating)


def id_dtype(max_features: int):
    """Smallest integer type that holds every id (halves the prepared files for 10k words)."""
    return np.uint16 if max_features <= np.iinfo(np.uint16).max + 1 else np.int32


def encode_texts(texts: list[str], vocab: list[str], maxlen: int, padding: str, truncating: str) -> np.ndarray:
    """Raw review text to model input: the one preprocessing path shared by prepare and predict."""
    flat, lengths = tokenize_batch(texts)
    ids, lengths = encode_batch(flat, lengths, vocab)
    return pad_flat(ids, lengths, maxlen, padding, truncating, dtype=id_dtype(len(vocab) + INDEX_FROM))


# --- archive --------------------------------------------------------------------------


def check_member(member: tarfile.TarInfo) -> None:
    """Refuse a member that would land outside the extraction folder, or is no plain file/dir."""
    name = member.name
    parts = name.split("/")
    if name.startswith(("/", "\\")) or re.match(r"^[A-Za-z]:", name):
        raise DataError(f"unsafe archive member '{name}': absolute path; use the official aclImdb archive")
    if ".." in parts:
        raise DataError(f"unsafe archive member '{name}': '..' escapes the target folder; use the official aclImdb archive")
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
    """The labelled reviews of one split, sorted by class then file name."""

    texts: list[str] = field(default_factory=list)
    labels: list[int] = field(default_factory=list)
    names: list[str] = field(default_factory=list)
    skipped: Counter = field(default_factory=Counter)


def _review_key(name: str):
    stem = name.rsplit(".", 1)[0]  # "<id>_<rating>"
    head = stem.split("_", 1)[0]
    return (int(head) if head.isdigit() else float("inf"), stem)


def read_reviews(archive: str | os.PathLike) -> dict[str, Split]:
    """Stream the labelled train/test reviews out of the archive, checking every member.

    An empty review, or one that is not valid UTF-8, is skipped and counted, not fatal.
    """
    found: dict[tuple[str, str], list[tuple[str, bytes]]] = {}
    seen_dirs: set[tuple[str, str]] = set()
    try:
        # Whole-archive decompression in C, then header walking over memory: about twice as
        # fast as tarfile's streaming mode (the labelled archive is ~110 MB unpacked).
        blob = gzip.decompress(Path(archive).read_bytes())
        with tarfile.open(fileobj=io.BytesIO(blob), mode="r:") as tar:
            for member in tar:
                check_member(member)
                parts = [p for p in member.name.split("/") if p not in ("", ".")]
                if len(parts) < 3 or parts[1] not in SPLITS or parts[2] not in CLASSES:
                    continue
                seen_dirs.add((parts[1], parts[2]))
                if member.isfile() and len(parts) == 4 and parts[3].endswith(".txt"):
                    end = member.offset_data + member.size
                    if end > len(blob):
                        raise EOFError(f"member {member.name} is cut short")
                    found.setdefault((parts[1], parts[2]), []).append((parts[3], blob[member.offset_data : end]))
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
        out = Split()
        for label, cls in enumerate(CLASSES):
            for name, data in sorted(found.get((split, cls), []), key=lambda item: _review_key(item[0])):
                try:
                    text = data.decode("utf-8")
                except UnicodeDecodeError:
                    out.skipped["invalid_utf8"] += 1
                    continue
                if not text.strip():
                    out.skipped["empty"] += 1
                    continue
                out.texts.append(text)
                out.labels.append(label)
                out.names.append(f"{split}/{cls}/{name}")
        if not out.texts:
            raise DataError(f"archive {archive} has no readable {split} reviews; use the official aclImdb archive")
        splits[split] = out
    return splits


# --- split ----------------------------------------------------------------------------


def stratified_split(labels: np.ndarray, val_split: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Seeded, stratified train/validation indices (each sorted), from the training data only.

    Each class gives ``round(n_class * val_split)`` reviews to validation, so class shares match.
    """
    rng = np.random.default_rng(seed)
    val = []
    for cls in np.unique(labels):
        members = rng.permutation(np.flatnonzero(labels == cls))
        val.append(members[: int(round(len(members) * val_split))])
    val_idx = np.sort(np.concatenate(val))
    train_idx = np.setdiff1d(np.arange(len(labels)), val_idx)
    return train_idx, val_idx


# --- outputs --------------------------------------------------------------------------


def save_npz(path: Path, **arrays: np.ndarray) -> None:
    """``np.savez_compressed`` with fixed zip timestamps, so the bytes depend on the data only."""
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=1) as zf:
        for name, array in arrays.items():
            info = zipfile.ZipInfo(f"{name}.npy", date_time=(1980, 1, 1, 0, 0, 0))
            info.compress_type = zipfile.ZIP_DEFLATED
            buf = io.BytesIO()
            np.lib.format.write_array(buf, np.ascontiguousarray(array), allow_pickle=False)
            zf.writestr(info, buf.getvalue(), compresslevel=1)


def load_npz(path: Path) -> dict[str, np.ndarray]:
    """Load prepared arrays (never with pickles)."""
    with np.load(path, allow_pickle=False) as npz:
        return {k: npz[k] for k in npz.files}


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike):
    """Yield a temp path beside ``path``; rename it into place only if the block succeeds.

    Nothing half-written is ever left at an output path (a crash or a signal leaves the old
    file, or none).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        yield Path(tmp)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    finally:
        Path(tmp).unlink(missing_ok=True)


def write_json_atomic(path: Path, obj) -> None:
    """Write JSON via a temp file renamed into place: never a half-written report."""
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(obj, indent=2) + "\n", encoding="utf-8")


def replace_dir(tmp_dir: Path, out_dir: Path) -> None:
    """Move a fully written temp folder into place (the old output goes only once the new is complete)."""
    if out_dir.exists():
        shutil.rmtree(out_dir)
    os.replace(tmp_dir, out_dir)


# --- report ---------------------------------------------------------------------------


def split_stats(token_counts: np.ndarray, labels: np.ndarray, oov: int, maxlen: int) -> dict:
    """Counts per class, review length percentiles (tokens), truncated share, OOV rate."""
    pct = np.percentile(token_counts, [50, 90, 95, 99]) if len(token_counts) else [0] * 4
    total_tokens = int(token_counts.sum())
    return {
        "reviews": int(len(labels)),
        "neg": int((labels == 0).sum()),
        "pos": int((labels == 1).sum()),
        "length_tokens": {
            "mean": round(float(token_counts.mean()), 1),
            "p50": float(pct[0]),
            "p90": float(pct[1]),
            "p95": float(pct[2]),
            "p99": float(pct[3]),
            "max": int(token_counts.max()),
        },
        # +1: the start id takes one of the maxlen slots
        "truncated_share": round(float((token_counts + 1 > maxlen).mean()), 4),
        "oov_rate": round(oov / total_tokens, 4) if total_tokens else 0.0,
    }


# --- the whole prepare step -------------------------------------------------------------


@dataclass
class Prepared:
    arrays: dict[str, dict[str, np.ndarray]]  # split -> {"x": ..., "y": ...}
    vocab: list[str]
    report: dict


def prepare_dataset(archive: str | os.PathLike, params) -> Prepared:
    """Archive to train/val/test arrays, vocabulary (training split only) and data report."""
    splits = read_reviews(archive)
    train_labels = np.asarray(splits["train"].labels, dtype=np.uint8)
    fit_idx, val_idx = stratified_split(train_labels, params.val_split, params.seed)
    train_texts = splits["train"].texts
    parts = {
        "train": ([train_texts[i] for i in fit_idx], train_labels[fit_idx]),
        "val": ([train_texts[i] for i in val_idx], train_labels[val_idx]),
        "test": (splits["test"].texts, np.asarray(splits["test"].labels, dtype=np.uint8)),
    }
    tokens = {name: tokenize_batch(texts) for name, (texts, _) in parts.items()}
    vocab = build_vocab(tokens["train"][0], params.max_features)
    dtype = id_dtype(params.max_features)

    arrays, stats = {}, {}
    for name, (_, labels) in parts.items():
        flat, lengths = tokens[name]
        ids, id_lengths = encode_batch(flat, lengths, vocab)
        oov = int((ids == OOV_ID).sum())
        x = pad_flat(ids, id_lengths, params.maxlen, params.padding, params.truncating, dtype=dtype)
        arrays[name] = {"x": x, "y": labels}
        stats[name] = split_stats(lengths, labels, oov, params.maxlen)
    report = {
        "splits": stats,
        "skipped_files": {
            split: {"empty": s.skipped["empty"], "invalid_utf8": s.skipped["invalid_utf8"]}
            for split, s in splits.items()
        },
        "vocab_size": len(vocab) + INDEX_FROM,
        "maxlen": params.maxlen,
    }
    return Prepared(arrays=arrays, vocab=vocab, report=report)


def write_prepared(prepared: Prepared, out_dir: Path, params) -> None:
    """Write arrays + vocabulary into a temp folder, then swap it into place."""
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=out_dir.parent, prefix=f".{out_dir.name}."))
    try:
        tmp.chmod(0o755)
        for name, arrays in prepared.arrays.items():
            save_npz(tmp / f"{name}.npz", **arrays)
        vocab = {
            "tokenizer": "lowercase; <br /> removed; tokens = runs of letters/digits with inner apostrophes",
            "pad_id": PAD_ID, "start_id": START_ID, "oov_id": OOV_ID, "index_from": INDEX_FROM,
            "max_features": params.max_features, "maxlen": params.maxlen,
            "padding": params.padding, "truncating": params.truncating,
            "words": prepared.vocab,
        }
        (tmp / "vocab.json").write_text(json.dumps(vocab, indent=0, ensure_ascii=False) + "\n", encoding="utf-8")
        replace_dir(tmp, out_dir)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def load_vocab(path: Path) -> dict:
    """The vocabulary and preprocessing settings that ``prepare`` wrote."""
    return json.loads(Path(path).read_text(encoding="utf-8"))
