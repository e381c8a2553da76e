"""MLflow in tests: a real `mlflow ui` / `mlflow server` on a free port, and a project's runs."""

from __future__ import annotations

import contextlib
import subprocess
from collections.abc import Mapping
from pathlib import Path

from support.commands import VENV_BIN, answering, free_port, stop_group, tool_env, wait_until


@contextlib.contextmanager
def mlflow_service(command: str, store: str, folder: Path, *extra: str, env: Mapping[str, str | None] | None = None):
    """A real `mlflow <command>` (ui or server) on a free 127.0.0.1 port over ``store``, as the README
    starts it, with one worker and no job runner (each would be one more process to start on 2 cores):
    yields (its base URL, its Popen) once it answers /health; its process group is stopped at the end.
    ``env`` adds to (or, with None, removes from) its environment: e.g. the basic-auth app's settings."""

    port = free_port()
    base = f"http://127.0.0.1:{port}"
    log_path = Path(folder) / f"mlflow-{command}.log"
    cmd = [
        VENV_BIN / "mlflow",
        command,
        "--backend-store-uri",
        store,
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--workers",
        "1",
        *extra,
    ]
    server_env = tool_env({"MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false", "MLFLOW_TRACKING_URI": None, **(env or {})})
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(
            [str(c) for c in cmd],
            cwd=folder,
            env=server_env,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
        try:
            probe = answering(proc, f"{base}/health", log_path)
            wait_until(probe, f"mlflow {command} answering /health", timeout=120, interval=0.2)
            yield base, proc
        finally:
            stop_group(proc)


def mlflow_client(repo: Path):
    """A client on a project's default SQLite store."""
    import mlflow

    return mlflow.MlflowClient(tracking_uri=f"sqlite:///{Path(repo) / 'mlflow.db'}")


def experiment_runs(repo: Path, kind: str = "variant", name: str = "imdb-rnn"):
    """(client, runs): the runs of one kind (tag ``run_kind``): ``variant`` (one per variant and pipeline
    execution), ``seed`` (nested under it) or ``summary`` (in the summaries experiment)."""
    client = mlflow_client(repo)
    experiment = client.get_experiment_by_name(f"{name} summaries" if kind == "summary" else name)
    assert experiment is not None, "the pipeline created no MLflow experiment"
    runs = client.search_runs([experiment.experiment_id], max_results=500)
    return client, [r for r in runs if r.data.tags.get("run_kind") == kind]
