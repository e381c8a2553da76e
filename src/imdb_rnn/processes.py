"""Process groups: what is left of one, and stopping all of it.

A command started in its own session (``start_new_session=True``) leads a process group that
holds everything it starts (dvc, the stage under it, a server's workers); stopping the group,
not just its leader, is what leaves nothing behind. psutil lists the processes, so this works
wherever psutil does, not only on Linux's /proc.
"""

from __future__ import annotations

import os
import signal
import time

import psutil

KILL_WAIT_S = 5  # after SIGKILL: how long the members may take to go


def group_members(pgid: int) -> list[int]:
    """Pids of the live (not zombie) processes of the process group ``pgid``."""
    members = []
    for proc in psutil.process_iter():
        try:
            if os.getpgid(proc.pid) == pgid and proc.status() != psutil.STATUS_ZOMBIE:
                members.append(proc.pid)
        except (psutil.Error, OSError):  # gone meanwhile, or not ours to look at
            continue
    return members


def stop_group(pgid: int, grace_s: float) -> None:
    """SIGTERM the process group ``pgid`` (its members end cleanly: an MLflow run ends KILLED), then SIGKILL
    whatever is left after ``grace_s``; returns once no member is alive, or KILL_WAIT_S after the SIGKILL.

    Reaps nothing: a leader that is the caller's child stays a zombie for its ``Popen.wait``, which then
    reads its real exit status.
    """
    for sig, wait_s in ((signal.SIGTERM, grace_s), (signal.SIGKILL, KILL_WAIT_S)):
        try:
            os.killpg(pgid, sig)
        except ProcessLookupError:
            return
        deadline = time.monotonic() + wait_s
        while members := group_members(pgid):
            if time.monotonic() > deadline:
                break
            time.sleep(0.1)
        if not members:
            return
