"""The git and DVC remotes of a sweep: the driver checks that every node can clone, pull and push."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from . import SweepError


def _git(root: Path | None, *args: str) -> str:
    out = subprocess.run(
        ["git", *args],
        cwd=root,
        capture_output=True,
        text=True,
        timeout=120,
        stdin=subprocess.DEVNULL,
        env={**os.environ, "GIT_TERMINAL_PROMPT": "0"},
    )
    if out.returncode != 0:
        reason = (out.stderr.strip().splitlines() or [f"exit {out.returncode}"])[-1]
        raise SweepError(f"git {' '.join(args)}: {reason}")
    return out.stdout


def remote_url(root: Path, remote: str) -> str:
    """The git remote's URL as every node can use it (a local path made absolute)."""
    try:
        url = _git(root, "remote", "get-url", remote).strip()
    except SweepError:
        raise SweepError(
            f"no git remote '{remote}'; add one (git remote add {remote} URL) or name yours with --git-remote"
        ) from None
    local = root / url
    return str(local.resolve()) if "://" not in url and local.exists() else url


def exp_refs(url: str, commit: str) -> dict[str, str]:
    """Experiments of ``commit`` on the git remote: name -> ref (DVC keeps them as refs/exps/ab/cdef.../name)."""
    prefix = f"refs/exps/{commit[:2]}/{commit[2:]}/"
    out = _git(None, "ls-remote", url, prefix + "*")
    refs = (line.split("\t", 1)[1] for line in out.splitlines() if "\t" in line)
    return {ref.removeprefix(prefix): ref for ref in refs if ref.startswith(prefix)}


def baseline(root: Path, remote: str) -> tuple[str, str]:
    """(HEAD commit, remote URL) after checking that the nodes can clone exactly this commit."""
    commit = _git(root, "rev-parse", "HEAD").strip()
    changed = [line[3:] for line in _git(root, "status", "--porcelain").splitlines()]
    if changed:
        shown = ", ".join(changed[:3]) + (", ..." if len(changed) > 3 else "")
        raise SweepError(
            f"uncommitted changes ({shown}); the nodes run commit {commit[:7]} from the git "
            "remote: commit and push them first"
        )
    url = remote_url(root, remote)
    heads = [line.split("\t")[0] for line in _git(root, "ls-remote", "--heads", "--tags", url).splitlines()]
    if not any(head == commit or _contains(root, head, commit) for head in heads):
        raise SweepError(
            f"commit {commit[:7]} is not on git remote '{remote}' ({url}); push it first: git push {remote} HEAD"
        )
    return commit, url


def _contains(root: Path, head: str, commit: str) -> bool:
    """Whether ``head`` (a remote branch or tag) has ``commit`` in its history, as far as we know it."""
    known = subprocess.run(
        ["git", "merge-base", "--is-ancestor", commit, head], cwd=root, capture_output=True, timeout=60
    )
    return known.returncode == 0


def check_dvc_remote(root: Path) -> None:
    """The nodes pull from and push to the default remote of the committed ``.dvc/config``."""
    out = subprocess.run(
        [sys.executable, "-m", "dvc", "remote", "default", "--project"],
        cwd=root,
        capture_output=True,
        text=True,
        timeout=120,
    )
    if out.returncode != 0 or not out.stdout.strip():
        raise SweepError(
            "no default DVC remote in .dvc/config: add one every node reaches "
            "(dvc remote add -d --project NAME s3://... or a shared folder), commit and push it"
        )
