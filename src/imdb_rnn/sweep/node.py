"""The Ray task of one grid point, on whichever node Ray picks: clone, `dvc exp run`, push.

It never raises on a failed run (Ray would retry it), only on cancellation, after stopping
the processes it started.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from ..processes import stop_group
from . import SweepError
from .git import exp_refs

KILL_GRACE_S = 10  # SIGTERM to the training process group, then SIGKILL
LOG_LINES = 4000  # the tail of each point's output that comes back to the driver


def thread_env(cpus: int) -> dict[str, str]:
    """Thread limits TensorFlow honours (measured: see tests/test_sweep.py), so two training
    processes on two cores do not oversubscribe them."""
    n = str(cpus)
    return {"OMP_NUM_THREADS": n, "TF_NUM_INTRAOP_THREADS": n, "TF_NUM_INTEROP_THREADS": n}


def run_point(spec: dict[str, Any]) -> dict[str, Any]:
    """Ray task: clone, `dvc exp run` the point, push it; returns the outcome, never raises on a
    failed run (Ray would retry it), only on cancellation (after stopping its processes)."""
    import ray

    node = ray.get_runtime_context().get_node_id()
    spec["board"].start.remote(spec["name"])
    # Ray cancels a running task by raising KeyboardInterrupt, which needs Python's SIGINT handler;
    # a node started from a script or a background job inherits SIGINT ignored.
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    scratch = Path(spec["scratch"] or tempfile.gettempdir()) / "imdb-rnn-sweep"
    scratch.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=spec["name"] + "-", dir=scratch))
    log: list[str] = []
    seconds: dict[str, float] = {}
    try:
        error = _steps(spec, work / "repo", log, seconds)
    finally:
        signal.signal(signal.SIGINT, previous)
        shutil.rmtree(work, ignore_errors=True)
    return {
        "name": spec["name"],
        "ok": error is None,
        "error": error,
        "node": node,
        "seconds": seconds,
        "log": "\n".join(log[-LOG_LINES:]),
    }


def _steps(spec: dict[str, Any], repo: Path, log: list[str], seconds: dict[str, float]) -> str | None:
    """The point's commands in ``repo``; the first failure's one-line error, or None."""
    env = {
        **os.environ,
        **thread_env(spec["cpus"]),
        "MLFLOW_TRACKING_URI": spec["mlflow_uri"],
        "PATH": os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")]),
        "GIT_TERMINAL_PROMPT": "0",
        "PYTHONUNBUFFERED": "1",
        "DVC_NO_ANALYTICS": "true",
    }
    dvc = [sys.executable, "-m", "dvc"]
    name = spec["name"]
    start = time.monotonic()
    if _run(["git", "clone", "--quiet", "--no-checkout", spec["url"], str(repo)], repo.parent, env, log) or _run(
        ["git", "checkout", "--quiet", "--detach", spec["commit"]], repo, env, log
    ):
        return _error_line(log, "git clone")
    seconds["clone"] = time.monotonic() - start
    try:
        if name in exp_refs(spec["url"], spec["commit"]):  # a retry after the first attempt had pushed
            log.append(f"{name} is already on the git remote")
            return None
    except SweepError as exc:
        return str(exc)

    start = time.monotonic()
    sets = [arg for override in spec["overrides"] for arg in ("-S", override)]
    try:
        if _run([*dvc, "exp", "run", "--pull", "--allow-missing", "--name", name, *sets], repo, env, log):
            return _error_line(log, "dvc exp run")
    except BaseException:
        end_killed_runs(spec["mlflow_uri"], log)
        raise
    seconds["run"] = time.monotonic() - start

    start = time.monotonic()
    if _run([sys.executable, "-m", "imdb_rnn.cli", "push-stage-results"], repo, env, log):
        return _error_line(log, "pushing the run cache's outputs")
    if _run([*dvc, "exp", "push", "--run-cache", "origin", name], repo, env, log):
        return _error_line(log, "dvc exp push")
    seconds["push"] = time.monotonic() - start
    return None


def _run(cmd: list[str], cwd: Path, env: dict[str, str], log: list[str]) -> int:
    """Run ``cmd`` in its own process group, its output appended to ``log``; exit code.

    Waits in short slices so that Ray's cancellation (a KeyboardInterrupt) lands here; then
    the whole group (dvc and the stage it runs) is stopped before the exception goes on.
    """
    proc = subprocess.Popen(
        cmd,
        cwd=cwd,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        errors="replace",
        start_new_session=True,
    )

    def read() -> None:
        assert proc.stdout is not None  # stdout=PIPE
        for line in proc.stdout:
            log.append(line.rstrip("\n"))

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    try:
        while True:
            try:
                code = proc.wait(timeout=0.5)
                break
            except subprocess.TimeoutExpired:
                continue
    except BaseException:
        stop_group(proc.pid, KILL_GRACE_S)  # a stage ends its MLflow run KILLED, unless SIGKILLed first
        raise
    finally:
        reader.join(timeout=5)
    return code


def end_killed_runs(mlflow_uri: str, log: list[str]) -> None:
    """End as KILLED the runs that a stage SIGKILLed after the grace left RUNNING (on a loaded machine a
    stage may not reach the tracking server in time); best effort: the next stage's setup does it too."""
    import mlflow

    from .. import tracking

    try:
        client = mlflow.MlflowClient(mlflow_uri)
        with tracking.one_quick_try(mlflow_uri):  # a cancellation does not wait minutes on retries
            for experiment in client.search_experiments():
                tracking.end_orphans(experiment.experiment_id, client)
    except Exception as exc:  # the cancellation goes on; the runs wait for the next setup
        log.append(f"could not end the killed stages' MLflow runs: {tracking.short_reason(exc)}")


def _error_line(log: list[str], step: str) -> str:
    """The most telling line of a failed step: a stage's `error:` line, else DVC's `ERROR:`, else the last."""
    lines = [line.strip() for line in log if line.strip()]
    ours = [line for line in lines if line.startswith("error: ")]
    dvcs = [line for line in lines if line.startswith("ERROR: ")]
    line = ours[0] if ours else dvcs[-1] if dvcs else lines[-1] if lines else "no output"
    return f"{step} failed: {line[:300]}"
