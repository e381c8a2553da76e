"""The model registry's champion: the best variant of a pipeline execution, by its served model's validation
accuracy (never test), becomes ``<registered_model>@champion`` when it is significantly better than the current
champion on the same validation reviews (the gate: ``gate``, ``judge``).

Run by the `register` stage after `report`. A rerun with the same results registers nothing; a better
model gets a new version and the alias, and every earlier champion keeps its version. Under
``dvc exp run`` (``DVC_EXP_NAME`` set) nothing moves unless ``mlflow.promote_experiments`` is true: an
experiment explores, the workspace's `dvc repro` decides what the team serves. Each decision, promoted
or not and why, is written to ``reports/champion.json``.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

from . import gate, paths
from .config import Params
from .errors import ImdbRnnError
from .files import read_json

if TYPE_CHECKING:
    from mlflow import MlflowClient
    from mlflow.entities.model_registry import ModelVersion

ALIAS = "champion"
ACCURACY_TAG = "served_val_accuracy"  # a version's validation accuracy: the served model's, as the report showed it
LEGACY_ACCURACY_TAG = "best_val_accuracy"  # what versions registered before 2026-12 hold: the seeds' mean
RUN_TAGS = ("variant", "git_commit", "dvc_exp_name", "data_hash")  # copied from the model's run to its version


@dataclass(frozen=True)
class Candidate:
    variant: str
    run_id: str  # the variant run that logged its raw-text model
    served_val_accuracy: float  # of the model registered and served: the best seed, or the seeds' ensemble


def best_candidate(summary_csv: Path, models_dir: Path) -> Candidate:
    """The execution's best variant by its served model's validation accuracy (the report's criterion) and its
    run: what would be registered is what is compared, so an ensemble counts as the ensemble, not as its
    seeds' mean."""
    table = pd.read_csv(summary_csv)
    best = table.loc[table[ACCURACY_TAG].idxmax()]
    run_id = read_json(paths.model_dir(best["variant"], models_dir) / "run.json")["run_id"]
    return Candidate(str(best["variant"]), run_id, float(best[ACCURACY_TAG]))


def held_accuracy(version: ModelVersion) -> float | None:
    """The validation accuracy a registered version was chosen by (None: a version made by hand)."""
    accuracy = version.tags.get(ACCURACY_TAG, version.tags.get(LEGACY_ACCURACY_TAG))
    return None if accuracy is None else float(accuracy)


def describe(version: ModelVersion | None) -> dict[str, Any] | None:
    """A registered version as champion.json names it (None: no champion)."""
    if version is None:
        return None
    return {
        "version": int(version.version),
        "variant": version.tags.get("variant"),
        "run_id": version.run_id,
        ACCURACY_TAG: held_accuracy(version),
    }


def current_champion(client: MlflowClient, name: str) -> ModelVersion | None:
    """The version the alias names, or None when the model or its alias does not exist yet."""
    import mlflow

    try:
        return client.get_model_version_by_alias(name, ALIAS)
    except mlflow.exceptions.MlflowException as exc:
        if exc.error_code in ("RESOURCE_DOES_NOT_EXIST", "INVALID_PARAMETER_VALUE"):  # no model / no alias
            return None
        raise


def text_model_uri(client: MlflowClient, candidate: Candidate) -> tuple[str, dict[str, str]]:
    """The candidate's logged raw-text model (``models:/<model id>``) and its run's tags."""
    import mlflow

    retrain = f"retrain it with `dvc repro --force train@{candidate.variant}`"
    try:
        run = client.get_run(candidate.run_id)
    except mlflow.exceptions.MlflowException:
        raise ImdbRnnError(
            f"run {candidate.run_id} of {candidate.variant} is not in the MLflow store "
            f"{mlflow.get_tracking_uri()} (a new or reset store?); {retrain}"
        ) from None
    logged = mlflow.search_logged_models(
        experiment_ids=[run.info.experiment_id],
        output_format="list",
        filter_string=f"source_run_id = '{candidate.run_id}' AND name = '{candidate.variant}'",
    )
    if not logged:
        raise ImdbRnnError(
            f"run {candidate.run_id} has no raw-text model '{candidate.variant}' (trained by an "
            f"older version of this project); {retrain}"
        )
    return logged[0].model_uri, run.data.tags


def champion_predictions(client: MlflowClient, champion: ModelVersion) -> pd.DataFrame | None:
    """The validation predictions the champion's run logged, or None (registered before the gate logged
    them, or its run's artifacts are gone)."""
    import mlflow

    path = f"{gate.VAL_ARTIFACT_FOLDER}/{gate.VAL_PREDICTIONS}"
    try:
        if path not in {a.path for a in client.list_artifacts(champion.run_id, gate.VAL_ARTIFACT_FOLDER)}:
            return None
        with tempfile.TemporaryDirectory() as tmp:
            local = mlflow.artifacts.download_artifacts(run_id=champion.run_id, artifact_path=path, dst_path=tmp)
            return gate.read_predictions(Path(local))
    except mlflow.exceptions.MlflowException:
        return None


def judge(client: MlflowClient, champion: ModelVersion | None, candidate: Candidate, predictions: Path, alpha: float):
    """Whether the candidate may replace ``champion``, as champion.json's ``gate`` records it.

    No champion: the first registration, nothing to test. A champion whose validation predictions are
    not in its run (registered before the gate) or are of other reviews (other data params): no paired
    test is possible, and the rule before the gate decides, a higher validation accuracy.
    """
    if champion is None:
        return {"test": None, "why": "no champion before", "passed": True}
    held = champion_predictions(client, champion)
    ours = gate.read_predictions(predictions) if predictions.is_file() else None
    if ours is None:
        raise ImdbRnnError(f"{predictions} is missing or not a predictions file; run `dvc repro` (evaluate writes it)")
    counts = None if held is None else gate.paired_counts(ours, held)
    if counts is not None:
        return gate.gate(counts, alpha)
    held_val_accuracy = held_accuracy(champion)
    if held_val_accuracy is None:
        raise ImdbRnnError(
            f"{champion.name}@{ALIAS} (version {champion.version}) has neither validation predictions nor a "
            f"{ACCURACY_TAG} tag to compare with; move the alias to a version the register stage made"
        )
    why = "its run has no validation predictions" if held is None else "its validation predictions are of other reviews"
    return {
        "test": None,
        "why": f"no paired test: {why}; compared by validation accuracy ({held_val_accuracy:.4f})",
        "passed": candidate.served_val_accuracy > held_val_accuracy,
    }


def outcome(decision: dict, champion: ModelVersion) -> str:
    """The gate's verdict in one clause of champion.json's ``reason``."""
    if decision["test"] is None:
        return decision["why"]
    p, alpha = decision["p_value"], decision["alpha"]
    return (
        f"on the same {decision['reviews']} validation reviews it alone is right on "
        f"{decision['candidate_only_right']}, version {champion.version} alone on {decision['champion_only_right']}: "
        f"exact McNemar p = {p:.3g} ({'<' if p < alpha else '>='} {alpha:g})"
    )


def promotion(decision: dict[str, Any], previous: dict[str, Any] | None) -> dict[str, Any] | None:
    """Why the champion is the champion: this execution's promotion, else the one the previous champion.json
    recorded for the same version, so a repro that registers nothing keeps the reason (and its McNemar test).
    None when no record names that version (the alias moved by hand, or no champion)."""
    champion = decision["champion"]
    if champion is None:
        return None
    if decision["promoted"]:
        return {"version": champion["version"], "reason": decision["reason"], "gate": decision["gate"]}
    if not previous:
        return None
    earlier = previous.get("promotion")
    if previous.get("promoted"):  # the execution that promoted it (also a record older than the key)
        earlier = {**{k: previous.get(k) for k in ("reason", "gate")}, "version": previous["champion"]["version"]}
    return earlier if earlier and earlier.get("version") == champion["version"] else None


def register(
    params: Params, candidate: Candidate, predictions: Path, env: Mapping[str, str] = os.environ
) -> dict[str, Any]:
    """Promote ``candidate`` when the gate lets it replace the champion (``judge``); the decision, as
    champion.json records it. ``predictions``: the candidate's validation predictions (its evaluation's)."""
    import mlflow

    client = mlflow.MlflowClient()
    name = params.mlflow.registered_model
    champion = current_champion(client, name)
    experiment, promoted, decision = env.get("DVC_EXP_NAME"), False, None
    if experiment and not params.mlflow.promote_experiments:
        reason = (
            f"DVC experiment {experiment}: experiments do not move the champion "
            "(mlflow.promote_experiments: false); the workspace's `dvc repro` does"
        )
    elif champion is not None and champion.run_id == candidate.run_id:
        reason = f"already the champion (version {champion.version}): nothing new to register"
    elif not (decision := judge(client, champion, candidate, predictions, params.mlflow.champion_alpha))["passed"]:
        assert champion is not None  # the first registration always passes
        reason = (
            f"not better than the champion (version {champion.version}, {champion.tags.get('variant')}): "
            f"validation accuracy {candidate.served_val_accuracy:.4f}; {outcome(decision, champion)}"
        )
    else:
        model_uri, run_tags = text_model_uri(client, candidate)
        tags = {**{k: run_tags[k] for k in RUN_TAGS if k in run_tags}, ACCURACY_TAG: str(candidate.served_val_accuracy)}
        version = mlflow.register_model(model_uri, name, tags=tags)
        client.set_registered_model_alias(name, ALIAS, version.version)
        before = (
            "no champion before"
            if champion is None
            else f"better than version {champion.version}, which keeps its version: {outcome(decision, champion)}"
        )
        reason = (
            f"promoted: version {version.version}, validation accuracy {candidate.served_val_accuracy:.4f}; {before}"
        )
        champion, promoted = client.get_model_version(name, version.version), True
    return {
        "registered_model": name,
        "alias": ALIAS,
        "promoted": promoted,
        "reason": reason,
        "candidate": asdict(candidate),
        "champion": describe(champion),
        "gate": decision,
    }
