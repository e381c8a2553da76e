"""Who may do what on a team's tracking server run with MLflow's basic-auth app (`imdb-rnn grant`).

Two roles over the project's resources (its experiments and its registered model): a ``trainer`` may
write them (EDIT: runs, metrics, model versions, the ``champion`` alias), a ``reader`` may only read
them (READ). The server's default permission is NO_PERMISSIONS (README), so an account sees nothing
it was not granted. The admin runs the grants; passwords come from stdin or a prompt, never from an
argument (visible in ``ps``), params.yaml or a log.
"""

from __future__ import annotations

import getpass
import os
import sys
from collections.abc import Mapping
from typing import IO

from . import tracking
from .config import MlflowParams
from .errors import TrackingError

ROLES = {"trainer": "EDIT", "reader": "READ"}


def read_password(user: str, stdin: IO[str] = sys.stdin) -> str:
    """The new password: a prompt (twice) on a terminal, else stdin's first line (a script's pipe)."""
    if stdin.isatty():
        password = getpass.getpass(f"password for {user}: ")
        if getpass.getpass(f"password for {user} again: ") != password:
            raise TrackingError(f"the two passwords for {user} differ; run the command again")
    else:
        password = stdin.readline().rstrip("\r\n")
    if len(password) < 12:
        raise TrackingError(f"the password for {user} is shorter than 12 characters; give a longer one on stdin")
    return password


def server_uri(env: Mapping[str, str] = os.environ) -> str:
    uri = env.get("MLFLOW_TRACKING_URI", "").strip()
    if not uri.startswith(("http://", "https://")):
        raise TrackingError(
            "MLFLOW_TRACKING_URI names no tracking server (http:// or https://); set it to the team's server"
        )
    return uri


def grant(user: str, password: str, role: str, settings: MlflowParams, env: Mapping[str, str] = os.environ) -> str:
    """Create ``user`` (or reset its password) and give it ``role`` on each of the project's experiments and
    on its registered model, creating those first so that each grant names something. Runs with the
    admin's credentials (``MLFLOW_TRACKING_USERNAME`` / ``MLFLOW_TRACKING_PASSWORD``); returns a summary line."""
    import mlflow
    from mlflow.server import get_app_client

    uri = server_uri(env)
    tracking.check_reachable(uri)
    permission = ROLES[role]
    auth = get_app_client("basic-auth", tracking_uri=uri)
    client = mlflow.MlflowClient(tracking_uri=uri)
    with tracking.refusals_named(env, uri, needs="the server's admin account"):
        if user_exists(auth, user):
            auth.update_user_password(user, password)
        else:
            auth.create_user(user, password)
        for name in settings.experiments:
            found = client.get_experiment_by_name(name)
            experiment_id = found.experiment_id if found else client.create_experiment(name)
            set_permission(auth, user, "experiment", experiment_id, permission)
        if not client.search_registered_models(f"name = '{settings.registered_model}'"):
            client.create_registered_model(settings.registered_model)
        set_permission(auth, user, "registered_model", settings.registered_model, permission)
    things = ", ".join(f"experiment {name!r}" for name in settings.experiments)
    return f"{user} ({role}): {permission} on {things} and registered model {settings.registered_model!r}"


def user_exists(auth, user: str) -> bool:
    import mlflow

    try:
        auth.get_user(user)
        return True
    except mlflow.exceptions.MlflowException as exc:
        if exc.error_code == "RESOURCE_DOES_NOT_EXIST":
            return False
        raise


def set_permission(auth, user: str, resource_type: str, resource_id: str, permission: str) -> None:
    """``permission`` on one resource, replacing the user's earlier grant there (a role changed)."""
    import mlflow

    try:
        auth.grant_user_permission(user, resource_type, resource_id, permission)
    except mlflow.exceptions.MlflowException as exc:
        if exc.error_code != "RESOURCE_ALREADY_EXISTS":
            raise
        auth.revoke_user_permission(user, resource_type, resource_id)
        auth.grant_user_permission(user, resource_type, resource_id, permission)
