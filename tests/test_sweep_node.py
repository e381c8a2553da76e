"""A sweep point cancelled on a loaded machine: its stage SIGKILLed after the grace, before it could end
its MLflow run (the race a 2-core CI run under three test workers hit)."""

from __future__ import annotations

import subprocess
import sys

import mlflow

from imdb_rnn import tracking
from imdb_rnn.processes import stop_group
from imdb_rnn.sweep.node import end_killed_runs

STAGE = """
import signal, sys, time
import mlflow
from imdb_rnn import tracking

mlflow.set_tracking_uri(sys.argv[1])
mlflow.set_experiment("imdb-rnn")
with tracking.tracked_run(run_name="point"):
    signal.signal(signal.SIGTERM, signal.SIG_IGN)  # too busy to end its run within the grace
    print(mlflow.active_run().info.run_id, flush=True)
    time.sleep(120)
"""


def test_a_stage_killed_after_the_grace_leaves_no_run_running(tmp_path):
    own_uri = mlflow.get_tracking_uri()
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    stage = subprocess.Popen(
        [sys.executable, "-c", STAGE, uri], start_new_session=True, stdout=subprocess.PIPE, text=True
    )
    killed = stage.stdout.readline().strip()
    client = mlflow.MlflowClient(tracking_uri=uri)
    # a run of a live process in another experiment: not the sweep's to end
    live = client.create_run(client.create_experiment("other")).info.run_id
    client.set_tag(live, tracking.PROCESS_TAG, tracking.this_process())

    stop_group(stage.pid, grace_s=0.5)
    stage.wait(timeout=10)
    assert client.get_run(killed).info.status == "RUNNING"  # what the SIGKILL leaves behind

    log: list[str] = []
    end_killed_runs(uri, log)
    assert client.get_run(killed).info.status == "KILLED"
    assert client.get_run(live).info.status == "RUNNING"
    assert log == []
    assert mlflow.get_tracking_uri() == own_uri  # the point's store, not this process' tracking URI


def test_an_unreachable_store_is_one_log_line_not_an_exception():
    log: list[str] = []
    end_killed_runs("http://127.0.0.1:9", log)  # the discard port: nothing listens
    assert len(log) == 1 and log[0].startswith("could not end the killed stages' MLflow runs: "), log
