"""params.yaml validation: documented defaults, one clear line per bad key, the stage's exit."""

from __future__ import annotations

import copy
import dataclasses
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from imdb_rnn.config import (
    DataParams,
    ModelParams,
    Params,
    TrainParams,
    load_params,
    parse_params,
)
from imdb_rnn.errors import ConfigError
from support.commands import REPO_ROOT, run
from support.shipped import shipped_params_file, shipped_params_raw

PREPARE = REPO_ROOT / "stages" / "prepare.py"


@pytest.fixture(scope="module")
def repo_raw() -> dict:
    """The repository's params.yaml as a plain mapping (each test mutates a deep copy)."""
    return shipped_params_raw()


def _problems(raw: Any) -> list[str]:
    with pytest.raises(ConfigError) as err:
        parse_params(raw)
    problems = err.value.problems
    assert str(err.value) == "\n".join(problems)
    assert all(isinstance(p, str) and p and "\n" not in p for p in problems), problems
    return problems


# --- the repository's params.yaml ------------------------------------------------------


def test_repo_params_load_with_documented_defaults():
    params = parse_params(shipped_params_raw())
    assert isinstance(params, Params)
    data = params.data
    assert (data.max_features, data.maxlen, data.val_split) == (20000, 500, 0.2)
    assert (data.padding, data.truncating, data.seed) == ("pre", "pre", 42)
    assert data.val_split_by == "movie"
    assert data == DataParams()  # the dataclass defaults are the documented ones
    train = params.train
    assert train.epochs >= 1
    assert train.batch_size == 128
    assert (train.optimizer, train.learning_rate) == ("rmsprop", 0.001)
    assert len(train.seeds) >= 3  # comparisons are means over seeds
    assert train.restore_best is True
    assert train.backend == "tensorflow"
    assert {"simple_rnn", "stacked_rnn"} <= set(params.models)
    assert params.model("simple_rnn").layers == 1
    assert params.model("stacked_rnn").layers == 4
    for variant in ("simple_rnn", "stacked_rnn"):  # the lesson's architecture
        model = params.model(variant)
        assert (model.max_features, model.embedding_dim, model.units) == (10000, 32, 32)  # Embedding(10000, 32)
        assert (model.pooling, model.bidirectional) == ("last", False)
        assert (model.dropout, model.recurrent_dropout, model.spatial_dropout) == (0.0, 0.0, 0.0)
    assert params.mlflow.experiment == "imdb-rnn"
    assert (params.mlflow.registered_model, params.mlflow.promote_experiments) == ("imdb-rnn-sentiment", False)


def test_a_variants_own_train_settings_override_the_defaults():
    params = parse_params(
        {
            "train": {"epochs": 5, "learning_rate": 0.01},
            "models": {
                "a": {},
                "b": {"train": {"epochs": 20, "early_stopping_patience": 3, "bucketing": True, "unroll": False}},
            },
        }
    )
    a = params.train_for("a")
    assert a == dataclasses.replace(params.train, unroll=True, bucketing=False)  # auto, at maxlen 500: unrolled
    assert a.epochs == 5
    b = params.train_for("b")
    assert (b.epochs, b.early_stopping_patience, b.bucketing, b.unroll) == (20, 3, True, False)
    assert b.learning_rate == 0.01  # not overridden: the default's
    assert params.flat("b")["train.epochs"] == 20
    assert "model.train" not in params.flat("b")


def test_left_out_keys_take_defaults_and_numbers_become_floats():
    params = parse_params({"models": {"tiny": {"units": 4, "dropout": 0}}, "train": {"learning_rate": 1}})
    assert params.data == DataParams()
    assert params.train == TrainParams(learning_rate=1.0)
    assert isinstance(params.train.learning_rate, float)
    assert parse_params({"models": {"m": {}}, "train": {"clipnorm": 1, "seeds": [1, 2]}}).train == TrainParams(
        clipnorm=1.0, seeds=(1, 2)
    )
    tiny = params.model("tiny")
    assert tiny == ModelParams(max_features=DataParams().max_features, units=4, dropout=0.0)  # all the vocabulary
    assert isinstance(tiny.dropout, float)
    assert isinstance(tiny.recurrent_dropout, float)
    # A section given as null (``data:`` with nothing under it) means "all defaults".
    assert parse_params({"data": None, "models": {"m": None}}).model("m") == ModelParams(max_features=20000)


def test_a_variant_uses_the_top_of_the_vocabulary():
    params = parse_params({"data": {"max_features": 500}, "models": {"all": {}, "top": {"max_features": 100}}})
    assert (params.model("all").max_features, params.model("top").max_features) == (500, 100)
    assert params.flat("top")["model.max_features"] == 100
    problems = _problems({"data": {"max_features": 500}, "models": {"m": {"max_features": 501}}})
    assert problems == [
        "models.m.max_features: got 501; allowed: at most data.max_features (500), the vocabulary prepare "
        "builds; raise data.max_features to use more words"
    ]


def test_the_new_levers_default_to_the_lesson_and_take_their_values():
    """cell, word pairs and serving are off for the lesson's two variants; a gated cell needs the loop
    (unroll: false or auto), set for the variant or for every variant."""
    shipped = parse_params(shipped_params_raw())
    for variant in ("simple_rnn", "stacked_rnn"):
        model = shipped.model(variant)
        assert (model.cell, model.bigram_buckets, model.serve) == ("simple", 0, "best_seed")
    assert shipped.mlflow.champion_alpha == 0.05
    params = parse_params(
        {
            "train": {"unroll": True},
            "models": {
                "gru": {"cell": "gru", "bigram_buckets": 2**21, "serve": "ensemble", "train": {"unroll": False}},
                "lstm": {"cell": "lstm", "bigram_buckets": 2, "train": {"unroll": False, "bucketing": True}},
            },
            "mlflow": {"champion_alpha": 0.5},
        }
    )
    assert (params.model("gru").cell, params.model("gru").bigram_buckets, params.model("gru").serve) == (
        "gru",
        2**21,
        "ensemble",
    )
    assert params.model("lstm").cell == "lstm"
    assert params.flat("gru")["model.serve"] == "ensemble"
    assert params.mlflow.champion_alpha == 0.5
    assert parse_params({"train": {"unroll": False}, "models": {"m": {"cell": "lstm"}}}).model("m").cell == "lstm"


def test_a_gated_cell_with_unroll_is_named_beside_the_other_errors():
    problems = _problems({"train": {"epochs": 0, "unroll": True}, "models": {"m": {"cell": "gru", "units": 0}}})
    assert problems == [
        "train.epochs: got 0; allowed: an integer in [1, 10000]",
        "models.m.units: got 0; allowed: an integer in [1, 4096]",
        "models.m.cell: got 'gru' with unroll: True; allowed: simple, or gru and lstm with "
        "models.m.train.unroll: false or auto (the unrolled fast path is SimpleRNN's)",
    ]
    assert parse_params({"models": {"m": {"cell": "gru"}}}).train_for("m").unroll is False  # auto: the loop


def test_unknown_variant_is_one_line_listing_the_known_ones(repo_raw):
    params = parse_params(copy.deepcopy(repo_raw))
    with pytest.raises(ConfigError) as err:
        params.model("gru")
    assert len(err.value.problems) == 1
    line = err.value.problems[0]
    for word in ("gru", "simple_rnn", "stacked_rnn"):
        assert word in line


def test_flat_params_for_mlflow(repo_raw):
    flat = parse_params(copy.deepcopy(repo_raw)).flat("stacked_rnn")
    assert flat["variant"] == "stacked_rnn"
    assert flat["data.maxlen"] == 500
    assert flat["model.layers"] == 4
    assert flat["train.optimizer"] == "rmsprop"
    assert not any(k.startswith("models.") for k in flat)


# --- one bad value: exactly one line naming key, value and what is allowed ----------------


def _set(*path: str, value: Any) -> Callable[[dict], None]:
    def mutate(raw: dict) -> None:
        node = raw
        for key in path[:-1]:
            node = node[key]
        node[path[-1]] = value

    return mutate


def _all(*mutates: Callable[[dict], None]) -> Callable[[dict], None]:
    def mutate(raw: dict) -> None:
        for one in mutates:
            one(raw)

    return mutate


def _rename_variant(new: str) -> Callable[[dict], None]:
    def mutate(raw: dict) -> None:
        raw["models"][new] = raw["models"].pop("simple_rnn")

    return mutate


# (id, mutation, key named in the line, value as shown in the line or None, hint of what is allowed)
BAD = [
    ("maxlen-0", _set("data", "maxlen", value=0), "data.maxlen", "0", "an integer in [1, "),
    ("maxlen-negative", _set("data", "maxlen", value=-5), "data.maxlen", "-5", "an integer in [1, "),
    ("maxlen-string", _set("data", "maxlen", value="500"), "data.maxlen", "'500'", "an integer in [1, "),
    ("maxlen-float", _set("data", "maxlen", value=1.5), "data.maxlen", "1.5", "an integer in [1, "),
    ("maxlen-bool", _set("data", "maxlen", value=True), "data.maxlen", "True", "an integer in [1, "),
    ("max_features-2", _set("data", "max_features", value=2), "data.max_features", "2", "an integer in [3, "),
    (
        "model-max_features-2",
        _set("models", "simple_rnn", "max_features", value=2),
        "models.simple_rnn.max_features",
        "2",
        "an integer in [3, ",
    ),
    ("val_split-0", _set("data", "val_split", value=0), "data.val_split", "0", "(0, 1)"),
    ("val_split-1", _set("data", "val_split", value=1), "data.val_split", "1", "(0, 1)"),
    ("val_split-string", _set("data", "val_split", value="0.2"), "data.val_split", "'0.2'", "(0, 1)"),
    ("val_split-nan", _set("data", "val_split", value=float("nan")), "data.val_split", "nan", "(0, 1)"),
    ("val_split_by-film", _set("data", "val_split_by", value="film"), "data.val_split_by", "'film'", "movie, review"),
    ("padding-middle", _set("data", "padding", value="middle"), "data.padding", "'middle'", "pre, post"),
    ("truncating-3", _set("data", "truncating", value=3), "data.truncating", "3", "pre, post"),
    ("data-seed-negative", _set("data", "seed", value=-1), "data.seed", "-1", "an integer in [0, "),
    ("data-unknown-key", _set("data", "colour", value="red"), "data.colour", None, "maxlen"),
    ("data-not-mapping", _set("data", value=[1, 2]), "data", "[1, 2]", "mapping"),
    ("epochs-0", _set("train", "epochs", value=0), "train.epochs", "0", "an integer in [1, "),
    ("batch_size-true", _set("train", "batch_size", value=True), "train.batch_size", "True", "an integer in [1, "),
    ("optimizer-adamw2", _set("train", "optimizer", value="adamw2"), "train.optimizer", "'adamw2'", "rmsprop"),
    ("learning_rate-0", _set("train", "learning_rate", value=0), "train.learning_rate", "0", "> 0"),
    ("learning_rate-negative", _set("train", "learning_rate", value=-1), "train.learning_rate", "-1", "> 0"),
    ("learning_rate-inf", _set("train", "learning_rate", value=float("inf")), "train.learning_rate", "inf", "> 0"),
    ("restore_best-yes", _set("train", "restore_best", value="yes"), "train.restore_best", "'yes'", "true or false"),
    ("unroll-string", _set("train", "unroll", value="true"), "train.unroll", "'true'", "true or false"),
    ("backend-torch", _set("train", "backend", value="torch"), "train.backend", "'torch'", "tensorflow, jax"),
    ("clipnorm-0", _set("train", "clipnorm", value=0), "train.clipnorm", "0", "null or a finite number > 0"),
    ("seeds-empty", _set("train", "seeds", value=[]), "train.seeds", "[]", "a list of 1 to 1000 items"),
    ("seeds-repeated", _set("train", "seeds", value=[1, 1]), "train.seeds", "[1, 1]", "all distinct"),
    ("seeds-not-list", _set("train", "seeds", value=42), "train.seeds", "42", "list"),
    (
        "seeds-negative",
        _set("train", "seeds", value=[1, -2]),
        "train.seeds",
        "[1, -2]",
        "each an integer in [0, 4294967295]",
    ),
    (
        "patience-negative",
        _set("train", "early_stopping_patience", value=-1),
        "train.early_stopping_patience",
        "-1",
        "an integer in [0, ",
    ),
    (
        "bucketing-with-unroll",
        _all(_set("train", "bucketing", value=True), _set("train", "unroll", value=True)),
        "train.bucketing",
        None,
        "unroll: false or auto",
    ),
    (
        "pooling-sum",
        _set("models", "simple_rnn", "pooling", value="sum"),
        "models.simple_rnn.pooling",
        "'sum'",
        "last, max, mean, max_mean",
    ),
    (
        "mask-string",
        _set("models", "simple_rnn", "mask_padding", value="yes"),
        "models.simple_rnn.mask_padding",
        "'yes'",
        "true or false",
    ),
    (
        "bidirectional-1",
        _set("models", "simple_rnn", "bidirectional", value=1),
        "models.simple_rnn.bidirectional",
        "1",
        "true or false",
    ),
    (
        "spatial_dropout-1",
        _set("models", "simple_rnn", "spatial_dropout", value=1),
        "models.simple_rnn.spatial_dropout",
        "1",
        "[0, 1)",
    ),
    (
        "variant-train-bad",
        _set("models", "simple_rnn", "train", value={"epochs": 0}),
        "models.simple_rnn.train.epochs",
        "0",
        "an integer in [1, ",
    ),
    (
        "variant-train-unknown",
        _set("models", "simple_rnn", "train", value={"maxlen": 3}),
        "models.simple_rnn.train.maxlen",
        None,
        "epochs",
    ),
    (
        "variant-train-bucketing",
        _set("models", "simple_rnn", "train", value={"bucketing": True, "unroll": True}),
        "models.simple_rnn.train.bucketing",
        None,
        "unroll: false or auto",
    ),
    ("unknown-section", _set("training", value={"epochs": 3}), "training", None, "data, train, models, mlflow"),
    ("models-empty", _set("models", value={}), "models", "{}", "non-empty mapping"),
    ("models-none", _set("models", value=None), "models", "None", "non-empty mapping"),
    ("variant-leading-digit", _rename_variant("1bad"), "models.1bad", None, "not starting with a digit"),
    ("variant-dash", _rename_variant("bad-name"), "models.bad-name", None, "letters, digits and _"),
    ("variant-not-mapping", _set("models", "simple_rnn", value="big"), "models.simple_rnn", "'big'", "mapping"),
    ("units-0", _set("models", "simple_rnn", "units", value=0), "models.simple_rnn.units", "0", "an integer in [1, "),
    (
        "layers-string",
        _set("models", "stacked_rnn", "layers", value="4"),
        "models.stacked_rnn.layers",
        "'4'",
        "an integer in [1, ",
    ),
    ("dropout-1", _set("models", "simple_rnn", "dropout", value=1.0), "models.simple_rnn.dropout", "1.0", "[0, 1)"),
    (
        "recurrent_dropout-negative",
        _set("models", "simple_rnn", "recurrent_dropout", value=-0.1),
        "models.simple_rnn.recurrent_dropout",
        "-0.1",
        "[0, 1)",
    ),
    (
        "model-unknown-key",
        _set("models", "simple_rnn", "cells", value="lstm"),
        "models.simple_rnn.cells",
        None,
        "units",
    ),
    (
        "cell-rnn",
        _set("models", "simple_rnn", "cell", value="rnn"),
        "models.simple_rnn.cell",
        "'rnn'",
        "simple, gru, lstm",
    ),
    (
        "gated-cell-unrolled",
        _all(_set("models", "simple_rnn", "cell", value="lstm"), _set("train", "unroll", value=True)),
        "models.simple_rnn.cell",
        None,
        "gru and lstm with models.simple_rnn.train.unroll: false or auto",
    ),
    (
        "bigram-buckets-1",
        _set("models", "simple_rnn", "bigram_buckets", value=1),
        "models.simple_rnn.bigram_buckets",
        "1",
        "an integer in [0, 2097152], 0 (off) or at least 2",
    ),
    (
        "bigram-buckets-too-many",
        _set("models", "simple_rnn", "bigram_buckets", value=2**21 + 1),
        "models.simple_rnn.bigram_buckets",
        "2097153",
        "an integer in [0, 2097152]",
    ),
    (
        "serve-mean",
        _set("models", "simple_rnn", "serve", value="mean"),
        "models.simple_rnn.serve",
        "'mean'",
        "ensemble",
    ),
    ("alpha-0", _set("mlflow", "champion_alpha", value=0), "mlflow.champion_alpha", "0", "a number in (0, 0.5]"),
    ("alpha-1", _set("mlflow", "champion_alpha", value=1.0), "mlflow.champion_alpha", "1.0", "a number in (0, 0.5]"),
    ("experiment-empty", _set("mlflow", "experiment", value=""), "mlflow.experiment", "''", "a string of 1 to 400"),
    (
        "experiment-blank",
        _set("mlflow", "experiment", value="   "),
        "mlflow.experiment",
        "'   '",
        "no space at either end",
    ),
    (
        "registered-model-empty",
        _set("mlflow", "registered_model", value=""),
        "mlflow.registered_model",
        "''",
        "a string of 1 to 200",
    ),
    (
        "promote-experiments-string",
        _set("mlflow", "promote_experiments", value="yes"),
        "mlflow.promote_experiments",
        "'yes'",
        "true or false",
    ),
]


@pytest.mark.parametrize("mutate, key, shown, allowed", [b[1:] for b in BAD], ids=[b[0] for b in BAD])
def test_one_bad_value_is_one_line(repo_raw, mutate, key, shown, allowed):
    raw = copy.deepcopy(repo_raw)
    mutate(raw)
    problems = _problems(raw)
    assert len(problems) == 1, problems
    line = problems[0]
    assert line.startswith(f"{key}:"), line
    if shown is not None:
        assert f"got {shown};" in line, line
    assert "allowed" in line, line
    assert allowed in line, line


def test_several_bad_keys_give_one_line_each(repo_raw):
    raw = copy.deepcopy(repo_raw)
    raw["data"]["maxlen"] = 0
    raw["data"]["padding"] = "middle"
    raw["train"]["epochs"] = 0
    raw["models"]["simple_rnn"]["units"] = -1
    raw["models"]["bad-name"] = {}
    raw["extra"] = 1
    problems = _problems(raw)
    keys = ["data.maxlen", "data.padding", "train.epochs", "models.simple_rnn.units", "models.bad-name", "extra"]
    assert len(problems) == len(keys), problems
    for key in keys:
        assert sum(p.startswith(f"{key}:") for p in problems) == 1, (key, problems)


def test_params_not_a_mapping_is_one_line():
    for raw in (None, "hello", [1, 2], 3):
        problems = _problems(raw)
        assert len(problems) == 1
        assert problems[0].startswith("params:")


# --- the file itself -----------------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    ["data:\n  maxlen: [500\n", "data:\n\tmaxlen: 500\n", "data: {maxlen: 500\n", "a: b: c\n"],
    ids=["unclosed-list", "tab-indent", "unclosed-map", "nested-colon"],
)
def test_invalid_yaml_is_one_line(tmp_path: Path, text: str):
    path = tmp_path / "params.yaml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError) as err:
        load_params(path)
    assert len(err.value.problems) == 1
    line = err.value.problems[0]
    assert str(path) in line and "not valid YAML" in line and "(line " in line


def test_binary_params_file_is_one_line(tmp_path: Path):
    path = tmp_path / "params.yaml"
    path.write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\xff\xfe")
    with pytest.raises(ConfigError) as err:
        load_params(path)
    assert len(err.value.problems) == 1 and str(path) in err.value.problems[0]


def test_missing_params_file(tmp_path: Path):
    for path in (tmp_path / "nope.yaml", tmp_path):  # a folder is no params file either
        with pytest.raises(ConfigError) as err:
            load_params(path)
        assert len(err.value.problems) == 1
        assert str(path) in err.value.problems[0] and "not found" in err.value.problems[0]


def test_empty_params_file_is_one_line(tmp_path: Path):
    path = tmp_path / "params.yaml"
    path.write_text("# nothing here\n", encoding="utf-8")
    with pytest.raises(ConfigError) as err:
        load_params(path)
    assert len(err.value.problems) == 1


# --- the prepare stage as a real process -------------------------------------------------


def _prepare(cwd: Path, params: Path, archive: Path):
    cmd = [
        sys.executable,
        PREPARE,
        "--params",
        params,
        "--archive",
        archive,
        "--out",
        "data/prepared",
        "--report",
        "reports/data.json",
    ]
    return run(cmd, cwd, check=False, timeout=60)


def _bad_params(path: Path, several: bool) -> list[str]:
    raw = shipped_params_raw()
    raw["data"]["maxlen"] = 0
    keys = ["data.maxlen"]
    if several:
        raw["data"]["seed"] = -1
        raw["train"]["optimizer"] = "adamw2"
        keys += ["data.seed", "train.optimizer"]
    path.write_text(yaml.safe_dump(raw), encoding="utf-8")
    return keys


def _only(folder: Path, *names: str) -> bool:
    return sorted(p.name for p in folder.iterdir()) == sorted(names)


def test_prepare_stage_with_good_params_writes_outputs(tmp_path: Path, small_archive: Path):
    """Control for the failure tests below: the same call with valid params does write."""
    params = shipped_params_file(tmp_path)
    proc = _prepare(tmp_path, params, small_archive)
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "data" / "prepared" / "train.npz").is_file()
    assert (tmp_path / "reports" / "data.json").is_file()


@pytest.mark.parametrize("several", [False, True], ids=["one-bad-key", "several-bad-keys"])
def test_prepare_stage_with_bad_params_exits_1_and_writes_nothing(tmp_path: Path, small_archive: Path, several):
    params = tmp_path / "bad.yaml"
    keys = _bad_params(params, several)
    proc = _prepare(tmp_path, params, small_archive)
    assert proc.returncode == 1
    assert proc.stdout == ""
    assert "Traceback" not in proc.stderr
    lines = proc.stderr.splitlines()
    assert lines and lines[0].startswith("error: ")
    for key in keys:
        assert sum(f"{key}: got" in line for line in lines) == 1, (key, lines)
    assert _only(tmp_path, "bad.yaml")  # no data/, no reports/, no temp files


def test_prepare_stage_prefixes_every_problem_line(tmp_path: Path, small_archive: Path):
    params = tmp_path / "bad.yaml"
    keys = _bad_params(params, several=True)
    proc = _prepare(tmp_path, params, small_archive)
    lines = proc.stderr.splitlines()
    assert proc.returncode == 1 and len(lines) == len(keys)
    assert all(line.startswith("error: ") for line in lines), lines


def test_prepare_stage_binary_params_is_one_error_line(tmp_path: Path, small_archive: Path):
    params = tmp_path / "bad.yaml"
    params.write_bytes(b"\x89PNG\r\n\x1a\n\x00\xff\xfe")
    proc = _prepare(tmp_path, params, small_archive)
    assert proc.returncode == 1
    lines = proc.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and str(params) in lines[0], proc.stderr
    assert _only(tmp_path, "bad.yaml")
