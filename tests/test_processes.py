"""imdb_rnn.processes on real process groups: a shell and its background children, started in their own session."""

from __future__ import annotations

import signal
import subprocess
import time

import psutil

from imdb_rnn.processes import group_members, stop_group
from support.commands import wait_until


def _names(pids: list[int]) -> list[str]:
    """Sorted process names; a child forked but not yet exec'd still reads as "sh"."""
    try:
        return sorted(psutil.Process(pid).name() for pid in pids)
    except psutil.Error:
        return []


def start_group(script: str) -> subprocess.Popen:
    """``sh -c script`` leading its own process group, once it and the children it starts are all up."""
    proc = subprocess.Popen(["sh", "-c", script], start_new_session=True, stdin=subprocess.DEVNULL)
    wait_until(lambda: _names(group_members(proc.pid)) == ["sh", "sleep", "sleep"], "the shell and its two sleeps")
    return proc


def test_group_members_are_the_leader_and_its_children():
    proc = start_group("sleep 60 & sleep 60 & wait")
    try:
        members = group_members(proc.pid)
        assert proc.pid in members
        assert sorted(psutil.Process(pid).name() for pid in members) == ["sh", "sleep", "sleep"]
    finally:
        stop_group(proc.pid, grace_s=5)
        proc.wait(timeout=10)


def test_stop_group_ends_every_member_with_sigterm():
    proc = start_group("sleep 60 & sleep 60 & wait")
    stop_group(proc.pid, grace_s=5)
    assert group_members(proc.pid) == []
    assert proc.wait(timeout=1) == -signal.SIGTERM  # the leader's own exit status: stop_group reaps nothing


def test_stop_group_kills_what_ignores_sigterm_after_the_grace():
    proc = start_group("trap '' TERM; sleep 60 & sleep 60 & wait")  # the sleeps inherit the ignored TERM
    start = time.monotonic()
    stop_group(proc.pid, grace_s=0.5)
    elapsed = time.monotonic() - start
    assert group_members(proc.pid) == []
    assert elapsed >= 0.5
    assert elapsed < 5


def test_a_zombie_is_not_a_member():
    proc = subprocess.Popen(["sleep", "0"], start_new_session=True)
    wait_until(lambda: psutil.Process(proc.pid).status() == psutil.STATUS_ZOMBIE, "sleep 0 exited, unreaped")
    assert group_members(proc.pid) == []
    proc.wait(timeout=1)


def test_stop_group_of_a_gone_group_returns_at_once():
    proc = subprocess.Popen(["true"], start_new_session=True)
    proc.wait(timeout=10)
    start = time.monotonic()
    stop_group(proc.pid, grace_s=30)
    assert time.monotonic() - start < 1
