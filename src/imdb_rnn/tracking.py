"""Where runs are recorded: an embedded SQLite MLflow store at the project root by default.

The store is found from the project root, never the working directory, so stages run from any
folder, and DVC's temporary experiment workspaces (``.dvc/tmp/exps/...``) all log into the
workspace's one store. ``MLFLOW_TRACKING_URI`` overrides it (a tracking server).
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import socket
import subprocess
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import psutil
import requests
from filelock import FileLock

from .errors import TrackingError
from .interrupts import terminate_as_interrupt
from .machine import dist_version, environment_tags
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


TRAINER_RIGHTS = "an account with EDIT on the project's experiments and registered model (a trainer's)"


def refused(
    uri: str, status: int | None, env: Mapping[str, str] = os.environ, needs: str = TRAINER_RIGHTS
) -> TrackingError | None:
    """A server's 401 or 403 (MLflow's auth app) as the one line that says which credentials to fix:
    401, none given or not accepted; 403, an account without the right (``needs`` says which)."""
    user = env.get("MLFLOW_TRACKING_USERNAME")
    if status == 401 and not (user and env.get("MLFLOW_TRACKING_PASSWORD")):
        return TrackingError(
            f"MLflow tracking server {uri} asks for credentials (HTTP 401); set MLFLOW_TRACKING_USERNAME and "
            "MLFLOW_TRACKING_PASSWORD to your account on it"
        )
    if status == 401:
        return TrackingError(
            f"MLflow tracking server {uri} refused user {user!r} (HTTP 401: wrong user name or password); "
            "check MLFLOW_TRACKING_USERNAME and MLFLOW_TRACKING_PASSWORD"
        )
    if status == 403:
        return TrackingError(
            f"MLflow tracking server {uri}: user {user!r} is not allowed to do this (HTTP 403); use {needs}, "
            "or ask the server's admin for it"
        )
    return None


@contextlib.contextmanager
def refusals_named(env: Mapping[str, str] = os.environ, uri: str | None = None, needs: str = TRAINER_RIGHTS):
    """MLflow calls inside whose 401 or 403 becomes ``refused``'s one line instead of a traceback."""
    import mlflow

    try:
        yield
    except mlflow.exceptions.MlflowException as exc:
        error = refused(uri or mlflow.get_tracking_uri(), exc.get_http_status_code(), env, needs)
        if error is None:
            raise
        raise error from None


def setup(experiment: str, env=os.environ, root: Path | None = None) -> str:
    """Point MLflow at the store, create it and the experiment once, end the runs orphaned by a dead
    process; return the experiment id."""
    experiment_id = open_experiment(experiment, env, root)
    with refusals_named(env):  # ending an orphan is a write: a reader's account stops here, in one line
        end_orphans(experiment_id)
    return experiment_id


def open_experiment(experiment: str, env=os.environ, root: Path | None = None) -> str:
    """Point MLflow at the store, create it and the experiment once, return the experiment id.

    A file lock serialises the first creation of the SQLite tables: two processes that
    create a new store at the same moment otherwise race and one loses its run.
    """
    import mlflow

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
        if error := refused(uri, exc.get_http_status_code(), env):
            raise error from None
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


def variant_tags(variant: str, root: Path, data_hash: str, env: Mapping[str, str] = os.environ) -> dict[str, str]:
    """variant, git commit, DVC experiment name, and the hash of the prepared data the run saw."""
    return run_tags(root, env, variant=variant, data_hash=data_hash)


def log_training_data(source: dict, data_hash: str) -> None:
    """Record the prepared data the active run trains on (``mlflow.log_input``), so the MLflow UI's Dataset
    column names it by the hash of the prepared files. Its source (what `prepare` made it from: the
    archive's md5 and the data params) is code-built data, MLflow's ``code`` source."""
    import mlflow
    from mlflow.data.code_dataset_source import CodeDatasetSource
    from mlflow.data.meta_dataset import MetaDataset

    mlflow.log_input(MetaDataset(CodeDatasetSource(source), name=DATASET_NAME, digest=data_hash), context="training")


def run_name(tags: dict[str, str], name: str) -> str:
    """``<experiment>/<name>`` under ``dvc exp run``, so DVC's rows and MLflow's runs map one to one."""
    return f"{tags['dvc_exp_name']}/{name}" if "dvc_exp_name" in tags else name


def log_metrics(metrics: dict, **kwargs) -> None:
    """``mlflow.log_metrics`` without the undefined ones (None: e.g. the interval of a single seed)."""
    import mlflow

    mlflow.log_metrics({k: v for k, v in metrics.items() if v is not None}, **kwargs)


PROCESS_TAG = "process"  # host:pid:start time of the process holding the run


def this_process() -> str:
    proc = psutil.Process()
    return f"{socket.gethostname()}:{proc.pid}:{proc.create_time():.2f}"


def process_gone(tag: str) -> bool:
    """The process a ``process`` tag names ran on this host and has ended (its pid gone or reused)."""
    host, _, rest = tag.partition(":")
    pid, _, started = rest.partition(":")
    if host != socket.gethostname() or not pid.isdigit():
        return False  # another machine's (a Ray node's): not ours to judge
    try:
        return f"{psutil.Process(int(pid)).create_time():.2f}" != started
    except psutil.NoSuchProcess:
        return True


def end_orphans(experiment_id: str, client=None) -> list[str]:
    """End as KILLED the experiment's runs left RUNNING by a process of this host that died (``kill -9``,
    the OOM killer, a power cut): nothing else would ever end them. Returns their ids. ``client``: an
    ``MlflowClient`` of another store than this process' tracking URI (a sweep node's point)."""
    import mlflow

    client = client or mlflow.MlflowClient()
    running = client.search_runs([experiment_id], "attributes.status = 'RUNNING'", max_results=1000)
    orphans = [r.info.run_id for r in running if process_gone(r.data.tags.get(PROCESS_TAG, ""))]
    for run_id in orphans:
        client.set_terminated(run_id, status="KILLED")
    if orphans:
        print(f"MLflow: {len(orphans)} run(s) left RUNNING by a process that died are now KILLED", flush=True)
    return orphans


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
        with refusals_named():  # a stage's first write: a reader's account stops here, in one line
            handle = TrackedRun(mlflow.start_run(run_id=run_id, **start_kwargs), status)
            mlflow.set_tag(PROCESS_TAG, this_process())  # who holds it RUNNING: ``end_orphans`` checks it
        try:
            yield handle
        except KeyboardInterrupt:
            mlflow.end_run(status="KILLED")
            raise
        except BaseException:
            mlflow.end_run(status="FAILED")
            raise
        mlflow.end_run(status=handle.status)


def log_keras_model(model, name: str, sample_x: np.ndarray) -> None:
    """A Keras model into the active run, named after its variant and seed, with an input signature."""
    import mlflow

    sample = np.asarray(sample_x[:2], dtype=np.int32)
    signature = mlflow.models.infer_signature(sample, model.predict(sample, verbose=0))
    mlflow.keras.log_model(model, name=name, signature=signature, pip_requirements=model_requirements())


def model_requirements(*extra: str) -> list[str]:
    """Pinned requirements for a logged MLflow model: Keras, its backend and the ``extra`` distributions
    (MLflow would otherwise infer them, slowly)."""
    import keras

    reqs = [f"keras=={dist_version('keras')}", *(f"{dist}=={dist_version(dist)}" for dist in extra)]
    names = ("tensorflow-cpu", "tensorflow") if keras.backend.backend() == "tensorflow" else ("jax",)
    backend = next((name for name in names if dist_version(name)), None)
    if backend:
        reqs.append(f"{backend}=={dist_version(backend)}")
    return reqs


def link_restored(variant: str, run_id: str, experiment_id: str, tags: dict) -> str:
    """The variant's run in this DVC experiment: its own, or a new one tagged ``restored_from`` the run
    that produced the model and metrics DVC restored, with that run's params and metrics, per-epoch
    curves included (the Chart view draws a variant's curves from its run's metric history)."""
    import mlflow

    client = mlflow.MlflowClient()
    try:
        source = client.get_run(run_id)
    except mlflow.exceptions.MlflowException:
        return run_id  # a reset store: nothing to link to
    if source.data.tags.get("dvc_exp_name") == tags["dvc_exp_name"]:
        return run_id
    link_tags = {
        **{k: v for k, v in source.data.tags.items() if not k.startswith("mlflow.")},
        **tags,
        "run_kind": "variant",
        "restored_from": run_id,
    }
    with tracked_run(
        experiment_id=experiment_id, run_name=run_name(tags, f"{variant} (restored)"), tags=link_tags
    ) as run:
        mlflow.log_params(source.data.params)
        client.log_batch(
            run.info.run_id,
            metrics=[point for key in source.data.metrics for point in client.get_metric_history(run_id, key)],
        )
        mlflow.set_tag(
            "mlflow.note.content",
            f"DVC restored this variant from its run cache: model and metrics come from run {run_id}.",
        )
        return run.info.run_id


def existing_run(run_id: str) -> str | None:
    """``run_id`` if this store has it (a store can be reset since the run was made), else None."""
    import mlflow

    try:
        mlflow.MlflowClient().get_run(run_id)
        return run_id
    except mlflow.exceptions.MlflowException:
        return None


def log_to_run(run_id: str, metrics: dict, status: str, experiment_id: str, run_name: str) -> None:
    """``metrics`` into a nested run made earlier (ending it with ``status`` again), or into a new
    nested run named ``run_name`` when the store no longer has it."""
    import mlflow

    existing = existing_run(run_id)
    with tracked_run(
        run_id=existing,
        status=status,
        experiment_id=experiment_id,
        nested=True,
        run_name=None if existing else run_name,
    ):
        mlflow.log_metrics(metrics)


def log_files(files: list[Path], folder: str) -> None:
    """Files into the active run's artifacts, under ``folder``."""
    import mlflow

    for path in files:
        mlflow.log_artifact(str(path), artifact_path=folder)
