"""SIGTERM or SIGKILL to `dvc repro` itself, not to its stage: DVC dies at once and forwards nothing, so
the stage must notice on its own (``interrupts.stop_with_dvc``): it stops within seconds, its MLflow runs
end KILLED, nothing is written, and the next `dvc repro` runs (DVC's stale lock is no obstacle).

A real `dvc repro` on tiny data, under bash (which execs the stage: dvc is its parent) and dash (which
forks it: a shell sits between them and outlives dvc); and, fast, a stage whose dvc died before it asked.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import psutil
import pytest

from imdb_rnn.processes import stop_group
from support.commands import REPO_ROOT, run, tool_env, wait_until
from support.params import ONE_VARIANT, write_yaml
from support.projects import make_project, stage_stderr
from support.tracking import mlflow_client

VARIANT = "simple_rnn"
SHORT = ONE_VARIANT
LONG = {**SHORT, "train": {**SHORT["train"], "epochs": 10_000}}  # tiny epochs for minutes: the signal lands in training
EPOCH_END = re.compile(r"^seed \d+ epoch \d+/\d+: ", re.M)
GONE_WITHIN_S = 15


@pytest.fixture(scope="module")
def project(tmp_path_factory, small_archive):
    """A project with its data prepared, once for every case."""
    repo = make_project(tmp_path_factory.mktemp("dvc_signals")).resolve()
    env = {"IMDB_SOURCE": small_archive, "PYTHONUNBUFFERED": "1"}
    write_yaml(repo / "params.yaml", SHORT)
    run(["dvc", "repro", "prepare"], repo, env=env)
    return repo, env


def runs(repo: Path) -> dict[str, str]:
    """run id -> status of every run in the project's store (none yet: opening it would create it)."""
    if not (repo / "mlflow.db").is_file():
        return {}
    client = mlflow_client(repo)
    experiment = client.get_experiment_by_name("imdb-rnn")
    found = client.search_runs([experiment.experiment_id], max_results=500) if experiment else []
    return {r.info.run_id: r.info.status for r in found}


def project_processes(repo: Path) -> list[str]:
    """Command lines of the live processes working in the project (dvc, a shell, the stage); zombies have ended."""
    found = []
    for p in psutil.process_iter(["cwd", "status", "cmdline"]):
        if p.info["cwd"] == str(repo) and p.info["status"] != psutil.STATUS_ZOMBIE:
            found.append(" ".join(p.info["cmdline"] or []))
    return found


# SIGTERM to the group (a sweep stopping a point, a CI job cancelled) reaches the stage twice: straight,
# then as dvc's death; the second must not cut short the first's cleanup (the runs' KILLED)
TARGETS = [(signal.SIGTERM, "dvc"), (signal.SIGKILL, "dvc"), (signal.SIGTERM, "group")]


@pytest.mark.slow  # real dvc repro and signals
@pytest.mark.parametrize("shell", ["/bin/bash", "/bin/sh"], ids=["bash", "sh"])
@pytest.mark.parametrize(("signum", "whom"), TARGETS, ids=["SIGTERM-dvc", "SIGKILL-dvc", "SIGTERM-group"])
def test_signal_to_dvc_stops_its_stage_and_leaves_no_output(project, signum, whom, shell, tmp_path):
    repo, env = project
    write_yaml(repo / "params.yaml", LONG)
    shutil.rmtree(repo / ".checkpoints", ignore_errors=True)  # a fresh training: the last case's would resume
    before = runs(repo)
    out_path, err_path = tmp_path / "stdout.txt", tmp_path / "stderr.txt"
    with open(out_path, "w") as out, open(err_path, "w") as err:
        dvc = subprocess.Popen(
            ["dvc", "repro", f"train@{VARIANT}"],
            cwd=repo,
            env=tool_env({**env, "SHELL": shell}),
            stdout=out,
            stderr=err,
            stdin=subprocess.DEVNULL,
            start_new_session=True,  # a group to clean up if the stage outlives dvc
        )
    try:
        wait_until(
            lambda: EPOCH_END.search(out_path.read_text()) or dvc.poll() is not None, "a finished epoch", timeout=180
        )
        assert dvc.poll() is None, f"dvc exited {dvc.returncode}:\n{err_path.read_text()}"
        new = {k: v for k, v in runs(repo).items() if k not in before}
        assert sorted(new.values()) == ["RUNNING", "RUNNING"], new  # the variant's run and its seed's
        assert any("stages/train.py" in cmd for cmd in project_processes(repo))

        if whom == "dvc":
            dvc.send_signal(signum)
        else:
            os.killpg(dvc.pid, signum)
        sent = time.monotonic()
        assert dvc.wait(timeout=10) == -signum  # DVC has no handler: the signal ends it at once
        wait_until(lambda: not project_processes(repo), "the stage gone", timeout=GONE_WITHIN_S, interval=0.05)
        gone_in = time.monotonic() - sent
    finally:
        stop_group(dvc.pid, grace_s=5)

    assert stage_stderr(err_path.read_text())[-1].startswith("error: interrupted: training stopped")
    after = runs(repo)
    assert {after[k] for k in new} == {"KILLED"}
    assert "RUNNING" not in after.values()
    assert not (repo / "models" / VARIANT).exists()
    assert not (repo / "reports" / "variants" / VARIANT / "history.csv").exists()

    write_yaml(repo / "params.yaml", SHORT)
    run(["dvc", "repro", f"train@{VARIANT}"], repo, env=env)  # the dead dvc's rwlock names a pid that no longer exists
    assert (repo / "models" / VARIANT / "model.keras").is_file()
    print(f"{signum.name} to {whom} under {shell}: the stage gone {gone_in:.2f} s later")


# Exits its shell (as a dvc that died in the stage's first milliseconds), then enters run_cli.
ORPHAN = textwrap.dedent(
    """
    import os, sys, time
    sys.path.insert(0, {src!r})
    parent = os.getppid()
    print(os.getpid(), flush=True)  # the test then lets the shell exit
    while os.getppid() == parent:
        time.sleep(0.01)
    from imdb_rnn.errors import run_cli
    run_cli(lambda: print("survived", flush=True), interrupted="stopped")
    """
)


@pytest.mark.parametrize("under_dvc", [True, False], ids=["under-dvc", "by-hand"])
def test_a_stage_whose_dvc_is_gone_already_stops_at_once(under_dvc, tmp_path):
    """Under DVC it stops before its main runs; started by hand it runs on (nohup, a detached job)."""
    script, out = tmp_path / "orphan.py", tmp_path / "out.txt"
    script.write_text(ORPHAN.format(src=str(REPO_ROOT / "src")))
    env = tool_env({"DVC_STAGE": "train@x" if under_dvc else None})
    shell = subprocess.Popen(
        ["sh", "-c", f"'{sys.executable}' '{script}' > '{out}' 2>&1 & read _"],
        env=env,
        stdin=subprocess.PIPE,
        start_new_session=True,
    )
    stage = psutil.Process(
        int(wait_until(lambda: out.is_file() and out.read_text().split(), "the orphan's pid", timeout=30)[0])
    )
    shell.communicate(b"\n", timeout=10)

    def ended() -> bool:
        try:
            return stage.status() == psutil.STATUS_ZOMBIE
        except psutil.NoSuchProcess:
            return True

    try:
        wait_until(ended, "the orphan gone", timeout=30)
    finally:
        if not ended():
            stage.kill()
    assert ("survived" in out.read_text()) is not under_dvc, out.read_text()
