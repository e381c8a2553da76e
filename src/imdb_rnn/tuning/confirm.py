"""Confirmation: the study's top trials fitted again on more seeds, so export takes a mean, not a draw.

A trial's value is one seed's best validation accuracy; the best of many such values is the luckiest
draw, so it is optimistic and its rank is partly noise (the committed study's best trial lost 0.003
when `dvc repro` trained it over three seeds). With ``study.confirm: N`` the N best complete trials are
each fitted on ``study.confirm_seeds`` (the study's epochs, no pruning) once the trials are done, and
export takes the trial with the best mean over all its seeds. The results live in the study's user
attributes, so every worker sees them and a rerun fits only what is missing.
"""

from __future__ import annotations

import statistics
import threading

import optuna
from optuna.trial import FrozenTrial, TrialState

from .. import tracking
from ..prepared import PreparedData
from .space import SearchSpace

PREFIX = "confirm/"  # study user attribute ``confirm/<trial number>``: {"seeds": {seed: value}, "seconds": s}


def confirmations(study: optuna.Study) -> dict[int, dict]:
    """Per trial number, its confirmation fits so far."""
    return {int(k.removeprefix(PREFIX)): v for k, v in study.user_attrs.items() if k.startswith(PREFIX)}


def seed_values(trial: FrozenTrial, space: SearchSpace, confirmed: dict[int, dict]) -> dict[int, float]:
    """Every seed's best validation accuracy for ``trial``: the study's seed, then the confirmation seeds."""
    values = {space.settings.seed: float(trial.value or 0.0)}
    values.update({int(seed): value for seed, value in confirmed.get(trial.number, {}).get("seeds", {}).items()})
    return values


def seeds_mean(values: dict[int, float]) -> float:
    """A trial's mean validation accuracy over the seeds it was fitted on."""
    return statistics.fmean(values.values())


def top_trials(study: optuna.Study, n: int) -> list[FrozenTrial]:
    """The ``n`` complete trials with the best values (the earlier trial first on a tie)."""
    done = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    return sorted(done, key=lambda t: (-float(t.value or 0.0), t.number))[:n]


def chosen(study: optuna.Study, space: SearchSpace) -> tuple[FrozenTrial, dict[int, float]]:
    """The trial export takes and its values per seed: among the fully confirmed trials the best mean
    over seeds, or without confirmations the study's best trial (one seed)."""
    confirmed = confirmations(study)
    wanted = set(space.settings.confirm_seeds)
    complete = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    full = [t for t in complete if wanted and wanted <= {int(s) for s in confirmed.get(t.number, {}).get("seeds", {})}]
    if not full:
        return study.best_trial, seed_values(study.best_trial, space, confirmed)
    best = max(full, key=lambda t: (seeds_mean(seed_values(t, space, confirmed)), -t.number))
    return best, seed_values(best, space, confirmed)


class Confirmation:
    """The confirmation fits, one nested MLflow run each (``run_kind: confirmation``) under the study's run.

    Runs in the study's worker thread like the trials; ``stop`` ends the fit in progress KILLED from the
    main thread on Ctrl-C (the fit itself cannot be stopped, only abandoned with the process).
    """

    def __init__(self, space: SearchSpace, data: PreparedData, experiment_id: str, tags: dict, parent_run_id: str):
        self.space, self.data, self.experiment_id, self.tags = space, data, experiment_id, tags
        self.parent_run_id = parent_run_id
        self.running: str | None = None  # the MLflow run of the fit in progress
        self.stopping, self.lock = threading.Event(), threading.Lock()

    def run(self, study: optuna.Study) -> None:
        for trial in top_trials(study, self.space.settings.confirm):
            for seed in self.space.settings.confirm_seeds:
                if str(seed) not in confirmations(study).get(trial.number, {}).get("seeds", {}):
                    self.fit(study, trial, seed)

    def fit(self, study: optuna.Study, trial: FrozenTrial, seed: int) -> None:
        import mlflow

        from .study import TuneError, fresh_fit, log_epoch, log_fit_params

        trainer, train, val = fresh_fit(self.space, trial.params, self.data)
        client = mlflow.MlflowClient()
        tags = {
            **self.tags,
            "run_kind": "confirmation",
            "trial": str(trial.number),
            "seed": str(seed),
            "mlflow.parentRunId": self.parent_run_id,
            tracking.PROCESS_TAG: tracking.this_process(),
        }
        name = f"{self.space.settings.name}/trial {trial.number} seed {seed}"
        with self.lock:
            if self.stopping.is_set():
                raise TuneError("interrupted")
            self.running = client.create_run(self.experiment_id, run_name=name, tags=tags).info.run_id
        run_id, seconds = self.running, []
        try:
            log_fit_params(client, run_id, trainer, {"trial": trial.number, "seed": seed})

            def on_epoch(row: dict) -> None:
                log_epoch(client, run_id, row)
                seconds.append(row["seconds"])

            result = trainer.fit_seed(seed, train, val, on_epoch)
            if not result.has_model:
                raise TuneError(f"trial {trial.number} diverged on seed {seed} in its first epoch")
            client.log_metric(run_id, "best_val_accuracy", result.best_val_accuracy)
            client.set_terminated(run_id, "FINISHED")
        except Exception:
            if client.get_run(run_id).info.status == "RUNNING":
                client.set_terminated(run_id, "FAILED")
            raise
        finally:
            self.running = None
        key = f"{PREFIX}{trial.number}"
        held = study.user_attrs.get(key, {"seeds": {}, "seconds": 0.0, "epochs": 0})
        held["seeds"][str(seed)] = round(result.best_val_accuracy, 6)
        held["seconds"] = round(held["seconds"] + sum(seconds), 3)
        held["epochs"] += len(seconds)
        study.set_user_attr(key, held)
        mean = seeds_mean(seed_values(trial, self.space, {trial.number: held}))
        print(
            f"confirm trial {trial.number} seed {seed}: {result.best_val_accuracy:.4f} - mean over "
            f"{len(held['seeds']) + 1} seeds {mean:.4f} (seed {self.space.settings.seed}: {trial.value:.4f})",
            flush=True,
        )

    def stop(self) -> None:
        import mlflow

        with self.lock:
            self.stopping.set()
            running = self.running
        if running is not None:
            mlflow.MlflowClient().set_terminated(running, "KILLED")
