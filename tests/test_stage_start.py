"""What a stage checks before any work: the memory a setting needs (the defaults pass, a length no machine of
this kind holds is refused) and the backend a variant asks for."""

from __future__ import annotations

import dataclasses
import importlib.util
import json
import re
import sys

import psutil
import pytest

from imdb_rnn.config import load_params, parse_params
from imdb_rnn.errors import ConfigError
from imdb_rnn.memory import require_prepare_memory, require_training_memory, training_bytes
from support.commands import REPO_ROOT, run
from support.shipped import shipped_params_raw


def test_every_committed_variant_fits_this_machine():
    params = parse_params(shipped_params_raw())
    require_prepare_memory(params.data)
    for variant in params.models:
        require_training_memory(params, variant)
        assert training_bytes(params, variant) < psutil.virtual_memory().total / 4


def test_the_estimate_grows_with_length_and_layers_and_shrinks_without_unrolling():
    def estimate(maxlen, layers, unroll):
        params = parse_params(
            {"data": {"maxlen": maxlen}, "models": {"a": {"layers": layers, "train": {"unroll": unroll}}}}
        )
        return training_bytes(params, "a")

    for unroll in (True, False):
        assert estimate(1000, 4, unroll) > estimate(500, 4, unroll) > estimate(500, 1, unroll)
    assert estimate(1000, 4, False) < estimate(1000, 4, True)  # the stack's measured peaks: 1.7 vs 3.2 GB


@pytest.mark.parametrize(
    ("unroll", "path", "fix"), [(True, "unrolled", "unroll: false"), ("auto", "on the loop", "batch_size")]
)
def test_a_length_beyond_memory_is_refused_naming_the_path_and_the_keys(unroll, path, fix):
    params = parse_params({"data": {"maxlen": 100_000}, "models": {"deep": {"layers": 4, "train": {"unroll": unroll}}}})
    with pytest.raises(ConfigError) as err:
        require_training_memory(params, "deep")
    (line,) = err.value.problems
    assert line.startswith(f"training deep ({path}) at data.maxlen 100000")
    assert "models.deep.layers" in line
    assert "GB" in line
    assert fix in line


def test_the_estimate_covers_every_committed_measured_peak():
    """reports/scaling.md's fits (the stack, both paths, maxlen 250 to 2000): the guard is on the safe side."""
    shipped = parse_params(shipped_params_raw())
    paths = {"unrolled": {"unroll": True, "bucketing": False}, "loop + buckets": {"unroll": False, "bucketing": True}}
    fits = [json.loads(line) for line in (REPO_ROOT / "reports" / "scaling.jsonl").read_text().splitlines()]
    for fit in fits:
        path, maxlen = re.match(r"(.+), maxlen (\d+), ", fit["label"]).groups()
        train = dataclasses.replace(shipped.train_for(fit["variant"]), **paths[path])
        cell = dataclasses.replace(
            shipped, data=dataclasses.replace(shipped.data, maxlen=int(maxlen)), train_overrides={fit["variant"]: train}
        )
        assert training_bytes(cell, fit["variant"]) / 1e6 >= fit["peak_mb"], fit["label"]
    assert {f["label"].split(",")[0] for f in fits} == set(paths)


def test_the_train_stage_refuses_before_any_work(tmp_path):
    params = tmp_path / "params.yaml"
    params.write_text("data: {maxlen: 100000}\nmodels: {deep: {layers: 4}}\n", encoding="utf-8")
    proc = run(
        [sys.executable, str(REPO_ROOT / "stages" / "train.py"), "deep", "--params", str(params), "--data",
         str(tmp_path / "data"), "--models", str(tmp_path / "models"), "--reports", str(tmp_path / "reports")],
        tmp_path, check=False, timeout=120, env={"MLFLOW_TRACKING_URI": f"sqlite:///{tmp_path / 'mlflow.db'}"},
    )  # fmt: skip
    assert proc.returncode == 1
    assert "Traceback" not in proc.stderr
    assert proc.stderr.startswith("error: training deep (on the loop) at data.maxlen 100000"), proc.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["params.yaml"]


def test_a_variants_own_backend_is_the_one_the_stage_selects(tmp_path):
    """`models.<v>.train.backend` is honoured, not only logged: here jax, not installed, is named at once."""
    params = tmp_path / "params.yaml"
    params.write_text("models: {lesson: {}, on_jax: {train: {backend: jax, unroll: false}}}\n", encoding="utf-8")
    assert load_params(params).train_for("on_jax").backend == "jax"
    env = {"MLFLOW_TRACKING_URI": f"sqlite:///{tmp_path / 'mlflow.db'}"}
    outputs = ["--data", tmp_path / "data", "--models", tmp_path / "models", "--reports", tmp_path / "reports"]
    proc = run([sys.executable, REPO_ROOT / "stages" / "train.py", "on_jax", "--params", params, *outputs],
               tmp_path, check=False, timeout=120, env=env)  # fmt: skip
    if importlib.util.find_spec("jax") is None:
        assert proc.returncode == 1, proc.stderr
        assert proc.stderr.startswith("error: the backend is jax (train.backend)"), proc.stderr
    else:  # with jax installed the stage gets past the backend, to the missing data
        assert "backend is jax" not in proc.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["params.yaml"]
