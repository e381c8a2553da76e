"""`imdb-rnn tune` for real on tiny data: Optuna's SQLite and PostgreSQL storages, MLflow, params.yaml.

The fast tests check the search space and the storage URL before any trial; the slow ones run
studies of a few one-second trials on a tiny prepared corpus.
"""

from __future__ import annotations

import re
import secrets
import signal
import subprocess
import time
from pathlib import Path

import optuna
import pytest
import requests
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from imdb_rnn.config import load_params
from imdb_rnn.errors import ConfigError
from imdb_rnn.tuning.space import LEVERS, load_space
from imdb_rnn.tuning.study import TuneError, open_storage
from imdb_rnn.tuning.summary import grid_passes
from imdb_rnn.wording import shown_key
from support.commands import REPO_ROOT, VENV_BIN, default_sigint, free_port, run, stop_group, tool_env, wait_until
from support.params import TINY, write_params
from support.postgres import PG_BIN, throwaway_cluster
from support.projects import make_project
from support.tracking import mlflow_client

# learning rates far apart: a 1e-7 trial learns nothing, so after a 0.02 one the median pruner stops it
SPACE = {
    "study": {"name": "tiny", "base": "simple_rnn", "seed": 7, "trials": 6, "epochs": 3, "startup_trials": 1,
              "warmup_epochs": 0},
    "space": {"train.learning_rate": [0.02, 1e-7], "model.units": [4, 8]},
}  # fmt: skip


def write_space(folder: Path, space: dict = SPACE) -> Path:
    path = folder / "tune.yaml"
    path.write_text(yaml.safe_dump(space, sort_keys=False), encoding="utf-8")
    return path


@pytest.fixture
def params_file(tmp_path: Path) -> Path:
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump({"models": {"simple_rnn": {}, "best_rnn": {}}}), encoding="utf-8")
    return path


lever_specs = st.one_of(
    st.builds(
        dict, low=st.floats(-2, 200, allow_nan=False), high=st.floats(-2, 200, allow_nan=False), log=st.booleans()
    ),  # fmt: skip
    st.lists(
        st.one_of(st.integers(-5, 300), st.floats(-1, 2, allow_nan=False), st.booleans(), st.text(max_size=6)),
        max_size=3,
    ),  # fmt: skip
    st.text(max_size=5),
    st.none(),
)


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(space=st.dictionaries(st.one_of(st.sampled_from(sorted(LEVERS)), st.text(max_size=8)), lever_specs, max_size=4))
def test_a_search_space_is_accepted_or_refused_in_one_line_per_problem(tmp_path, params_file, space):
    path = write_space(tmp_path, {"space": space})
    try:
        loaded = load_space(path, params_file)
    except ConfigError as exc:
        lines = exc.lines()
        assert lines
        assert all(line.startswith("tune.yaml: ") and "\n" not in line for line in lines), lines
        for key in space:
            if key not in LEVERS:
                assert any(f"space.{shown_key(key)}: unknown lever" in line for line in lines), (key, lines)
        return
    assert set(loaded.levers) == set(space)
    for lever in loaded.levers.values():  # every end of every lever made a valid variant
        assert lever.ends()


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    seed=st.integers(0, 6),
    confirm=st.integers(-1, 4),
    confirm_seeds=st.lists(st.integers(-1, 6), max_size=3),
)
def test_confirmation_settings_are_accepted_exactly_when_they_can_run(
    tmp_path, params_file, seed, confirm, confirm_seeds
):
    """Seeds to confirm on when there are trials to confirm, each once, valid, none the trials' own."""
    study = {"seed": seed, "confirm": confirm, "confirm_seeds": confirm_seeds}
    runnable = (
        confirm >= 0
        and (confirm == 0 or bool(confirm_seeds))
        and all(s >= 0 for s in confirm_seeds)
        and len(set(confirm_seeds)) == len(confirm_seeds)
        and seed not in confirm_seeds
    )
    try:
        loaded = load_space(write_space(tmp_path, {"study": study, "space": {"model.units": [8]}}), params_file)
    except ConfigError as exc:
        assert not runnable, exc.lines()
        [line] = exc.lines()
        assert line.startswith("tune.yaml: study: ") and "\n" not in line
        return
    assert runnable
    assert (loaded.settings.confirm, list(loaded.settings.confirm_seeds)) == (confirm, confirm_seeds)


@pytest.mark.parametrize(
    "space, expected",
    [
        ({"space": {"model.colour": [1]}}, "space.model.colour: unknown lever"),
        ({"space": {"model.dropout": {"low": 0.5, "high": 0.5}}}, "space.model.dropout: empty range"),
        ({"space": {"model.units": [0, 8]}}, "space.model.units: 0 is refused"),
        ({"space": {"train.seeds": [[1]]}}, "space.train.seeds: unknown lever"),
        ({"study": {"base": "nope"}, "space": {"model.units": [8]}}, "study.base: 'nope' is not a variant"),
    ],
)
def test_bad_search_spaces_name_the_lever(tmp_path, params_file, space, expected):
    with pytest.raises(ConfigError) as caught:
        load_space(write_space(tmp_path, space), params_file)
    assert any(expected in line for line in caught.value.lines()), caught.value.lines()


@pytest.mark.parametrize(
    "url",
    [
        "nosuch://db",
        "postgresql://nobody@127.0.0.1:1/none",
        "sqlite:////no/such/dir/x.db",
        "postgresql+psycopg://nobody:{password}@127.0.0.1:1/none",
    ],
)
def test_a_storage_url_optuna_cannot_use_is_one_line_without_its_password(url):
    url = url.format(password=secrets.token_urlsafe(12))  # drawn in the test: every xdist worker collects one id
    with pytest.raises(TuneError) as caught:
        open_storage(url)
    assert "\n" not in str(caught.value)
    password = re.search(r"//[^/@:]*:([^/@]*)@", url)
    shown = url.replace(password.group(1), "***") if password else url
    assert shown in str(caught.value)
    if password:
        assert password.group(1) not in str(caught.value)


# --- real studies on tiny data ---------------------------------------------------------------------


@pytest.fixture(scope="module")
def project(tmp_path_factory, small_archive):
    """A committed project with tiny params and its data prepared."""
    repo = make_project(tmp_path_factory.mktemp("tune"))
    write_params(repo / "params.yaml", TINY, only_their_variants=True)
    run(["git", "commit", "-qam", "tiny params"], repo)
    run(["dvc", "repro", "prepare"], repo, env={"IMDB_SOURCE": str(small_archive)})
    write_space(repo)
    return repo


def tune(repo: Path, *args: str, check: bool = True):
    return run([VENV_BIN / "imdb-rnn", "tune", "--project", repo, *args], repo, check=check, timeout=600)


def trials_of(repo: Path, storage: str | None = None) -> list:
    return optuna.load_study(study_name="tiny", storage=storage or f"sqlite:///{repo / 'optuna.db'}").trials


@pytest.mark.slow
def test_a_study_prunes_resumes_and_tracks_every_trial(project):
    first = tune(project, "--trials", "3")
    assert "trial 0:" in first.stdout
    again = tune(project)  # tune.yaml's 6 trials: the study goes on from 3
    trials = trials_of(project)
    states = [t.state for t in trials]
    assert sum(s in (optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED) for s in states) == 6
    assert optuna.trial.TrialState.RUNNING not in states
    pruned = [t for t in trials if t.state == optuna.trial.TrialState.PRUNED]
    assert pruned, [(t.params, t.intermediate_values) for t in trials]  # a 1e-7 trial after a 0.02 one
    assert all(t.user_attrs["epochs"] < 3 for t in pruned)  # stopped before its last epoch
    assert "pruned" in again.stdout

    client = mlflow_client(project)
    experiment = client.get_experiment_by_name("imdb-rnn tuning")
    runs = client.search_runs([experiment.experiment_id])
    studies = [r for r in runs if r.data.tags.get("run_kind") == "study"]
    assert len(studies) == 1  # the rerun continued the study's run
    trial_runs = [r for r in runs if r.data.tags.get("run_kind") == "trial"]
    assert len(trial_runs) == len(trials)
    assert {r.data.tags["mlflow.parentRunId"] for r in trial_runs} == {studies[0].info.run_id}
    by_number = {int(r.data.tags["trial"]): r for r in trial_runs}
    for t in trials:  # every param of the fit, as a variant's run logs them: the sampled values, the path taken
        logged = by_number[t.number].data.params
        assert {k: logged[k] for k in t.params} == {k: str(v) for k, v in t.params.items()}
        assert logged["train.unroll"] in ("True", "False")  # the path taken, not `auto`
        assert logged["data.maxlen"] == str(load_params(project / "params.yaml").data.maxlen)
    for t in pruned:
        assert by_number[t.number].data.tags["trial_state"] == "PRUNED"
    report = (project / "reports" / "tune.md").read_text()
    assert f"{len(pruned)} pruned" in report
    assert (project / "reports" / "tune" / "history.png").read_bytes()[:4] == b"\x89PNG"


@pytest.mark.slow
def test_export_adds_the_best_trial_as_a_variant_and_nothing_else(project):
    tune(project, "--export", "tuned")
    after = (project / "params.yaml").read_text()
    diff = run(["git", "diff", "-U0", "params.yaml"], project).stdout.splitlines()
    changed = [line for line in diff if line[:1] in "+-" and not line.startswith(("+++", "---"))]
    assert all(line.startswith("+") for line in changed), changed  # nothing removed or rewritten
    assert "\n  tuned:\n" in after  # an entry of models:, the rest as it was
    best = optuna.load_study(study_name="tiny", storage=f"sqlite:///{project / 'optuna.db'}").best_trial
    variant = load_params(project / "params.yaml").model("tuned")
    assert variant.units == best.params["model.units"]
    assert load_params(project / "params.yaml").train_for("tuned").learning_rate == best.params["train.learning_rate"]
    refused = tune(project, "--export", "tuned", check=False)
    assert refused.returncode == 1
    assert refused.stderr.strip().startswith("error: --export tuned: params.yaml already has a variant tuned")
    run(["git", "checkout", "params.yaml"], project)


@pytest.mark.slow
def test_the_top_trials_are_confirmed_on_more_seeds_and_export_takes_the_best_mean(project, tmp_path):
    study = {**SPACE["study"], "name": "confirmed", "trials": 4, "pruner": "none", "confirm": 2, "confirm_seeds": [8]}
    space = write_space(tmp_path, {**SPACE, "study": study})
    out = tune(project, "--space", space).stdout
    loaded = optuna.load_study(study_name="confirmed", storage=f"sqlite:///{project / 'optuna.db'}")
    done = sorted((t for t in loaded.trials if t.state == optuna.trial.TrialState.COMPLETE), key=lambda t: -t.value)
    top = {t.number for t in done[:2]}
    confirmed = {int(k.split("/")[1]): v for k, v in loaded.user_attrs.items() if k.startswith("confirm/")}
    assert set(confirmed) == top and all(set(c["seeds"]) == {"8"} and c["epochs"] == 3 for c in confirmed.values())
    assert out.count("confirm trial ") == 2

    client = mlflow_client(project)
    experiment = client.get_experiment_by_name("imdb-rnn tuning")
    [parent] = [r for r in client.search_runs([experiment.experiment_id]) if r.data.tags.get("study") == "confirmed"
                and r.data.tags.get("run_kind") == "study"]  # fmt: skip
    fits = [r for r in client.search_runs([experiment.experiment_id]) if r.data.tags.get("run_kind") == "confirmation"]
    assert {int(r.data.tags["trial"]) for r in fits} == top
    assert all(r.info.status == "FINISHED" and r.data.tags["mlflow.parentRunId"] == parent.info.run_id for r in fits)
    for fit in fits:  # each fit's curve and best, as the study stored it
        assert fit.data.metrics["best_val_accuracy"] == pytest.approx(
            confirmed[int(fit.data.tags["trial"])]["seeds"]["8"]
        )
        assert len(client.get_metric_history(fit.info.run_id, "val_accuracy")) == 3

    means = {n: (next(t.value for t in done if t.number == n) + c["seeds"]["8"]) / 2 for n, c in confirmed.items()}
    chosen = max(means, key=lambda n: (means[n], -n))
    assert parent.data.tags["chosen_trial"] == str(chosen)
    report = (project / "reports" / f"{space.stem}.md").read_text()
    assert "## Confirmation: the top 2 trials on seeds 8" in report
    assert f"`--export` takes trial {chosen}: mean validation accuracy {means[chosen]:.4f} over 2 seeds" in report

    assert "confirm trial" not in tune(project, "--space", space).stdout  # nothing left to confirm: no new fit
    exported = tune(project, "--space", space, "--export", "confirmed").stdout
    assert f"is trial {chosen} of study confirmed" in exported
    trial = next(t for t in done if t.number == chosen)
    params = load_params(project / "params.yaml")
    assert params.model("confirmed").units == trial.params["model.units"]
    assert params.train_for("confirmed").learning_rate == trial.params["train.learning_rate"]
    run(["git", "checkout", "params.yaml"], project)


@pytest.mark.slow
def test_optuna_dashboard_serves_the_study_as_readme_starts_it(project):
    """README's command, on the study of the tests above: the dashboard lists it with its trials."""
    port = free_port()
    cmd = [VENV_BIN / "optuna-dashboard", "sqlite:///optuna.db", "--host", "127.0.0.1", "--port", str(port)]
    proc = subprocess.Popen([str(c) for c in cmd], cwd=project, env=tool_env(), stdout=subprocess.DEVNULL,
                            stderr=subprocess.STDOUT, start_new_session=True)  # fmt: skip
    try:

        def studies():
            try:
                return requests.get(f"http://127.0.0.1:{port}/api/studies", timeout=2).json()["study_summaries"]
            except requests.RequestException:
                return None

        wait_until(lambda: studies() is not None, "the dashboard answers", timeout=60)
        (tiny,) = [s for s in studies() if s["study_name"] == "tiny"]
        detail = requests.get(f"http://127.0.0.1:{port}/api/studies/{tiny['study_id']}", timeout=10).json()
        assert len(detail["trials"]) == len(trials_of(project))
    finally:
        stop_group(proc)


def between_trials(log: str) -> bool:
    return "trial 1:" in log  # the moment Optuna starts the next trial


def mid_trial(log: str) -> bool:
    after = log.partition("trial 1:")[2]
    return "epoch 1/" in after  # the next trial has trained an epoch


@pytest.mark.slow
@pytest.mark.parametrize("moment", [between_trials, mid_trial], ids=lambda f: f.__name__)
def test_ctrl_c_fails_the_running_trial_and_leaves_nothing_running(project, tmp_path, moment):
    space = write_space(tmp_path, {**SPACE, "study": {**SPACE["study"], "name": "tiny", "trials": 50}})
    log = tmp_path / "tune.log"
    storage = f"sqlite:///{tmp_path / 'interrupted.db'}"
    with log.open("w") as out:
        proc = subprocess.Popen(
            [VENV_BIN / "imdb-rnn", "tune", "--project", project, "--space", space, "--storage", storage],
            cwd=project, env=tool_env(), stdout=out, stderr=subprocess.STDOUT, preexec_fn=default_sigint,
        )  # fmt: skip
    try:
        wait_until(lambda: moment(log.read_text()), moment.__name__, timeout=300)
        proc.send_signal(signal.SIGINT)
        sent = time.monotonic()
        code = proc.wait(timeout=60)  # the trial's cleanup (its runs, Optuna's FAIL) on a loaded 2-core machine
        assert code == 130, log.read_text()
        print(f"tune stopped {time.monotonic() - sent:.1f} s after Ctrl-C")
    finally:
        if proc.poll() is None:
            proc.kill()
    states = {t.state for t in trials_of(project, storage)}
    assert optuna.trial.TrialState.RUNNING not in states
    client = mlflow_client(project)
    runs = client.search_runs([client.get_experiment_by_name("imdb-rnn tuning").experiment_id])
    assert "RUNNING" not in {r.info.status for r in runs}


@pytest.mark.slow
@pytest.mark.skipif(PG_BIN is None, reason="PostgreSQL server binaries not found")
def test_two_workers_share_one_study_on_postgresql(project, tmp_path):
    space = write_space(tmp_path, {**SPACE, "study": {**SPACE["study"], "name": "shared", "trials": 6}})
    with throwaway_cluster() as cluster:
        storage = cluster.uri.replace("postgresql://", "postgresql+psycopg://")
        cmd = [VENV_BIN / "imdb-rnn", "tune", "--project", project, "--space", space, "--storage", storage]
        workers = [subprocess.Popen(cmd, cwd=project, env=tool_env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                    text=True) for _ in range(2)]  # fmt: skip
        outputs = [w.communicate(timeout=600)[0] for w in workers]
        assert [w.returncode for w in workers] == [0, 0], outputs
        assert all("trial " in out for out in outputs), outputs  # each worker ran trials of its own
        trials = optuna.load_study(study_name="shared", storage=storage).trials
    finished = [t for t in trials if t.state.is_finished()]
    assert len({t.number for t in trials}) == len(trials)
    assert len(finished) >= 6
    assert optuna.trial.TrialState.RUNNING not in {t.state for t in trials}


def load_sweep_module():
    import importlib.util

    spec = importlib.util.spec_from_file_location("sweep_bench", REPO_ROOT / "bench" / "sweep.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@settings(max_examples=30, deadline=None)
@given(
    passes=st.lists(
        st.lists(st.tuples(st.integers(1, 900), st.floats(0.5, 0.95), st.booleans()), min_size=1, max_size=4),
        min_size=1,
        max_size=3,
    )
)
def test_the_grid_read_back_from_the_sweep_report_is_its_passes_in_order(tmp_path_factory, passes):
    """grid_passes reads what bench/sweep.py's render writes: per pass in the order run, the training
    seconds so far and the best seed-42 validation accuracy so far; failed configurations count nothing."""
    sweep = load_sweep_module()
    names = sweep.PASSES[: len(passes)]
    plan = {"base": {"model": {}, "train": {}}, **{f"{n}_pass": {"train": {}, "configurations": {}} for n in names}}
    rows = [
        {"pass": name, "name": f"{name}-{i}", "failed": failed, "error": "boom" if failed else None,
         "metrics": {"best_val_accuracy": val, "accuracy": val, "seeds": 1},
         "per_seed": [{"best_val_accuracy": val, "accuracy": val}],
         "epochs": 3.0, "train_seconds": float(seconds)}
        for name, configs in zip(names, passes, strict=False) for i, (seconds, val, failed) in enumerate(configs)
    ]  # fmt: skip
    report = tmp_path_factory.mktemp("grid") / "sweep.md"
    report.write_text(sweep.render(plan, rows), encoding="utf-8")
    expected, total, best = [], 0.0, float("-inf")
    for name, configs in zip(names, passes, strict=False):
        for seconds, val, failed in configs:
            if not failed:
                total, best = total + seconds, max(best, round(val, 4))
        expected.append((f"{name} pass", total, best))
    assert grid_passes(report) == expected
