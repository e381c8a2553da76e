"""The one error type users see, and the one wrapper that turns it into `error:` lines.

Every failure a user can fix (bad params, bad data, an unreachable server, a diverged run...)
raises a subclass of ``ImdbRnnError`` whose message names the problem and the fix on one line;
``run_cli`` prints it as ``error: ...`` and exits 1. Anything else is a bug and keeps its traceback.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable

from .interrupts import stop_with_dvc


class ImdbRnnError(Exception):
    """A failure the user can fix; ``lines()`` gives one line per problem."""

    def __init__(self, message: str):
        super().__init__(" ".join(str(message).split()))  # one line, whatever a wrapped error said

    def lines(self) -> list[str]:
        return [str(self)]


class ConfigError(ImdbRnnError):
    """Invalid params: one line per bad key."""

    def __init__(self, problems: list[str]):
        self.problems = problems
        Exception.__init__(self, "\n".join(problems))

    def lines(self) -> list[str]:
        return list(self.problems)


class DataError(ImdbRnnError):
    """Bad or unsafe input data."""


class DownloadError(ImdbRnnError):
    """A download that cannot succeed as configured."""


class TrackingError(ImdbRnnError):
    """The MLflow tracking store cannot be used."""


class DivergedError(ImdbRnnError):
    """Training produced NaN or infinite values; nothing is saved."""


class ModelFileError(ImdbRnnError):
    """A model file that is missing, corrupt or foreign."""


class PredictError(ImdbRnnError):
    """Unknown or untrained variant, or no input to score."""


def print_error(exc: ImdbRnnError) -> None:
    for line in exc.lines():
        print(f"error: {line}", file=sys.stderr, flush=True)


def run_cli(main: Callable[[], int | None], interrupted: str) -> int:
    """Run an entry point: ``ImdbRnnError`` -> its ``error:`` lines and exit 1; Ctrl-C/SIGTERM
    -> ``error: interrupted: <interrupted>`` and exit 130 at once; run by DVC, it stops when dvc dies.

    The exit on interrupt is immediate (``os._exit``) because a worker thread may still be busy
    in TensorFlow and cannot be stopped; cleanup (temp files, the MLflow run's status) has already
    run as the exception unwound.
    """
    stop_with_dvc()
    try:
        return main() or 0
    except ImdbRnnError as exc:
        print_error(exc)
        return 1
    except KeyboardInterrupt:
        print(f"error: interrupted: {interrupted}", file=sys.stderr, flush=True)
        sys.stdout.flush()
        os._exit(130)
