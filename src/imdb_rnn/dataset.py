"""The prepare step: archive -> train/validation/test arrays, vocabulary and data report.

The vocabulary comes from the training part only, and the validation split is carved out of the
official training reviews, seeded; the official test reviews are only ever scored. The split is by
movie by default, as the official train/test split is, so validation scores predict test scores.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .archive import Split, read_reviews
from .config import DataParams
from .errors import DataError
from .files import atomic_dir, file_md5, save_npz
from .text import INDEX_FROM, OOV_ID, PAD_ID, START_ID, build_vocab, encode_batch, id_dtype, pad_flat, tokenize_batch


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


def movie_split(
    labels: np.ndarray, movies: list[str], test_movies: list[str], val_split: float, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    """Seeded train/validation indices (each sorted) with every movie on one side only.

    Reviews of one movie share words (names, plot) a model can memorise, so a validation split that
    shares movies with training scores higher than the test set, which shares none. Movies also in
    the test set go to validation, so none is trained on. The others, in a seeded random order, join
    validation while their reviews of each label fit that label's quota ``round(n_label * val_split)``:
    label shares as in training, and sizes at or just under the quotas when small movies are left.
    """
    titles, movie_of = np.unique(np.asarray(movies), return_inverse=True)
    per_movie = np.zeros((len(titles), 2), dtype=np.int64)  # reviews of each movie: [neg, pos]
    np.add.at(per_movie, (movie_of, labels), 1)
    quota = np.array([int(round(n * val_split)) for n in per_movie.sum(axis=0)])
    in_val = np.isin(titles, np.asarray(test_movies))
    taken = per_movie[in_val].sum(axis=0)
    for m in np.random.default_rng(seed).permutation(len(titles)):
        if not in_val[m] and (taken + per_movie[m] <= quota).all():
            in_val[m] = True
            taken += per_movie[m]
    val_idx, train_idx = np.flatnonzero(in_val[movie_of]), np.flatnonzero(~in_val[movie_of])
    if not len(val_idx) or not len(train_idx):
        raise DataError(
            f"the {len(titles)} training movies cannot be split by movie with val_split {val_split:g} "
            f"({len(train_idx)} training, {len(val_idx)} validation reviews); "
            "use an archive with more movies, another data.val_split, or data.val_split_by: review"
        )
    return train_idx, val_idx


def validation_split(train: Split, test: Split, params: DataParams) -> tuple[np.ndarray, np.ndarray]:
    """Train/validation indices into the training reviews, by ``params.val_split_by``."""
    labels = np.asarray(train.labels, dtype=np.uint8)
    if params.val_split_by == "review":
        fit_idx, val_idx = stratified_split(labels, params.val_split, params.seed)
        for side, idx in (("training", fit_idx), ("validation", val_idx)):
            if not len(idx):
                raise DataError(
                    f"data.val_split {params.val_split} leaves the {side} side empty for these "
                    f"{len(labels)} training reviews; choose a data.val_split that puts reviews on both sides"
                )
        return fit_idx, val_idx
    if train.movies is None or test.movies is None:
        reason = train.movies_error if train.movies is None else test.movies_error
        assert reason is not None  # a Split without movies says why
        raise reason
    return movie_split(labels, train.movies, test.movies, params.val_split, params.seed)


def movie_stats(train: list[str], val: list[str], test: list[str]) -> dict[str, int]:
    """Movies in each split and in two at once: a split by movie shares none with training."""
    fit, held, tested = set(train), set(val), set(test)
    return {
        "train": len(fit),
        "val": len(held),
        "test": len(tested),
        "shared_train_val": len(fit & held),
        "shared_train_test": len(fit & tested),
        "shared_val_test": len(held & tested),
    }


def split_stats(token_counts: np.ndarray, labels: np.ndarray, oov: int, maxlen: int) -> dict[str, Any]:
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


@dataclass
class Prepared:
    arrays: dict[str, dict[str, np.ndarray]]  # split -> {"x": ..., "y": ..., "lengths": ...}
    vocab: list[str]
    report: dict[str, Any]
    # what the data was made from: the archive's md5 and the data params (MLflow's dataset source)
    source: dict[str, Any]


def prepare_dataset(archive: str | os.PathLike, params: DataParams) -> Prepared:
    """Archive to train/val/test arrays, vocabulary (training split only) and data report."""
    splits = read_reviews(archive)
    train, test = splits["train"], splits["test"]
    train_labels = np.asarray(train.labels, dtype=np.uint8)
    fit_idx, val_idx = validation_split(train, test, params)
    parts = {
        "train": ([train.texts[i] for i in fit_idx], train_labels[fit_idx]),
        "val": ([train.texts[i] for i in val_idx], train_labels[val_idx]),
        "test": (test.texts, np.asarray(test.labels, dtype=np.uint8)),
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
        # lengths: tokens per review before truncation (start id not counted), for accuracy by length;
        # an extra array of the npz, so code that reads x and y reads it as before
        arrays[name] = {"x": x, "y": labels, "lengths": lengths.astype(np.int32)}
        stats[name] = split_stats(lengths, labels, oov, params.maxlen)
    movies = None  # unknown without the url files (possible with val_split_by: review)
    if train.movies is not None and test.movies is not None:
        movies = movie_stats([train.movies[i] for i in fit_idx], [train.movies[i] for i in val_idx], test.movies)
    report = {
        "splits": stats,
        "movies": movies,
        "skipped_files": {
            split: {"empty": s.skipped["empty"], "invalid_utf8": s.skipped["invalid_utf8"]}
            for split, s in splits.items()
        },
        "vocab_size": len(vocab) + INDEX_FROM,
        "maxlen": params.maxlen,
    }
    source = {"archive_md5": file_md5(archive), "params": asdict(params)}
    return Prepared(arrays=arrays, vocab=vocab, report=report, source=source)


def write_prepared(prepared: Prepared, out_dir: Path, params: DataParams) -> None:
    """Arrays + vocabulary, swapped into ``out_dir`` whole."""
    with atomic_dir(out_dir) as tmp:
        for name, arrays in prepared.arrays.items():
            save_npz(tmp / f"{name}.npz", **arrays)
        vocab = {
            "tokenizer": "lowercase; <br /> removed; tokens = runs of letters/digits with inner apostrophes",
            "pad_id": PAD_ID,
            "start_id": START_ID,
            "oov_id": OOV_ID,
            "index_from": INDEX_FROM,
            "max_features": params.max_features,
            "maxlen": params.maxlen,
            "padding": params.padding,
            "truncating": params.truncating,
            "source": prepared.source,
            "words": prepared.vocab,
        }
        (tmp / "vocab.json").write_text(json.dumps(vocab, indent=0, ensure_ascii=False) + "\n", encoding="utf-8")
