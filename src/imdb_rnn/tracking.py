"""Where runs are recorded: an embedded SQLite MLflow store at the project root by default.

The store is found from the project root, never the working directory, so stages run from any
folder, and DVC's temporary experiment workspaces (``.dvc/tmp/exps/...``) all log into the
workspace's one store. ``MLFLOW_TRACKING_URI`` overrides it (a tracking server).
"""

from __future__ import annotations

import contextlib
import os
import re
import subprocess
from pathlib import Path

from .errors import TrackingError
from .files import folder_md5, read_json
from .interrupts import terminate_as_interrupt
from .machine import environment_tags
from .paths import MLFLOW_ARTIFACTS, MLFLOW_STORE, project_root

FIRST_CALL_TIMEOUT = 5  # seconds for the first API call to a tracking server (an MLflow API call takes ms)
DATASET_NAME = "imdb-prepared"


def tracking_uri(env=os.environ, root: Path | None = None) -> str:
    """``MLFLOW_TRACKING_URI`` if set, else ``sqlite:///<project root>/mlflow.db``."""
    uri = env.get("MLFLOW_TRACKING_URI", "").strip()
    if uri:
        return uri
    return f"sqlite:///{(root or project_root()) / MLFLOW_STORE}"


def check_reachable(uri: str, timeout: float = 3.0) -> None:
    """Fail fast (seconds, before any training) when a tracking server does not answer."""
    if not uri.startswith(("http://", "https://")):
        return
    import requests

    try:
        response = requests.get(uri.rstrip("/") + "/health", timeout=timeout)
        response.raise_for_status()
    except requests.RequestException as exc:
        reason = type(exc).__name__
        raise TrackingError(
            f"MLflow tracking server {uri} is not reachable ({reason}); start it, or unset "
            "MLFLOW_TRACKING_URI to log to the local mlflow.db"
        ) from None


@contextlib.contextmanager
def one_quick_try(uri: str):
    """On a tracking server, MLflow's API calls made inside try once, with a short timeout.

    A server whose database is down still answers ``/health`` but fails every API call (503),
    or holds it while it retries the database itself; MLflow's client retries such calls with
    exponential back-off for minutes. The stage's first calls are its check: they fail in seconds.
    """
    if not uri.startswith(("http://", "https://")):
        yield
        return
    quick = {"MLFLOW_HTTP_REQUEST_MAX_RETRIES": "0", "MLFLOW_HTTP_REQUEST_TIMEOUT": str(FIRST_CALL_TIMEOUT)}
    saved = {key: os.environ.get(key) for key in quick}
    os.environ.update(quick)
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def short_reason(exc: Exception) -> str:
    """MLflow's message in one line; for a call that failed its one try, only the cause (status or timeout)."""
    text = str(exc)
    status = re.search(r"too many (\d{3}) error responses", text)  # urllib3, when retries are spent
    if status:
        return f"HTTP {status.group(1)}"
    if "Read timed out" in text:
        return f"no answer in {FIRST_CALL_TIMEOUT} s"
    return text.splitlines()[0][:200] if text else type(exc).__name__


def setup(experiment: str, env=os.environ, root: Path | None = None) -> str:
    """Point MLflow at the store, create it and the experiment once, return the experiment id.

    A file lock serialises the first creation of the SQLite tables: two processes that
    create a new store at the same moment otherwise race and one loses its run.
    """
    import logging

    import mlflow
    from filelock import FileLock

    logging.getLogger("mlflow").setLevel(logging.WARNING)  # no "Creating initial MLflow database tables"
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")  # stage logs: no bars for local copies
    root = root or project_root()
    uri = tracking_uri(env, root)
    check_reachable(uri)
    mlflow.set_tracking_uri(uri)
    lock = FileLock(str(root / f"{MLFLOW_STORE}.lock")) if uri.startswith("sqlite:") else contextlib.nullcontext()
    try:
        with lock, one_quick_try(uri):
            client = mlflow.MlflowClient()
            found = client.get_experiment_by_name(experiment)
            if found is not None:
                return found.experiment_id
            location = (root / MLFLOW_ARTIFACTS).as_uri() if uri.startswith("sqlite:") else None
            try:
                return client.create_experiment(experiment, artifact_location=location)
            except mlflow.exceptions.MlflowException as exc:  # another process made it in between (a sweep's nodes)
                if exc.error_code != "RESOURCE_ALREADY_EXISTS":
                    raise
                return client.get_experiment_by_name(experiment).experiment_id
    except mlflow.exceptions.MlflowException as exc:
        reason = short_reason(exc)
        if not uri.startswith(("http://", "https://")):
            hint = "check the store"
        elif exc.get_http_status_code() == 404:  # another web service that answers /health, no MLflow API
            hint = "check that MLFLOW_TRACKING_URI names an MLflow tracking server"
        else:  # the server runs, its store does not answer (e.g. its database is down)
            hint = "the server answers but its API fails: check the server's log and its database"
        raise TrackingError(f"MLflow tracking store {uri} cannot be used ({reason}); {hint}") from None


def git_commit(root: Path) -> str:
    """HEAD of the workspace, or "" outside git."""
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return ""
    return out.stdout.strip() if out.returncode == 0 else ""


def run_tags(root: Path, env=os.environ, **extra: str) -> dict[str, str]:
    """Tags every run carries: git commit, DVC experiment name (under ``dvc exp run``), the CPU, library
    versions and numerics settings (what differs between two machines' results), plus ``extra``."""
    tags = {"git_commit": git_commit(root), **environment_tags(env), **extra}
    if env.get("DVC_EXP_NAME"):
        tags["dvc_exp_name"] = env["DVC_EXP_NAME"]
    return tags


def variant_tags(variant: str, root: Path, prepared: Path, env=os.environ) -> dict[str, str]:
    """variant, git commit, DVC experiment name, and the hash of the prepared data the run saw."""
    return run_tags(root, env, variant=variant, data_hash=folder_md5(prepared))


def log_training_data(prepared: Path, data_hash: str) -> None:
    """Record the prepared data the active run trains on (``mlflow.log_input``), so the MLflow UI's Dataset
    column names it by the hash of the prepared files. Its source (what `prepare` made it from: the
    archive's md5 and the data params, from ``vocab.json``) is code-built data, MLflow's ``code`` source."""
    import mlflow
    from mlflow.data.code_dataset_source import CodeDatasetSource
    from mlflow.data.meta_dataset import MetaDataset

    source = read_json(Path(prepared) / "vocab.json")["source"]
    mlflow.log_input(MetaDataset(CodeDatasetSource(source), name=DATASET_NAME, digest=data_hash), context="training")


def run_name(tags: dict[str, str], name: str) -> str:
    """``<experiment>/<name>`` under ``dvc exp run``, so DVC's rows and MLflow's runs map one to one."""
    return f"{tags['dvc_exp_name']}/{name}" if "dvc_exp_name" in tags else name


def log_metrics(metrics: dict, **kwargs) -> None:
    """``mlflow.log_metrics`` without the undefined ones (None: e.g. the interval of a single seed)."""
    import mlflow

    mlflow.log_metrics({k: v for k, v in metrics.items() if v is not None}, **kwargs)


class TrackedRun:
    """The run of a ``tracked_run`` block and the status it ends with if the block succeeds."""

    def __init__(self, run, status: str = "FINISHED"):
        self.run, self.info, self.status = run, run.info, status


@contextlib.contextmanager
def tracked_run(run_id: str | None = None, status: str = "FINISHED", **start_kwargs):
    """An MLflow run that always ends: ``status`` (FINISHED, or what the block set on the handle) when
    the block succeeds, FAILED on an error, KILLED on a signal."""
    import mlflow

    with terminate_as_interrupt():
        handle = TrackedRun(mlflow.start_run(run_id=run_id, **start_kwargs), status)
        try:
            yield handle
        except KeyboardInterrupt:
            mlflow.end_run(status="KILLED")
            raise
        except BaseException:
            mlflow.end_run(status="FAILED")
            raise
        mlflow.end_run(status=handle.status)
