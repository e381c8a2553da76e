"""The search space in tune.yaml, checked in one place before any trial runs.

A lever is a key of a variant (``model.units``) or of its training (``train.learning_rate``): a
range (``{low, high}``, ``log: true`` for rates) or a list of ``choices``. Every end of a range and
every choice is put through params.yaml's own validation with the base variant, so a value no
variant could have is refused up front, one line per problem.
"""

from __future__ import annotations

import copy
import dataclasses
import typing
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import Field, ValidationError, model_validator
from pydantic import dataclasses as pydantic_dataclasses

from ..config import STRICT, ModelParams, Params, Seed, TrainParams, parse_params
from ..errors import ConfigError
from ..wording import shown_key

TRIAL = "trial"  # the variant name a trial trains under
# set by the study itself (one seed, its epochs, no early stopping: pruning stops trials) or not a lever
NOT_LEVERS = {"seeds", "epochs", "early_stopping_patience", "restore_best", "backend", "deterministic"}
LEVERS = {
    **{f"model.{f.name}": f for f in dataclasses.fields(ModelParams)},
    **{f"train.{f.name}": f for f in dataclasses.fields(TrainParams) if f.name not in NOT_LEVERS},
}


@pydantic_dataclasses.dataclass(config=STRICT)
class StudySettings:
    """tune.yaml's ``study:``: what the study trains from and how long it may run."""

    name: str = "imdb-rnn"
    base: str = "best_rnn"  # the variant of params.yaml a trial starts from
    seed: int = 42  # the sampler's seed, and every trial's training seed
    trials: typing.Annotated[int, Field(ge=1, le=100_000)] = 20  # complete + pruned, all workers
    minutes: typing.Annotated[float, Field(gt=0)] | None = None  # this worker's time budget
    epochs: typing.Annotated[int, Field(ge=1, le=1000)] = 8
    pruner: Literal["median", "halving", "none"] = "median"
    startup_trials: typing.Annotated[int, Field(ge=0)] = 4  # trials never pruned: the baseline
    warmup_epochs: typing.Annotated[int, Field(ge=0)] = 1  # epochs of a trial never pruned
    # the top `confirm` complete trials are fitted again on `confirm_seeds` after the trials, and export
    # takes the best mean over seeds: a single seed's best is the luckiest draw (tuning/confirm.py)
    confirm: typing.Annotated[int, Field(ge=0, le=1000)] = 0
    confirm_seeds: typing.Annotated[tuple[Seed, ...], Field(max_length=100)] = ()

    @model_validator(mode="after")
    def confirmable(self):
        if self.confirm and not self.confirm_seeds:
            raise ValueError(f"confirm: {self.confirm} needs confirm_seeds, e.g. [43, 44]")
        if len(set(self.confirm_seeds)) < len(self.confirm_seeds):
            raise ValueError("confirm_seeds: a seed is repeated; give each once")
        if self.seed in self.confirm_seeds:
            raise ValueError(f"confirm_seeds: {self.seed} is the trials' own seed (study.seed); give others")
        return self


@pydantic_dataclasses.dataclass(config=STRICT)
class Lever:
    """One lever: a range (``low``, ``high``, ``log``) or ``choices``."""

    low: float | None = None
    high: float | None = None
    log: bool = False
    choices: list[Any] | None = None

    @model_validator(mode="after")
    def one_form(self):
        if self.choices is not None:
            if self.low is not None or self.high is not None or self.log:
                raise ValueError("give choices or a range (low, high), not both")
            if not self.choices:
                raise ValueError("choices is empty; give at least one value")
        elif self.low is None or self.high is None:
            raise ValueError("give low and high, or choices")
        elif not self.low < self.high:
            raise ValueError(f"empty range: low {self.low} is not below high {self.high}")
        elif self.log and self.low <= 0:
            raise ValueError(f"log: true needs low > 0, got {self.low}")
        return self

    def ends(self) -> list[Any]:
        return list(self.choices) if self.choices is not None else [self.low, self.high]


@dataclass
class SearchSpace:
    settings: StudySettings
    levers: dict[str, Lever]
    raw_params: dict  # params.yaml as loaded: a trial's params are built from it

    def sample(self, trial) -> dict[str, Any]:
        """The trial's value of every lever (Optuna's suggest API: TPE learns from the study so far)."""
        values = {}
        for key, lever in self.levers.items():
            if lever.choices is not None:
                values[key] = trial.suggest_categorical(key, lever.choices)
                continue
            low, high = float(lever.low or 0.0), float(lever.high or 0.0)  # a range has both (validated)
            if is_integer(key):
                values[key] = trial.suggest_int(key, int(low), int(high), log=lever.log)
            else:
                values[key] = trial.suggest_float(key, low, high, log=lever.log)
        return values

    def variant(self, values: dict[str, Any], for_trial: bool = True) -> dict:
        """The base variant's params.yaml entry with ``values`` set; for a trial, also one seed, the
        study's epochs and no early stopping."""
        entry = copy.deepcopy(self.raw_params["models"][self.settings.base])
        own_train = dict(entry.pop("train", None) or {})
        for key, value in values.items():
            section, name = key.split(".", 1)
            (entry if section == "model" else own_train)[name] = value
        if for_trial:
            own_train.update(seeds=[self.settings.seed], epochs=self.settings.epochs, early_stopping_patience=0)
        return {**entry, "train": own_train} if own_train else entry

    def params(self, values: dict[str, Any]) -> Params:
        """Validated params with the trial's variant as their only one (ConfigError if the values clash)."""
        return parse_params({**self.raw_params, "models": {TRIAL: self.variant(values)}})


def is_integer(key: str) -> bool:
    hint = typing.get_type_hints(ModelParams if key.startswith("model.") else TrainParams, include_extras=True)
    base = hint[key.split(".", 1)[1]]
    while typing.get_origin(base) is typing.Annotated:
        base = typing.get_args(base)[0]
    return base is int


def load_space(path: Path, params_path: Path) -> SearchSpace:
    """tune.yaml checked whole: one ConfigError line per problem, before any trial runs."""
    problems: list[str] = []
    where = Path(path).name
    try:
        raw = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError([f"{path}: cannot be read ({exc.strerror}); give --space a tune.yaml"]) from None
    except yaml.YAMLError as exc:
        raise ConfigError([f"{where}: not YAML ({str(exc).splitlines()[0]})"]) from None
    if not isinstance(raw, dict) or set(raw) - {"study", "space"} or not isinstance(raw.get("space"), dict):
        raise ConfigError([f"{where}: a mapping with `study:` (optional) and `space:` (a mapping of levers)"])
    raw_params = yaml.safe_load(Path(params_path).read_text(encoding="utf-8"))
    parse_params(raw_params)  # params.yaml itself valid first
    try:
        settings = StudySettings(**(raw.get("study") or {}))
    except (ValidationError, TypeError) as exc:
        raise ConfigError([f"{where}: study: {_first_error(exc)}"]) from None
    if settings.base not in raw_params["models"]:
        raise ConfigError(
            [
                f"{where}: study.base: {settings.base!r} is not a variant of params.yaml; "
                f"allowed: {', '.join(raw_params['models'])}"
            ]
        )
    levers: dict[str, Lever] = {}
    for key, spec in raw["space"].items():
        if key not in LEVERS:
            problems.append(f"{where}: space.{shown_key(key)}: unknown lever; allowed: {', '.join(sorted(LEVERS))}")
            continue
        try:
            levers[key] = Lever(**spec) if isinstance(spec, dict) else Lever(choices=spec)
        except (ValidationError, TypeError) as exc:
            problems.append(f"{where}: space.{shown_key(key)}: {_first_error(exc)}")
    if not levers and not problems:
        problems.append(f"{where}: space: no lever; give at least one, e.g. model.units: {{choices: [32, 64]}}")
    space = SearchSpace(settings, levers, raw_params)
    for key, lever in levers.items():
        for value in lever.ends():
            try:
                space.params({key: int(value) if is_integer(key) and lever.choices is None else value})
            except ConfigError as exc:
                problems.append(f"{where}: space.{key}: {value!r} is refused: {exc.lines()[0]}")
                break
    if problems:
        raise ConfigError(problems)
    return space


def _first_error(exc: Exception) -> str:
    if isinstance(exc, ValidationError):
        err = exc.errors()[0]
        loc = ".".join(str(part) for part in err["loc"])
        message = err["msg"].removeprefix("Value error, ")  # pydantic's prefix for a validator's ValueError
        return f"{loc + ': ' if loc else ''}{message}"
    return str(exc).splitlines()[0]
