"""The benchmark's stage timings: `prepare` on the full archive (into a temp folder, never data/prepared) and a
no-op `dvc repro` (only when `dvc status` says nothing but the always-changed `track` stage would run, so it
never trains)."""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def run_measured(cmd: list[str]) -> tuple[int, float, float]:
    """Run a child to its end: exit code, wall seconds, its own peak RSS in MB.

    ``os.wait4`` returns this child's rusage alone; ``getrusage(RUSAGE_CHILDREN)`` would give the
    largest of all children so far, the training workers included.
    """
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=sys.stderr)
    _, status, usage = os.wait4(proc.pid, 0)
    return os.waitstatus_to_exitcode(status), time.perf_counter() - start, usage.ru_maxrss / 1024


def measure_prepare(archive: Path, runs: int) -> dict:
    """The prepare stage on ``archive`` into a temp folder; the median of ``runs`` runs, since single runs on
    a shared machine vary by a quarter. None of its outputs is kept."""
    from imdb_rnn.errors import ImdbRnnError

    seconds, peaks = [], []
    for i in range(runs):
        print(f"--- prepare (full archive, temp output), run {i + 1} of {runs}", file=sys.stderr, flush=True)
        with tempfile.TemporaryDirectory(prefix="bench-prepare-") as tmp:
            cmd = [sys.executable, "stages/prepare.py", "--archive", str(archive)]
            code, wall, peak_mb = run_measured([*cmd, "--out", f"{tmp}/prepared", "--report", f"{tmp}/data.json"])
        if code:
            raise ImdbRnnError(f"prepare failed (exit {code}); its error is above")
        seconds.append(wall)
        peaks.append(peak_mb)
    return {"seconds": statistics.median(seconds), "runs_s": seconds, "peak_mb": max(peaks)}


def measure_noop_repro() -> dict:
    """`dvc repro` with nothing changed (the `track` stage, always changed, still runs); ``skipped`` (and why)
    unless `dvc status` lists only always-changed stages."""
    from imdb_rnn.errors import ImdbRnnError

    dvc = [sys.executable, "-m", "dvc"]
    print("--- dvc status", file=sys.stderr, flush=True)
    status = subprocess.run(dvc + ["status", "--json"], cwd=ROOT, capture_output=True, text=True)
    if status.returncode:
        reason = (status.stderr.strip().splitlines() or ["no message"])[-1]
        return {"skipped": f"`dvc status` failed: {reason}"}
    pending = [stage for stage, states in json.loads(status.stdout or "{}").items() if states != ["always changed"]]
    if pending:
        return {"skipped": f"pipeline not up to date ({', '.join(pending)})"}
    print("--- no-op dvc repro", file=sys.stderr, flush=True)
    code, seconds, _ = run_measured(dvc + ["repro"])
    if code:
        raise ImdbRnnError(f"`dvc repro` failed (exit {code}); its error is above")
    return {"seconds": seconds}
