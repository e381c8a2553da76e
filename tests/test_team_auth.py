"""README's team set-up with authentication on, for real: MLflow's basic-auth app on the team's PostgreSQL.

The server runs as README starts it: the auth app's settings file README gives (its users in a database of
their own on the same PostgreSQL, no permission by default), the CSRF secret and the admin's password from
the environment. `imdb-rnn grant` makes a trainer and a reader. Every password is made here at run time.
"""

from __future__ import annotations

import hashlib
import re
import secrets
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests
import yaml

from support.commands import REPO_ROOT, VENV_BIN, run
from support.corpus import make_archive
from support.params import ONE_VARIANT
from support.projects import make_project
from support.tracking import mlflow_service

pytestmark = pytest.mark.slow

EXPERIMENT = ONE_VARIANT["mlflow"]["experiment"]
MODEL = "imdb-rnn-sentiment"
VARIANT = "simple_rnn"
USERS = ("admin", "trainer", "reader")
# The admin password MLflow's auth app created on first start before MLflow 3.x made it a setting;
# MLflow now refuses it even where it is set (a "legacy admin login").
PUBLISHED_ADMIN_PASSWORD = "password1234"


def readme_auth_ini() -> str:
    """The auth app's settings exactly as README's team section writes them (its heredoc)."""
    readme = (REPO_ROOT / "README.md").read_text(encoding="utf-8")
    found = re.search(r"<<'EOF'\n(\[mlflow\]\n.*?)\nEOF\n", readme, re.S)
    assert found, "README's team section has no auth settings heredoc"
    return found.group(1) + "\n"


@dataclass
class AuthServer:
    uri: str
    log: Path
    passwords: dict[str, str]
    project: Path  # the trainer's project, trained against the server

    def env(self, user: str | None, password: str | None = None) -> dict[str, str | None]:
        """A client's environment: the server, and ``user``'s credentials (None: anonymous)."""
        return {
            "MLFLOW_TRACKING_URI": self.uri,
            "MLFLOW_TRACKING_USERNAME": user,
            "MLFLOW_TRACKING_PASSWORD": password if password is not None else self.passwords.get(user or ""),
        }


def grant(server: AuthServer, user: str, role: str) -> str:
    """README's `imdb-rnn grant`, as the admin, the new password on stdin."""
    cmd = [VENV_BIN / "imdb-rnn", "grant", user, "--role", role]
    return run(cmd, server.project, server.env("admin"), stdin=server.passwords[user] + "\n").stdout.strip()


@pytest.fixture(scope="module")
def server(postgres, tmp_path_factory):
    """The server as README starts it; the trainer's project trained on it with `dvc repro`."""
    folder = tmp_path_factory.mktemp("auth_server")
    port = postgres.port
    ini = readme_auth_ini().replace("127.0.0.1:5432", f"127.0.0.1:{port}")
    postgres.create_database("mlflow_auth")
    store = postgres.create_database("mlflow_team")
    (folder / "mlflow-auth.ini").write_text(ini, encoding="utf-8")
    passwords = {user: secrets.token_urlsafe(18) for user in USERS}
    env = {
        "MLFLOW_AUTH_CONFIG_PATH": str(folder / "mlflow-auth.ini"),
        "MLFLOW_FLASK_SERVER_SECRET_KEY": secrets.token_hex(32),
        "MLFLOW_AUTH_ADMIN_PASSWORD": passwords["admin"],
    }
    extra = ("--app-name", "basic-auth", "--artifacts-destination", str(folder / "artifacts"))
    with mlflow_service("server", store, folder, *extra, env=env) as (uri, _):
        project = make_project(tmp_path_factory.mktemp("trainer"))
        (project / "params.yaml").write_text(yaml.safe_dump(ONE_VARIANT, sort_keys=False), encoding="utf-8")
        run(["git", "commit", "-qam", "tiny params"], project)
        auth = AuthServer(uri=uri, log=folder / "mlflow-server.log", passwords=passwords, project=project)
        assert grant(auth, "trainer", "trainer").startswith("trainer (trainer): EDIT on experiment 'imdb-rnn'")
        assert grant(auth, "reader", "reader").startswith("reader (reader): READ on experiment 'imdb-rnn'")
        archive = make_archive(folder / "aclImdb_v1.tar.gz")
        repro = run(["dvc", "repro"], project, env={**auth.env("trainer"), "IMDB_SOURCE": archive}, timeout=900)
        assert f"Running stage 'train@{VARIANT}'" in repro.stdout
        yield auth


def as_user(monkeypatch, server: AuthServer, user: str | None, password: str | None = None):
    """An in-process MLflow client with ``user``'s credentials (MLflow reads them from the environment)."""
    import mlflow

    for key, value in server.env(user, password).items():
        if value is None:
            monkeypatch.delenv(key, raising=False)
        else:
            monkeypatch.setenv(key, value)
    return mlflow.MlflowClient(tracking_uri=server.uri)


def snapshot(monkeypatch, server: AuthServer) -> dict:
    """What a write could change, read as the admin: every run's metrics and status, the alias."""
    client = as_user(monkeypatch, server, "admin")
    ids = [e.experiment_id for e in client.search_experiments()]
    runs = {r.info.run_id: (r.info.status, r.data.metrics) for r in client.search_runs(ids, max_results=1000)}
    return {"runs": runs, "champion": client.get_model_version_by_alias(MODEL, "champion").version}


def variant_run(monkeypatch, server: AuthServer):
    client = as_user(monkeypatch, server, "admin")
    experiment = client.get_experiment_by_name(EXPERIMENT)
    (found,) = client.search_runs([experiment.experiment_id], "tags.run_kind = 'variant'")
    return found


def test_the_trainers_repro_logs_and_registers(server, monkeypatch):
    found = variant_run(monkeypatch, server)
    assert found.info.status == "FINISHED"
    assert "test_accuracy_mean" in found.data.metrics
    client = as_user(monkeypatch, server, "reader")  # the reader sees what the trainer made
    assert client.get_run(found.info.run_id).data.metrics == found.data.metrics
    assert client.get_model_version_by_alias(MODEL, "champion").run_id == found.info.run_id


@pytest.mark.parametrize("who", ["anonymous", "wrong password", "published admin password"])
def test_unknown_clients_get_401_and_change_nothing(server, monkeypatch, who):
    user, password = {
        "anonymous": (None, None),
        "wrong password": ("trainer", secrets.token_urlsafe(18)),
        "published admin password": ("admin", PUBLISHED_ADMIN_PASSWORD),
    }[who]
    before = snapshot(monkeypatch, server)
    run_id = variant_run(monkeypatch, server).info.run_id
    auth = (user, password) if user else None
    api = f"{server.uri}/api/2.0/mlflow"
    read = requests.get(f"{api}/experiments/get-by-name", params={"experiment_name": EXPERIMENT}, auth=auth, timeout=10)
    body = {"run_id": run_id, "key": "test_accuracy_mean", "value": 1.0, "timestamp": 0, "step": 0}
    write = requests.post(f"{api}/runs/log-metric", json=body, auth=auth, timeout=10)
    alias = {"name": MODEL, "alias": "champion", "version": "1"}
    move = requests.post(f"{api}/registered-models/alias", json=alias, auth=auth, timeout=10)
    assert (read.status_code, write.status_code, move.status_code) == (401, 401, 401)
    assert snapshot(monkeypatch, server) == before


def test_the_reader_reads_and_gets_403_on_every_write(server, monkeypatch):
    import mlflow

    before = snapshot(monkeypatch, server)
    run_id = variant_run(monkeypatch, server).info.run_id
    client = as_user(monkeypatch, server, "reader")
    assert client.get_run(run_id).info.status == "FINISHED"
    writes = {
        "log a metric": lambda: client.log_metric(run_id, "test_accuracy_mean", 1.0),
        "set a tag": lambda: client.set_tag(run_id, "variant", "forged"),
        "move the alias": lambda: client.set_registered_model_alias(MODEL, "champion", "1"),
        "delete the run": lambda: client.delete_run(run_id),
    }
    for what, write in writes.items():
        with pytest.raises(mlflow.exceptions.MlflowException) as caught:
            write()
        assert caught.value.get_http_status_code() == 403, what
    assert snapshot(monkeypatch, server) == before


def digests(folder: Path) -> dict[str, str]:
    return {
        p.relative_to(folder).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file() and ".git" not in p.relative_to(folder).parts[:1] and "tmp" not in p.relative_to(folder).parts
    }


@pytest.mark.parametrize(
    ("who", "expected"),
    [
        ("none", r"asks for credentials \(HTTP 401\); set MLFLOW_TRACKING_USERNAME and MLFLOW_TRACKING_PASSWORD"),
        ("wrong password", r"refused user 'trainer' \(HTTP 401: wrong user name or password\)"),
        ("reader", r"user 'reader' is not allowed to do this \(HTTP 403\); use an account with EDIT"),
    ],
)
def test_a_stage_without_the_trainers_credentials_stops_in_seconds_in_one_line(server, who, expected):
    env = {
        "none": server.env(None),
        "wrong password": server.env("trainer", secrets.token_urlsafe(18)),
        "reader": server.env("reader"),
    }[who]
    before = digests(server.project)
    proc = run([sys.executable, "stages/train.py", VARIANT], server.project, env=env, check=False, timeout=300)
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith(f"error: MLflow tracking server {server.uri}"), lines[0]
    assert re.search(expected, lines[0]), lines[0]
    assert proc.elapsed < 30, f"took {proc.elapsed:.1f} s"
    assert digests(server.project) == before


def test_no_password_is_in_git_runs_artifacts_or_the_servers_log(server, monkeypatch, tmp_path):
    secrets_made = list(server.passwords.values())
    patterns = [arg for made in secrets_made for arg in ("-e", made)]
    tracked = run(["git", "grep", "-c", "-F", *patterns], server.project, check=False)
    assert tracked.returncode == 1, tracked.stdout  # no match in the committed project
    client = as_user(monkeypatch, server, "admin")
    ids = [e.experiment_id for e in client.search_experiments()]
    runs = client.search_runs(ids, max_results=1000)
    assert runs
    for r in runs:
        recorded = " ".join([*r.data.params.values(), *r.data.tags.values(), r.info.run_name or ""])
        assert not any(s in recorded for s in secrets_made), r.info.run_id
        downloaded = Path(client.download_artifacts(r.info.run_id, "", str(tmp_path / r.info.run_id)))
        for path in (p for p in downloaded.rglob("*") if p.is_file()):
            data = path.read_bytes()
            assert not any(s.encode() in data for s in secrets_made), path
    log = server.log.read_text(encoding="utf-8", errors="replace")
    assert "basic-auth" in log or "auth" in log.lower()  # the log is the auth server's
    assert not any(s in log for s in secrets_made)


def test_dvc_remote_credentials_stay_out_of_the_committed_config(server, tmp_path):
    repo = tmp_path / "clone"
    run(["git", "clone", "-q", server.project, repo], tmp_path)
    password = secrets.token_urlsafe(18)
    run(["dvc", "remote", "add", "team", "https://dvc.example.org/imdb-rnn"], repo)  # committed: no secret
    run(["dvc", "remote", "modify", "team", "auth", "basic"], repo)
    run(["dvc", "remote", "modify", "--local", "team", "user", "trainer"], repo)
    run(["dvc", "remote", "modify", "--local", "team", "password", password], repo)
    assert password in (repo / ".dvc" / "config.local").read_text()
    assert password not in (repo / ".dvc" / "config").read_text()
    run(["git", "add", "-A"], repo)
    staged = run(["git", "diff", "--cached", "--name-only"], repo).stdout.split()
    assert staged == [".dvc/config"]  # config.local is ignored (DVC's own .dvc/.gitignore)
