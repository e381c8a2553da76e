"""Tracking store: location from the project root, concurrent writers, server checks."""

import os
import subprocess
import sys
import textwrap
import time

import pytest

from imdb_rnn import paths, tracking
from imdb_rnn.errors import TrackingError
from support.commands import REPO_ROOT, tool_env


def test_project_root_is_the_workspace_even_from_dvc_temp_workspaces(tmp_path):
    (tmp_path / "dvc.yaml").write_text("stages: {}\n")
    nested = tmp_path / "src" / "imdb_rnn"
    nested.mkdir(parents=True)
    assert paths.project_root(nested / "tracking.py") == tmp_path
    temp_ws = tmp_path / ".dvc" / "tmp" / "exps" / "tmpab12cd" / "src" / "imdb_rnn" / "tracking.py"
    assert paths.project_root(temp_ws) == tmp_path


def test_default_uri_is_sqlite_at_root_and_env_overrides(tmp_path):
    assert tracking.tracking_uri({}, tmp_path) == f"sqlite:///{tmp_path / 'mlflow.db'}"
    uri = "http://127.0.0.1:5000"
    assert tracking.tracking_uri({"MLFLOW_TRACKING_URI": uri}, tmp_path) == uri


def test_unreachable_server_fails_fast_with_the_uri():
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    uri = f"http://127.0.0.1:{port}"
    start = time.monotonic()
    with pytest.raises(TrackingError, match=uri) as err:
        tracking.check_reachable(uri)
    assert time.monotonic() - start < 5
    assert "MLFLOW_TRACKING_URI" in str(err.value)
    assert "\n" not in str(err.value)


WRITER = textwrap.dedent(
    """
    import sys, time
    from pathlib import Path
    sys.path.insert(0, {src!r})
    import mlflow
    from imdb_rnn import tracking
    root, name = Path(sys.argv[1]), sys.argv[2]
    (root / f"{{name}}.ready").touch()  # a barrier: both processes open the new store together
    while len(list(root.glob("*.ready"))) < 2:
        time.sleep(0.001)
    experiment_id = tracking.setup("race", env={{}}, root=root)
    with tracking.tracked_run(experiment_id=experiment_id, run_name=name, tags={{"writer": name}}):
        for step in range(1, 21):
            mlflow.log_metrics({{"val_accuracy": step / 20, "loss": 1 / step}}, step=step)
    """
)


def test_two_processes_on_a_new_store_lose_nothing(tmp_path):
    """Two real processes create the store at the same moment and log 20 steps each."""
    script = tmp_path / "writer.py"
    script.write_text(WRITER.format(src=str(REPO_ROOT / "src")))
    procs = [
        subprocess.Popen(
            [sys.executable, str(script), str(tmp_path), name],
            env=tool_env(),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for name in ("a", "b")
    ]
    for proc in procs:
        _, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err
        assert "database is locked" not in err

    import mlflow

    client = mlflow.MlflowClient(tracking_uri=f"sqlite:///{tmp_path / 'mlflow.db'}")
    experiment = client.get_experiment_by_name("race")
    runs = client.search_runs([experiment.experiment_id])
    assert sorted(r.data.tags["writer"] for r in runs) == ["a", "b"]
    for r in runs:
        assert r.info.status == "FINISHED"
        assert [m.step for m in client.get_metric_history(r.info.run_id, "val_accuracy")] == list(range(1, 21))
        assert len(client.get_metric_history(r.info.run_id, "loss")) == 20


def test_the_package_turns_mlflow_telemetry_off_unless_the_user_says_otherwise():
    """README tells users to run dvc and mlflow from the venv, without make: importing the package is enough."""
    script = "import imdb_rnn, mlflow.telemetry.utils as t; print(t.MLFLOW_DISABLE_TELEMETRY.get())"
    env = {k: v for k, v in os.environ.items() if k not in ("MLFLOW_DISABLE_TELEMETRY", "DO_NOT_TRACK")}
    off = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, check=True)
    assert off.stdout.strip() == "True"
    on = subprocess.run(
        [sys.executable, "-c", script], env={**env, "MLFLOW_DISABLE_TELEMETRY": "false"}, capture_output=True, text=True
    )
    assert on.stdout.strip() == "False", on.stderr
