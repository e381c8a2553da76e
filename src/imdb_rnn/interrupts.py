"""Prompt, clean interrupts: Ctrl-C and SIGTERM stop a stage within a second, even mid-compile.

Python runs signal handlers only in the main thread and only between bytecodes, so a signal that
arrives while TensorFlow compiles a graph (minutes for an unrolled stack) would wait for the
compile. Long calls therefore run in a worker thread while the main thread waits in Python.

A stage also gets SIGTERM when the ``dvc`` that runs it dies (``stop_with_dvc``): DVC forwards
no signal, so a stage would otherwise train on unwatched, its MLflow runs RUNNING.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import sys
import threading
import time

import psutil

PR_SET_PDEATHSIG = 1  # linux/prctl.h
# DVC runs a stage's cmd as `$SHELL -c cmd`: bash and zsh exec a lone command, dash and fish fork it
SHELLS = frozenset({"sh", "dash", "bash", "zsh", "fish", "ksh", "mksh", "ash", "busybox"})
WATCH_INTERVAL_S = 0.5
_stopping = threading.Event()  # set by the first SIGTERM: the process is ending


class Interrupted(KeyboardInterrupt):
    """SIGTERM turned into an exception, so runs are closed as KILLED, not left RUNNING."""


@contextlib.contextmanager
def terminate_as_interrupt():
    """Raise ``Interrupted`` on SIGTERM for the duration (SIGINT already raises KeyboardInterrupt)."""

    def handler(signum, frame):
        if _stopping.is_set():  # dvc dying after a group's SIGTERM sends a second: it must not cut the cleanup short
            return
        _stopping.set()
        raise Interrupted(f"signal {signum}")

    previous = signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def call_interruptibly(fn, *args, **kwargs):
    """``fn(*args, **kwargs)`` in a worker thread; the main thread stays free for signal handlers.

    On an interrupt the worker cannot be stopped, only abandoned: the caller cleans up and ends
    the process (``errors.run_cli`` does).
    """
    outcome: dict = {}

    def target():
        try:
            outcome["value"] = fn(*args, **kwargs)
        except BaseException as exc:  # handed to the main thread
            outcome["error"] = exc

    worker = threading.Thread(target=target, name=getattr(fn, "__name__", "worker"), daemon=True)
    worker.start()
    while worker.is_alive():
        worker.join(0.2)
    if "error" in outcome:
        raise outcome["error"]
    return outcome["value"]


def stopping() -> bool:
    """Whether a SIGTERM has begun ending this process. An abandoned worker thread checks it before
    writing to the MLflow store: its writes, one per epoch, would otherwise compete for the SQLite lock
    with the main thread closing the runs as KILLED, and could hold the exit back by seconds."""
    return _stopping.is_set()


def stop_with_dvc(env=os.environ) -> None:
    """Under DVC (``DVC_STAGE`` set, Linux), SIGTERM this process when the ``dvc`` running it dies.

    The kernel sends it when the parent dies (``PR_SET_PDEATHSIG``); when the parent is a shell
    that forked the command, that shell outlives dvc, so a thread watches the shell's parent instead.
    A dvc already gone when this runs counts as just died. Left alone outside DVC: a command started
    by hand may be meant to outlive its shell (nohup).
    """
    if "DVC_STAGE" not in env or not sys.platform.startswith("linux"):
        return
    parent = os.getppid()
    ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)
    shell, dvc = _shell_and_dvc(parent)
    if os.getppid() != parent or dvc is None:
        os.kill(os.getpid(), signal.SIGTERM)
    elif shell is not None:
        threading.Thread(target=_watch, args=(shell, dvc), name="watch-dvc", daemon=True).start()


def _shell_and_dvc(parent: int) -> tuple[int | None, int | None]:
    """(the shell between dvc and us, or None; dvc's pid, or None when dvc is gone).

    A stage is in its dvc's process group (DVC starts no new one), so an ancestor outside our group
    is not dvc but whatever adopted us (or the shell) after dvc died: init, a subreaper.
    """
    try:
        shell = parent if psutil.Process(parent).name() in SHELLS else None
        dvc = psutil.Process(shell).ppid() if shell is not None else parent
        return shell, dvc if os.getpgid(dvc) == os.getpgrp() else None
    except (psutil.NoSuchProcess, ProcessLookupError):
        return None, None
    except (psutil.Error, OSError):  # not ours to read: assume dvc alive
        return None, parent


def _watch(shell: int, dvc: int) -> None:
    """SIGTERM this process once the shell's parent is no longer dvc (the shell's own death sends the kernel's)."""
    process = psutil.Process(shell)
    while True:
        time.sleep(WATCH_INTERVAL_S)
        try:
            if process.ppid() == dvc:
                continue
        except psutil.Error:
            return
        os.kill(os.getpid(), signal.SIGTERM)
        return
