"""From comparison to use, for real on a tiny pipeline: the raw-text MLflow model, the registry's champion
(promoted only by the workspace's `dvc repro`, only when better), `mlflow models serve` and `imdb-rnn predict`."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import requests

from imdb_rnn.archive import read_reviews
from imdb_rnn.files import file_md5, folder_md5
from support.commands import REPO_ROOT, answering, free_port, run, stop_group, tool_env, wait_until
from support.corpus import default_reviews, make_archive
from support.params import ONE_VARIANT, deep_merge, write_params, write_yaml
from support.projects import NATIVE_NOISE, make_project, ran_stages
from support.tracking import mlflow_client

pytestmark = pytest.mark.slow  # real dvc repro / queues / servers / signals

VARIANT = "simple_rnn"
MODEL = "imdb-rnn-sentiment"
CHAMPION = f"models:/{MODEL}@champion"
# first a model near chance, then one that learns: the second must beat the first on validation
WEAK = {"train": {"learning_rate": 1e-5, "epochs": 1, "seeds": [42, 43]}}
# served as its seeds' ensemble, with word pairs: the registry, the server and predict hold one model of both
SERVED = {"models": {VARIANT: {"serve": "ensemble", "bigram_buckets": 101, "mask_padding": True}}}
BETTER = {"train": {"learning_rate": 0.01, "epochs": 3}}
REVIEWS = ["Wonderful, brilliant, I loved this moving film.", "Awful and boring: a waste of time."]


def champion_json(repo) -> dict:
    return json.loads((repo / "reports" / "champion.json").read_text())


def versions(repo) -> dict[int, object]:
    return {int(v.version): v for v in mlflow_client(repo).search_model_versions(f"name = '{MODEL}'")}


@pytest.fixture(scope="module")
def archive(tmp_path_factory) -> Path:
    """150 reviews per split and class (the shared small archive has 40): a validation split of about 60
    reviews, enough for the champion gate's paired test to tell a model that learned from one near chance
    (with 14 reviews, even a perfect model could not reach p < 0.05 against one right on 9)."""
    return make_archive(tmp_path_factory.mktemp("serving_archive") / "aclImdb_v1.tar.gz", default_reviews(150))


@pytest.fixture(scope="module")
def history(tmp_path_factory, archive):
    """The registry over four executions: a first `dvc repro`, a forced rerun of `register` on the same
    results, a better `dvc exp run --temp`, and the workspace's `dvc repro` of the same better params."""
    repo = make_project(tmp_path_factory.mktemp("serving"))
    write_yaml(repo / "params.yaml", deep_merge(deep_merge(ONE_VARIANT, WEAK), SERVED))
    run(["git", "add", "-A"], repo)
    run(["git", "commit", "-qm", "weak params"], repo)
    env = {"IMDB_SOURCE": archive}
    steps = {}
    run(["dvc", "repro"], repo, env=env, timeout=600)
    steps["first"] = (champion_json(repo), sorted(versions(repo)))
    run(["git", "add", "-A"], repo)
    run(["git", "commit", "-qm", "first champion"], repo)
    assert ran_stages(run(["dvc", "repro"], repo, env=env).stdout) == {"track"}
    run(["dvc", "repro", "--single-item", "--force", "register"], repo, env=env)
    steps["rerun"] = (champion_json(repo), sorted(versions(repo)))
    sets = [arg for key, value in BETTER["train"].items() for arg in ("-S", f"train.{key}={value}")]
    proc = run(["dvc", "exp", "run", "--temp", *sets], repo, env=env, timeout=600)
    steps["experiment"] = (proc.stdout, sorted(versions(repo)))
    write_params(repo / "params.yaml", BETTER)
    proc = run(["dvc", "repro"], repo, env=env, timeout=600)
    steps["better"] = (champion_json(repo), sorted(versions(repo)), ran_stages(proc.stdout))
    return repo, archive, steps


def test_the_first_execution_registers_its_best_variant_as_champion(history):
    _, _, steps = history
    first, listed = steps["first"]
    assert first["promoted"] is True
    assert "no champion before" in first["reason"]
    assert first["gate"] == {"test": None, "why": "no champion before", "passed": True}
    assert listed == [1]
    assert first["champion"] == {
        **first["champion"],
        "version": 1,
        "variant": VARIANT,
        "run_id": first["candidate"]["run_id"],
    }


def test_unchanged_results_register_nothing_and_experiments_move_nothing(history):
    _, _, steps = history
    first, _ = steps["first"]
    rerun, listed = steps["rerun"]
    assert rerun["promoted"] is False
    assert listed == [1]
    assert rerun["reason"].startswith("already the champion (version 1)")
    # why version 1 is the champion stays on record: the promotion the first execution wrote
    assert rerun["promotion"] == first["promotion"] == {"version": 1, "reason": first["reason"], "gate": first["gate"]}
    stdout, listed = steps["experiment"]
    assert "experiments do not move the champion" in stdout
    assert listed == [1]


def test_a_better_model_moves_the_alias_and_the_previous_champion_keeps_its_version(history):
    repo, _, steps = history
    first, _ = steps["first"]
    better, listed, ran = steps["better"]
    assert "register" in ran and "train@simple_rnn" not in ran  # restored from DVC's run cache, still registered
    accuracy = "served_val_accuracy"
    assert better["candidate"][accuracy] > first["candidate"][accuracy], "BETTER is not better"
    assert better["promoted"] is True
    assert listed == [1, 2]
    assert better["champion"]["version"] == 2
    assert "better than version 1" in better["reason"]
    assert better["promotion"] == {"version": 2, "reason": better["reason"], "gate": better["gate"]}
    gate = better["gate"]  # the paired test on the same validation reviews, as champion.json records it
    assert gate["test"].startswith("exact McNemar") and gate["passed"] is True
    assert gate["reviews"] == len(np.load(repo / "data" / "prepared" / "val.npz")["y"])
    assert gate["candidate_only_right"] > gate["champion_only_right"]
    assert gate["p_value"] < gate["alpha"] == 0.05
    registered = versions(repo)
    assert int(mlflow_client(repo).get_model_version_by_alias(MODEL, "champion").version) == 2
    assert registered[1].run_id == first["candidate"]["run_id"]  # the previous champion keeps its version
    run_json = json.loads((repo / "models" / VARIANT / "run.json").read_text())
    tags = registered[2].tags
    assert registered[2].run_id == run_json["run_id"] == better["champion"]["run_id"]
    # the model came from the experiment's run (DVC restored it from its run cache), and says so
    assert tags["variant"] == VARIANT
    assert len(tags["git_commit"]) == 40
    assert tags["dvc_exp_name"]
    assert tags["data_hash"] == folder_md5(repo / "data" / "prepared")
    assert float(tags["served_val_accuracy"]) == pytest.approx(better["candidate"]["served_val_accuracy"])


def test_the_served_model_is_one_model_averaging_the_seeds(history):
    """``serve: ensemble``: models/<variant>/model.keras is one Keras model over both seeds' models; on
    prepare's ids it scores their mean probability, which evaluate reports as the ensemble and the
    served model, and writes per validation review for the champion gate."""
    import keras

    repo, _, _ = history
    model_dir, reports = repo / "models" / VARIANT, repo / "reports" / "variants" / VARIANT
    served = keras.saving.load_model(model_dir / "model.keras", safe_mode=True, compile=False)
    assert [layer.name for layer in served.layers] == ["ids", "seed_42", "seed_43", "mean_probability"]
    seeds = [keras.saving.load_model(model_dir / f"seed_{s}" / "model.keras", compile=False) for s in (42, 43)]
    metrics = json.loads((reports / "metrics.json").read_text())
    assert metrics["serve"] == "ensemble"
    assert metrics["served_accuracy"] == metrics["ensemble_accuracy"]
    for split in ("test", "val"):
        data = np.load(repo / "data" / "prepared" / f"{split}.npz")
        x = data["x"].astype(np.int32)
        prob = np.asarray(served.predict_on_batch(x)).ravel()
        np.testing.assert_allclose(prob, np.mean([m.predict_on_batch(x).ravel() for m in seeds], axis=0), atol=1e-6)
        accuracy = float(((prob >= 0.5) == data["y"]).mean())
        key = "ensemble_accuracy" if split == "test" else "ensemble_val_accuracy"
        assert metrics[key] == pytest.approx(accuracy, abs=1e-6)
    val_predictions = pd.read_csv(reports / "val_predictions.csv")
    np.testing.assert_allclose(val_predictions["probability"], prob, atol=1e-6)


def test_runs_record_their_training_data(history):
    repo, archive, _ = history
    client = mlflow_client(repo)
    run_json = json.loads((repo / "models" / VARIANT / "run.json").read_text())
    for run_id in (run_json["run_id"], *run_json["seed_runs"].values()):
        (dataset_input,) = client.get_run(run_id).inputs.dataset_inputs
        dataset = dataset_input.dataset
        assert dataset.name == "imdb-prepared"
        assert dataset.digest == folder_md5(repo / "data" / "prepared")
        source = json.loads(dataset.source)["tags"]
        assert source["archive_md5"] == file_md5(archive)
        assert source["params"]["maxlen"] == 40
        assert source["params"]["val_split_by"] == "movie"
        assert {(t.key, t.value) for t in dataset_input.tags} == {("mlflow.data.context", "training")}


LOAD_WITHOUT_PROJECT = textwrap.dedent(
    """
    import importlib.util, json, sys
    from pathlib import Path
    src, model_dir, test_npz = Path(sys.argv[1]), Path(sys.argv[2]), sys.argv[3]
    sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != src]
    assert importlib.util.find_spec("imdb_rnn") is None, "the project's source is importable"
    import keras, mlflow.pyfunc, numpy as np, pandas as pd
    model = mlflow.pyfunc.load_model(str(model_dir))
    import imdb_rnn.text
    texts = json.loads(sys.stdin.read())
    vocab = json.loads((model_dir / "artifacts" / "vocab.json").read_text())
    x = imdb_rnn.text.encode_texts(texts, vocab["words"], vocab["maxlen"], vocab["padding"], vocab["truncating"])
    served = model.predict(pd.DataFrame({"text": texts}))
    prepared_x = np.load(test_npz)["x"].astype(np.int32)
    keras_model = keras.saving.load_model(model_dir / "artifacts" / "model.keras", safe_mode=True, compile=False)
    print(json.dumps({"module": imdb_rnn.__file__, "same_x": bool((x == prepared_x).all()),
                      "probability": served["probability"].tolist(), "label": served["label"].tolist(),
                      "keras": np.asarray(keras_model.predict_on_batch(prepared_x)).ravel().tolist()}))
    """
)


def test_the_text_model_loads_and_scores_without_the_project(history, tmp_path):
    """A copy of the champion's artifact folder, in a fresh interpreter with the project's source off
    the path: its own code and vocabulary encode the raw test reviews into exactly `prepare`'s arrays."""
    import mlflow

    repo, archive, _ = history
    mlflow.set_tracking_uri(f"sqlite:///{repo / 'mlflow.db'}")
    model_dir = tmp_path / "copied-model"
    mlflow.artifacts.download_artifacts(artifact_uri=CHAMPION, dst_path=str(model_dir))
    assert (model_dir / "artifacts" / "model.keras").read_bytes() == (
        repo / "models" / VARIANT / "model.keras"
    ).read_bytes()
    assert sorted(p.name for p in (model_dir / "code" / "imdb_rnn").glob("*.py")) == [
        "__init__.py",
        "native_logs.py",
        "scoring.py",
        "text.py",
        "text_model.py",
    ]
    requirements = (model_dir / "requirements.txt").read_text().split()
    assert {r.split("==")[0] for r in requirements} == {
        "mlflow",
        "keras",
        "tensorflow-cpu",
        "numpy",
        "pandas",
        "pyarrow",
    }
    assert all("==" in r for r in requirements)
    info = mlflow.models.get_model_info(CHAMPION)
    assert info.name == VARIANT
    assert info.signature.inputs.input_names() == ["text"]
    assert info.signature.outputs.input_names() == ["probability", "label"]
    assert (model_dir / "serving_input_example.json").is_file()

    texts = read_reviews(archive)["test"].texts
    script = tmp_path / "load.py"
    script.write_text(LOAD_WITHOUT_PROJECT)
    proc = subprocess.run(
        [sys.executable, script, REPO_ROOT / "src", model_dir, repo / "data" / "prepared" / "test.npz"],
        input=json.dumps(texts),
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env=tool_env(),
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert out["module"].startswith(str(model_dir / "code" / "imdb_rnn"))
    assert out["same_x"] is True
    assert out["probability"] == pytest.approx(out["keras"], abs=1e-5)
    assert out["label"] == ["pos" if p >= 0.5 else "neg" for p in out["probability"]]


def predicted(repo, model: str, *texts: str) -> list[tuple[str, float]]:
    """`imdb-rnn predict`'s (label, probability) per review."""
    proc = run(["imdb-rnn", "predict", "--project", repo, "--model", model, *texts], repo)
    return [(label, float(p)) for label, p, _ in (line.split("\t") for line in proc.stdout.strip().splitlines())]


@pytest.fixture(scope="module")
def serve_log(tmp_path_factory) -> Path:
    """Where the server's stdout and stderr go."""
    return tmp_path_factory.mktemp("serve") / "serve.log"


@pytest.fixture(scope="module")
def server(history, serve_log):
    """`mlflow models serve` of the champion as the README starts it, from the project root; its process
    group stops at the end."""
    repo, _, _ = history
    port = free_port()
    log = serve_log
    with log.open("w") as out:
        proc = subprocess.Popen(
            ["mlflow", "models", "serve", "-m", CHAMPION, "--env-manager", "local", "-h", "127.0.0.1", "-p", str(port)],
            cwd=repo,
            env=tool_env(),  # no MLFLOW_TRACKING_URI: MLflow's default, ./mlflow.db, is the project's store
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    base = f"http://127.0.0.1:{port}"
    try:
        wait_until(answering(proc, f"{base}/ping", log), "mlflow models serve answering /ping", timeout=180)
        yield base
    finally:
        stop_group(proc)


def invoke(base: str, body) -> requests.Response:
    if isinstance(body, (bytes, str)):
        return requests.post(f"{base}/invocations", data=body, headers={"Content-Type": "application/json"}, timeout=60)
    return requests.post(f"{base}/invocations", json=body, timeout=60)


def test_the_served_champion_answers_as_predict_does(history, server):
    repo, _, _ = history
    response = invoke(server, {"dataframe_records": [{"text": t} for t in REVIEWS]})
    assert response.status_code == 200, response.text
    served = [(p["label"], p["probability"]) for p in response.json()["predictions"]]
    for model in (CHAMPION, VARIANT):  # the registry's copy, and the workspace's own model file
        for (label, probability), (cli_label, cli_probability) in zip(served, predicted(repo, model, *REVIEWS)):
            assert label == cli_label
            assert probability == pytest.approx(cli_probability, abs=1e-4)
    assert len(served) == 2


def test_the_served_model_logs_no_tensorflow_start_up_lines(server, serve_log):
    """The model has loaded (it answered), so TensorFlow has started: its native banner lines are filtered."""
    assert invoke(server, {"dataframe_records": [{"text": REVIEWS[0]}]}).status_code == 200
    log = serve_log.read_text()
    noise = [line for line in log.splitlines() if NATIVE_NOISE.search(line) and "INFO mlflow" not in line]
    assert noise == []  # (the `mlflow models serve` command's own INFO lines are MLflow's CLI, not the model's)


MALFORMED = {
    "no text column": ({"dataframe_records": [{"review": REVIEWS[0]}]}, "missing inputs ['text']"),
    "a number": ({"dataframe_records": [{"text": 5}]}, "review 1: 'text' must be a string, got int"),
    "an empty body": (b"", "valid JSON"),
    "1 MB of text": ({"dataframe_records": [{"text": "great " * 175_000}]}, "at most 100000 are accepted"),
}


def test_malformed_requests_get_a_4xx_and_the_server_keeps_serving(server):
    good = {"dataframe_records": [{"text": REVIEWS[0]}]}
    first = invoke(server, good).json()
    for what, (body, message) in MALFORMED.items():
        response = invoke(server, body)
        assert 400 <= response.status_code < 500, (what, response.status_code, response.text[:500])
        assert message in response.json()["message"], (what, response.text[:500])
    assert invoke(server, good).json() == first


def test_predict_takes_a_run_uri_and_names_what_is_wrong_in_one_line(history):
    repo, _, _ = history
    run_json = json.loads((repo / "models" / VARIANT / "run.json").read_text())
    by_run = predicted(repo, f"runs:/{run_json['run_id']}/{VARIANT}", *REVIEWS)
    assert by_run == predicted(repo, CHAMPION, *REVIEWS)
    seed_model = f"runs:/{run_json['seed_runs']['42']}/{VARIANT}-seed42"
    cases = {
        seed_model: "is not a raw-text model",
        "models:/no-such-model@champion": "no champion at models:/no-such-model@champion",
        f"runs:/{'0' * 32}/{VARIANT}": "check the URI",
    }
    for model, expected in cases.items():
        proc = run(["imdb-rnn", "predict", "--project", repo, "--model", model, REVIEWS[0]], repo, check=False)
        assert proc.returncode == 1, proc.stderr
        assert proc.stdout == "", proc.stderr
        assert proc.stderr.count("\n") == 1, proc.stderr
        assert proc.stderr.startswith("error: "), proc.stderr
        assert expected in proc.stderr, proc.stderr
