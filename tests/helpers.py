"""The one module of shared test helpers: synthetic archives, throw-away projects, params,
subprocess runs, MLflow queries, and reference implementations the library is checked against.

Import from test modules as ``from helpers import make_archive, run, ...`` (pytest puts ``tests/``
on ``sys.path``: it has no ``__init__.py``). ``conftest.py`` holds only fixtures.
"""

from __future__ import annotations

import contextlib
import copy
import io
import itertools
import os
import random
import re
import shutil
import signal
import socket
import subprocess
import sys
import tarfile
import time
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from imdb_rnn.processes import stop_group as stop_process_group

REPO_ROOT = Path(__file__).resolve().parents[1]
VENV_BIN = Path(sys.executable).parent

SPLITS = ("train", "test")
CLASSES = ("neg", "pos")

# --- a learnable synthetic corpus -------------------------------------------------------

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


# --- params ------------------------------------------------------------------------------

# Complete tiny params with one variant (write a whole file with it: write_params deep-merges,
# so it cannot remove the repository's other variants).
ONE_VARIANT = {
    "data": {"max_features": 200, "maxlen": 40, "val_split": 0.2, "padding": "pre", "truncating": "pre", "seed": 42},
    "train": {
        "epochs": 2,
        "batch_size": 32,
        "optimizer": "rmsprop",
        "learning_rate": 0.001,
        "seeds": [42],
        "restore_best": True,
        "backend": "tensorflow",
        "unroll": True,
        "deterministic": True,
    },
    "models": {
        "simple_rnn": {
            "max_features": 200,
            "embedding_dim": 8,
            "units": 8,
            "layers": 1,
            "dropout": 0.0,
            "recurrent_dropout": 0.0,
        }
    },
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


def write_params(path: str | os.PathLike, overrides: Mapping[str, Any], only_their_variants: bool = False) -> dict:
    """Deep-merge ``overrides`` into the params file at ``path`` (rewritten in place); return the result.

    A missing file starts from the repository's ``params.yaml``. Comments are not kept.
    ``only_their_variants``: the variants are exactly those of ``overrides`` (the others are dropped).
    """
    path = Path(path)
    source = path if path.is_file() else REPO_ROOT / "params.yaml"
    params = deep_merge(yaml.safe_load(source.read_text(encoding="utf-8")) or {}, dict(overrides))
    if only_their_variants:
        params["models"] = {name: params["models"][name] for name in overrides["models"]}
    path.write_text(yaml.safe_dump(params, sort_keys=False), encoding="utf-8")
    return params


# --- subprocesses ------------------------------------------------------------------------


def tool_env(env: Mapping[str, str | None] | None = None) -> dict[str, str]:
    """The environment for tools: venv ``bin`` first in PATH, telemetry off, plus ``env``.

    A ``None`` value in ``env`` removes that variable. ``MLFLOW_TRACKING_URI`` is dropped unless
    ``env`` sets it: a caller's server, or one set in-process (``mlflow.set_tracking_uri`` exports
    it), must not capture a test project's runs.
    """
    out = {k: v for k, v in os.environ.items() if k != "MLFLOW_TRACKING_URI"}
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
        [str(c) for c in cmd],
        cwd=cwd,
        env=tool_env(env),
        capture_output=True,
        text=True,
        timeout=timeout,
        stdin=subprocess.DEVNULL,
    )
    proc.elapsed = time.monotonic() - start  # type: ignore[attr-defined]
    if check and proc.returncode != 0:
        raise AssertionError(
            f"{' '.join(map(str, cmd))} exited {proc.returncode} in {cwd}\n"
            f"--- stdout ---\n{proc.stdout}\n--- stderr ---\n{proc.stderr}"
        )
    return proc


def start_queue(repo: Path, env: Mapping[str, str | None] | None = None, jobs: int = 2) -> None:
    """`dvc queue start -j N`. Its workers outlive it and inherit its stdout/stderr, so capturing
    them would wait for the whole queue: the output goes nowhere instead."""
    proc = subprocess.run(
        ["dvc", "queue", "start", "-j", str(jobs)],
        cwd=repo,
        env=tool_env(env),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        timeout=120,
    )
    assert proc.returncode == 0, f"dvc queue start exited {proc.returncode}"


def wait_until(ready, what: str, timeout: float = 60, interval: float = 0.05):
    """Poll ``ready()`` until it returns a truthy value (returned); fail naming ``what`` after ``timeout``."""
    deadline = time.monotonic() + timeout
    while not (value := ready()):
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not within {timeout} s")
        time.sleep(interval)
    return value


# --- projects ----------------------------------------------------------------------------

PROJECT_FILES = ("dvc.yaml", "params.yaml", ".gitignore", ".dvcignore")
PROJECT_DIRS = ("stages", "src")
_IGNORE = shutil.ignore_patterns("__pycache__", "*.pyc", "*.egg-info", ".pytest_cache")

# Two tiny variants (the lesson's two), deep-merged into the repository's params by write_params.
TINY = {
    "data": {"max_features": 200, "maxlen": 40},
    "train": {"epochs": 2, "batch_size": 32, "seeds": [42, 43]},
    "models": {
        "simple_rnn": {"max_features": 200, "embedding_dim": 8, "units": 8, "layers": 1},
        "stacked_rnn": {"max_features": 150, "embedding_dim": 8, "units": 8, "layers": 2},  # the top 150 words
    },
}


def make_project(folder: Path) -> Path:
    """Copy the project's pipeline files into ``folder`` and make it a committed git + DVC repo."""
    for name in PROJECT_FILES:
        shutil.copy2(REPO_ROOT / name, folder / name)
    for name in PROJECT_DIRS:
        shutil.copytree(REPO_ROOT / name, folder / name, ignore=_IGNORE)
    run(["git", "init", "-q"], folder)
    run(["git", "config", "user.name", "Test User"], folder)
    run(["git", "config", "user.email", "test@example.com"], folder)
    run(["git", "config", "commit.gpgsign", "false"], folder)
    run(["dvc", "init", "-q"], folder)
    run(["dvc", "config", "core.analytics", "false"], folder)
    copy_plot_settings(folder)
    run(["git", "add", "-A"], folder)
    run(["git", "commit", "-q", "-m", "test project"], folder)
    return folder


def copy_plot_settings(folder: Path) -> None:
    """The project's plot templates (``.dvc/plots``) and its ``[plots]`` config (the offline page template),
    so ``dvc plots`` in a test project draws what it draws in the repository."""
    from configobj import ConfigObj  # DVC's own config reader

    shutil.copytree(REPO_ROOT / ".dvc" / "plots", folder / ".dvc" / "plots")
    config = ConfigObj(str(folder / ".dvc" / "config"))
    config["plots"] = ConfigObj(str(REPO_ROOT / ".dvc" / "config"))["plots"]
    config.write()


def write_yaml(path: Path, data: dict) -> None:
    """Write a whole params file (write_params merges instead)."""
    Path(path).write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")


def ran_stages(output: str) -> set[str]:
    """The stages a `dvc repro` / `dvc exp run` output says it ran."""
    return {line.split("'")[1] for line in output.splitlines() if line.startswith("Running stage '")}


# Native log lines no user can act on: stages filter them (backend.filter_native_stderr).
NATIVE_NOISE = re.compile(
    r"absl::InitializeLog|oneDNN custom operations|oneDNN supports DT_BOOL|use_unbounded_threadpool|INFO mlflow"
)


def stage_stderr(text: str) -> list[str]:
    """The non-empty stderr lines of a stage: what it printed itself, as nothing else may appear."""
    return [line for line in text.splitlines() if line.strip()]


# --- servers -------------------------------------------------------------------------------


def free_port() -> int:
    """A TCP port free on 127.0.0.1 right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def stop_group(proc: subprocess.Popen) -> None:
    """Stop a server's process group (it runs uvicorn as a child) as the sweep stops a point's, then reap it."""
    stop_process_group(proc.pid, grace_s=20)
    proc.wait(timeout=10)


def answering(proc: subprocess.Popen, url: str, log: Path) -> Callable[[], bool]:
    """A ``wait_until`` probe for a server started as ``proc``: ``url`` answers 200. Fails at once, with
    the tail of the server's ``log``, when the process has exited."""
    import requests

    def probe() -> bool:
        assert proc.poll() is None, f"{proc.args[0]} exited {proc.returncode}:\n{Path(log).read_text()[-3000:]}"
        try:
            return requests.get(url, timeout=2).status_code == 200
        except requests.RequestException:
            return False

    return probe


@contextlib.contextmanager
def mlflow_service(command: str, store: str, folder: Path, *extra: str):
    """A real `mlflow <command>` (ui or server) on a free 127.0.0.1 port over ``store``, as the README
    starts it, with one worker and no job runner (each would be one more process to start on 2 cores):
    yields (its base URL, its Popen) once it answers /health; its process group is stopped at the end."""

    port = free_port()
    base = f"http://127.0.0.1:{port}"
    log_path = Path(folder) / f"mlflow-{command}.log"
    cmd = [
        VENV_BIN / "mlflow",
        command,
        "--backend-store-uri",
        store,
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--workers",
        "1",
        *extra,
    ]
    env = tool_env({"MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false", "MLFLOW_TRACKING_URI": None})
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(
            [str(c) for c in cmd],
            cwd=folder,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
        try:
            probe = answering(proc, f"{base}/health", log_path)
            wait_until(probe, f"mlflow {command} answering /health", timeout=120, interval=0.2)
            yield base, proc
        finally:
            stop_group(proc)


# --- MLflow -------------------------------------------------------------------------------


def mlflow_client(repo: Path):
    """A client on a project's default SQLite store."""
    import mlflow

    return mlflow.MlflowClient(tracking_uri=f"sqlite:///{Path(repo) / 'mlflow.db'}")


def experiment_runs(repo: Path, kind: str = "variant", name: str = "imdb-rnn"):
    """(client, runs): the runs of one kind (tag ``run_kind``): ``variant`` (one per variant and pipeline
    execution), ``seed`` (nested under it) or ``summary`` (in the summaries experiment)."""
    client = mlflow_client(repo)
    experiment = client.get_experiment_by_name(f"{name} summaries" if kind == "summary" else name)
    assert experiment is not None, "the pipeline created no MLflow experiment"
    runs = client.search_runs([experiment.experiment_id], max_results=500)
    return client, [r for r in runs if r.data.tags.get("run_kind") == kind]


# --- references the library is checked against ---------------------------------------------


def tokenize(text: str) -> list[str]:
    """Tokens of one review through the library's batch tokenizer."""
    from imdb_rnn.text import tokenize_batch

    flat, _ = tokenize_batch([text], workers=1)
    return flat.to_pylist()


def pad(sequences: list[list[int]], maxlen: int, padding: str = "pre", truncating: str = "pre") -> np.ndarray:
    """The library's ``pad_flat`` on lists of ids (to compare with ``keras.utils.pad_sequences``)."""
    from imdb_rnn.text import pad_flat

    lengths = np.fromiter(map(len, sequences), dtype=np.int64, count=len(sequences))
    flat = np.fromiter(itertools.chain.from_iterable(sequences), dtype=np.int32, count=int(lengths.sum()))
    return pad_flat(flat, lengths, maxlen, padding, truncating)


def simple_rnn_reference(
    inputs: np.ndarray, W: np.ndarray, U: np.ndarray, b: np.ndarray, return_sequences: bool = False
) -> np.ndarray:
    """The lesson's SimpleRNN as a plain loop: ``output_t = tanh(W·input_t + U·state_t + b)``.

    ``inputs`` is (timesteps, input_features); the state starts at zeros (Keras stores ``W.T``
    as ``kernel`` and ``U.T`` as ``recurrent_kernel``).
    """
    state_t = np.zeros((W.shape[0],), dtype=np.float64)
    outputs = []
    for input_t in inputs:
        output_t = np.tanh(W @ input_t + U @ state_t + b)
        outputs.append(output_t)
        state_t = output_t
    return np.stack(outputs) if return_sequences else state_t
