"""`imdb-rnn sweep`: a `-S` grid run as DVC experiments, one Ray task per point, on any node.

`dvc queue` stops at one machine (local broker), and DVC 3 dropped its remote executors, so
the driver hands each grid point to Ray. The task clones the current commit from the git
remote into a node-local folder, runs `dvc exp run --pull` there (data, and every stage
already computed anywhere, come from the DVC remote and its run cache) and pushes the
experiment back (git ref, DVC cache, run cache). MLflow runs go to one tracking server.
The driver shows progress, then pulls every experiment and prints the comparison.

Ray is imported lazily, so the rest of the CLI works without it.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from .errors import ConfigError, ImdbRnnError
from .paths import PARAMS, VARIANT_REPORTS, project_root

INSTALL_HINT = "install it with `pip install -e '.[ray]'` (the project's `ray` extra)"
NAME_PREFIX = "sweep-"
MAX_RETRIES = 2  # Ray reruns a task whose worker or node died, then reports it failed
KILL_GRACE_S = 10  # SIGTERM to the training process group, then SIGKILL
CANCEL_WAIT_S = 60  # Ctrl-C: how long the driver waits for the tasks to stop their processes
LOG_LINES = 4000  # the tail of each point's output that comes back to the driver
METRICS = ("accuracy", "loss")  # shown per variant in the comparison; `dvc exp show` has them all


class SweepError(ImdbRnnError):
    """A problem the user fixes before the sweep can run (or a failed point): one line, the fix included."""


@dataclass(frozen=True)
class Point:
    """One grid point: the `-S` overrides of one `dvc exp run`, as ``FILE:KEY=VALUE``."""

    overrides: tuple[str, ...]

    @property
    def name(self) -> str:
        """Deterministic experiment name: the same params give the same name on every run."""
        digest = hashlib.sha256("\n".join(sorted(self.overrides)).encode()).hexdigest()
        return NAME_PREFIX + digest[:10]

    @property
    def settings(self) -> dict[str, str]:
        """KEY -> VALUE, with the default params file's prefix left out."""
        pairs = (o.removeprefix(f"{PARAMS}:").split("=", 1) for o in self.overrides)
        return {key: value for key, value in pairs}


def grid(set_params: list[str]) -> list[Point]:
    """The cartesian product of every ``-S``, parsed exactly as ``dvc exp run --queue`` does."""
    from dvc.utils.cli_parse import to_path_overrides
    from dvc.utils.hydra import get_hydra_sweeps
    from hydra.errors import HydraException

    try:
        sweeps = get_hydra_sweeps(to_path_overrides(set_params))
    except HydraException as exc:
        raise SweepError(
            f"cannot parse -S {' '.join(set_params)}: {str(exc).splitlines()[0]}; "
            "write KEY=VALUE or KEY=V1,V2 as for `dvc exp run -S`"
        ) from None
    points = [Point(tuple(f"{path}:{o}" for path, overrides in sorted(s.items()) for o in overrides)) for s in sweeps]
    return list(dict.fromkeys(points))


def check_points(root: Path, points: list[Point]) -> None:
    """Validate every point's params here, before any node clones anything (one line per problem)."""
    from dvc.exceptions import InvalidArgumentError
    from dvc.utils.hydra import apply_overrides

    from .config import load_params

    problems: list[str] = []
    with tempfile.TemporaryDirectory() as tmp:
        for point in points:
            params = Path(tmp) / "params.yaml"
            shutil.copyfile(root / PARAMS, params)
            own = [o.split(":", 1)[1] for o in point.overrides if o.startswith(f"{PARAMS}:")]
            try:
                apply_overrides(params, own)
                load_params(params)
            except InvalidArgumentError as exc:  # hydra's reason is its cause
                problems.append(f"{' '.join(own)}: {str(exc.__cause__ or exc).splitlines()[0]}")
            except ConfigError as exc:
                problems.extend(exc.problems)
    if problems:
        raise ConfigError([f"-S: {p}" for p in dict.fromkeys(problems)])


# --- git and DVC remotes (driver) -------------------------------------------------------


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


# --- Ray and MLflow (driver) -------------------------------------------------------------


def connect(address: str):
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


def tracking_store(root: Path, nodes: int, env=os.environ) -> str:
    """The MLflow URI for every task; refuses a SQLite file when the tasks may run on other machines."""
    from .tracking import tracking_uri

    uri = env.get("MLFLOW_TRACKING_URI", "").strip()
    if (not uri or uri.startswith("sqlite:")) and nodes > 1:
        store = uri or "the local mlflow.db (MLFLOW_TRACKING_URI is unset)"
        raise SweepError(
            f"MLflow store {store} is a SQLite file on this machine and the Ray cluster has "
            f"{nodes} nodes: start an `mlflow server` every node reaches and set "
            "MLFLOW_TRACKING_URI=http://HOST:PORT"
        )
    return tracking_uri(env, root)


class Board:
    """Ray actor the tasks report their start to, so the driver can tell running from waiting."""

    def __init__(self):
        self.started: dict[str, int] = {}

    def start(self, name: str) -> None:
        self.started[name] = self.started.get(name, 0) + 1

    def starts(self) -> dict[str, int]:
        return self.started


# --- the task (runs on a node) -----------------------------------------------------------


def thread_env(cpus: int) -> dict[str, str]:
    """Thread limits TensorFlow honours (measured: see tests/test_sweep.py), so two training
    processes on two cores do not oversubscribe them."""
    n = str(cpus)
    return {"OMP_NUM_THREADS": n, "TF_NUM_INTRAOP_THREADS": n, "TF_NUM_INTEROP_THREADS": n}


def run_point(spec: dict) -> dict:
    """Ray task: clone, `dvc exp run` the point, push it; returns the outcome, never raises on a
    failed run (Ray would retry it), only on cancellation (after stopping its processes)."""
    import ray

    node = ray.get_runtime_context().get_node_id()
    spec["board"].start.remote(spec["name"])
    # Ray cancels a running task by raising KeyboardInterrupt, which needs Python's SIGINT handler;
    # a node started from a script or a background job inherits SIGINT ignored.
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    scratch = Path(spec["scratch"] or tempfile.gettempdir()) / "imdb-rnn-sweep"
    scratch.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=spec["name"] + "-", dir=scratch))
    log: list[str] = []
    seconds: dict[str, float] = {}
    try:
        error = _steps(spec, work / "repo", log, seconds)
    finally:
        signal.signal(signal.SIGINT, previous)
        shutil.rmtree(work, ignore_errors=True)
    return {
        "name": spec["name"],
        "ok": error is None,
        "error": error,
        "node": node,
        "seconds": seconds,
        "log": "\n".join(log[-LOG_LINES:]),
    }


def _steps(spec: dict, repo: Path, log: list[str], seconds: dict[str, float]) -> str | None:
    """The point's commands in ``repo``; the first failure's one-line error, or None."""
    env = {
        **os.environ,
        **thread_env(spec["cpus"]),
        "MLFLOW_TRACKING_URI": spec["mlflow_uri"],
        "PATH": os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")]),
        "GIT_TERMINAL_PROMPT": "0",
        "PYTHONUNBUFFERED": "1",
        "DVC_NO_ANALYTICS": "true",
    }
    dvc = [sys.executable, "-m", "dvc"]
    name = spec["name"]
    start = time.monotonic()
    if _run(["git", "clone", "--quiet", "--no-checkout", spec["url"], str(repo)], repo.parent, env, log) or _run(
        ["git", "checkout", "--quiet", "--detach", spec["commit"]], repo, env, log
    ):
        return _error_line(log, "git clone")
    seconds["clone"] = time.monotonic() - start
    try:
        if name in exp_refs(spec["url"], spec["commit"]):  # a retry after the first attempt had pushed
            log.append(f"{name} is already on the git remote")
            return None
    except SweepError as exc:
        return str(exc)

    start = time.monotonic()
    sets = [arg for override in spec["overrides"] for arg in ("-S", override)]
    if _run([*dvc, "exp", "run", "--pull", "--allow-missing", "--name", name, *sets], repo, env, log):
        return _error_line(log, "dvc exp run")
    seconds["run"] = time.monotonic() - start

    start = time.monotonic()
    if _run([sys.executable, "-m", "imdb_rnn.sweep", "push-stage-results"], repo, env, log):
        return _error_line(log, "pushing the run cache's outputs")
    if _run([*dvc, "exp", "push", "--run-cache", "origin", name], repo, env, log):
        return _error_line(log, "dvc exp push")
    seconds["push"] = time.monotonic() - start
    return None


def push_stage_results() -> None:
    """Push the files of every stage result in the run cache, ``cache: false`` outputs included.

    `dvc exp push --run-cache` (DVC 3.x) sends the run-cache entries but not the files of
    outputs kept in git (metrics, plots, history.csv); another node then cannot restore the
    stage from the entry and trains again. These are exactly the entries of the workspace's
    stages (ran or restored here). Runs in the clone (DVC resolves run-cache paths from the
    working directory): `python -m imdb_rnn.sweep push-stage-results`.
    """
    from dvc.repo import Repo
    from dvc.stage.cache import _can_hash, _get_cache_hash, _get_stage_hash
    from dvc.stage.serialize import to_single_stage_lockfile

    with Repo(".") as dvc_repo:
        stages = [s for s in dvc_repo.index.stages if all(dep.exists for dep in s.deps) and _can_hash(s)]
        entries = [(_get_stage_hash(s), _get_cache_hash(to_single_stage_lockfile(s))) for s in stages]
        for objs in dvc_repo.stage_cache.get_used_objs(entries).values():
            dvc_repo.cloud.push(objs)


def _run(cmd: list[str], cwd: Path, env: dict, log: list[str]) -> int:
    """Run ``cmd`` in its own process group, its output appended to ``log``; exit code.

    Waits in short slices so that Ray's cancellation (a KeyboardInterrupt) lands here; then
    the whole group (dvc and the stage it runs) is stopped before the exception goes on.
    """
    proc = subprocess.Popen(
        cmd,
        cwd=cwd,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        errors="replace",
        start_new_session=True,
    )

    def read():
        for line in proc.stdout:
            log.append(line.rstrip("\n"))

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    try:
        while True:
            try:
                code = proc.wait(timeout=0.5)
                break
            except subprocess.TimeoutExpired:
                continue
    except BaseException:
        _stop_group(proc)
        raise
    finally:
        reader.join(timeout=5)
    return code


def group_members(pgid: int) -> list[int]:
    """Live (non-zombie) processes of the process group ``pgid``."""
    members = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            fields = stat[stat.rindex(")") + 2 :].split()  # after "pid (comm) "
            if int(fields[2]) == pgid and fields[0] != "Z":
                members.append(int(entry.name))
    return members


def _stop_group(proc: subprocess.Popen) -> None:
    """SIGTERM the process group (the stages end their MLflow runs KILLED), SIGKILL what lingers."""
    for sig, grace in ((signal.SIGTERM, KILL_GRACE_S), (signal.SIGKILL, 5)):
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            return
        deadline = time.monotonic() + grace
        while time.monotonic() < deadline:
            proc.poll()
            if not group_members(proc.pid):
                return
            time.sleep(0.1)


def _error_line(log: list[str], step: str) -> str:
    """The most telling line of a failed step: a stage's `error:` line, else DVC's `ERROR:`, else the last."""
    lines = [line.strip() for line in log if line.strip()]
    ours = [line for line in lines if line.startswith("error: ")]
    dvcs = [line for line in lines if line.startswith("ERROR: ")]
    line = ours[0] if ours else dvcs[-1] if dvcs else lines[-1] if lines else "no output"
    return f"{step} failed: {line[:300]}"


# --- the driver --------------------------------------------------------------------------


def submit(ray, points: list[Point], base: dict, cpus: int):
    """One Ray task per point: ``cpus`` CPUs each, spread over the nodes, retried if a node dies."""
    task = ray.remote(run_point).options(num_cpus=cpus, max_retries=MAX_RETRIES, scheduling_strategy="SPREAD")
    return {task.remote({**base, "name": p.name, "overrides": list(p.overrides)}): p for p in points}


def wait_all(ray, refs: dict, board, total: int, done_before: int) -> dict[str, dict]:
    """Wait for every task, printing progress, retries and one line per finished point.

    Ctrl-C (or SIGTERM) cancels the tasks, which stop their process groups, and waits for that.
    """
    pending = list(refs)
    results: dict[str, dict] = {}
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


def _result(ray, ref, point: Point) -> dict:
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


def _outcome(point: Point, result: dict) -> str:
    settings = " ".join(f"{k}={v}" for k, v in point.settings.items())
    where = f"on node {result['node'][:8]}" if result["node"] else "on a lost worker"
    if not result["ok"]:
        return f"failed {point.name} ({settings}) {where}: {result['error']}"
    timing = ", ".join(f"{step} {s:.1f} s" for step, s in result["seconds"].items())
    return f"done   {point.name} ({settings}) {where} ({timing})"


def comparison(root: Path, points: list[Point], failed: dict[str, str]) -> str:
    """A `dvc exp show`-style table of the grid: params set, each variant's test metrics, state."""
    from tabulate import tabulate

    out = subprocess.run(
        [sys.executable, "-m", "dvc", "exp", "show", "--json"],
        cwd=root,
        capture_output=True,
        text=True,
        timeout=600,
        check=True,
    )
    shown = {}
    for commit in json.loads(out.stdout):
        for exp in commit.get("experiments") or []:
            rev = exp["revs"][0]
            shown[exp.get("name") or rev.get("name")] = (rev.get("data") or {}).get("metrics") or {}
    files = sorted({f for metrics in shown.values() for f in metrics if f.startswith(f"{VARIANT_REPORTS}/")})
    keys = list(dict.fromkeys(k for p in points for k in p.settings))
    headers = ["Experiment", "State", *keys, *(f"{f.split('/')[2]} {m}" for f in files for m in METRICS)]
    rows = []
    for p in points:
        metrics = shown.get(p.name, {})
        values = [((metrics.get(f) or {}).get("data") or {}).get(m) for f in files for m in METRICS]
        values = [f"{v:.4f}" if isinstance(v, (int, float)) else v for v in values]
        state = "Success" if p.name in shown else "Failed" if p.name in failed else "Missing"
        rows.append([p.name, state, *(p.settings.get(k, "") for k in keys), *values])
    return tabulate(rows, headers=headers, disable_numparse=True, missingval="-")


def run_links(uri: str, names: list[str]) -> list[str]:
    """Each experiment's MLflow runs (found by their `dvc_exp_name` tag), with a link to each."""
    import mlflow

    client = mlflow.MlflowClient(tracking_uri=uri)
    ids = [e.experiment_id for e in client.search_experiments()]
    lines = []
    for name in names:
        runs = client.search_runs(ids, filter_string=f"tags.dvc_exp_name = '{name}'", order_by=["start_time ASC"])
        for r in runs:
            link = (
                f"{uri.rstrip('/')}/#/experiments/{r.info.experiment_id}/runs/{r.info.run_id}"
                if uri.startswith(("http://", "https://"))
                else f"runs:/{r.info.run_id}"
            )
            lines.append(f"{r.info.run_name:<28} {r.info.status:<9} {link}")
    return lines


def main(args) -> int:
    """`imdb-rnn sweep`: check everything that can be checked here, run the grid, report."""
    from .config import load_params

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


def _sweep(ray, root: Path, params, points: list[Point], commit: str, url: str, args) -> int:
    from . import tracking
    from .interrupts import terminate_as_interrupt

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
    results: dict[str, dict] = {}
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


if __name__ == "__main__":  # the task's helper, run in the clone
    if sys.argv[1:] != ["push-stage-results"]:
        sys.exit("usage: python -m imdb_rnn.sweep push-stage-results (the sweep task runs it in its clone)")
    push_stage_results()
