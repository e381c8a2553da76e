"""Property-based input tests: whatever a user types into params.yaml, pipes into `imdb-rnn predict` or
sets as IMDB_SOURCE, the answer is a typed, in-bounds setting or one `error:` line naming the key or
input, never a traceback, and nothing is written."""

from __future__ import annotations

import dataclasses
import importlib.util
import io
import math
import os
import sys
import tempfile
import typing
from contextlib import redirect_stderr, redirect_stdout
from pathlib import Path
from unittest import mock

import numpy as np
import yaml
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from imdb_rnn import cli
from imdb_rnn.config import UNROLL_UP_TO_MAXLEN, DataParams, MlflowParams, ModelParams, TrainParams, parse_params
from imdb_rnn.download import fetch
from imdb_rnn.errors import ConfigError, ImdbRnnError, run_cli
from support.commands import REPO_ROOT

# Where each section's keys live in params.yaml (a variant named `a` and its own train overrides).
SECTIONS = {
    "data": (DataParams, ("data",)),
    "train": (TrainParams, ("train",)),
    "variant": (ModelParams, ("models", "a")),
    "variant train": (TrainParams, ("models", "a", "train")),
    "mlflow": (MlflowParams, ("mlflow",)),
}
KEYS = [(section, f.name) for section, (cls, _) in SECTIONS.items() for f in dataclasses.fields(cls)]

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.integers(min_value=-3, max_value=70_000),
    st.floats(allow_nan=True, allow_infinity=True),
    st.floats(min_value=-1, max_value=2),
    st.text(max_size=12),
    st.sampled_from(["pre", "post", "movie", "review", "adam", "jax", "max", "imdb-rnn", " x", "a/b"]),
    st.sampled_from(["simple", "gru", "lstm", "ensemble", "best_seed", "auto"]),  # choices of the newer keys
    st.integers(min_value=0, max_value=2**21 + 2),  # bigram_buckets' range, its edges and beyond
    st.floats(min_value=0, max_value=0.6),  # champion_alpha's (0, 0.5] and beyond
)
values = st.one_of(scalars, st.lists(scalars, max_size=4), st.dictionaries(st.text(max_size=4), scalars, max_size=2))


def _params_with(section: str, key: str, value) -> dict:
    """A params mapping of one variant `a`, every key at its default but the one set here."""
    raw: dict = {"models": {"a": {}}}
    node = raw
    for part in SECTIONS[section][1]:
        node = node.setdefault(part, {})
    node[key] = value
    return raw


def _field_type(cls: type, key: str):
    return typing.get_type_hints(cls, include_extras=False)[key]


def _setting(params, section: str, key: str):
    holder = {
        "data": params.data,
        "train": params.train,
        "variant": params.models["a"],
        "variant train": params.train_for("a"),
        "mlflow": params.mlflow,
    }[section]
    return getattr(holder, key)


@settings(max_examples=600, deadline=None)
@given(key=st.sampled_from(KEYS), value=values)
@example(key=("train", "learning_rate"), value=2**53 + 1)  # an integer no float holds exactly (found by CI)
def test_any_value_of_any_key_is_a_typed_setting_or_one_line(key, value):
    section, name = key
    prefix = ".".join((*SECTIONS[section][1], name))
    try:
        params = parse_params(_params_with(section, name, value))
    except ConfigError as err:
        lines = err.problems
        assert len(lines) == 1, lines
        assert lines[0].startswith(f"{prefix}: got "), lines
        assert "; allowed: " in lines[0], lines
        assert "\n" not in lines[0], lines
        assert len(lines[0]) < 400, lines
        return
    got = _setting(params, section, name)
    kind = _field_type(SECTIONS[section][0], name)
    if kind is bool:
        assert got is value
    elif typing.get_origin(kind) is typing.Union and bool in typing.get_args(kind):  # a boolean or auto
        assert value is True or value is False or value == "auto"
        assert got is value or (value == "auto" and (got == "auto" or isinstance(got, bool)))  # a variant's: resolved
    elif kind is int:
        assert type(value) is int
        assert got == value
    elif kind is float:
        assert type(value) in (int, float)
        assert math.isfinite(got)
        assert got == float(value)  # an integer becomes the nearest float (2**53 + 1 rounds)
        assert type(got) is float
    elif name == "seeds":
        assert got == tuple(value)
        assert len(set(got)) == len(got)
        for seed in got:  # within the RNG's range: numpy's legacy seeding, the strictest Keras uses, takes it
            np.random.seed(seed)
    elif name == "clipnorm":
        assert got is None if value is None else (math.isfinite(got) and got > 0)
    else:
        assert isinstance(value, str)
        assert got == value


unrolls = st.one_of(st.none(), st.booleans(), st.sampled_from(["auto", "false", 0]))  # None: the key left out


@settings(max_examples=300, deadline=None)
@given(cell=st.sampled_from(["simple", "gru", "lstm"]), own=unrolls, shared=unrolls, other=st.booleans())
def test_a_gated_cell_trains_only_in_a_loop_or_is_one_line(cell, own, shared, other):
    """cell and unroll across sections: a gated cell with the loop (its own ``train.unroll: false`` or
    auto, or every variant's) is accepted and trains on the loop; with unroll set true ``models.a.cell`` is
    named in one line beside any bad unroll, never a traceback; another variant is never blamed."""
    raw: dict = {"models": {"a": {"cell": cell}}}
    if own is not None:
        raw["models"]["a"]["train"] = {"unroll": own}
    if shared is not None:
        raw["train"] = {"unroll": shared}
    if other:
        raw["models"]["b"] = {"units": 4}
    effective = own if own is not None else (shared if shared is not None else "auto")
    try:
        params = parse_params(raw)
    except ConfigError as err:
        cells = [line for line in err.problems if line.startswith("models.a.cell: ")]
        bad_unroll = [line for line in err.problems if ".unroll: got " in line]
        assert len(cells) == (cell != "simple" and effective is True), err.problems
        assert len(err.problems) == len(cells) + len(bad_unroll), err.problems
        assert cells or bad_unroll, err.problems
        assert not any(line.startswith("models.b.") for line in err.problems), err.problems
        return
    assert params.model("a").cell == cell
    assert effective in (False, "auto") or cell == "simple"
    assert params.train_for("a").unroll is (effective is True or (effective == "auto" and cell == "simple"))


@settings(max_examples=400, deadline=None)
@given(
    maxlen=st.one_of(st.integers(1, 100_000), st.integers(UNROLL_UP_TO_MAXLEN - 2, UNROLL_UP_TO_MAXLEN + 2)),
    cell=st.sampled_from(["simple", "gru", "lstm"]),
    dropout=st.sampled_from([0.0, 0.2]),
    bidirectional=st.booleans(),
    unroll=st.sampled_from([True, False, "auto", None]),
    bucketing=st.sampled_from([True, False, "auto", None]),
)
def test_every_accepted_setting_trains_on_a_path_the_model_has(maxlen, cell, dropout, bidirectional, unroll, bucketing):
    """Any ``unroll`` and ``bucketing`` (None: left out, i.e. auto) resolve to one of the paths there are:
    unrolled at a fixed length, or Keras' loop with or without buckets. A set value is kept; ``auto``
    unrolls only the pipeline's own one-direction SimpleRNN layer, up to ``UNROLL_UP_TO_MAXLEN`` steps, and
    buckets whenever on the loop. What MLflow logs is the path taken; a clash is one line."""
    train = {k: v for k, v in (("unroll", unroll), ("bucketing", bucketing)) if v is not None}
    model = {"cell": cell, "dropout": dropout, "bidirectional": bidirectional, "train": train}
    raw = {"data": {"maxlen": maxlen}, "models": {"a": model}}
    try:
        params = parse_params(raw)
    except ConfigError as err:
        assert unroll is True and (bucketing is True or cell != "simple"), err.problems
        assert all("; allowed: " in line for line in err.problems), err.problems
        return
    path = params.train_for("a")
    assert type(path.unroll) is bool and type(path.bucketing) is bool
    assert not (path.unroll and (path.bucketing or cell != "simple"))
    if unroll in (True, False):
        assert path.unroll is unroll
    elif cell == "simple" and not dropout and not bidirectional and bucketing is not True:
        assert path.unroll is (maxlen <= UNROLL_UP_TO_MAXLEN)
    else:
        assert path.unroll is False  # Keras' own unrolled layers, or the loop asked for
    assert path.bucketing is (bucketing if bucketing in (True, False) else not path.unroll)
    assert (params.flat("a")["train.unroll"], params.flat("a")["train.bucketing"]) == (path.unroll, path.bucketing)


@settings(max_examples=200, deadline=None)
@given(section=st.sampled_from(sorted(SECTIONS)), key=st.one_of(st.text(max_size=10), st.integers()), value=scalars)
def test_an_unknown_key_is_one_line_naming_it(section, key, value):
    cls = SECTIONS[section][0]
    if key in {f.name for f in dataclasses.fields(cls)} or (section == "variant" and key == "train"):
        return
    try:
        parse_params(_params_with(section, key, value))
    except ConfigError as err:
        assert len(err.problems) == 1, err.problems
        assert "unknown key" in err.problems[0], err.problems
        assert "\n" not in err.problems[0]
    else:
        raise AssertionError(f"{section}.{key!r} accepted")


def _load_stage(name: str):
    spec = importlib.util.spec_from_file_location(f"stage_{name}", REPO_ROOT / "stages" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


PREPARE, TRAIN = _load_stage("prepare"), _load_stage("train")


def _run_in(folder: Path, entry) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with redirect_stdout(out), redirect_stderr(err):
        code = run_cli(entry, interrupted="stopped")
    return code, out.getvalue(), err.getvalue()


invalid_edits = st.tuples(st.sampled_from(KEYS), values).filter(
    lambda edit: _refused(_params_with(edit[0][0], edit[0][1], edit[1]))
)


def _refused(raw: dict) -> bool:
    try:
        parse_params(raw)
    except ConfigError:
        return True
    return False


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.filter_too_much])
@given(edits=st.lists(invalid_edits, min_size=1, max_size=3, unique_by=lambda e: e[0]))
@example(edits=[(("data", "max_features"), None), (("variant", "max_features"), 20001)])  # found by hypothesis
def test_stages_refuse_bad_params_in_one_line_each_and_write_nothing(edits):
    """prepare and train, in-process, as DVC runs them: exit 1, `error:` lines naming every bad key."""
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        raw: dict = {"models": {"a": {}}}
        for (section, name), value in edits:
            node = raw
            for part in SECTIONS[section][1]:
                node = node.setdefault(part, {})
            node[name] = value
        params = folder / "params.yaml"
        params.write_text(yaml.safe_dump(raw, allow_unicode=True), encoding="utf-8")
        store = folder / "mlflow.db"
        outputs = ["--data", str(folder / "data"), "--models", str(folder / "models"), "--reports", str(folder / "r")]
        entries = {
            "prepare": lambda: PREPARE.main(["--params", str(params), "--out", str(folder / "data"),
                                             "--report", str(folder / "reports" / "data.json"),
                                             "--archive", str(folder / "missing.tar.gz")]),
            "train": lambda: TRAIN.main(["a", "--params", str(params), *outputs]),
        }  # fmt: skip
        with mock.patch.dict(os.environ, {"MLFLOW_TRACKING_URI": f"sqlite:///{store}"}):
            for stage, entry in entries.items():
                code, out, err = _run_in(folder, entry)
                lines = err.splitlines()
                assert code == 1, (stage, err)
                assert out == "", (stage, err)
                assert lines, (stage, err)
                assert all(line.startswith("error: ") for line in lines), (stage, err)
                assert "Traceback" not in err
                for (section, name), _ in edits:
                    key = ".".join((*SECTIONS[section][1], name))
                    if section == "variant train" and any(line.startswith("error: train.") for line in lines):
                        continue  # a variant's overrides are checked once the train section they extend is valid
                    if (section, name) == ("variant", "max_features") and any(
                        line.startswith("error: data.") for line in lines
                    ):
                        continue  # a variant's vocabulary is checked against data.max_features once data is valid
                    assert any(line.startswith(f"error: {key}: ") for line in lines), (stage, key, lines)
        assert sorted(p.name for p in folder.iterdir()) == ["params.yaml"]  # no data, model, report or store


@settings(max_examples=150, deadline=None)
@given(data=st.one_of(st.binary(max_size=40), st.text(max_size=20).map(lambda t: t.encode("utf-8"))))
def test_predict_reads_any_bytes_on_stdin_as_text_or_one_line(data):
    """Bytes that are not UTF-8 are named as such; text reaches the next check (here: no params.yaml)."""
    with tempfile.TemporaryDirectory() as tmp:
        stdin = io.TextIOWrapper(io.BytesIO(data), encoding="utf-8")
        out, err = io.StringIO(), io.StringIO()
        with mock.patch.object(sys, "stdin", stdin), redirect_stdout(out), redirect_stderr(err):
            code = cli.main(["predict", "--project", tmp, "--file", "-"])
        lines = err.getvalue().splitlines()
        assert code == 1, lines
        assert out.getvalue() == "", lines
        assert len(lines) == 1, lines
        assert lines[0].startswith("error: "), lines
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError:
            assert "stdin is not UTF-8 text" in lines[0], lines
        else:
            assert ("no review text" if not text.strip() else "params file not found") in lines[0], lines


@settings(max_examples=100, deadline=None)
@given(data=st.binary(min_size=1, max_size=30))
def test_predict_reads_any_argument_bytes_as_text_or_one_line(data):
    """A shell passes argv bytes; Python hands over what is not UTF-8 as lone surrogates."""
    argument = os.fsdecode(data.replace(b"\0", b"")) or "x"
    with tempfile.TemporaryDirectory() as tmp:
        err = io.StringIO()
        with redirect_stdout(io.StringIO()), redirect_stderr(err):
            code = cli.main(["predict", "--project", tmp, "--", argument])  # "--": text, even "-x" or "-h"
        lines = err.getvalue().splitlines()
        assert code == 1, lines
        assert len(lines) == 1, lines
        assert lines[0].startswith("error: "), lines


@settings(max_examples=150, deadline=None)
@given(
    source=st.one_of(
        st.text(max_size=30),
        st.builds(
            lambda scheme, rest: f"{scheme}://{rest}",
            st.sampled_from(["http", "https", "file", "ftp", "HTTP", ""]),
            st.text(alphabet="[]:@%/?#.ab1 \x00", max_size=15),
        ),
    )
)
@example(source="~0")  # an unknown ~user: pathlib raised RuntimeError here
def test_any_imdb_source_downloads_or_fails_in_one_line(source):
    """An unparsable or unreachable IMDB_SOURCE: a DownloadError line, never another exception."""
    with tempfile.TemporaryDirectory() as tmp:
        dest = Path(tmp) / "out" / "aclImdb_v1.tar.gz"
        try:
            fetch(source, dest, md5="0" * 32, retries=0, timeout=0.5, progress=False)
        except ImdbRnnError as exc:
            assert "\n" not in str(exc)
            assert str(exc)
        assert not dest.exists()  # no source here is the archive with an all-zero md5


@settings(max_examples=300, deadline=None)
@given(texts=st.lists(st.one_of(st.text(max_size=40), st.integers(), st.none()), min_size=0, max_size=4))
def test_the_served_model_takes_any_request_text_or_answers_400(texts):
    """What reaches the served model's predict: scored, or an MLflow INVALID_PARAMETER_VALUE (HTTP 400)."""
    import pandas as pd
    from mlflow.exceptions import MlflowException

    from imdb_rnn.text import tokenize_batch
    from imdb_rnn.text_model import TEXT_COLUMN, review_texts

    try:
        accepted = review_texts(pd.DataFrame({TEXT_COLUMN: pd.Series(texts, dtype=object)}))
    except MlflowException as exc:
        assert exc.error_code == "INVALID_PARAMETER_VALUE"
        assert exc.get_http_status_code() == 400
        assert "\n" not in exc.message
        return
    tokenize_batch(accepted)  # the first step of scoring takes every accepted text
