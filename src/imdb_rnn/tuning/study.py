"""The study: seeded TPE sampling, pruning on each epoch's validation accuracy, Optuna's RDB storage.

Each trial is one seed of a real fit through ``fitting.SeedTrainer`` on the prepared data, so its
curve is what `dvc repro` would train. The storage (SQLite by default, PostgreSQL for a team) holds
the study: rerunning continues it, and several workers on several machines join one study. A
killed worker's trial is failed by the others' heartbeat check and retried once.
"""

from __future__ import annotations

import contextlib
import re
import threading
import time
import warnings
from pathlib import Path

import optuna
import sqlalchemy.exc
from optuna.storages import RDBStorage, RetryHeartbeatStaleTrialCallback
from optuna.study import MaxTrialsCallback
from optuna.trial import TrialState

from .. import paths, tracking
from ..errors import ConfigError, ImdbRnnError
from ..fitting import EPOCH_METRICS, SeedTrainer
from ..interrupts import call_interruptibly
from ..prepared import PreparedData, load_training_data
from ..text import within_vocabulary
from .confirm import Confirmation, chosen, seeds_mean
from .space import TRIAL, SearchSpace
from .summary import write_report

STORAGE = "optuna.db"  # at the project root, beside mlflow.db
HEARTBEAT_S = 30  # a RUNNING trial whose worker is silent for twice this is failed (and retried once)


class TuneError(ImdbRnnError):
    """A study that cannot run as asked (its storage, its data)."""


def storage_url(root: Path, url: str | None) -> str:
    return url or f"sqlite:///{Path(root) / STORAGE}"


def shown_url(url: str) -> str:
    """A storage URL fit for a terminal or a log: its password, if any, as ``***``."""
    return re.sub(r"(//[^/@:]*:)[^/@]*@", r"\1***@", url)


def open_storage(url: str, attempts: int = 3) -> RDBStorage:
    """Optuna's RDB storage with heartbeats; a URL it cannot use is one line naming it.

    Workers that start together on a new database race to create Optuna's tables: the loser's
    IntegrityError means the tables now exist, so it opens the storage again.
    """
    for attempt in range(1, attempts + 1):
        try:
            with warnings.catch_warnings():  # heartbeats are "experimental" in Optuna: nothing a user can act on
                warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
                return RDBStorage(
                    url,
                    heartbeat_interval=HEARTBEAT_S,
                    grace_period=2 * HEARTBEAT_S,
                    heartbeat_stale_trial_callback=RetryHeartbeatStaleTrialCallback(max_retry=1),
                    engine_kwargs={"pool_pre_ping": True},
                )
        except sqlalchemy.exc.IntegrityError:
            if attempt == attempts:
                raise
            time.sleep(attempt)
        except Exception as exc:  # SQLAlchemy's and the drivers' errors: bad scheme, host, credentials
            reason = str(exc).splitlines()[0][:200].replace(url, shown_url(url))
            raise TuneError(
                f"--storage {shown_url(url)}: cannot be used as Optuna storage ({type(exc).__name__}: {reason}); give "
                "sqlite:///<file> or postgresql://user:password@host/db"
            ) from None
    raise AssertionError("unreachable")


def make_pruner(space: SearchSpace) -> optuna.pruners.BasePruner:
    s = space.settings
    if s.pruner == "median":
        return optuna.pruners.MedianPruner(n_startup_trials=s.startup_trials, n_warmup_steps=s.warmup_epochs)
    if s.pruner == "halving":
        return optuna.pruners.SuccessiveHalvingPruner(min_resource=max(1, s.warmup_epochs))
    return optuna.pruners.NopPruner()


def open_study(space: SearchSpace, storage: RDBStorage) -> optuna.Study:
    """The study of tune.yaml's name, created once, continued afterwards. The sampler's seed moves
    with the trials already there, so a resumed study or a second worker does not repeat the first."""
    optuna.logging.set_verbosity(optuna.logging.WARNING)  # the progress line says what matters
    study = optuna.create_study(
        study_name=space.settings.name,
        storage=storage,
        direction="maximize",
        load_if_exists=True,
        pruner=make_pruner(space),
    )
    study.sampler = optuna.samplers.TPESampler(seed=space.settings.seed + len(study.trials))
    return study


def run_study(space: SearchSpace, storage: RDBStorage, root: Path, data_dir: Path, trials: int | None = None,
              minutes: float | None = None, report: Path | None = None) -> optuna.Study:  # fmt: skip
    """Trials until the study has ``trials`` complete or pruned ones (all workers together) or this
    worker's ``minutes`` are spent; every trial a nested MLflow run under the study's run. The study's
    page goes to ``report`` (default reports/tune.md), its figures to the folder of the same stem."""
    import mlflow

    study = open_study(space, storage)
    budget = trials or space.settings.trials
    minutes = minutes or space.settings.minutes
    params = space.params({})
    try:
        data = load_training_data(data_dir, params.data.max_features)
    except FileNotFoundError:
        raise TuneError(f"no prepared data in {data_dir}; run `dvc repro prepare` first") from None
    experiment_id = tracking.setup(params.mlflow.tuning_experiment, root=Path(root))
    tags = tracking.run_tags(root, study=space.settings.name, run_kind="study")
    parent_id = study.user_attrs.get("mlflow_run_id")
    resumed = tracking.existing_run(parent_id) if parent_id else None
    start = {"run_id": resumed} if resumed else {"run_name": f"study {space.settings.name}", "tags": tags}
    started = time.monotonic()
    with tracking.tracked_run(experiment_id=experiment_id, **start) as parent:
        study.set_user_attr("mlflow_run_id", parent.info.run_id)
        objective = Objective(space, data, experiment_id, tags, parent.info.run_id)
        done = (TrialState.COMPLETE, TrialState.PRUNED)
        if sum(t.state in done for t in study.trials) < budget:
            try:  # the whole loop in a worker thread: a signal meets the main thread in a join, never in a lock
                call_interruptibly(
                    objective.optimize,
                    study,
                    timeout=minutes * 60 if minutes else None,
                    callbacks=[MaxTrialsCallback(budget, states=done), Progress(budget, started, minutes)],
                    catch=(ConfigError,),  # values valid alone that clash (e.g. bucketing with unroll): the trial fails
                    gc_after_trial=True,
                )
            except KeyboardInterrupt:
                objective.stop(storage)
                raise
        if space.settings.confirm and completed(study):  # after this worker's budget: the top trials on more seeds
            confirmation = Confirmation(space, data, experiment_id, tags, parent.info.run_id)
            try:
                call_interruptibly(confirmation.run, study)
            except KeyboardInterrupt:
                confirmation.stop()
                raise
        if completed(study):
            trial, values = chosen(study, space)
            tracking.log_metrics(
                {
                    "best_val_accuracy": study.best_value,
                    "trials": len(study.trials),
                    "chosen_val_accuracy_mean": seeds_mean(values),
                }
            )
            mlflow.set_tags({"best_trial": str(study.best_trial.number), "chosen_trial": str(trial.number)})
        page, *images = write_report(study, space, report or Path(root) / paths.REPORTS / "tune.md")
        tracking.log_files([page], "reports")
        tracking.log_files(images, "plots")
    return study


def completed(study: optuna.Study) -> list:
    return [t for t in study.trials if t.state == TrialState.COMPLETE]


def fresh_fit(space: SearchSpace, values: dict, data: PreparedData) -> tuple[SeedTrainer, dict, dict]:
    """A trainer for the base variant with ``values`` set, and the train and val splits in its vocabulary;
    the last fit's graphs go first (each trial or confirmation fit builds its own model)."""
    import keras

    keras.backend.clear_session()
    params = space.params(values)
    max_features = params.model(TRIAL).max_features
    train, val = (within_vocabulary(split, max_features) for split in (data.train, data.val))
    return SeedTrainer(TRIAL, params), train, val


def log_fit_params(client, run_id: str, trainer: SeedTrainer, extra: dict) -> None:
    """Every param of the fit, as the train stage logs a variant's (the sampled values among them, ``auto``
    resolved to the path taken), and ``extra``: trials compare with the pipeline's runs key by key."""
    from mlflow.entities import Param

    values = {**trainer.params.flat(TRIAL), **extra}
    client.log_batch(run_id, params=[Param(key, str(value)) for key, value in values.items()])


def log_epoch(client, run_id: str, row: dict) -> None:
    """One epoch's curves in a trial's (or a confirmation fit's) run."""
    for key in EPOCH_METRICS:
        client.log_metric(run_id, key, round(row[key], 6), step=row["epoch"])
    client.log_metric(run_id, "epoch_seconds", row["seconds"], step=row["epoch"])


class Objective:
    """One trial: sample the levers, fit one seed for the study's epochs, report every epoch's
    validation accuracy (the pruner may stop it there), return the best.

    It runs in the study's worker thread, so its MLflow run is kept by id (MLflow's active run is
    per thread) and ``abandon`` can end it, and fail its trial, from the main thread on Ctrl-C.
    """

    def __init__(self, space: SearchSpace, data: PreparedData, experiment_id: str, tags: dict, parent_run_id: str):
        self.space, self.data, self.experiment_id, self.tags = space, data, experiment_id, tags
        self.parent_run_id = parent_run_id
        self.running: tuple[int, str | None] | None = None  # (Optuna trial id, MLflow run id) of the trial in progress
        self.stopping, self.finished, self.lock = threading.Event(), threading.Event(), threading.Lock()

    def optimize(self, study: optuna.Study, **kwargs) -> None:
        try:
            study.optimize(self, **kwargs)
        finally:
            self.finished.set()

    def __call__(self, trial: optuna.Trial) -> float:
        import mlflow

        with self.lock:
            if self.stopping.is_set():  # Ctrl-C came between trials: Optuna fails this one and ends the loop
                raise TuneError("interrupted")
            self.running = (trial._trial_id, None)  # Optuna's id, for the storage
        values = self.space.sample(trial)
        trainer, train, val = fresh_fit(self.space, values, self.data)
        client = mlflow.MlflowClient()
        tags = {**self.tags, "run_kind": "trial", "trial": str(trial.number), "mlflow.parentRunId": self.parent_run_id}
        tags[tracking.PROCESS_TAG] = tracking.this_process()  # who holds it RUNNING: ``end_orphans`` checks it
        name = f"{self.space.settings.name}/trial {trial.number}"
        run_id = client.create_run(self.experiment_id, run_name=name, tags=tags).info.run_id
        with self.lock:
            self.running = (trial._trial_id, run_id)
            if self.stopping.is_set():
                client.set_terminated(run_id, "KILLED")
                raise TuneError("interrupted")
        try:
            log_fit_params(client, run_id, trainer, {"trial": trial.number})

            def on_epoch(row: dict) -> None:
                log_epoch(client, run_id, row)
                trial.report(row["val_accuracy"], row["epoch"])
                trial.set_user_attr("epochs", row["epoch"])
                trial.set_user_attr("seconds", round(trial.user_attrs.get("seconds", 0.0) + row["seconds"], 3))
                if trial.should_prune():
                    raise optuna.TrialPruned(f"pruned after epoch {row['epoch']}")

            try:
                result = trainer.fit_seed(self.space.settings.seed, train, val, on_epoch)
            except optuna.TrialPruned:
                client.set_tag(run_id, "trial_state", "PRUNED")
                client.set_terminated(run_id, "FINISHED")
                raise
            if not result.has_model:
                raise TuneError(f"trial {trial.number} diverged in its first epoch")
            client.set_tag(run_id, "trial_state", "COMPLETE")
            client.set_terminated(run_id, "FINISHED")
            return result.best_val_accuracy
        except Exception:  # pruned trials ended their run above
            if client.get_run(run_id).info.status == "RUNNING":
                client.set_terminated(run_id, "FAILED")
            raise
        finally:
            self.running = None

    def stop(self, storage: RDBStorage, wait_s: float = 10.0) -> None:
        """Ctrl-C. A trial in progress is failed (Optuna) and its run KILLED (MLflow): its worker thread
        cannot be stopped, only abandoned with the process. Between trials, the worker gets a moment
        to start the next trial, which fails at once."""
        import mlflow

        with self.lock:
            self.stopping.set()
            running = self.running
        if (running is None or running[1] is None) and self.finished.wait(wait_s):
            return  # the worker failed the trial it was starting, and ended its run
        if running is None:
            return  # the worker never came back (stuck in the storage): the heartbeat check fails its trial
        trial_id, run_id = running
        with contextlib.suppress(RuntimeError, sqlalchemy.exc.SQLAlchemyError):  # it finished in between
            storage.set_trial_state_values(trial_id, TrialState.FAIL)
        if run_id is not None:
            mlflow.MlflowClient().set_terminated(run_id, "KILLED")


class Progress:
    """One line per finished trial: its outcome, the best so far, the counts, the time left."""

    def __init__(self, budget: int, started: float, minutes: float | None):
        self.budget, self.started, self.minutes = budget, started, minutes

    def __call__(self, study: optuna.Study, trial: optuna.trial.FrozenTrial) -> None:
        counts = {state: sum(t.state == state for t in study.trials) for state in TrialState}
        value = f"{trial.value:.4f}" if trial.value is not None else trial.state.name.lower()
        best = f"best {study.best_value:.4f} (trial {study.best_trial.number})" if completed(study) else "no best yet"
        elapsed = (time.monotonic() - self.started) / 60
        left = f", {max(0.0, self.minutes - elapsed):.1f} min left" if self.minutes else ""
        print(
            f"trial {trial.number}: {value} after {trial.user_attrs.get('epochs', 0)} epochs - {best} - "
            f"complete {counts[TrialState.COMPLETE]}, pruned {counts[TrialState.PRUNED]}, "
            f"failed {counts[TrialState.FAIL]} of {self.budget}{left}",
            flush=True,
        )
