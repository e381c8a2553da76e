"""Faults a real run meets: signals mid-epoch, divergence, corrupt or foreign model files,
nondeterminism, and a failing experiment in a DVC queue.

Everything here is the real thing on small synthetic data: stage scripts and ``dvc`` as
subprocesses, real SIGTERM/SIGINT, the MLflow store read back with ``MlflowClient``.

The signal tests, the recovery ``dvc repro``, the determinism check and the queue share one
project (module fixtures) so the whole module costs a few TensorFlow start-ups, not a dozen.
"""

from __future__ import annotations

import json
import re
import shutil
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pandas as pd
import pytest

from imdb_rnn.faults import FAULT_ENV
from support.commands import REPO_ROOT, VENV_BIN, default_sigint, run, start_queue, tool_env, wait_until
from support.corpus import default_reviews, make_archive
from support.params import ONE_VARIANT, write_yaml
from support.projects import make_project, ran_stages, stage_stderr
from support.tracking import mlflow_client

pytestmark = pytest.mark.slow  # real dvc repro / queues / servers / signals

VARIANT = "simple_rnn"
TINY = ONE_VARIANT
# One epoch lasts ~2-4 s on a 2-core machine (60 steps of batch 8 over 200 time steps, not
# unrolled) and there are 50 of them: a signal sent after the first epoch lands in training.
SLOW = {
    **TINY,
    "data": {**TINY["data"], "maxlen": 200},
    "train": {**TINY["train"], "epochs": 50, "batch_size": 8, "unroll": False},
    "models": {VARIANT: {**TINY["models"][VARIANT], "embedding_dim": 32, "units": 32}},
}
SLOW_REVIEWS_PER_CLASS = 300  # about 480 training reviews after the validation split


def variant_runs(repo: Path) -> list:
    """Every run of the variant in the project's store: its variant runs and their nested seed runs.

    No store yet: no runs (opening one with MlflowClient would create it, racing the stage).
    """
    if not (repo / "mlflow.db").is_file():
        return []
    client = mlflow_client(repo)
    experiment = client.get_experiment_by_name("imdb-rnn")
    if experiment is None:
        return []
    runs = client.search_runs([experiment.experiment_id], max_results=500)
    return [r for r in runs if r.data.tags.get("variant") == VARIANT]


def leftovers(repo: Path) -> list[Path]:
    """Temp files and folders the atomic writers use (``.<name>.*`` beside the output)."""
    found = []
    for folder, pattern in (
        (repo / "models", f".{VARIANT}.*"),
        (repo / "reports" / "variants" / VARIANT, ".history.csv.*"),
        (repo / "reports" / "variants" / VARIANT, ".*.tmp"),
    ):
        if folder.is_dir():
            found += list(folder.glob(pattern))
    return found


def dvc_status(repo: Path) -> dict:
    return json.loads(run(["dvc", "status", "--json"], repo).stdout or "{}")


# --- 1. SIGTERM / SIGINT in the middle of an epoch ------------------------------------------


@pytest.fixture(scope="module")
def workflow(tmp_path_factory):
    """A committed project whose data is prepared with SLOW params (training takes minutes)."""
    archive = make_archive(
        tmp_path_factory.mktemp("archive") / "aclImdb_v1.tar.gz", default_reviews(SLOW_REVIEWS_PER_CLASS)
    )
    repo = make_project(tmp_path_factory.mktemp("reliability"))
    write_yaml(repo / "params.yaml", SLOW)
    run(["git", "commit", "-qam", "slow params"], repo)
    env = {"IMDB_SOURCE": archive}
    run(["dvc", "repro", "prepare"], repo, env=env)
    return repo, env


# Keras verbose=2 prints a header when an epoch starts and one line when it ends
EPOCH_END = re.compile(r"^seed \d+ epoch \d+/\d+: .*val_accuracy", re.M)  # the stage's line per finished epoch


def wait_for(proc, out_path: Path, err_path: Path, ready, what: str, timeout: float = 180) -> str:
    """Poll the process' stdout until ``ready(text)``; fail if it exits or the time runs out."""
    deadline = time.monotonic() + timeout
    while not ready(text := out_path.read_text()):
        assert proc.poll() is None, f"train exited early ({proc.returncode}):\n{err_path.read_text()}"
        assert time.monotonic() < deadline, f"no {what} within {timeout} s:\n{text}"
        time.sleep(0.05)
    return text


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_signal_mid_epoch_kills_the_run_and_leaves_no_output(workflow, signum, tmp_path):
    repo, env = workflow
    shutil.rmtree(repo / ".checkpoints", ignore_errors=True)  # a fresh training: the other signal's would resume
    before = {r.info.run_id for r in variant_runs(repo)}
    out_path, err_path = tmp_path / "stdout.txt", tmp_path / "stderr.txt"
    with open(out_path, "w") as out, open(err_path, "w") as err:
        proc = subprocess.Popen(
            [sys.executable, "stages/train.py", VARIANT],
            cwd=repo,
            env=tool_env({**env, "PYTHONUNBUFFERED": "1"}),
            stdout=out,
            stderr=err,
            preexec_fn=default_sigint,
        )
    try:
        # an epoch printed, then logged to MLflow: the stage is past that epoch's end, in the next
        # one (an epoch lasts seconds: 60 steps of batch 8), when the signal goes
        wait_for(proc, out_path, err_path, EPOCH_END.search, "finished epoch")
        new = [r for r in variant_runs(repo) if r.info.run_id not in before]
        assert sorted(r.data.tags["run_kind"] for r in new) == ["seed", "variant"], new
        assert {r.info.status for r in new} == {"RUNNING"}
        run_id = next(r.info.run_id for r in new if r.data.tags["run_kind"] == "seed")  # it holds the curves
        client = mlflow_client(repo)
        printed = len(EPOCH_END.findall(out_path.read_text()))
        wait_until(
            lambda: len(client.get_metric_history(run_id, "val_accuracy")) >= printed,
            "the printed epoch logged to MLflow",
            timeout=60,
            interval=0.02,
        )
        proc.send_signal(signum)
        sent = time.monotonic()
        code = proc.wait(timeout=20)
        stopped_in = time.monotonic() - sent
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    stderr = err_path.read_text()
    assert code == 130, f"exit {code} after {signum!r}:\n{stderr}"
    assert "Traceback" not in stderr, stderr
    assert stage_stderr(stderr)[-1].startswith("error: interrupted: training stopped"), stderr

    for r in (mlflow_client(repo).get_run(x.info.run_id) for x in new):  # the variant's run and the seed's
        assert r.info.status == "KILLED", r.info.status
        assert r.info.end_time is not None
    epochs_logged = len(mlflow_client(repo).get_metric_history(run_id, "val_accuracy"))
    # mid-epoch: the epoch under way when the signal came was not logged (an epoch is logged,
    # then printed: a signal between the two leaves one more logged than printed)
    finished = len(EPOCH_END.findall(out_path.read_text()))
    assert finished >= 1, (epochs_logged, finished)
    assert finished <= epochs_logged <= finished + 1, (epochs_logged, finished)
    assert not any(x.info.status == "RUNNING" for x in variant_runs(repo))

    assert not (repo / "models" / VARIANT).exists()
    assert not (repo / "reports" / "variants" / VARIANT / "history.csv").exists()
    assert leftovers(repo) == []
    assert list((repo / ".checkpoints" / VARIANT).glob("*/seed_42.npz"))  # its finished epochs, for a resume
    # DVC sees the missing outputs: the train stage is not mistaken for up to date
    assert f"train@{VARIANT}" in dvc_status(repo)
    print(f"{signum!r} in epoch {finished + 1}: exit {code} {stopped_in:.1f} s after the signal")


@pytest.fixture(scope="module")
def reproduced(workflow):
    """The same project after the interrupts: TINY params committed, then a full `dvc repro`."""
    repo, env = workflow
    write_yaml(repo / "params.yaml", TINY)
    run(["git", "commit", "-qam", "tiny params"], repo)
    proc = run(["dvc", "repro"], repo, env=env, timeout=600)
    return repo, env, proc


def test_repro_after_interrupted_training_trains_again_and_is_clean(reproduced):
    repo, _, proc = reproduced
    assert {f"train@{VARIANT}", f"evaluate@{VARIANT}", "report"} <= ran_stages(proc.stdout)
    assert f"{VARIANT}: discarded the checkpoint of" in proc.stdout  # the interrupted training had other params
    assert "made with other data, params (" in proc.stdout  # SLOW's maxlen made other prepared data
    assert {p.name for p in (repo / "models" / VARIANT).iterdir()} == {
        "model.keras",
        "summary.txt",
        "run.json",
        "seed_42",
    }
    assert pd.read_csv(repo / "reports" / "variants" / VARIANT / "history.csv")["epoch"].tolist() == [1, 2]
    assert dvc_status(repo) == {"track": ["always changed"]}  # it runs on every repro
    assert leftovers(repo) == []
    run_json = json.loads((repo / "models" / VARIANT / "run.json").read_text())
    statuses = {r.info.run_id: r.info.status for r in variant_runs(repo)}
    assert statuses.pop(run_json["run_id"]) == statuses.pop(run_json["seed_runs"]["42"]) == "FINISHED"
    assert set(statuses.values()) <= {"KILLED"}  # the interrupted runs stay KILLED, none RUNNING


# --- 4. determinism ---------------------------------------------------------------------


def test_same_data_and_params_give_identical_metrics_and_history(reproduced, tmp_path):
    """Train and evaluate again (same prepared data and params) into other folders: the test
    metrics and every per-epoch loss/accuracy are bit-identical (timings excluded)."""
    repo, env, _ = reproduced
    models, reports = tmp_path / "models", tmp_path / "reports"
    for stage in ("train", "evaluate"):
        run([sys.executable, f"stages/{stage}.py", VARIANT, "--models", models, "--reports", reports], repo, env=env)
    first, second = repo / "reports" / "variants" / VARIANT, reports / VARIANT
    assert json.loads((second / "metrics.json").read_text()) == json.loads((first / "metrics.json").read_text())
    assert (second / "metrics.json").read_bytes() == (first / "metrics.json").read_bytes()
    h1, h2 = (pd.read_csv(d / "history.csv").drop(columns="seconds") for d in (first, second))
    pd.testing.assert_frame_equal(h1, h2, check_exact=True)
    assert (second / "roc.csv").read_bytes() == (first / "roc.csv").read_bytes()


# --- 5. a failing queued experiment does not take the others down ---------------------------


def queue_table(repo: Path) -> dict[str, str]:
    """`dvc queue status`: experiment name -> status."""
    out = run(["dvc", "queue", "status"], repo).stdout
    rows = {}
    for line in out.splitlines():
        parts = line.split()
        if len(parts) >= 4 and parts[-1] in {"Queued", "Running", "Success", "Failed"} and parts[0] != "Task":
            rows[parts[1]] = parts[-1]
    return rows


def test_failed_queued_experiment_leaves_the_other_intact(reproduced):
    repo, env, _ = reproduced
    run(["git", "add", "-A"], repo)
    run(["git", "commit", "-qm", "tiny repro"], repo)

    # DIVERGING_LR makes the first update overflow (see DIVERGING); DVC writes it as `3e+38`
    # (YAML 1.2), see test_dvc_set_exponent_floats_pass_params_validation.
    out = run(["dvc", "exp", "run", "--queue", "-S", f"train.learning_rate={DIVERGING_LR:g}"], repo, env=env).stdout
    bad_name = re.search(r"Queued experiment '([^']+)'", out).group(1)
    out = run(["dvc", "exp", "run", "--queue", "-S", f"models.{VARIANT}.units=4"], repo, env=env).stdout
    good_name = re.search(r"Queued experiment '([^']+)'", out).group(1)
    assert queue_table(repo) == {bad_name: "Queued", good_name: "Queued"}

    try:
        start_queue(repo, env)
        deadline = time.monotonic() + 240
        while True:
            table = queue_table(repo)
            if not {"Queued", "Running"} & set(table.values()):
                break
            assert time.monotonic() < deadline, f"queue not done in 240 s: {table}"
            time.sleep(5)
    finally:
        run(["dvc", "queue", "stop", "--kill"], repo, env=env, check=False)
    assert table == {bad_name: "Failed", good_name: "Success"}
    logs = run(["dvc", "queue", "logs", bad_name], repo, env=env, check=False).stdout
    assert any(DIVERGED_LINE.match(line) for line in logs.splitlines()), logs[-2000:]

    shown = json.loads(run(["dvc", "exp", "show", "--json"], repo, env=env).stdout)
    revs = {r.get("name"): r for commit in shown for e in commit.get("experiments") or [] for r in e["revs"]}
    good = revs[good_name]["data"]
    metrics = good["metrics"][f"reports/variants/{VARIANT}/metrics.json"]["data"]
    assert {"accuracy", "loss", "precision", "recall", "f1", "roc_auc", "best_val_accuracy"} <= set(metrics)
    assert 0 <= metrics["accuracy"] <= 1
    assert good["params"]["params.yaml"]["data"]["models"][VARIANT]["units"] == 4

    # queued runs log into the workspace's store (found from the temp workspace's path)
    by_exp = {}
    for r in variant_runs(repo):
        by_exp.setdefault(r.data.tags.get("dvc_exp_name"), {})[r.data.tags["run_kind"]] = r
    assert {kind: r.info.status for kind, r in by_exp[bad_name].items()} == {"variant": "FAILED", "seed": "FAILED"}
    assert {kind: r.info.status for kind, r in by_exp[good_name].items()} == {"variant": "FINISHED", "seed": "FINISHED"}
    good_run = by_exp[good_name]["variant"]
    assert good_run.data.params["model.units"] == "4"
    assert good_run.data.metrics["test_accuracy_mean"] == pytest.approx(metrics["accuracy"], abs=1e-6)


def test_dvc_set_exponent_floats_pass_params_validation(tmp_path, small_archive):
    """`dvc exp run -S train.learning_rate=1e-5` (a routine sweep value) writes `1e-05`, a float
    in YAML 1.2 but a string to PyYAML's 1.1 rules: params validation must read it as 1e-05.
    (``prepare`` validates the whole params file, so it is enough to reproduce.)"""
    repo = make_project(tmp_path)
    write_yaml(repo / "params.yaml", TINY)
    run(["git", "commit", "-qam", "tiny params"], repo)
    proc = run(
        ["dvc", "exp", "run", "-S", "train.learning_rate=1e-5", "prepare"],
        repo,
        env={"IMDB_SOURCE": small_archive},
        check=False,
        timeout=300,
    )
    assert re.search(r"^  learning_rate: 1e-05$", (repo / "params.yaml").read_text(), re.M)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    assert "Running stage 'prepare'" in proc.stdout

    from imdb_rnn.config import load_params

    assert load_params(repo / "params.yaml").train.learning_rate == 1e-5


# --- 2. divergence ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def prepared_project(tmp_path_factory, small_archive):
    """A project with prepared TINY data (stage script run directly: no download stage needed)."""
    repo = make_project(tmp_path_factory.mktemp("diverge"))
    write_yaml(repo / "params.yaml", TINY)
    run([sys.executable, "stages/prepare.py", "--archive", small_archive], repo)
    return repo


# rmsprop's first update is lr * g / sqrt(0.1 * g**2 + 1e-7), at least 1.4 * lr for every weight
# whose gradient |g| >= 5e-4: with lr 3e38 that exceeds float32's largest number (3.4e38) by far,
# so the first update makes those weights +-inf on any IEEE-754 machine, whatever the order of
# operations. (A merely large rate, e.g. 1e4, does not diverge: the loss stays finite.)
DIVERGING_LR = 3e38
DIVERGING = {
    "rmsprop-lr3e38": {"learning_rate": DIVERGING_LR},
    # one epoch of one step: the only batch loss is computed before the update, so it is finite
    "rmsprop-lr3e38-single-step": {"learning_rate": DIVERGING_LR, "epochs": 1, "batch_size": 1024},
}
# the one-line message, whichever non-finite value was seen first
DIVERGED_LINE = re.compile(r"^error: training diverged: .*\b(nan|inf|NaN or inf)\b.*train\.learning_rate")

PROVE_DIVERGENCE = textwrap.dedent(
    """
    import json, sys
    import numpy as np
    sys.path.insert(0, "src")
    from imdb_rnn.config import load_params
    from imdb_rnn.files import load_npz
    from imdb_rnn.model import build_model, compile_model
    from imdb_rnn.fitting import seed_everything
    params = load_params(sys.argv[1])
    train, t = load_npz("data/prepared/train.npz"), params.train
    seed_everything(t.seeds[0], t.deterministic)
    model = build_model("m", params.model("simple_rnn"), params.data.maxlen, t.unroll)
    compile_model(model, t)
    rows = np.random.default_rng(0).permutation(len(train["y"]))[: t.batch_size]  # a first batch
    x, y = train["x"][rows].astype("int32"), train["y"][rows].astype("float32")
    loss = float(np.asarray(model.train_on_batch(x, y)).ravel()[0])  # one step, plain Keras
    print(json.dumps({"loss": loss, "finite_weights": all(bool(np.isfinite(w).all()) for w in model.get_weights())}))
    """
)


@pytest.mark.parametrize("overrides", DIVERGING.values(), ids=DIVERGING.keys())
def test_divergence_fails_with_one_line_and_writes_nothing(prepared_project, overrides, tmp_path):
    repo = prepared_project
    params = json.loads(json.dumps(TINY))
    params["train"].update(overrides)
    write_yaml(tmp_path / "params.yaml", params)
    # first prove that these settings really diverge here: one plain Keras step leaves
    # non-finite weights (its loss, computed before the update, is finite)
    (tmp_path / "prove.py").write_text(PROVE_DIVERGENCE)
    proof = json.loads(
        run(
            [sys.executable, tmp_path / "prove.py", tmp_path / "params.yaml"],
            repo,
        )
        .stdout.strip()
        .splitlines()[-1]
    )
    assert proof["finite_weights"] is False, proof
    before = {r.info.run_id for r in variant_runs(repo)}

    proc = run(
        [sys.executable, "stages/train.py", VARIANT, "--params", tmp_path / "params.yaml"],
        repo,
        check=False,
        timeout=300,
    )
    lines = stage_stderr(proc.stderr)
    assert proc.returncode == 1, proc.stderr[-3000:]
    assert len(lines) == 1, proc.stderr[-3000:]
    assert DIVERGED_LINE.match(lines[0]), proc.stderr[-3000:]
    print(lines[0])

    new = [r for r in variant_runs(repo) if r.info.run_id not in before]
    assert sorted((r.data.tags["run_kind"], r.info.status) for r in new) == [("seed", "FAILED"), ("variant", "FAILED")]
    assert not (repo / "models" / VARIANT).exists()
    assert not (repo / "reports" / "variants" / VARIANT / "history.csv").exists()
    assert leftovers(repo) == []


def test_a_diverged_seed_is_a_result_and_the_stages_go_on(tmp_path, small_archive):
    """One of two seeds diverges in its second epoch (weights made NaN, as a real blow-up leaves them): train
    and evaluate succeed, that seed keeps its first epoch, and the divergence shows in the epoch lines,
    metrics.json, the seed's MLflow run (FAILED, tagged) and the variant's run."""
    (tmp_path / "project").mkdir()
    repo = make_project(tmp_path / "project")
    other, diverging = 42, 43
    write_yaml(repo / "params.yaml", {**TINY, "train": {**TINY["train"], "seeds": [other, diverging]}})
    run([sys.executable, "stages/prepare.py", "--archive", small_archive], repo)
    fault = {FAULT_ENV: f"{diverging}:2:1"}
    trained = run([sys.executable, "stages/train.py", VARIANT], repo, env=fault, timeout=300)
    assert re.search(rf"seed {diverging} epoch 2/\d+: diverged \(.*\); keeps epoch 1", trained.stdout), trained.stdout
    run([sys.executable, "stages/evaluate.py", VARIANT], repo, timeout=300)

    metrics = json.loads((repo / "reports" / "variants" / VARIANT / "metrics.json").read_text())
    assert metrics["diverged_seeds"] == 1
    assert list(metrics["diverged"]) == [str(diverging)]
    assert {row["seed"]: row["diverged"] for row in metrics["per_seed"]} == {other: False, diverging: True}
    assert 0.0 < metrics["accuracy"] <= 1.0  # the kept epoch counts in the means

    runs = variant_runs(repo)
    (variant_run,) = [r for r in runs if r.data.tags["run_kind"] == "variant"]
    seeds = {int(r.data.tags["seed"]): r for r in runs if r.data.tags["run_kind"] == "seed"}
    assert variant_run.info.status == "FINISHED"
    assert variant_run.data.metrics["diverged_seeds"] == 1
    assert seeds[other].info.status == "FINISHED"
    assert "diverged" not in seeds[other].data.tags
    tags = seeds[diverging].data.tags
    assert seeds[diverging].info.status == "FAILED"
    # NaN weights after batch 1: the loss of batch 2 is the first non-finite one
    assert (tags["diverged_epoch"], tags["diverged_batch"], tags["kept_epoch"]) == ("2", "2", "1")
    assert (repo / "models" / VARIANT / "model.keras").is_file()
    assert leftovers(repo) == []


# --- 3. predict on a corrupted or foreign model file ---------------------------------------

MODEL_BUILDER = textwrap.dedent(
    """
    import os, sys
    os.environ["KERAS_BACKEND"] = "tensorflow"
    import keras
    marker, folder = sys.argv[1], sys.argv[2]

    def model(foreign):
        inputs = keras.Input(shape=(40,), dtype="int32")
        x = keras.layers.Embedding(200, 8)(inputs)
        if foreign:  # code that runs whenever the layer is called: here, it drops a marker file
            x = keras.layers.Lambda(lambda t: (open({marker!r}, "w").close(), t * 2)[1], name="foreign")(x)
        x = keras.layers.SimpleRNN(8)(x)
        return keras.Model(inputs, keras.layers.Dense(1, activation="sigmoid")(x))

    model(False).save(os.path.join(folder, "valid.keras"))
    model(True).save(os.path.join(folder, "lambda.keras"))
    os.remove(marker)  # building the model ran the lambda once
    # a real model file whose lambda runs as soon as it is loaded without safe mode
    keras.saving.load_model(os.path.join(folder, "lambda.keras"), safe_mode=False, compile=False)
    assert os.path.exists(marker), "the unsafe load did not run the lambda"
    os.remove(marker)
    print("built")
    """
)


@pytest.fixture(scope="module")
def model_files(tmp_path_factory):
    """A valid ``.keras`` model and one with a Lambda layer, plus the lambda's marker path."""
    folder = tmp_path_factory.mktemp("model_files")
    marker = folder / "lambda-ran"
    script = folder / "build.py"
    script.write_text(MODEL_BUILDER.format(marker=str(marker)))
    built = run([sys.executable, script, marker, folder], folder, timeout=180)
    assert "built" in built.stdout
    assert not marker.exists()
    return folder, marker


@pytest.fixture(scope="module")
def predict_project(tmp_path_factory, small_archive):
    """params.yaml and the vocabulary `imdb-rnn predict` needs (prepare run directly)."""
    root = tmp_path_factory.mktemp("predict")
    write_yaml(root / "params.yaml", TINY)
    run(
        [
            sys.executable,
            REPO_ROOT / "stages" / "prepare.py",
            "--archive",
            small_archive,
            "--out",
            root / "data" / "prepared",
            "--report",
            root / "reports" / "data.json",
            "--params",
            root / "params.yaml",
        ],
        root,
    )
    (root / "models" / VARIANT).mkdir(parents=True)
    return root


def garbage(_folder: Path) -> bytes:
    return b"PK\x03\x04 not a model " + bytes(range(256)) * 8  # zip magic, then noise


def truncated(folder: Path) -> bytes:
    data = (folder / "valid.keras").read_bytes()  # a copy cut short (full disk, killed copy)
    return data[: len(data) // 2]


def with_lambda(folder: Path) -> bytes:
    return (folder / "lambda.keras").read_bytes()


@pytest.mark.parametrize("content", [garbage, truncated, with_lambda], ids=["garbage", "truncated", "lambda"])
def test_predict_refuses_a_corrupt_or_foreign_model(predict_project, model_files, content):
    folder, marker = model_files
    model = predict_project / "models" / VARIANT / "model.keras"
    model.write_bytes(content(folder))
    proc = run(
        [VENV_BIN / "imdb-rnn", "predict", "--project", predict_project, "--model", VARIANT, "great film"],
        predict_project,
        check=False,
        timeout=120,
    )
    lines = stage_stderr(proc.stderr)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith(f"error: {model} is not a loadable Keras model"), proc.stderr
    assert proc.stdout == ""
    if content is with_lambda:
        assert "lambda" in lines[0].lower(), lines[0]  # Keras' safe mode names what it refused
        assert not marker.exists(), "predict executed the model's embedded lambda"
    else:  # not Keras' "File not found" for a file that is there
        assert "not a .keras zip archive: corrupt or truncated" in lines[0], lines[0]
    print(lines[0])
