"""`imdb-rnn grant`'s inputs: the password from stdin, the server from the environment (the server itself:
tests/test_team_auth.py)."""

from __future__ import annotations

import io

import pytest
from hypothesis import given
from hypothesis import strategies as st

from imdb_rnn.access import read_password, server_uri
from imdb_rnn.errors import TrackingError
from support.commands import REPO_ROOT, VENV_BIN, run


@given(st.text())
def test_the_password_is_stdins_first_line_or_one_line_saying_why_not(text):
    first_line = text.split("\n", 1)[0].rstrip("\r\n")  # a pipe's line ends at "\n" (a CR before it goes too)
    try:
        password = read_password("alice", io.StringIO(text))
    except TrackingError as exc:
        assert "\n" not in str(exc)
        assert "alice" in str(exc)
        assert len(first_line) < 12
        return
    assert password == first_line
    assert len(password) >= 12


@pytest.mark.parametrize("uri", [None, "", "sqlite:///mlflow.db", "file:///tmp/mlruns"])
def test_grant_needs_a_tracking_server(uri):
    env = {} if uri is None else {"MLFLOW_TRACKING_URI": uri}
    with pytest.raises(TrackingError, match="names no tracking server"):
        server_uri(env)


def test_grant_without_a_server_is_one_line_and_exit_1(tmp_path):
    proc = run(
        [VENV_BIN / "imdb-rnn", "grant", "alice", "--role", "trainer", "--project", REPO_ROOT],
        tmp_path,
        env={"MLFLOW_TRACKING_URI": None},
        check=False,
        stdin="a-long-enough-password\n",
    )
    assert proc.returncode == 1, proc.stderr
    assert proc.stderr.strip().splitlines() == [
        "error: MLFLOW_TRACKING_URI names no tracking server (http:// or https://); set it to the team's server"
    ]
