"""The `imdb-rnn` command line itself: its integer options and its hidden command."""

from __future__ import annotations

import argparse

import pytest

from imdb_rnn.wording import int_arg
from support.commands import VENV_BIN, run


@pytest.mark.parametrize("text, value", [("1", 1), ("7", 7), ("+3", 3)])
def test_int_arg_takes_an_integer_within_its_bounds(text, value):
    assert int_arg(1)(text) == value


@pytest.mark.parametrize(
    "low, high, text, message",
    [
        (1, None, "0", "got 0; allowed: an integer >= 1"),
        (2, None, "x", "got x; allowed: an integer >= 2"),
        (2, None, "2.5", "got 2.5; allowed: an integer >= 2"),
        (1, 8, "9", "got 9; allowed: an integer in [1, 8]"),
    ],
)
def test_int_arg_refuses_in_the_words_of_params_yaml(low, high, text, message):
    with pytest.raises(argparse.ArgumentTypeError) as refused:
        int_arg(low, high)(text)
    assert str(refused.value) == message


def test_a_bad_integer_option_is_one_usage_line(tmp_path):
    proc = run([VENV_BIN / "imdb-rnn", "sweep", "-S", "train.epochs=1", "--cpus-per-point", "0"], tmp_path, check=False)
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.splitlines()[-1] == (
        "imdb-rnn sweep: error: argument --cpus-per-point: got 0; allowed: an integer >= 1"
    )


def test_the_hidden_command_is_not_in_the_help(tmp_path):
    proc = run([VENV_BIN / "imdb-rnn", "--help"], tmp_path)
    assert "push-stage-results" not in proc.stdout
