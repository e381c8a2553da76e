"""Fixtures: synthetic aclImdb archives and throw-away DVC projects (helpers.py has the functions)."""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path

import pytest
import requests

from helpers import VENV_BIN, free_port, make_archive, make_project, stop_group, tool_env

os.environ.setdefault("KERAS_BACKEND", "tensorflow")  # tests that import Keras in-process
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


@pytest.fixture(scope="session")
def small_archive(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The default synthetic corpus (40 reviews per split and class) as aclImdb_v1.tar.gz."""
    return make_archive(tmp_path_factory.mktemp("small_archive") / "aclImdb_v1.tar.gz")


@pytest.fixture
def dvc_repo(tmp_path: Path) -> Path:
    """A fresh git + DVC project holding a copy of dvc.yaml, params.yaml, stages/ and src/."""
    return make_project(tmp_path)


@pytest.fixture(scope="module")
def mlflow_server(tmp_path_factory):
    """A real `mlflow server` on 127.0.0.1 (SQLite store, its own artifact folder), stopped with its process group."""
    root = tmp_path_factory.mktemp("mlflow_server")
    port = free_port()
    uri = f"http://127.0.0.1:{port}"
    log = open(root / "server.log", "w")  # noqa: SIM115 (the server writes it until stopped)
    cmd = [
        VENV_BIN / "mlflow",
        "server",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--workers",
        "1",
        "--backend-store-uri",
        f"sqlite:///{root / 'server.db'}",
        "--artifacts-destination",
        str(root / "server-artifacts"),
    ]
    # The GenAI job runner (six huey consumers) is no part of tracking; off, the server starts
    # ~10 s sooner on a small machine.
    env = tool_env({"MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false", "MLFLOW_TRACKING_URI": None})
    proc = subprocess.Popen(
        [str(c) for c in cmd], cwd=root, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
    )  # its own process group, stopped as a whole
    try:
        deadline = time.monotonic() + 60
        while True:
            assert proc.poll() is None, "mlflow server exited:\n" + (root / "server.log").read_text()
            try:
                if requests.get(f"{uri}/health", timeout=2).status_code == 200:
                    break
            except requests.RequestException:
                pass
            assert time.monotonic() < deadline, "no /health 200 in 60 s:\n" + (root / "server.log").read_text()
            time.sleep(0.5)
        yield {"uri": uri, "port": port, "root": root, "proc": proc}
    finally:
        stop_group(proc)
        log.close()
