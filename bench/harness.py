"""The benchmarks' one fit harness (bench/benchmark.py, cells.py, stability.py, training_paths.py): a variant trained
exactly as the train stage trains it, or by the lesson's plain script, in a fresh interpreter, with its
numerics settings in the environment.

The Keras backend, TensorFlow's threads and oneDNN are fixed when a process starts, so every fit
runs in a child process (this file with ``--worker``), which also makes its peak memory its own.
The child trains the spec's seeds one after another (the pipeline's on one compiled model,
``SeedTrainer``, as the stage does) and writes one JSON line per finished seed, with the machine it
ran on (and, when the spec asks, its kept model's test accuracy), so a long study keeps every seed
that finished even when it is stopped. Callers put this workspace's ``src`` on ``sys.path``; a child
imports the ``src`` of the revision its spec names (``PYTHONPATH``).
"""

from __future__ import annotations

import argparse
import functools
import hashlib
import json
import os
import resource
import subprocess
import sys
import tarfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CODE_CACHE = ROOT / ".bench" / "code"  # other revisions' src/, for control rows (git-ignored)
COLLAPSED_BELOW = 0.70  # best validation accuracy under this: the model never generalised
KINDS = ("pipeline", "plain")  # the train stage's SeedTrainer, or bench/lesson_script.py

# Numerics settings: each changes the floating-point rounding the way another CPU does.
SETTINGS = {
    "default": {},
    "onednn-off": {"TF_ENABLE_ONEDNN_OPTS": "0"},
    "1-thread": {"TF_NUM_INTRAOP_THREADS": "1", "TF_NUM_INTEROP_THREADS": "1", "OMP_NUM_THREADS": "1"},
}


@dataclass
class FitSpec:
    """One variant's fits: params.yaml's settings with ``train``/``model`` overrides, over ``seeds``.

    ``kind`` "plain" fits the lesson's script instead (the variant's layers, ``train.epochs``; the script
    fixes everything else). ``data`` overrides params.yaml's data keys; the arrays then come from ``prepared``
    (a folder the prepare stage wrote with those keys, relative to the repository) instead of data/prepared.
    ``keras_optimizer``: Keras' own optimizer instead of ``make_optimizer``'s dense-gradient one (a training-paths
    study row). ``test``: each seed's kept model is also scored on the
    test split (``test_fields``; pipeline fits only)."""

    variant: str
    seeds: list[int]
    label: str = ""  # the study's name for these fits (a report row)
    train: dict = field(default_factory=dict)  # e.g. {"clipnorm": None, "epochs": 3}
    model: dict = field(default_factory=dict)
    data: dict = field(default_factory=dict)  # e.g. {"maxlen": 1000}, with ``prepared`` made at that maxlen
    prepared: str | None = None
    setting: str = "default"  # a key of SETTINGS
    code: str | None = None  # a git revision whose src/ trains instead of this workspace's
    limit: int | None = None  # train on N evenly spaced training reviews and N/4 validation ones
    kind: str = "pipeline"  # a key of KINDS
    keras_optimizer: bool = False
    test: bool = False

    def key(self, seed: int) -> str:
        """Everything that decides one seed's fit: the spec, the params and code it trains with, the data.
        A fit recorded under another key (params.yaml edited, code changed, data re-prepared) is stale.
        The fields added later count only when set, so the fits recorded before them keep their keys."""
        fields = {k: v for k, v in asdict(self).items() if k not in ("test", "data", "prepared") or v}
        spec = {**fields, "seeds": [seed], **fit_context(self.variant, self.code, self.prepared_dir())}
        return hashlib.sha256(json.dumps(spec, sort_keys=True).encode()).hexdigest()[:16]

    def prepared_dir(self) -> Path:
        return ROOT / (self.prepared or "data/prepared")


@functools.cache
def fit_context(variant: str, revision: str | None, prepared: Path) -> dict:
    """Hashes of the variant's params (data, train and its own entry), the code, and the prepared data."""
    import yaml

    from imdb_rnn.files import folder_md5

    root = code_root(revision)
    raw = yaml.safe_load((root / "params.yaml").read_text(encoding="utf-8"))
    params = {"data": raw.get("data"), "train": raw.get("train"), "variant": raw["models"][variant]}
    code = hashlib.sha256()
    for path in sorted((root / "src").rglob("*.py")):
        code.update(path.relative_to(root).as_posix().encode() + path.read_bytes())
    return {
        "params": hashlib.sha256(json.dumps(params, sort_keys=True).encode()).hexdigest(),
        "code": code.hexdigest(),
        "data": folder_md5(prepared),
    }


def code_root(revision: str | None) -> Path:
    """The folder whose ``src/`` and ``params.yaml`` a fit uses: this workspace, or another revision's
    (extracted once from git: its code with its own defaults, e.g. a control row's)."""
    if revision is None:
        return ROOT
    commit = subprocess.run(
        ["git", "rev-parse", "--verify", f"{revision}^{{commit}}"], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout.strip()
    folder = CODE_CACHE / commit
    if not (folder / "src").is_dir():
        folder.mkdir(parents=True, exist_ok=True)
        archive = subprocess.run(
            ["git", "archive", commit, "src", "params.yaml"], cwd=ROOT, capture_output=True, check=True
        ).stdout
        tmp = folder / "src.tar"
        tmp.write_bytes(archive)
        with tarfile.open(tmp) as tar:
            tar.extractall(folder, filter="data")
        tmp.unlink()
    return folder


def commit_of(root: Path) -> str:
    """The git commit a code folder holds: an extracted revision's folder name, else the workspace's HEAD
    (``+changes`` when its src/ differs from it)."""
    if root != ROOT:
        return root.name
    head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True, text=True).stdout.strip()
    dirty = subprocess.run(["git", "diff", "--quiet", "HEAD", "--", "src", "params.yaml"], cwd=ROOT).returncode
    return head + ("+changes" if dirty else "")


def run_fits(spec: FitSpec, results: Path, log=sys.stderr) -> dict:
    """Train ``spec``'s seeds in one fresh interpreter; each finished seed is appended to ``results``
    (JSON lines). Returns the process' exit code, wall seconds and peak RSS in MB."""
    from imdb_rnn.machine import describe_machine, numerics  # the caller's imdb_rnn; the child imports spec.code's

    env = {**os.environ, "KERAS_BACKEND": "tensorflow", "TF_CPP_MIN_LOG_LEVEL": "2", **SETTINGS[spec.setting]}
    code = code_root(spec.code)
    env["PYTHONPATH"] = str(code / "src")
    described = {"machine": describe_machine(), "numerics": numerics(env), "commit": commit_of(code)}
    cmd = [sys.executable, str(Path(__file__).resolve()), "--worker", json.dumps(asdict(spec)), str(results)]
    cmd += ["--params", str(code / "params.yaml"), "--described", json.dumps(described)]
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=log, stderr=log)
    _, status, usage = os.wait4(proc.pid, 0)
    return {
        "exit": os.waitstatus_to_exitcode(status),
        "wall_s": time.perf_counter() - start,
        "peak_mb": usage.ru_maxrss / 1024,
    }


def read_results(path: Path) -> list[dict]:
    """Every fit recorded in a results file (JSON lines), oldest first; none for a missing file."""
    if not path.is_file():
        return []
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def missing_seeds(spec: FitSpec, results: list[dict]) -> list[int]:
    """The spec's seeds with no fit recorded under their current key (params, code and data unchanged)."""
    done = {r["key"] for r in results}
    return [seed for seed in spec.seeds if spec.key(seed) not in done]


def newest_fits(results: list[dict], label: str, setting: str, seeds: list[int]) -> list[dict]:
    """A study row's recorded fits in one setting, the newest per seed in ``seeds``' order (whatever code they
    ran: see ``commit``)."""
    newest = {r["seed"]: r for r in results if r["label"] == label and r["setting"] == setting}
    return [newest[s] for s in seeds if s in newest]


def recorded_machine(fit: dict) -> dict:
    """The machine a recorded fit ran on; fits recorded before ``describe_machine`` carry only the CPU's
    ``cpu_model`` text and the library versions."""
    return fit.get("machine") or {"cpu": fit.get("cpu", "not recorded"), "versions": fit.get("versions", {})}


# --- the worker: runs in the child -------------------------------------------------------


def variant_params(spec: FitSpec, params_file: Path):
    """The params file with the spec's overrides on its variant, validated as the stages validate it."""
    import yaml

    from imdb_rnn.config import load_params, parse_params

    load_params(params_file)  # valid as it stands
    raw = yaml.safe_load(params_file.read_text(encoding="utf-8"))
    variant = dict(raw["models"][spec.variant])
    variant.update(spec.model)
    variant["train"] = {**(variant.get("train") or {}), **spec.train, "seeds": spec.seeds}
    raw["models"] = {spec.variant: variant}
    raw["data"] = {**raw["data"], **spec.data}
    return parse_params(raw)


def every_nth(arrays: dict, n: int) -> dict:
    """``n`` evenly spaced rows: the prepared files are sorted by class, so the first rows are all negative."""
    import numpy as np

    rows = np.arange(n) * len(arrays["y"]) // n
    return {k: v[rows] for k, v in arrays.items()}


def load_data(spec: FitSpec, params) -> tuple[dict, dict]:
    """The prepared train and val arrays in the variant's vocabulary (ids at or above its max_features are
    out-of-vocabulary, as the pipeline reads them); with ``spec.limit``, N and N/4 evenly spaced rows."""
    from imdb_rnn.errors import ImdbRnnError
    from imdb_rnn.files import load_npz
    from imdb_rnn.text import within_vocabulary

    prepared = spec.prepared_dir()
    max_features = params.model(spec.variant).max_features
    train, val = (within_vocabulary(load_npz(prepared / f"{s}.npz"), max_features) for s in ("train", "val"))
    if train["x"].shape[1] != params.data.maxlen:
        raise ImdbRnnError(f"{prepared} holds {train['x'].shape[1]} ids a review, not data.maxlen {params.data.maxlen}")
    if spec.limit:
        if spec.limit > len(train["y"]) or spec.limit // 4 > len(val["y"]):
            raise ImdbRnnError(f"limit {spec.limit} exceeds the {len(train['y'])} prepared training reviews")
        train, val = every_nth(train, spec.limit), every_nth(val, spec.limit // 4)
    return train, val


def load_test(spec: FitSpec, params) -> dict:
    """The prepared test arrays in the variant's vocabulary, as the evaluate stage reads them; with ``spec.limit``,
    N evenly spaced rows."""
    from imdb_rnn.prepared import load_split

    test = load_split(spec.prepared_dir(), "test", params.model(spec.variant).max_features)
    return every_nth(test, min(spec.limit, len(test["y"]))) if spec.limit else test


def test_fields(model, variant: str, params, test: dict) -> dict:
    """A seed's kept model scored on the test split as the evaluate stage scores a seed's saved model: its
    ``inference_copy`` (Keras' own layers), every review at maxlen, positive at probability >= 0.5."""
    import numpy as np

    from imdb_rnn.evaluate import classification_metrics, predict_probabilities
    from imdb_rnn.model import inference_copy

    start = time.perf_counter()
    copy = inference_copy(model, variant, params.model(variant))
    prob = predict_probabilities(copy, np.asarray(test["x"], dtype=np.int32))
    finite = bool(np.all(np.isfinite(prob)))
    metrics = classification_metrics(test["y"], prob) if finite else {"accuracy": None, "roc_auc": None}
    return {
        "test_accuracy": None if metrics["accuracy"] is None else round(metrics["accuracy"], 6),
        "test_roc_auc": None if metrics["roc_auc"] is None else round(metrics["roc_auc"], 6),
        "test_reviews": len(test["y"]),
        "test_s": round(time.perf_counter() - start, 2),
        "parameters": copy.count_params(),
    }


def lesson_architecture(model_params) -> bool:
    """The plain script's layers exactly: N x SimpleRNN(32) on Embedding(10000, 32), last output (masking changes
    no layer). The script fits any variant's N layers, but compares with the pipeline only on these."""
    m = model_params
    return (m.max_features, m.embedding_dim, m.units, m.pooling, m.bidirectional, m.spatial_dropout) == (
        10000, 32, 32, "last", False, 0.0,
    )  # fmt: skip


def plain_fit(spec: FitSpec, params, train: dict, val: dict):
    """A fit function for the lesson's script, with the variant's number of layers (its sizes are the script's):
    train + val with ``validation_split``, which then validates on exactly ``val`` (checked). Its rows are
    ``SeedTrainer``'s history rows."""
    import keras
    import lesson_script
    import numpy as np

    from imdb_rnn.errors import ImdbRnnError

    model, epochs = params.model(spec.variant), params.train_for(spec.variant).epochs
    if model.max_features > lesson_script.max_features:
        raise ImdbRnnError(
            f"{spec.variant}'s max_features {model.max_features} exceeds the lesson model's "
            f"Embedding({lesson_script.max_features})"
        )
    x = np.concatenate([train["x"], val["x"]]).astype(np.int32)  # int32, as pad_sequences returns
    y = np.concatenate([train["y"], val["y"]])
    validated = len(y) - int(len(y) * (1.0 - lesson_script.validation_split))  # Keras: the last rows validate
    if validated != len(val["y"]):
        raise ImdbRnnError(
            f"validation_split={lesson_script.validation_split} of {len(y)} reviews validates on {validated}, not "
            f"the {len(val['y'])} of val.npz: prepare with data.val_split 0.2 (and use a limit divisible by 4)"
        )

    def fit(seed: int, on_epoch) -> None:
        keras.utils.set_random_seed(seed)
        h = lesson_script.fit_lesson_model(x, y, model.layers, epochs).history
        for i, seconds in enumerate(h["epoch_seconds"]):
            keys = {"loss": "loss", "accuracy": "acc", "val_loss": "val_loss", "val_accuracy": "val_acc"}
            on_epoch({"seed": seed, "epoch": i + 1, **{k: float(h[v][i]) for k, v in keys.items()}, "seconds": seconds})

    return fit


def pipeline_fit(spec: FitSpec, params, train: dict, val: dict):
    """A fit function for the train stage's ``SeedTrainer`` (one compiled model for every seed); it returns
    where a seed diverged, if it did, and with ``spec.test`` the kept model's ``test_fields`` (None where the
    seed kept no finite epoch)."""
    from imdb_rnn.fitting import SeedTrainer

    trainer = SeedTrainer(spec.variant, params)
    test = load_test(spec, params) if spec.test else None

    def fit(seed: int, on_epoch) -> dict:
        if spec.keras_optimizer and trainer.model is None:
            keras_optimizer_model(trainer, seed)
        result = trainer.fit_seed(seed, train, val, on_epoch)
        fields = {"diverged": str(result.diverged) if getattr(result, "diverged", None) else None}
        if test is not None:
            fields["kept_epoch"] = result.kept_epoch or None
            fields["test"] = test_fields(trainer.model, spec.variant, params, test) if result.has_model else None
        return fields

    return fit


def keras_optimizer_model(trainer, seed: int) -> None:
    """Give ``trainer`` its model compiled with Keras' own optimizer (sparse Embedding updates) instead of
    ``make_optimizer``'s, before its first seed (which then starts from this model as it would from its own)."""
    import keras
    import numpy as np

    from imdb_rnn.model import compile_model

    t = trainer.train_params
    trainer.model = trainer.build(seed)
    optimizer = keras.optimizers.get(t.optimizer).__class__(learning_rate=t.learning_rate, clipnorm=t.clipnorm)
    compile_model(trainer.model, t, optimizer)
    trainer.model.optimizer.build(trainer.model.trainable_variables)
    trainer._optimizer_start = [np.asarray(v.numpy()).copy() for v in trainer.model.optimizer.variables]


def worker(spec: FitSpec, results: Path, params_file: Path, described: dict) -> None:
    """Fit every seed of ``spec`` on the prepared data; one JSON line per seed, diverged ones included."""
    from imdb_rnn.backend import select_backend
    from imdb_rnn.errors import ImdbRnnError
    from imdb_rnn.files import folder_md5
    from imdb_rnn.memory import require_training_memory

    if spec.test and spec.kind == "plain":
        raise ImdbRnnError("test scoring is the pipeline's: the plain script keeps no model")
    params = variant_params(spec, params_file)
    if spec.kind == "pipeline":
        require_training_memory(params, spec.variant)  # refused where the train stage would refuse it
    select_backend("tensorflow" if spec.kind == "plain" else params.train_for(spec.variant).backend)
    train, val = load_data(spec, params)
    fit = (plain_fit if spec.kind == "plain" else pipeline_fit)(spec, params, train, val)
    data_hash = folder_md5(spec.prepared_dir())
    for seed in spec.seeds:
        rows: list[dict] = []
        fields: dict = {}  # where it diverged; with spec.test, its kept epoch and test scores
        start, load = time.perf_counter(), os.getloadavg()[0]
        try:
            fields = fit(seed, rows.append) or {}
        except ImdbRnnError as exc:  # code that stops a diverged seed with an error (the control revision)
            fields = {"diverged": str(exc)}
        test = fields.pop("test", None)
        line = {
            "key": spec.key(seed),
            "label": spec.label,
            "kind": spec.kind,
            "variant": spec.variant,
            "setting": spec.setting,
            "seed": seed,
            "history": rows,
            "best_val_accuracy": max((r["val_accuracy"] for r in rows), default=None),
            "diverged": None,
            **fields,
            "fit_s": round(time.perf_counter() - start - (test or {}).get("test_s", 0), 2),  # build+compile+epochs
            "load_1min": [round(load, 2), round(os.getloadavg()[0], 2)],  # the load average at its start and end
            "peak_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
            "data_hash": data_hash,
            "train_reviews": len(train["y"]),
            "val_reviews": len(val["y"]),
            **({"test": test} if spec.test else {}),
            **described,
        }
        with open(results, "a", encoding="utf-8") as out:
            out.write(json.dumps(line) + "\n")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--worker", required=True, help="a FitSpec as JSON")
    parser.add_argument("results", type=Path, help="JSON lines file each finished seed is appended to")
    parser.add_argument("--params", type=Path, required=True, help="the params file the fits start from")
    parser.add_argument("--described", required=True, help="machine, numerics and commit, as JSON, for each line")
    args = parser.parse_args()
    from imdb_rnn.errors import ImdbRnnError

    try:
        worker(FitSpec(**json.loads(args.worker)), args.results, args.params, json.loads(args.described))
    except ImdbRnnError as exc:  # a fit that cannot be made: one line for the caller's log, exit 1
        sys.exit(f"error: {exc}")
