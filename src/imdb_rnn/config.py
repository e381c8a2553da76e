"""Load and validate ``params.yaml``: the one source of truth for every setting.

Every key is typed and range-checked before any stage does work, so a typo costs a
one-line error instead of a half-finished run. All problems are reported together,
one line each (key, value, what is allowed).
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import yaml

from .errors import ConfigError

PADDING_MODES = ("pre", "post")
OPTIMIZERS = ("rmsprop", "adam", "sgd", "adagrad", "nadam")
BACKENDS = ("tensorflow", "jax")
POOLINGS = ("last", "max", "mean", "max_mean")
VAL_SPLITS = ("movie", "review")  # validation carved by movie (as the official train/test split) or by review
VARIANT_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


@dataclass(frozen=True)
class DataParams:
    max_features: int = 20000  # the vocabulary prepare builds; each variant uses its most frequent max_features
    maxlen: int = 500
    val_split: float = 0.2
    val_split_by: str = "movie"
    padding: str = "pre"
    truncating: str = "pre"
    seed: int = 42


@dataclass(frozen=True)
class TrainParams:
    """How a variant is trained; ``params.yaml``'s ``train:`` gives the defaults, a variant's own
    ``train:`` mapping overrides any of them for that variant."""

    epochs: int = 10
    batch_size: int = 128
    optimizer: str = "rmsprop"
    learning_rate: float = 0.001
    clipnorm: float | None = None  # clip each step's gradient to this global norm
    seeds: tuple[int, ...] = (42, 43, 44)  # one fit per seed: results are means over seeds
    early_stopping_patience: int = 0  # stop after this many epochs without a better val accuracy; 0: never
    restore_best: bool = True
    bucketing: bool = False  # batches of similar-length reviews, each cut to its longest (needs unroll: false)
    backend: str = "tensorflow"
    unroll: bool = True
    deterministic: bool = True


@dataclass(frozen=True)
class ModelParams:
    """The architecture of a variant; the defaults are the lesson's model."""

    max_features: int = 10000  # rows of its Embedding: ids at or above it read as out-of-vocabulary
    embedding_dim: int = 32
    units: int = 32
    layers: int = 1
    dropout: float = 0.0
    recurrent_dropout: float = 0.0
    spatial_dropout: float = 0.0  # drops whole embedding channels (SpatialDropout1D)
    mask_padding: bool = False  # the recurrence skips the padding instead of reading it
    pooling: str = "last"  # what the head sees: the last output, or max/mean/both over all outputs
    bidirectional: bool = False


@dataclass(frozen=True)
class MlflowParams:
    experiment: str = "imdb-rnn"
    registered_model: str = "imdb-rnn-sentiment"  # the registry's model; its alias `champion` is the best so far
    promote_experiments: bool = False  # may a `dvc exp run` move the champion? (false: only `dvc repro`)


@dataclass(frozen=True)
class Params:
    data: DataParams
    train: TrainParams
    models: dict[str, ModelParams]
    mlflow: MlflowParams
    train_overrides: dict[str, TrainParams] = field(default_factory=dict)  # variant -> its merged train

    def model(self, variant: str) -> ModelParams:
        """The settings of one variant, or a one-line error listing the known ones."""
        if variant not in self.models:
            known = ", ".join(sorted(self.models))
            raise ConfigError([f"unknown model variant '{variant}': known variants are {known}"])
        return self.models[variant]

    def train_for(self, variant: str) -> TrainParams:
        """``train:`` with the variant's own ``train:`` overrides applied."""
        self.model(variant)
        return self.train_overrides.get(variant, self.train)

    def flat(self, variant: str) -> dict[str, Any]:
        """Every param that shapes one variant, flattened for MLflow (``data.maxlen`` ...)."""
        flat: dict[str, Any] = {}
        for section, values in (
            ("data", asdict(self.data)),
            ("train", asdict(self.train_for(variant))),
            ("model", asdict(self.model(variant))),
        ):
            flat.update({f"{section}.{k}": v for k, v in values.items()})
        flat["variant"] = variant
        return flat


# --- checks: each returns None when fine, else "what is allowed" -------------------


def _int_at_least(low: int) -> Callable[[Any], str | None]:
    def check(v: Any) -> str | None:
        if isinstance(v, bool) or not isinstance(v, int):
            return f"an integer >= {low}"
        return None if v >= low else f"an integer >= {low}"

    return check


def _float_in(low: float, high: float, low_open: bool, high_open: bool) -> Callable[[Any], str | None]:
    lo, hi = ("(" if low_open else "["), (")" if high_open else "]")
    allowed = f"a number in {lo}{low:g}, {high:g}{hi}"

    def check(v: Any) -> str | None:
        if isinstance(v, bool) or not isinstance(v, (int, float)):
            return allowed
        ok_low = v > low if low_open else v >= low
        ok_high = v < high if high_open else v <= high
        return None if (ok_low and ok_high and v == v) else allowed

    return check


def _positive_float(v: Any) -> str | None:
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not (0 < v < float("inf")):
        return "a number > 0"
    return None


def _one_of(choices: tuple[str, ...]) -> Callable[[Any], str | None]:
    def check(v: Any) -> str | None:
        return None if isinstance(v, str) and v in choices else "one of " + ", ".join(choices)

    return check


def _boolean(v: Any) -> str | None:
    return None if isinstance(v, bool) else "true or false"


def _nonempty_str(v: Any) -> str | None:
    return None if isinstance(v, str) and v.strip() else "a non-empty string"


def _optional(check: Callable[[Any], str | None]) -> Callable[[Any], str | None]:
    def optional(v: Any) -> str | None:
        allowed = None if v is None else check(v)
        return None if allowed is None else f"null or {allowed}"

    return optional


def _seed_list(v: Any) -> str | None:
    allowed = "a non-empty list of distinct integers >= 0"
    if not isinstance(v, list) or not v or len(set(map(repr, v))) != len(v):
        return allowed
    return None if all(_int_at_least(0)(s) is None for s in v) else allowed


DATA_CHECKS = {
    "max_features": _int_at_least(3),
    "maxlen": _int_at_least(1),
    "val_split": _float_in(0, 1, True, True),
    "val_split_by": _one_of(VAL_SPLITS),
    "padding": _one_of(PADDING_MODES),
    "truncating": _one_of(PADDING_MODES),
    "seed": _int_at_least(0),
}
TRAIN_CHECKS = {
    "epochs": _int_at_least(1),
    "batch_size": _int_at_least(1),
    "optimizer": _one_of(OPTIMIZERS),
    "learning_rate": _positive_float,
    "clipnorm": _optional(_positive_float),
    "seeds": _seed_list,
    "early_stopping_patience": _int_at_least(0),
    "restore_best": _boolean,
    "bucketing": _boolean,
    "backend": _one_of(BACKENDS),
    "unroll": _boolean,
    "deterministic": _boolean,
}
MODEL_CHECKS = {
    "max_features": _int_at_least(3),
    "embedding_dim": _int_at_least(1),
    "units": _int_at_least(1),
    "layers": _int_at_least(1),
    "dropout": _float_in(0, 1, False, True),
    "recurrent_dropout": _float_in(0, 1, False, True),
    "spatial_dropout": _float_in(0, 1, False, True),
    "mask_padding": _boolean,
    "pooling": _one_of(POOLINGS),
    "bidirectional": _boolean,
}
VARIANT_KEYS = (*MODEL_CHECKS, "train")
MLFLOW_CHECKS = {"experiment": _nonempty_str, "registered_model": _nonempty_str, "promote_experiments": _boolean}


def _check_section(prefix: str, raw: Any, checks: dict, base, problems: list[str], extra: tuple = ()):
    """Validate one mapping against its checks; ``base`` (a dataclass instance) fills keys left out.

    Keys in ``extra`` are allowed here but validated by the caller.
    """
    if raw is None:
        raw = {}
    allowed_keys = ", ".join((*checks, *extra))
    if not isinstance(raw, dict):
        problems.append(f"{prefix}: got {raw!r}; allowed: a mapping of {allowed_keys}")
        return None
    values = {}
    for key, value in raw.items():
        if key in extra:
            continue
        if key not in checks:
            problems.append(f"{prefix}.{key}: unknown key; allowed keys: {allowed_keys}")
            continue
        allowed = checks[key](value)
        if allowed:
            problems.append(f"{prefix}.{key}: got {value!r}; allowed: {allowed}")
        elif isinstance(value, list):
            values[key] = tuple(value)
        elif value is not None and "float" in str(type(base).__dataclass_fields__[key].type):
            values[key] = float(value)  # YAML's 1 or 1e-3 alike
        else:
            values[key] = value
    return replace(base, **values)


def _check_train(prefix: str, train: TrainParams | None, problems: list[str]) -> None:
    """Settings that are valid one by one but not together."""
    if train is not None and train.bucketing and train.unroll:
        problems.append(
            f"{prefix}.bucketing: got True with unroll: true; allowed: bucketing only with "
            f"{prefix}.unroll: false (unrolling needs a fixed length)"
        )


def _with_vocabulary(prefix: str, model: ModelParams, settings, data: DataParams | None, problems: list[str]):
    """A variant's vocabulary: its own ``max_features`` (the most frequent words of the prepared
    vocabulary, which ranks words by frequency), or all of ``data.max_features`` when it sets none."""
    if data is None:
        return model
    if not (settings and "max_features" in settings):
        return replace(model, max_features=data.max_features)
    if model.max_features > data.max_features:
        problems.append(
            f"{prefix}.max_features: got {model.max_features}; allowed: at most data.max_features "
            f"({data.max_features}), the vocabulary prepare builds; raise data.max_features to use more words"
        )
    return model


def parse_params(raw: Any) -> Params:
    """Validate a loaded ``params.yaml`` mapping; raise ConfigError listing every problem."""
    problems: list[str] = []
    if not isinstance(raw, dict):
        raise ConfigError([f"params: got {raw!r}; allowed: a mapping with data, train, models, mlflow"])
    sections = ("data", "train", "models", "mlflow")
    for key in raw:
        if key not in sections:
            problems.append(f"{key}: unknown section; allowed sections: {', '.join(sections)}")
    data = _check_section("data", raw.get("data"), DATA_CHECKS, DataParams(), problems)
    train = _check_section("train", raw.get("train"), TRAIN_CHECKS, TrainParams(), problems)
    _check_train("train", train, problems)
    mlflow = _check_section("mlflow", raw.get("mlflow"), MLFLOW_CHECKS, MlflowParams(), problems)

    models: dict[str, ModelParams] = {}
    overrides: dict[str, TrainParams] = {}
    raw_models = raw.get("models")
    if not isinstance(raw_models, dict) or not raw_models:
        problems.append(f"models: got {raw_models!r}; allowed: a non-empty mapping of variant name to its settings")
    else:
        for name, settings in raw_models.items():
            if not isinstance(name, str) or not VARIANT_NAME.match(name):
                problems.append(
                    f"models.{name}: invalid variant name; allowed: letters, digits and _, not starting with a digit"
                )
                continue
            model = _check_section(f"models.{name}", settings, MODEL_CHECKS, ModelParams(), problems, ("train",))
            if model is None:
                continue
            model = _with_vocabulary(f"models.{name}", model, settings, data, problems)
            models[name] = model
            if settings and settings.get("train") is not None and train is not None:
                own = _check_section(f"models.{name}.train", settings["train"], TRAIN_CHECKS, train, problems)
                _check_train(f"models.{name}.train", own, problems)
                if own is not None:
                    overrides[name] = own
    if problems:
        raise ConfigError(problems)
    return Params(data=data, train=train, models=models, mlflow=mlflow, train_overrides=overrides)


class _Loader(yaml.SafeLoader):
    """Safe YAML, reading ``1e-05`` as a float as YAML 1.2 does (PyYAML's 1.1 rules read a string).

    ``dvc exp run -S train.learning_rate=1e-5`` writes exactly that form.
    """


_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"^[-+]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)[eE][-+]?[0-9]+$"),
    list("-+0123456789."),
)


def load_params(path: str | os.PathLike = "params.yaml") -> Params:
    """Read and validate a params file (a safe loader: params are data, never code)."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError([f"{path}: params file not found; run from the project root or pass --params"])
    try:
        raw = yaml.load(path.read_text(encoding="utf-8"), Loader=_Loader)  # noqa: S506 (a SafeLoader)
    except UnicodeDecodeError as exc:
        raise ConfigError([f"{path}: not UTF-8 text (byte {exc.start}); save it as UTF-8 YAML"]) from None
    except yaml.YAMLError as exc:
        line = getattr(getattr(exc, "problem_mark", None), "line", None)
        where = f" (line {line + 1})" if line is not None else ""
        raise ConfigError([f"{path}: not valid YAML{where}; fix the syntax"]) from None
    return parse_params(raw)
