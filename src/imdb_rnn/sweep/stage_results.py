"""What a sweep task pushes besides its experiment: the files of its stage results, for the run cache.

Another node restores a stage from the run cache (`dvc exp run --pull`) only if the DVC remote
has the file of every output the run-cache entry records, ``cache: false`` ones included (metrics,
plots, history.csv: DVC copies them into the local cache when it saves the entry). `dvc exp push
--run-cache` (DVC 3) sends the entries and the cached outputs, not those files, and DVC has no
command or `dvc.api` call that pushes them; the node would train again. So the task lists the
outputs of its stage results from dvc.lock, writes those whose files are in the local cache into
a throw-away ``.dvc`` file and `dvc push`es it: only DVC's documented formats (dvc.lock, ``.dvc``
files, the cache's layout) and its CLI, no DVC internals.

That DVC leaves those files behind is DVC 3's behaviour, not a documented one (its docs even say
``cache: false`` turns the run cache off), so the module refuses another major version, and
tests/test_stage_results.py checks both halves on the installed DVC: DVC alone leaves them behind
(when it stops, this module can go) and with them another clone restores the stage.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import yaml

from ..machine import dist_version
from . import SweepError

VERIFIED_DVC_MAJOR = "3"  # the DVC whose run cache tests/test_stage_results.py checks this against
RESULTS_FILE = ".sweep-stage-results.dvc"  # at the root: DVC ignores .dvc/tmp for targets


def push_stage_results(root: Path) -> int:
    """`dvc push` the files of the outputs of the workspace's stage results that are in the local cache;
    the number of outputs pushed. Runs in the task's clone after `dvc exp run` (`imdb-rnn push-stage-results`).
    """
    installed = dist_version("dvc") or "none"
    if installed.split(".")[0] != VERIFIED_DVC_MAJOR:
        raise SweepError(
            f"push-stage-results is verified with DVC {VERIFIED_DVC_MAJOR}.x and DVC {installed} is installed: "
            "run tests/test_stage_results.py with it, then update VERIFIED_DVC_MAJOR"
        )
    lock = root / "dvc.lock"
    if not lock.is_file():
        raise SweepError(f"no dvc.lock in {root}: push-stage-results runs in a DVC project after `dvc exp run`")
    cache = Path(_dvc(root, "cache", "dir").strip())
    outs = [o for o in lock_outputs(yaml.safe_load(lock.read_text(encoding="utf-8"))) if cache_file(cache, o).is_file()]
    if not outs:
        return 0
    target = root / RESULTS_FILE
    entries = [{**out, "path": f".sweep-stage-results/{i}"} for i, out in enumerate(outs)]
    target.write_text(yaml.safe_dump({"outs": entries}, sort_keys=False), encoding="utf-8")
    try:
        print(_dvc(root, "push", RESULTS_FILE), end="")
    finally:
        target.unlink()
    return len(outs)


def lock_outputs(lock: dict) -> list[dict]:
    """Every output of every stage in a dvc.lock, once each: its hash fields (hash, md5, size, nfiles)."""
    found: dict[str, dict] = {}
    for stage in (lock or {}).get("stages", {}).values():
        for out in stage.get("outs", []):
            if out.get("md5"):
                found.setdefault(out["md5"], {k: v for k, v in out.items() if k != "path"})
    return list(found.values())


def cache_file(cache: Path, out: dict) -> Path:
    """Where the local cache keeps an output's file (a directory's ``.dir`` listing): DVC 3's ``files/md5/``
    for ``hash: md5`` entries, the cache's root for DVC 2's."""
    md5 = out["md5"]
    base = cache / "files" / "md5" if out.get("hash") == "md5" else cache
    return base / md5[:2] / md5[2:]


def _dvc(root: Path, *args: str) -> str:
    out = subprocess.run([sys.executable, "-m", "dvc", *args], cwd=root, capture_output=True, text=True, timeout=3600)
    if out.returncode != 0:
        reason = (out.stderr.strip().splitlines() or [f"exit {out.returncode}"])[-1]
        raise SweepError(f"dvc {' '.join(args)}: {reason}")
    return out.stdout
