"""Fixtures: synthetic aclImdb archives, throw-away DVC projects, an MLflow server (the functions: tests/support/)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from support.corpus import make_archive
from support.postgres import MISSING, PG_BIN, throwaway_cluster
from support.projects import make_project
from support.tracking import mlflow_service

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
    store, artifacts = f"sqlite:///{root / 'server.db'}", str(root / "server-artifacts")
    with mlflow_service("server", store, root, "--artifacts-destination", artifacts) as (uri, proc):
        yield {"uri": uri, "port": int(uri.rsplit(":", 1)[1]), "root": root, "proc": proc}


@pytest.fixture(scope="session")
def postgres():
    """README's team set-up's PostgreSQL, one throwaway cluster shared by the team tests (skipped without it)."""
    if PG_BIN is None:
        pytest.skip(MISSING)
    with throwaway_cluster() as cluster:
        yield cluster
