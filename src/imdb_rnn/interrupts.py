"""Prompt, clean interrupts: Ctrl-C and SIGTERM stop a stage within a second, even mid-compile.

Python runs signal handlers only in the main thread and only between bytecodes, so a signal that
arrives while TensorFlow compiles a graph (minutes for an unrolled stack) would wait for the
compile. Long calls therefore run in a worker thread while the main thread waits in Python.
"""

from __future__ import annotations

import contextlib
import signal
import threading


class Interrupted(KeyboardInterrupt):
    """SIGTERM turned into an exception, so runs are closed as KILLED, not left RUNNING."""


@contextlib.contextmanager
def terminate_as_interrupt():
    """Raise ``Interrupted`` on SIGTERM for the duration (SIGINT already raises KeyboardInterrupt)."""

    def handler(signum, frame):
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
