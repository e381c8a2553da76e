"""`imdb-rnn sweep` for real on one machine: a 2-node Ray cluster, git and DVC remotes, an MLflow server.

The cluster is two Ray nodes of one CPU each on 127.0.0.1 (``ray.cluster_utils.Cluster``, no
dashboard, usage stats off); the git remote is a bare repository, the DVC remote a local folder,
the tracking store a real ``mlflow server`` on 127.0.0.1. Every task clones into a node-local
folder with an empty DVC cache, so whatever a task finds already computed came through the DVC
remote. Params are tiny (support.params.ONE_VARIANT); everything is stopped even when a test fails.

Ray resolves a loopback address to the machine's outbound one before connecting
(ray-project/ray#59110), where a cluster bound to 127.0.0.1 does not answer;
``RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0`` keeps the driver on 127.0.0.1.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path

import pytest

from support.commands import VENV_BIN, default_sigint, run, tool_env, wait_until
from support.params import ONE_VARIANT, write_yaml
from support.projects import make_project

pytestmark = pytest.mark.slow  # real dvc repro / queues / servers / signals

VARIANT = "simple_rnn"
GRID = ["-S", "train.learning_rate=0.002,0.005,3e38"]  # 3e38: the first rmsprop update overflows float32
DIVERGED = re.compile(r"error: training diverged: .*train\.learning_rate")


@pytest.fixture(scope="module")
def cluster():
    """Two Ray nodes of one CPU each on 127.0.0.1; shut down whatever happens."""
    from ray.cluster_utils import Cluster

    temp = tempfile.mkdtemp(prefix="ray-", dir="/tmp")  # Ray's socket paths must stay short
    (Path(temp) / "ray").mkdir()  # where Ray writes the cluster's address (it does not create the folder)
    node = {"num_cpus": 1, "node_ip_address": "127.0.0.1"}
    with pytest.MonkeyPatch.context() as env:
        env.setenv("RAY_USAGE_STATS_ENABLED", "0")  # the nodes' processes inherit it
        env.setenv("RAY_TMPDIR", temp)  # nothing in a shared /tmp/ray, which a fresh machine lacks
        nodes = Cluster(initialize_head=True, head_node_args={**node, "include_dashboard": False, "temp_dir": temp})
        try:
            worker = nodes.add_node(**node)
            nodes.wait_for_nodes()
            yield {"address": nodes.address, "nodes": {nodes.head_node.node_id, worker.node_id}}
        finally:
            nodes.shutdown()
            shutil.rmtree(temp, ignore_errors=True)


@pytest.fixture(scope="module")
def project(tmp_path_factory, small_archive, mlflow_server, cluster):
    """A committed project pushed to a bare git remote, its prepared data and run cache to a DVC remote."""
    root = tmp_path_factory.mktemp("sweep")
    repo = root / "project"
    repo.mkdir()
    make_project(repo)
    write_yaml(repo / "params.yaml", ONE_VARIANT)
    run(["git", "init", "-q", "--bare", root / "remote.git"], root)
    run(["git", "remote", "add", "origin", root / "remote.git"], repo)
    run(["dvc", "remote", "add", "-d", "store", root / "dvc-store"], repo)
    run(["dvc", "repro", "prepare"], repo, env={"IMDB_SOURCE": small_archive, "MLFLOW_TRACKING_URI": None})
    run(["git", "add", "-A"], repo)
    run(["git", "commit", "-qm", "baseline: data prepared, DVC remote"], repo)
    run(["dvc", "push", "--run-cache"], repo)
    run(["git", "push", "-q", "origin", "HEAD:main"], repo)
    import mlflow  # the experiment exists from the start, so that each test can run alone

    mlflow.MlflowClient(tracking_uri=mlflow_server["uri"]).create_experiment(ONE_VARIANT["mlflow"]["experiment"])
    env = {
        "MLFLOW_TRACKING_URI": mlflow_server["uri"],
        "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0",
        "RAY_USAGE_STATS_ENABLED": "0",
    }
    return {"repo": repo, "remote": root / "remote.git", "scratch": root / "scratch", "env": env, **cluster}


def sweep_cmd(project, *args) -> list:
    return [VENV_BIN / "imdb-rnn", "sweep", "--ray", project["address"], "--scratch", project["scratch"], *args]


def sweep(project, *args, env=None):
    return run(
        sweep_cmd(project, *args), project["repo"], env={**project["env"], **(env or {})}, check=False, timeout=600
    )


def outcomes(stderr: str) -> dict[str, tuple[str, str]]:
    """Experiment name -> (done|failed, the rest of its line), from the driver's progress output."""
    found = {}
    for line in stderr.splitlines():
        m = re.match(r"^(done|failed) +(sweep-[0-9a-f]{10}) (.*)$", line)
        if m:
            found[m.group(2)] = (m.group(1), m.group(3))
    return found


def shown_experiments(repo: Path) -> dict[str, dict]:
    """`dvc exp show --json`: experiment name -> its test metrics (of the one variant)."""
    shown = json.loads(run(["dvc", "exp", "show", "--json"], repo).stdout)
    found = {}
    for exp in (e for commit in shown for e in commit.get("experiments") or []):
        rev = exp["revs"][0]
        found[exp["name"]] = rev["data"]["metrics"][f"reports/variants/{VARIANT}/metrics.json"]["data"]
    return found


def runs_by_name(uri: str) -> dict[str, list]:
    """The variant runs (not their nested seed runs) on the server, by their `dvc_exp_name` tag, oldest first."""
    import mlflow

    client = mlflow.MlflowClient(tracking_uri=uri)
    experiment = client.get_experiment_by_name("imdb-rnn")
    found: dict[str, list] = {}
    for r in client.search_runs([experiment.experiment_id], max_results=1000, order_by=["start_time ASC"]):
        if r.data.tags.get("run_kind") == "variant":
            found.setdefault(r.data.tags.get("dvc_exp_name"), []).append(r)
    return found


def summary_runs(uri: str, name: str) -> list:
    import mlflow

    client = mlflow.MlflowClient(tracking_uri=uri)
    experiment = client.get_experiment_by_name("imdb-rnn summaries")
    return client.search_runs([experiment.experiment_id], f"tags.dvc_exp_name = '{name}'")


def remote_names(remote: Path) -> dict[str, str]:
    """Experiment name -> ref, on the bare git remote."""
    out = run(["git", "for-each-ref", "--format=%(refname)", "refs/exps/"], remote).stdout
    return {ref.rsplit("/", 1)[1]: ref for ref in out.split()}


@pytest.fixture(scope="module")
def first_sweep(project):
    """The grid once: two points train, the diverging one fails."""
    return sweep(project, *GRID)


def test_grid_runs_on_both_nodes_and_a_failed_point_spares_the_others(project, first_sweep):
    proc = first_sweep
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert proc.stderr.splitlines()[-1].startswith("error: 1 of 3 points failed"), proc.stderr
    found = outcomes(proc.stderr)
    assert sorted(kind for kind, _ in found.values()) == ["done", "done", "failed"], proc.stderr
    # two slots, three tasks: the first two ran at once, one on each node
    ran_on = {re.search(r"on node ([0-9a-f]{8})", rest).group(1) for _, rest in found.values()}
    assert ran_on == {node[:8] for node in project["nodes"]}, (ran_on, proc.stderr)
    (bad,) = [name for name, (kind, _) in found.items() if kind == "failed"]
    assert "train.learning_rate=3e+38" in found[bad][1], found[bad]
    assert DIVERGED.search(found[bad][1]), found[bad]
    good = sorted(name for name, (kind, _) in found.items() if kind == "done")

    # the two experiments, pulled back: in `dvc exp show`, on the git remote, with their MLflow runs
    shown = shown_experiments(project["repo"])
    assert sorted(shown) == good
    assert set(remote_names(project["remote"])) == set(good)
    runs = runs_by_name(project["env"]["MLFLOW_TRACKING_URI"])
    for name in good:
        (r,) = runs[name]
        assert r.info.status == "FINISHED"
        assert r.info.run_name == f"{name}/{VARIANT}"
        for key in ("accuracy", "loss", "precision", "recall", "f1", "roc_auc"):  # means over the seeds
            assert r.data.metrics[f"test_{key}_mean"] == pytest.approx(shown[name][key], abs=1e-6), (name, key)
    assert {runs[name][0].data.params["train.learning_rate"] for name in good} == {"0.002", "0.005"}
    assert [r.info.status for r in runs[bad]] == ["FAILED"]

    # the comparison: one row per point, with its state, and each experiment's MLflow runs linked
    table = dict(re.findall(r"^(sweep-[0-9a-f]{10}) +(\w+)", proc.stdout, re.M))
    assert table == {good[0]: "Success", good[1]: "Success", bad: "Failed"}
    for name in good:
        run_id = runs[name][0].info.run_id
        assert re.search(
            rf"^{name}/{VARIANT} +FINISHED +http://127\.0\.0\.1:\d+/#/experiments/\d+/runs/{run_id}$", proc.stdout, re.M
        ), proc.stdout
    assert (project["repo"] / ".dvc" / "tmp" / "sweep" / f"{bad}.log").is_file()
    print(proc.stderr, proc.stdout, sep="\n")


def test_rerun_runs_only_failed_or_missing_points_and_restores_stages_from_the_run_cache(project, first_sweep):
    """A point whose experiment is gone from the git remote reruns in a fresh clone: DVC restores its
    train and evaluate stages from the remote's run cache (no training, no new variant run); the
    report stage, whose outputs DVC keeps in git (`cache: false`, never run-cached), reruns and logs
    one summary run. The point still on the remote is not run at all."""
    uri = project["env"]["MLFLOW_TRACKING_URI"]
    found = outcomes(first_sweep.stderr)
    missing, kept = sorted(name for name, (kind, _) in found.items() if kind == "done")
    (bad,) = [name for name, (kind, _) in found.items() if kind == "failed"]
    run(["git", "update-ref", "-d", remote_names(project["remote"])[missing]], project["remote"])
    before, summaries = runs_by_name(uri), len(summary_runs(uri, missing))

    proc = sweep(project, *GRID)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "1 already on the git remote, 2 to run" in proc.stderr, proc.stderr
    again = outcomes(proc.stderr)
    assert {name: kind for name, (kind, _) in again.items()} == {missing: "done", bad: "failed"}, proc.stderr
    log = (project["repo"] / ".dvc" / "tmp" / "sweep" / f"{missing}.log").read_text()
    for stage in (f"train@{VARIANT}", f"evaluate@{VARIANT}"):
        assert f"Stage '{stage}' is cached - skipping run" in log, log
    assert f"Running stage 'train@{VARIANT}'" not in log, log

    after = runs_by_name(uri)
    assert [r.info.run_id for r in after[missing]] == [r.info.run_id for r in before[missing]]
    assert [r.info.run_id for r in after[kept]] == [r.info.run_id for r in before[kept]]
    assert [r.info.status for r in after[bad]] == ["FAILED", "FAILED"]
    assert len(summary_runs(uri, missing)) == summaries + 1
    assert set(remote_names(project["remote"])) == {missing, kept}
    assert sorted(shown_experiments(project["repo"])) == sorted([missing, kept])


def processes_under(folder: Path) -> list[tuple[int, str]]:
    """(pid, command line) of every live process working in ``folder`` or naming it."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            if (entry / "stat").read_text().rsplit(")", 1)[1].split()[0] == "Z":
                continue
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            cwd = os.readlink(entry / "cwd")
        except OSError:
            continue
        if cwd.startswith(str(folder)) or str(folder) in cmdline:
            found.append((int(entry.name), cmdline))
    return found


def environ(pid: int) -> dict[str, str]:
    raw = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
    return dict(item.decode(errors="replace").split("=", 1) for item in raw if b"=" in item)


def new_running(client, experiment_id: str, before: set[str]) -> list:
    """The RUNNING runs that were not in ``before``."""
    return [
        r for r in client.search_runs([experiment_id], "attributes.status = 'RUNNING'") if r.info.run_id not in before
    ]


def both_training(client, experiment_id: str, before: set[str]) -> list:
    """The two points' runs once both have logged an epoch (well past `mlflow.start_run`), else nothing."""
    runs = [r for r in new_running(client, experiment_id, before) if "val_accuracy" in r.data.metrics]
    return runs if len(runs) == 2 else []


def test_ctrl_c_cancels_the_tasks_and_leaves_no_process(project, tmp_path):
    import mlflow

    client = mlflow.MlflowClient(tracking_uri=project["env"]["MLFLOW_TRACKING_URI"])
    experiment_id = client.get_experiment_by_name("imdb-rnn").experiment_id
    before = {r.info.run_id for r in client.search_runs([experiment_id], "attributes.status = 'RUNNING'")}
    out, err = tmp_path / "stdout.txt", tmp_path / "stderr.txt"
    with open(out, "w") as stdout, open(err, "w") as stderr:
        driver = subprocess.Popen(
            [str(c) for c in sweep_cmd(project, "-S", "train.epochs=300", "-S", f"models.{VARIANT}.units=5,7")],
            cwd=project["repo"],
            env=tool_env(project["env"]),
            stdout=stdout,
            stderr=stderr,
            stdin=subprocess.DEVNULL,
            preexec_fn=default_sigint,
        )
    try:
        # both points training: their MLflow runs are RUNNING with an epoch logged, their processes exist
        running = wait_until(
            lambda: both_training(client, experiment_id, before),
            "two training runs with an epoch logged",
            timeout=240,
            interval=0.5,
        )
        # the Python processes themselves: DVC's `/bin/sh -c` wrapper may or may not exec into them
        trainers = [
            pid
            for pid, cmd in processes_under(project["scratch"])
            if "stages/train.py" in cmd and Path(cmd.split()[0]).name.startswith("python")
        ]
        assert len(trainers) == 2, processes_under(project["scratch"])
        for pid in trainers:  # each task's TensorFlow is held to the one CPU Ray gave it
            threads = {k: v for k, v in environ(pid).items() if k.endswith("_THREADS")}
            assert threads == {"OMP_NUM_THREADS": "1", "TF_NUM_INTRAOP_THREADS": "1", "TF_NUM_INTEROP_THREADS": "1"}

        driver.send_signal(signal.SIGINT)
        code = driver.wait(timeout=120)
    finally:
        if driver.poll() is None:
            driver.kill()
            driver.wait()
    lines = [line for line in err.read_text().splitlines() if line.strip()]
    assert code == 130, err.read_text()
    assert lines[-1].startswith("error: interrupted"), lines
    assert "Traceback" not in err.read_text()
    # the driver returned only after the tasks stopped their process groups: nothing is left
    assert processes_under(project["scratch"]) == []
    names = {r.data.tags["dvc_exp_name"] for r in running}
    assert [p for p in (project["scratch"] / "imdb-rnn-sweep").iterdir() if p.name.rsplit("-", 1)[0] in names] == []
    for r in running:
        assert client.get_run(r.info.run_id).info.status == "KILLED", r.info.run_name


def test_a_point_whose_worker_dies_is_retried_and_finishes(project):
    """A node's death, as the task sees it: its Ray worker and the training under it are SIGKILLed.
    Ray runs the task again (max_retries), from a fresh clone; the driver says so; the point ends
    Success. The lost attempt's MLflow run is ended KILLED by the retry's first stage (its process is gone)."""
    import mlflow

    client = mlflow.MlflowClient(tracking_uri=project["env"]["MLFLOW_TRACKING_URI"])
    experiment_id = client.get_experiment_by_name("imdb-rnn").experiment_id
    before = {r.info.run_id for r in client.search_runs([experiment_id], "attributes.status = 'RUNNING'")}
    driver = subprocess.Popen(
        [str(c) for c in sweep_cmd(project, "-S", "train.epochs=30", "-S", f"models.{VARIANT}.units=6")],
        cwd=project["repo"],
        env=tool_env(project["env"]),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        stdin=subprocess.DEVNULL,
        text=True,
    )
    try:
        lost = wait_until(  # the point's variant run (its seed run may or may not have started yet)
            lambda: [
                r
                for r in client.search_runs(
                    [experiment_id], "attributes.status = 'RUNNING' and tags.run_kind = 'variant'"
                )
                if r.info.run_id not in before
            ],
            "the point training",
            timeout=240,
            interval=0.5,
        )
        (dvc,) = [pid for pid, cmd in processes_under(project["scratch"]) if " exp run " in cmd]
        worker = int((Path(f"/proc/{dvc}/stat").read_text().rsplit(")", 1)[1].split())[1])
        os.kill(worker, signal.SIGKILL)
        os.killpg(dvc, signal.SIGKILL)  # dvc leads its own process group: the training dies with it
        stdout, stderr = driver.communicate(timeout=420)
    finally:
        if driver.poll() is None:
            driver.kill()
            driver.communicate()
    assert driver.returncode == 0, stdout + stderr
    (name,) = re.findall(r"^retry +(sweep-[0-9a-f]{10}): attempt 2", stderr, re.M)
    assert outcomes(stderr) == {name: ("done", outcomes(stderr)[name][1])}, stderr
    assert name in shown_experiments(project["repo"])
    runs = runs_by_name(project["env"]["MLFLOW_TRACKING_URI"])[name]
    assert [(r.info.run_id, r.info.status) for r in runs] == [
        (lost[0].info.run_id, "KILLED"),
        (runs[1].info.run_id, "FINISHED"),
    ]
    assert processes_under(project["scratch"]) == []


def test_refuses_a_sqlite_store_on_two_nodes(project):
    for uri in (None, f"sqlite:///{project['repo'] / 'mlflow.db'}"):
        proc = sweep(project, "-S", f"models.{VARIANT}.units=3", env={"MLFLOW_TRACKING_URI": uri})
        lines = [line for line in proc.stderr.splitlines() if line.strip()]
        assert proc.returncode == 1, proc.stderr
        assert len(lines) == 1, proc.stderr
        assert lines[0].startswith("error: MLflow store"), proc.stderr
        assert "2 nodes" in lines[0], lines[0]
        assert "MLFLOW_TRACKING_URI=http://" in lines[0], lines[0]
    assert not (project["repo"] / "mlflow.db").exists()


@pytest.mark.parametrize(
    "args, problem",
    [
        (["-S", f"models.{VARIANT}.units=0,4"], f"models.{VARIANT}.units: got 0"),
        (["-S", "train.learning_rat=0.1"], "train.learning_rat"),
        (["-S", "train.epochs=[1,2"], "cannot parse -S"),
    ],
    ids=["out-of-range", "unknown-key", "unparsable"],
)
def test_a_bad_grid_is_refused_before_any_work(project, args, problem):
    proc = sweep(project, *args)
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert proc.returncode == 1, proc.stderr
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("error: "), proc.stderr
    assert problem in lines[0], proc.stderr


def test_without_ray_the_sweep_says_how_to_install_it(project):
    # `sys.modules["ray"] = None` is Python's own way to make `import ray` fail (ImportError)
    script = "import sys; sys.modules['ray'] = None; from imdb_rnn.cli import main; sys.exit(main())"
    proc = run(
        [sys.executable, "-c", script, "sweep", "-S", f"models.{VARIANT}.units=3"],
        project["repo"],
        env=project["env"],
        check=False,
    )
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert proc.returncode == 1, proc.stderr
    assert len(lines) == 1, proc.stderr
    assert "Ray" in lines[0], proc.stderr
    assert "pip install -e '.[ray]'" in lines[0], proc.stderr


THREAD_PROBE = textwrap.dedent(
    """
    import os
    import tensorflow as tf
    x = tf.random.normal((1000, 1000))
    for _ in range(40):
        x = tf.linalg.matmul(x, x) / 1000.0
    x.numpy()
    ticks = []  # CPU time (utime + stime) of each thread of this process
    for task in os.listdir("/proc/self/task"):
        stat = open(f"/proc/self/task/{task}/stat").read()
        fields = stat[stat.rindex(")") + 2 :].split()
        ticks.append(int(fields[11]) + int(fields[12]))
    print(sum(1 for t in ticks if t > 0))
    """
)


@pytest.mark.parametrize("cpus", [1, 2])
def test_tensorflow_honours_the_thread_limits_a_task_sets(cpus, tmp_path):
    """Measured, not assumed: with the environment a task gives its dvc process, TensorFlow's matmuls
    use CPU time on exactly one thread for one CPU (every other thread: none), and on several for two.
    Per-thread CPU time, not wall time, so it holds however busy the machine is."""
    from imdb_rnn.sweep.node import thread_env

    (tmp_path / "probe.py").write_text(THREAD_PROBE)
    proc = run([sys.executable, tmp_path / "probe.py"], tmp_path, env=thread_env(cpus), timeout=300)
    busy = int(proc.stdout.strip().splitlines()[-1])
    assert busy == 1 if cpus == 1 else busy >= 2, (cpus, busy)
