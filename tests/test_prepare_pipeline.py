"""The download -> prepare part of dvc.yaml, run for real by DVC in a throw-away project."""

from __future__ import annotations

import hashlib
import io
import json
from pathlib import Path

import numpy as np
import pytest
import yaml

from imdb_rnn.files import load_npz, read_json
from support.commands import run
from support.params import write_params

pytestmark = pytest.mark.slow  # real dvc repro / queues / servers / signals

# Every variant of the repository's params.yaml with a vocabulary of its own gets the small one.
REPO_MODELS = yaml.safe_load((Path(__file__).parents[1] / "params.yaml").read_text())["models"]
OWN_VOCABULARY = [name for name, model in REPO_MODELS.items() if "max_features" in model]
SMALL = {"data": {"maxlen": 40, "max_features": 200}, "models": {v: {"max_features": 200} for v in OWN_VOCABULARY}}
PREPARED = ("train.npz", "val.npz", "test.npz", "vocab.json")


def _env(archive: Path) -> dict:
    return {"IMDB_SOURCE": str(archive), "IMDB_MD5": None}


def _load_npz_bytes(data: bytes) -> dict:
    with np.load(io.BytesIO(data), allow_pickle=False) as npz:
        return {k: npz[k] for k in npz.files}


def _ran(output: str) -> set[str]:
    """The stages DVC says it ran."""
    return {stage for stage in ("download", "prepare") if f"Running stage '{stage}'" in output}


def test_dvc_repro_prepare(dvc_repo: Path, small_archive: Path):
    write_params(dvc_repo / "params.yaml", SMALL)
    env = _env(small_archive)

    first = run(["dvc", "repro", "prepare"], dvc_repo, env=env)
    assert _ran(first.stdout) == {"download", "prepare"}, first.stdout
    raw = dvc_repo / "data" / "raw" / "aclImdb_v1.tar.gz"
    assert raw.read_bytes() == small_archive.read_bytes()
    prepared = dvc_repo / "data" / "prepared"
    assert sorted(p.name for p in prepared.iterdir()) == sorted(PREPARED)
    x = {name: load_npz(prepared / f"{name}.npz")["x"] for name in ("train", "val", "test")}
    assert x["test"].shape == (80, 40)
    assert x["train"].shape[1] == x["val"].shape[1] == 40
    assert x["train"].shape[0] + x["val"].shape[0] == 80 and 12 <= x["val"].shape[0] <= 16  # by movie: about 20 %
    assert max(int(a.max()) for a in x.values()) < 200
    assert read_json(prepared / "vocab.json")["maxlen"] == 40

    report = json.loads((dvc_repo / "reports" / "data.json").read_text(encoding="utf-8"))
    counts = {name: (s["reviews"], s["neg"], s["pos"]) for name, s in report["splits"].items()}
    assert counts["test"] == (80, 40, 40)
    assert counts["train"][0] == x["train"].shape[0]
    assert counts["train"][1] + counts["val"][1] == counts["train"][2] + counts["val"][2] == 40
    assert report["movies"]["shared_train_val"] == report["movies"]["shared_train_test"] == 0
    assert report["maxlen"] == 40
    assert report["vocab_size"] <= 200
    lock = yaml.safe_load((dvc_repo / "dvc.lock").read_text(encoding="utf-8"))
    assert {"download", "prepare"} <= set(lock["stages"])
    assert lock["stages"]["prepare"]["params"]["params.yaml"]["data"]["maxlen"] == 40

    status = run(["dvc", "status", "prepare", "download"], dvc_repo, env=env)
    assert "up to date" in status.stdout, status.stdout
    again = run(["dvc", "repro", "prepare"], dvc_repo, env=env)
    assert _ran(again.stdout) == set(), again.stdout
    assert "didn't change" in again.stdout or "up to date" in again.stdout

    before = {p.name: p.read_bytes() for p in prepared.iterdir()}
    write_params(dvc_repo / "params.yaml", {"data": {"maxlen": 25}})
    status = run(["dvc", "status", "prepare", "download"], dvc_repo, env=env)
    assert "prepare:" in status.stdout, status.stdout
    assert "params.yaml" in status.stdout, status.stdout
    assert "download" not in status.stdout, status.stdout
    changed = run(["dvc", "repro", "prepare"], dvc_repo, env=env)
    assert _ran(changed.stdout) == {"prepare"}, changed.stdout
    assert "Stage 'download' didn't change" in changed.stdout
    for name in ("train", "val", "test"):
        arrays = load_npz(prepared / f"{name}.npz")
        assert arrays["x"].shape == (x[name].shape[0], 25)
        # maxlen only: same reviews, same order, same vocabulary -> same labels and rows cut shorter
        np.testing.assert_array_equal(arrays["y"], _load_npz_bytes(before[f"{name}.npz"])["y"])
        np.testing.assert_array_equal(arrays["x"], x[name][:, -25:])  # pre truncation of pre-padded rows
    assert json.loads((dvc_repo / "reports" / "data.json").read_text(encoding="utf-8"))["maxlen"] == 25


def test_dvc_repro_prepare_with_bad_params_fails_cleanly(dvc_repo: Path, small_archive: Path):
    write_params(dvc_repo / "params.yaml", {**SMALL, "data": {"maxlen": 0, "max_features": 200}})
    proc = run(["dvc", "repro", "prepare"], dvc_repo, env=_env(small_archive), check=False)
    assert proc.returncode != 0
    output = proc.stdout + proc.stderr
    assert "error: data.maxlen: got 0; allowed: an integer in [1, 100000]" in output, output
    assert "Traceback" not in output
    assert "Running stage 'prepare'" not in output  # validate stopped the pipeline before it
    assert not (dvc_repo / "data" / "prepared").exists()
    assert not (dvc_repo / "reports").exists()


def _outputs(repo: Path) -> dict[str, str]:
    """md5 of every file DVC or a stage wrote (data, reports, the lock), by path."""
    files = [p for top in ("data", "reports") for p in (repo / top).rglob("*") if p.is_file()]
    return {str(p.relative_to(repo)): hashlib.md5(p.read_bytes()).hexdigest() for p in files + [repo / "dvc.lock"]}


# Bad edits of three kinds: a typo'd key, a value out of bounds, a cross-key rule (a variant's
# vocabulary larger than the data's); each must stop before DVC removes any output.
BAD_EDITS = {
    "typo": {"data": {"maxlenn": 40}},
    "bound": {"models": {"simple_rnn": {"units": 0}}},
    "cross-key": {"models": {"stacked_rnn": {"max_features": 5000}}},
}


def test_a_bad_params_edit_leaves_every_output_in_place(dvc_repo: Path, small_archive: Path):
    write_params(dvc_repo / "params.yaml", SMALL)
    env = _env(small_archive)
    run(["dvc", "repro", "prepare"], dvc_repo, env=env)
    before = _outputs(dvc_repo)
    assert "data/prepared/train.npz" in before and "reports/data.json" in before
    good = (dvc_repo / "params.yaml").read_text(encoding="utf-8")
    for kind, edit in BAD_EDITS.items():
        write_params(dvc_repo / "params.yaml", edit)
        proc = run(["dvc", "repro", "prepare"], dvc_repo, env=env, check=False)
        lines = [line for line in (proc.stdout + proc.stderr).splitlines() if line.startswith("error: ")]
        assert proc.returncode == 255, kind  # DVC's code for a failed stage, as README's fault table says
        assert len(lines) == 1, (kind, proc.stdout + proc.stderr)
        assert _outputs(dvc_repo) == before, kind
        (dvc_repo / "params.yaml").write_text(good, encoding="utf-8")
    # Valid again: the mark is unchanged, so nothing after validate reruns.
    again = run(["dvc", "repro", "prepare"], dvc_repo, env=env)
    assert _ran(again.stdout) == set(), again.stdout
    assert _outputs(dvc_repo) == before


def test_data_statistics_are_a_report_not_a_metric(dvc_repo: Path, small_archive: Path):
    write_params(dvc_repo / "params.yaml", SMALL)
    run(["dvc", "repro", "prepare"], dvc_repo, env=_env(small_archive))
    assert (dvc_repo / "reports" / "data.json").is_file()
    shown = json.loads(run(["dvc", "metrics", "show", "--json"], dvc_repo).stdout or "{}")
    assert "reports/data.json" not in json.dumps(shown), shown
