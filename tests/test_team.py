"""README's team set-up, for real on one machine: PostgreSQL, an MLflow server on it, a DVC remote.

Stand-ins for the team's services: a throwaway PostgreSQL cluster on 127.0.0.1 (its own free port),
a folder as the server's artifact store and one as the DVC remote (S3 or similar in a real team).
Clone A trains and pushes; clone B, a fresh `git clone` of A, pulls and uses the models without
retraining. Fixture finalizers stop every server started here, also when a test fails.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests
import yaml

from support.commands import VENV_BIN, run
from support.corpus import make_archive
from support.params import ONE_VARIANT
from support.postgres import MISSING, PG_BIN
from support.projects import make_project, ran_stages
from support.tracking import mlflow_service

if PG_BIN is None:
    pytest.skip(MISSING, allow_module_level=True)

pytestmark = pytest.mark.slow

VARIANT = "simple_rnn"
# Root writes into a read-only folder anyway; without CAP_DAC_OVERRIDE it meets the mode bits as users do.
AS_PLAIN_USER = (
    ["setpriv", "--inh-caps=-dac_override", "--bounding-set=-dac_override", "--"] if os.geteuid() == 0 else []
)


def mlflow_server(folder: Path, backend_uri: str):
    """README's `mlflow server` on PostgreSQL, with the artifact store in ``folder``."""
    return mlflow_service("server", backend_uri, folder, "--artifacts-destination", str(folder / "artifacts"))


def health(uri: str) -> bool:
    return requests.get(f"{uri}/health", timeout=5).status_code == 200


@pytest.fixture(scope="module")
def server(postgres, tmp_path_factory):
    with mlflow_server(tmp_path_factory.mktemp("mlflow_server"), postgres.uri) as (uri, _):
        yield uri


@dataclass
class Team:
    a: Path  # trained and pushed
    b: Path  # a fresh clone that pulled
    archive: Path
    uri: str  # the tracking server


@pytest.fixture(scope="module")
def team(tmp_path_factory, server):
    """Clone A: `dvc repro` logging to the server, commit, `dvc push`; clone B: `git clone`, `dvc pull`."""
    base = tmp_path_factory.mktemp("team")
    archive, remote, a, b = make_archive(base / "aclImdb_v1.tar.gz"), base / "dvc-remote", base / "a", base / "b"
    a.mkdir()
    make_project(a)
    (a / "params.yaml").write_text(yaml.safe_dump(ONE_VARIANT, sort_keys=False), encoding="utf-8")
    run(["dvc", "remote", "add", "-d", "storage", remote], a)
    run(["git", "add", "-A"], a)
    run(["git", "commit", "-qm", "tiny params, the team's DVC remote"], a)

    repro = run(["dvc", "repro"], a, env={"MLFLOW_TRACKING_URI": server, "IMDB_SOURCE": archive}, timeout=900)
    assert f"Running stage 'train@{VARIANT}'" in repro.stdout
    run(["git", "add", "-A"], a)
    run(["git", "commit", "-qm", "trained"], a)
    push = run(["dvc", "push"], a)
    stored = [p for p in remote.rglob("*") if p.is_file()]
    assert stored, push.stdout
    print(
        f"\ndvc repro in A: {repro.elapsed:.1f} s; dvc push: {push.stdout.strip().splitlines()[-1]}, "
        f"remote holds {len(stored)} files, {sum(p.stat().st_size for p in stored)} bytes"
    )

    run(["git", "clone", "-q", a, b], base)
    pull = run(["dvc", "pull"], b)
    print(f"dvc pull in B: {pull.stdout.strip().splitlines()[-1]} in {pull.elapsed:.1f} s")
    return Team(a=a, b=b, archive=archive, uri=server)


def clone(team: Team, dest: Path, *pull_targets: str) -> Path:
    """Another team member's clone of A's commit, with what `dvc pull [targets]` brings."""
    run(["git", "clone", "-q", team.a, dest], dest.parent)
    run(["dvc", "pull", *pull_targets], dest)
    return dest


def digests(folder: Path) -> dict[str, str]:
    """sha256 of every file in the workspace and DVC's cache (not git's, DVC's scratch or Python's byte code)."""
    out = {}
    for path in sorted(folder.rglob("*")):
        rel = path.relative_to(folder)
        skip = rel.parts[0] == ".git" or rel.parts[:2] == (".dvc", "tmp") or "__pycache__" in rel.parts
        if path.is_file() and not skip:
            out[rel.as_posix()] = hashlib.sha256(path.read_bytes()).hexdigest()
    return out


def up_to_date(repo: Path) -> bool:
    """Nothing to run but the `track` stage, which runs every time (it records each execution in MLflow)."""
    return run(["dvc", "status"], repo).stdout.split() == ["track:", "always", "changed"]


def server_runs(uri: str):
    import mlflow

    client = mlflow.MlflowClient(tracking_uri=uri)
    experiment = client.get_experiment_by_name(ONE_VARIANT["mlflow"]["experiment"])
    return client, client.search_runs([experiment.experiment_id])


def test_pulled_clone_is_up_to_date_and_predicts_without_retraining(team):
    a, b = team.a, team.b
    assert up_to_date(b)
    model = Path("models", VARIANT, "model.keras")
    assert (b / model).read_bytes() == (a / model).read_bytes()

    reviews = ["A wonderful, moving film: loved it.", "Boring and awful, a waste."]
    predict = [VENV_BIN / "imdb-rnn", "predict", "--model", VARIANT, *reviews]
    from_b = run([*predict, "--project", b], b.parent).stdout.splitlines()
    assert from_b == run([*predict, "--project", a], a.parent).stdout.splitlines()  # the same model
    assert [line.split("\t")[2] for line in from_b] == reviews
    assert all(0.0 <= float(line.split("\t")[1]) <= 1.0 for line in from_b)

    _, runs_before = server_runs(team.uri)
    before = digests(b)
    repro = run(["dvc", "repro"], b, env={"MLFLOW_TRACKING_URI": team.uri, "IMDB_SOURCE": team.archive})
    assert ran_stages(repro.stdout) == {"track"}, repro.stdout  # the one stage that runs every time
    assert "already records these results" in repro.stdout
    assert digests(b) == before
    assert len(server_runs(team.uri)[1]) == len(runs_before)  # nothing trained, nothing logged


def test_runs_are_in_postgresql_and_served_back(team, postgres, server):
    client, runs = server_runs(team.uri)
    (r,) = [x for x in runs if x.data.tags.get("run_kind") == "variant"]
    (seed_run,) = [x for x in runs if x.data.tags.get("run_kind") == "seed"]
    assert r.info.status == seed_run.info.status == "FINISHED"
    run_json = json.loads((team.b / "models" / VARIANT / "run.json").read_text())
    assert (r.info.run_id, seed_run.info.run_id) == (run_json["run_id"], run_json["seed_runs"]["42"])
    metrics = json.loads((team.b / "reports" / "variants" / VARIANT / "metrics.json").read_text())
    for key in ("accuracy", "loss", "precision", "recall", "f1", "roc_auc"):
        assert r.data.metrics[f"test_{key}_mean"] == pytest.approx(metrics[key], abs=1e-6), key
    assert [m.step for m in client.get_metric_history(seed_run.info.run_id, "val_accuracy")] == [1, 2]
    summaries = client.get_experiment_by_name(ONE_VARIANT["mlflow"]["experiment"] + " summaries")
    assert len(client.search_runs([summaries.experiment_id])) == 1
    # the rows are in PostgreSQL itself, not in some local store of the server
    assert r.info.run_id in postgres.query("SELECT run_uuid FROM runs WHERE status = 'FINISHED'")
    assert not (team.a / "mlflow.db").exists()


@pytest.mark.parametrize("server_state", ["in-use", "fresh"])
def test_stage_fails_fast_when_postgresql_is_down(team, postgres, server, tmp_path, server_state):
    """The server still answers /health; its store does not. `in-use`: it has served the team (answers 503);
    `fresh`: started but not yet asked (it retries the database itself before answering)."""
    repo = clone(team, tmp_path / "c", "prepare")
    before = digests(repo)
    with contextlib.ExitStack() as stack:
        uri = server if server_state == "in-use" else stack.enter_context(mlflow_server(tmp_path, postgres.uri))[0]
        postgres.stop()
        stack.callback(postgres.start)  # for the tests after this one, also when it fails
        assert health(uri)
        proc = run(
            [sys.executable, "stages/train.py", VARIANT],
            repo,
            env={"MLFLOW_TRACKING_URI": uri},
            check=False,
            timeout=600,
        )
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    print(f"\n{server_state}: failed in {proc.elapsed:.1f} s: {lines[-1] if lines else ''}")
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("error: "), proc.stderr
    assert uri in lines[0], proc.stderr
    assert re.search(r"\((HTTP 5\d\d|no answer in \d+ s)\); .*database", lines[0]), lines[0]
    assert proc.elapsed < 30, f"took {proc.elapsed:.1f} s"
    assert digests(repo) == before  # no model folder, no history, no local mlflow.db


@pytest.mark.parametrize("remote_state", ["not-configured", "read-only"])
def test_push_to_a_broken_remote_fails_and_keeps_the_workspace(team, tmp_path, remote_state):
    repo = clone(team, tmp_path / "d")
    if remote_state == "not-configured":
        cmd, expected = ["dvc", "push", "-r", "absent"], "remote 'absent' doesn't exist"
    else:
        readonly = tmp_path / "readonly-remote"
        readonly.mkdir(mode=0o555)
        run(["dvc", "remote", "add", "--local", "readonly", readonly], repo)
        cmd, expected = [*AS_PLAIN_USER, "dvc", "push", "-r", "readonly"], "Permission denied"
    before = digests(repo)
    proc = run(cmd, repo, check=False)
    assert proc.returncode != 0
    assert "ERROR" in proc.stderr, proc.stderr
    assert expected in proc.stderr, proc.stderr
    if remote_state == "read-only":
        assert list(readonly.iterdir()) == []
    assert digests(repo) == before
    assert up_to_date(repo)
