"""The sweep's driver: it checks what it can here, joins the Ray cluster, submits one task per point,
shows their progress, pulls the experiments back and prints the comparison."""

from __future__ import annotations

import argparse
import logging
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Mapping
from pathlib import Path
from types import ModuleType
from typing import Any

from .. import tracking
from ..config import Params, load_params
from ..interrupts import terminate_as_interrupt
from ..paths import PARAMS, project_root
from . import SweepError
from .compare import comparison, run_links
from .git import baseline, check_dvc_remote, exp_refs
from .grid import Point, check_points, grid
from .node import run_point

INSTALL_HINT = "install it with `pip install -e '.[ray]'` (the project's `ray` extra)"
MAX_RETRIES = 2  # Ray reruns a task whose worker or node died, then reports it failed
CANCEL_WAIT_S = 60  # Ctrl-C: how long the driver waits for the tasks to stop their processes


def connect(address: str) -> ModuleType:
    """Import Ray and join the cluster; one line when Ray is missing or nothing answers."""
    try:
        import ray
    except ImportError:
        raise SweepError(f"`imdb-rnn sweep` needs Ray, which is not installed; {INSTALL_HINT}") from None
    start_hint = "start one (`ray start --head`) or pass its head's address with --ray HOST:PORT"
    if address != "auto":
        host, _, port = address.rpartition(":")
        try:
            socket.create_connection((host, int(port)), timeout=5).close()
        except (OSError, ValueError) as exc:
            raise SweepError(f"no Ray cluster answers at {address} ({type(exc).__name__}); {start_hint}") from None
    try:
        ray.init(address=address, logging_level=logging.ERROR, log_to_driver=False)
    except (ConnectionError, RuntimeError) as exc:
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise SweepError(f"cannot join the Ray cluster at {address} ({reason}); {start_hint}") from None
    return ray


def tracking_store(root: Path, nodes: int, env: Mapping[str, str] = os.environ) -> str:
    """The MLflow URI for every task; refuses a SQLite file when the tasks may run on other machines."""
    uri = env.get("MLFLOW_TRACKING_URI", "").strip()
    if (not uri or uri.startswith("sqlite:")) and nodes > 1:
        store = uri or "the local mlflow.db (MLFLOW_TRACKING_URI is unset)"
        raise SweepError(
            f"MLflow store {store} is a SQLite file on this machine and the Ray cluster has "
            f"{nodes} nodes: start an `mlflow server` every node reaches and set "
            "MLFLOW_TRACKING_URI=http://HOST:PORT"
        )
    return tracking.tracking_uri(env, root)


class Board:
    """Ray actor the tasks report their start to, so the driver can tell running from waiting."""

    def __init__(self) -> None:
        self.started: dict[str, int] = {}

    def start(self, name: str) -> None:
        self.started[name] = self.started.get(name, 0) + 1

    def starts(self) -> dict[str, int]:
        return self.started


def submit(ray: ModuleType, points: list[Point], base: dict[str, Any], cpus: int) -> dict[Any, Point]:
    """One Ray task per point: ``cpus`` CPUs each, spread over the nodes, retried if a node dies."""
    task = ray.remote(run_point).options(num_cpus=cpus, max_retries=MAX_RETRIES, scheduling_strategy="SPREAD")
    return {task.remote({**base, "name": p.name, "overrides": list(p.overrides)}): p for p in points}


def wait_all(
    ray: ModuleType, refs: dict[Any, Point], board: Any, total: int, done_before: int
) -> dict[str, dict[str, Any]]:
    """Wait for every task, printing progress, retries and one line per finished point.

    Ctrl-C (or SIGTERM) cancels the tasks, which stop their process groups, and waits for that.
    """
    pending = list(refs)
    results: dict[str, dict[str, Any]] = {}
    attempts: dict[str, int] = {}
    shown = ""
    started_at = time.monotonic()
    try:
        while pending:
            ready, pending = ray.wait(pending, num_returns=1, timeout=2.0)
            for ref in ready:
                results[refs[ref].name] = _result(ray, ref, refs[ref])
                print(_outcome(refs[ref], results[refs[ref].name]), file=sys.stderr, flush=True)
            starts = ray.get(board.starts.remote())
            for name, count in starts.items():
                if count > attempts.get(name, 1):
                    print(f"retry  {name}: attempt {count} (a worker or node running it died)", file=sys.stderr)
            attempts.update(starts)
            running = sum(1 for ref in pending if refs[ref].name in starts)
            failed = sum(1 for r in results.values() if not r["ok"])
            progress = (
                f"{done_before + len(results) - failed}/{total} done, {running} running, "
                f"{failed} failed, {len(pending) - running} waiting"
            )
            if progress != shown:
                print(f"[{time.monotonic() - started_at:4.0f} s] {progress}", file=sys.stderr, flush=True)
                shown = progress
    except KeyboardInterrupt:
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # a second Ctrl-C must not orphan the training
        print(
            f"interrupted: cancelling {len(pending)} points and stopping their processes ...",
            file=sys.stderr,
            flush=True,
        )
        for ref in pending:
            ray.cancel(ref)
        if pending:
            ray.wait(pending, num_returns=len(pending), timeout=CANCEL_WAIT_S)
        print(
            f"stopped: {len(results)} points finished, {len(pending)} cancelled and their processes ended; "
            "rerun the same command to go on",
            file=sys.stderr,
            flush=True,
        )
        raise
    return results


def _result(ray: ModuleType, ref: Any, point: Point) -> dict[str, Any]:
    """The task's outcome; a Ray error (its worker or node died once more than it is retried) as a failure."""
    try:
        return ray.get(ref)
    except ray.exceptions.RayError as exc:
        reason = (str(exc).strip().splitlines() or [""])[0]
        return {
            "name": point.name,
            "ok": False,
            "node": None,
            "seconds": {},
            "log": str(exc),
            "error": f"{type(exc).__name__}: {reason[:300]}",
        }


def _outcome(point: Point, result: dict[str, Any]) -> str:
    settings = " ".join(f"{k}={v}" for k, v in point.settings.items())
    where = f"on node {result['node'][:8]}" if result["node"] else "on a lost worker"
    if not result["ok"]:
        return f"failed {point.name} ({settings}) {where}: {result['error']}"
    timing = ", ".join(f"{step} {s:.1f} s" for step, s in result["seconds"].items())
    return f"done   {point.name} ({settings}) {where} ({timing})"


def main(args: argparse.Namespace) -> int:
    """`imdb-rnn sweep`: check everything that can be checked here, run the grid, report."""
    root = project_root(Path(args.project).resolve())
    params = load_params(root / PARAMS)
    points = grid(args.set_params)
    check_points(root, points)
    commit, url = baseline(root, args.git_remote)
    check_dvc_remote(root)
    ray = connect(args.ray)
    try:
        return _sweep(ray, root, params, points, commit, url, args)
    finally:
        ray.shutdown()


def _sweep(
    ray: ModuleType, root: Path, params: Params, points: list[Point], commit: str, url: str, args: argparse.Namespace
) -> int:
    nodes = [n for n in ray.nodes() if n["Alive"]]
    biggest = max(n["Resources"].get("CPU", 0) for n in nodes)
    if args.cpus_per_point > biggest:
        raise SweepError(f"--cpus-per-point {args.cpus_per_point}: no node has more than {biggest:g} CPUs")
    uri = tracking_store(root, len(nodes))
    tracking.setup(params.mlflow.experiment, env={"MLFLOW_TRACKING_URI": uri}, root=root)

    done = set(exp_refs(url, commit)) & {p.name for p in points}
    todo = [p for p in points if p.name not in done]
    print(
        f"sweep of {len(points)} points on commit {commit[:7]}: {len(done)} already on the git remote, "
        f"{len(todo)} to run on {len(nodes)} node(s), {args.cpus_per_point} CPU(s) each",
        file=sys.stderr,
    )
    results: dict[str, dict[str, Any]] = {}
    if todo:
        board = ray.remote(num_cpus=0)(Board).remote()
        base = {
            "url": url,
            "commit": commit,
            "mlflow_uri": uri,
            "cpus": args.cpus_per_point,
            "scratch": args.scratch,
            "board": board,
        }
        with terminate_as_interrupt():
            results = wait_all(ray, submit(ray, todo, base, args.cpus_per_point), board, len(points), len(done))
    logs = root / ".dvc" / "tmp" / "sweep"
    logs.mkdir(parents=True, exist_ok=True)
    for name, result in results.items():
        (logs / f"{name}.log").write_text(result["log"] + "\n", encoding="utf-8")

    on_remote = sorted(set(exp_refs(url, commit)) & {p.name for p in points})
    if on_remote:
        pull = subprocess.run(
            [sys.executable, "-m", "dvc", "exp", "pull", "--force", args.git_remote, *on_remote],
            cwd=root,
            capture_output=True,
            text=True,
            timeout=3600,
        )
        if pull.returncode != 0:
            raise SweepError(f"dvc exp pull: {(pull.stderr.strip().splitlines() or ['failed'])[-1]}")
    failed = {name: r["error"] for name, r in results.items() if not r["ok"]}
    print(comparison(root, points, failed))
    print("\nMLflow runs:")
    print("\n".join(run_links(uri, on_remote + sorted(failed))) or "(none)")
    if failed:
        raise SweepError(
            f"{len(failed)} of {len(points)} points failed (their logs: {logs.relative_to(root)}/); "
            "rerun the same command to run only them"
        )
    return 0
