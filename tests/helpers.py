"""Shared test helpers: synthetic aclImdb archives, params overrides, subprocess runs.

Import from test modules as ``from helpers import make_archive, run, write_params, REPO_ROOT``
(pytest puts ``tests/`` on ``sys.path``: it has no ``__init__.py``). ``conftest.py`` exposes
the same things as fixtures.
"""

from __future__ import annotations

import copy
import io
import os
import random
import signal
import subprocess
import sys
import tarfile
import time
from pathlib import Path
from typing import Any, Iterable, Mapping

import yaml

REPO_ROOT = Path(__file__).resolve().parents[1]
VENV_BIN = Path(sys.executable).parent

SPLITS = ("train", "test")
CLASSES = ("neg", "pos")

# --- a learnable synthetic corpus -------------------------------------------------------

POSITIVE_WORDS = (
    "great", "wonderful", "loved", "excellent", "brilliant", "superb",
    "enjoyable", "beautiful", "moving", "masterpiece", "fantastic", "charming",
)
NEGATIVE_WORDS = (
    "terrible", "awful", "boring", "hated", "waste", "dull",
    "worst", "poor", "stupid", "disappointing", "horrible", "mess",
)
FILLER_WORDS = (
    "the", "movie", "film", "plot", "actor", "story", "scene", "was", "and", "it",
    "this", "a", "of", "director", "character", "ending", "music", "i", "really", "very",
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


# --- archives ----------------------------------------------------------------------------


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
) -> Path:
    """Write a ``.tar.gz`` in the official layout ``<top>/{train,test}/{pos,neg}/<id>_<rating>.txt``.

    ``reviews`` maps (split, cls) to review texts (str is UTF-8 encoded, bytes are written
    as they are); default: ``default_reviews()``. Only the (split, cls) folders named in
    ``reviews`` are created, so leaving one out makes an archive that lacks that folder.
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
                for i, text in enumerate(reviews[(split, cls)]):
                    data = text.encode("utf-8") if isinstance(text, str) else bytes(text)
                    info = tarfile.TarInfo(f"{top}/{split}/{cls}/{review_name(i, cls)}")
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


# --- params ------------------------------------------------------------------------------

# Complete tiny params with one variant (write a whole file with it: write_params deep-merges,
# so it cannot remove the repository's other variants).
ONE_VARIANT = {
    "data": {"max_features": 200, "maxlen": 40, "val_split": 0.2, "padding": "pre", "truncating": "pre",
             "seed": 42},
    "train": {"epochs": 2, "batch_size": 32, "optimizer": "rmsprop", "learning_rate": 0.001, "seed": 42,
              "restore_best": True, "backend": "tensorflow", "unroll": True, "deterministic": True},
    "models": {"simple_rnn": {"embedding_dim": 8, "units": 8, "layers": 1, "dropout": 0.0,
                              "recurrent_dropout": 0.0}},
    "mlflow": {"experiment": "imdb-rnn"},
}


def deep_merge(base: Any, overrides: Any) -> Any:
    """``overrides`` merged into a copy of ``base``: mappings recursively, anything else replaced."""
    if not (isinstance(base, dict) and isinstance(overrides, dict)):
        return copy.deepcopy(overrides)
    merged = copy.deepcopy(base)
    for key, value in overrides.items():
        merged[key] = deep_merge(merged[key], value) if key in merged else copy.deepcopy(value)
    return merged


def write_params(path: str | os.PathLike, overrides: Mapping[str, Any]) -> dict:
    """Deep-merge ``overrides`` into the params file at ``path`` (rewritten in place); return the result.

    A missing file starts from the repository's ``params.yaml``. Comments are not kept.
    """
    path = Path(path)
    source = path if path.is_file() else REPO_ROOT / "params.yaml"
    params = deep_merge(yaml.safe_load(source.read_text(encoding="utf-8")) or {}, dict(overrides))
    path.write_text(yaml.safe_dump(params, sort_keys=False), encoding="utf-8")
    return params


# --- subprocesses ------------------------------------------------------------------------


def tool_env(env: Mapping[str, str | None] | None = None) -> dict[str, str]:
    """The environment for tools: venv ``bin`` first in PATH, telemetry off, plus ``env``.

    A ``None`` value in ``env`` removes that variable.
    """
    out = dict(os.environ)
    out["PATH"] = os.pathsep.join([str(VENV_BIN), out.get("PATH", "")])
    out.update(
        MLFLOW_DISABLE_TELEMETRY="true",
        DVC_NO_ANALYTICS="true",
        TF_CPP_MIN_LOG_LEVEL="2",
        GIT_TERMINAL_PROMPT="0",
    )
    for key, value in (env or {}).items():
        if value is None:
            out.pop(key, None)
        else:
            out[key] = str(value)
    return out


def default_sigint() -> None:
    """``preexec_fn`` for a child that a test interrupts with SIGINT.

    A shell without job control starts background jobs with SIGINT ignored, and a child inherits
    that (Python then installs no KeyboardInterrupt handler): restore the default, so the test
    sends the signal a user's Ctrl-C sends, however the suite itself was started.
    """
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def run(
    cmd: list[str],
    cwd: str | os.PathLike,
    env: Mapping[str, str | None] | None = None,
    check: bool = True,
    timeout: float = 300,
) -> subprocess.CompletedProcess[str]:
    """Run ``cmd`` (text, output captured) with ``tool_env(env)``.

    With ``check``, a non-zero exit fails the test with the command's stdout and stderr.
    """
    start = time.monotonic()
    proc = subprocess.run(
        [str(c) for c in cmd], cwd=cwd, env=tool_env(env), capture_output=True, text=True, timeout=timeout,
        stdin=subprocess.DEVNULL,
    )
    proc.elapsed = time.monotonic() - start  # type: ignore[attr-defined]
    if check and proc.returncode != 0:
        raise AssertionError(
            f"{' '.join(map(str, cmd))} exited {proc.returncode} in {cwd}\n"
            f"--- stdout ---\n{proc.stdout}\n--- stderr ---\n{proc.stderr}"
        )
    return proc
