"""Load and validate ``params.yaml``: the one source of truth for every setting.

Each key's type and bounds are declared once, on its field (pydantic checks them); the "allowed" text
of an error line is generated from that declaration, so the rule and its message cannot drift apart.
Every problem is reported together, one line each (key, value, what is allowed), before any stage
does work. Rules that need the data or the machine (a split side left empty, the memory a length
needs) are checked where those are known: ``dataset`` and ``memory``.
"""

from __future__ import annotations

import dataclasses
import os
import re
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal, TypeVar

import yaml
from pydantic import AfterValidator, ConfigDict, Field, Strict, ValidationError
from pydantic.dataclasses import dataclass

from .errors import ConfigError
from .wording import allowed, shown_key, shown_value

if TYPE_CHECKING:
    from _typeshed import DataclassInstance

SEED_MAX = 2**32 - 1  # numpy's and Keras' seeding take 32-bit unsigned seeds
BIGRAM_BUCKETS_MAX = 2**21  # the pair hash stays within int32 up to here for any vocabulary (bigrams.py)
VARIANT_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def _distinct(values: tuple) -> tuple:
    if len(set(values)) != len(values):
        raise ValueError("repeated")
    return values


def _not_one(buckets: int) -> int:
    if buckets == 1:  # one bucket: every pair the same id, and the hash's modulus (buckets - 1) would be 0
        raise ValueError("one bucket")
    return buckets


# The fields' types, bounds included (``Annotated[Int, Field(ge=..., le=...)]``), the ones several fields share named
Int = Annotated[int, Strict()]
Seed = Annotated[Int, Field(ge=0, le=SEED_MAX)]
Vocabulary = Annotated[Int, Field(ge=3, le=1_000_000)]
Width = Annotated[Int, Field(ge=1, le=4096)]
Fraction = Annotated[float, Strict(), Field(ge=0, lt=1, allow_inf_nan=False)]  # [0, 1)
OpenFraction = Annotated[float, Strict(), Field(gt=0, lt=1, allow_inf_nan=False)]  # (0, 1)
Bool = Annotated[bool, Strict()]
PositiveReal = Annotated[float, Strict(), Field(gt=0, allow_inf_nan=False)]
Padding = Literal["pre", "post"]
STRICT = ConfigDict(extra="forbid", frozen=True)


@dataclass(config=STRICT)
class DataParams:
    max_features: Vocabulary = 20000  # the vocabulary prepare builds; variants use its top max_features
    maxlen: Annotated[Int, Field(ge=1, le=100_000)] = 500
    val_split: OpenFraction = 0.2
    val_split_by: Literal["movie", "review"] = "movie"  # validation carved by movie (as train/test are) or review
    padding: Padding = "pre"
    truncating: Padding = "pre"
    seed: Seed = 42


@dataclass(config=STRICT)
class TrainParams:
    """How a variant is trained; ``params.yaml``'s ``train:`` gives the defaults, a variant's own
    ``train:`` mapping overrides any of them for that variant."""

    epochs: Annotated[Int, Field(ge=1, le=10_000)] = 10
    batch_size: Annotated[Int, Field(ge=1, le=65_536)] = 128
    optimizer: Literal["rmsprop", "adam", "sgd", "adagrad", "nadam"] = "rmsprop"
    learning_rate: PositiveReal = 0.001
    clipnorm: PositiveReal | None = None  # clip each weight tensor's gradient to this norm, every step
    # one fit per seed: results are means over seeds
    seeds: Annotated[
        tuple[Seed, ...],
        Field(min_length=1, max_length=1000, description="all distinct"),
        AfterValidator(_distinct),
    ] = (42, 43, 44)
    # stop after this many epochs without a better val accuracy; 0: never
    early_stopping_patience: Annotated[Int, Field(ge=0, le=10_000)] = 0
    restore_best: Bool = True
    # batches of similar-length reviews, each cut to its longest (needs the loop); auto: whenever on the loop
    bucketing: Bool | Literal["auto"] = "auto"
    backend: Literal["tensorflow", "jax"] = "tensorflow"
    # one graph node set per step (fast, but its graph grows with maxlen) or Keras' loop; auto: by length
    unroll: Bool | Literal["auto"] = "auto"
    deterministic: Bool = True


@dataclass(config=STRICT)
class ModelParams:
    """The architecture of a variant and the model it serves; the defaults are the lesson's model."""

    max_features: Vocabulary = 10000  # rows of its Embedding: ids at or above it read as out-of-vocabulary
    embedding_dim: Width = 32
    units: Width = 32
    layers: Annotated[Int, Field(ge=1, le=64)] = 1
    dropout: Fraction = 0.0
    recurrent_dropout: Fraction = 0.0
    spatial_dropout: Fraction = 0.0  # drops whole embedding channels (SpatialDropout1D)
    mask_padding: Bool = False  # the recurrence skips the padding instead of reading it
    pooling: Literal["last", "max", "mean", "max_mean"] = "last"  # what the head sees: last output or pooled outputs
    bidirectional: Bool = False
    cell: Literal["simple", "gru", "lstm"] = "simple"  # the recurrent layer: SimpleRNN, or Keras' gated GRU / LSTM
    # > 0: each step also adds an embedding of its (previous word, word) pair, hashed to this many ids (bigrams.py)
    bigram_buckets: Annotated[
        Int, Field(ge=0, le=BIGRAM_BUCKETS_MAX, description="0 (off) or at least 2"), AfterValidator(_not_one)
    ] = 0
    serve: Literal["best_seed", "ensemble"] = "best_seed"  # model.keras: the best seed, or the mean of every seed

    @property
    def has_fast_unrolled_layer(self) -> bool:
        """Unrolled, it trains on the pipeline's own SimpleRNN (model.py), not Keras' unrolled layers (which
        get masked ``Bidirectional`` layers wrong): a plain cell with no dropout inside the recurrence."""
        return self.cell == "simple" and not (self.dropout or self.recurrent_dropout)


@dataclass(config=STRICT)
class MlflowParams:
    # MLflow adds " summaries" for the report's experiment; names with a space at either end read as typos
    experiment: Annotated[
        str, Strict(), Field(min_length=1, max_length=400, pattern=r"^\S(.*\S)?$", description="no space at either end")
    ] = "imdb-rnn"
    # the registry's model; its alias `champion` is the best so far. MLflow refuses '/' and ':' in names.
    registered_model: Annotated[
        str,
        Strict(),
        Field(
            min_length=1,
            max_length=200,
            pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$",
            description="letters, digits, '_', '.' and '-', starting with a letter or digit",
        ),
    ] = "imdb-rnn-sentiment"
    promote_experiments: Bool = False  # may a `dvc exp run` move the champion? (false: only `dvc repro`)
    # the champion moves only when a paired test on validation reviews gives p below this (registry.py)
    champion_alpha: Annotated[float, Strict(), Field(gt=0, le=0.5, allow_inf_nan=False)] = 0.05

    @property
    def summaries_experiment(self) -> str:
        """The execution summaries' experiment: apart, so the variants' runs table shows only variants."""
        return f"{self.experiment} summaries"

    @property
    def tuning_experiment(self) -> str:
        """`imdb-rnn tune`'s studies and trials: apart from the variants' comparison."""
        return f"{self.experiment} tuning"

    @property
    def experiments(self) -> tuple[str, str, str]:
        """Every experiment the project writes to (a team's trainer needs EDIT on each)."""
        return (self.experiment, self.summaries_experiment, self.tuning_experiment)


@dataclasses.dataclass(frozen=True)
class Params:
    data: DataParams
    train: TrainParams
    models: dict[str, ModelParams]
    mlflow: MlflowParams
    train_overrides: dict[str, TrainParams] = dataclasses.field(default_factory=dict)  # variant -> its merged train

    def model(self, variant: str) -> ModelParams:
        """The settings of one variant, or a one-line error listing the known ones."""
        if variant not in self.models:
            known = ", ".join(sorted(self.models))
            raise ConfigError([f"unknown model variant {shown_key(variant)}: known variants are {known}"])
        return self.models[variant]

    def train_for(self, variant: str) -> TrainParams:
        """``train:`` with the variant's own ``train:`` overrides applied, its ``auto`` path resolved."""
        return training_path(self.train_overrides.get(variant, self.train), self.model(variant), self.data.maxlen)

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


# reports/scaling.md (the stack, 10 epochs): unrolling is cheaper at maxlen 500 (the loop on buckets takes
# 1.41x), the loop at 1000 (0.62x of unrolled, whose first epoch traces 4 x 1000 steps); the line between
UNROLL_UP_TO_MAXLEN = 750


def training_path(train: TrainParams, model: ModelParams, maxlen: int) -> TrainParams:
    """``unroll: auto`` unrolls only where unrolling measured faster: the pipeline's own SimpleRNN layer, one
    direction (for the bidirectional ``best_rnn`` the loop on buckets won, docs/performance.md), up to
    ``UNROLL_UP_TO_MAXLEN`` steps; else Keras' loop (``bucketing: true`` asks for it). ``bucketing: auto``:
    buckets whenever on the loop. What a run logs and trains with is the resolved path."""
    unroll = train.unroll
    if unroll == "auto":
        fast = model.has_fast_unrolled_layer and not model.bidirectional
        unroll = fast and train.bucketing is not True and maxlen <= UNROLL_UP_TO_MAXLEN
    bucketing = (not unroll) if train.bucketing == "auto" else train.bucketing
    return dataclasses.replace(train, unroll=unroll, bucketing=bucketing)


# --- parsing ----------------------------------------------------------------------------


def _field_names(cls: type[DataclassInstance]) -> list[str]:
    return [f.name for f in dataclasses.fields(cls)]


Section = TypeVar("Section", bound="DataclassInstance")


def _section(
    prefix: str, raw: Any, cls: type[Section], base: Section, problems: list[str], extra: tuple[str, ...] = ()
) -> Section | None:
    """Validate one mapping as ``cls``; ``base`` (an instance) fills the keys left out.

    Keys in ``extra`` are allowed here but validated by the caller. Returns None when invalid.
    """
    names = _field_names(cls)
    allowed_keys = ", ".join((*names, *extra))
    raw = {} if raw is None else raw
    if not isinstance(raw, dict):
        problems.append(f"{prefix}: got {shown_value(raw)}; allowed: a mapping of {allowed_keys}")
        return None
    values: dict[str, Any] = {}
    ok = True
    for key, value in raw.items():
        if key in extra:
            continue
        if key not in names:
            problems.append(f"{prefix}.{shown_key(key)}: unknown key; allowed keys: {allowed_keys}")
            ok = False
        else:
            values[key] = value
    try:
        section = cls(**{**asdict(base), **values})
    except ValidationError as exc:
        for name in sorted({str(err["loc"][0]) for err in exc.errors()}, key=names.index):
            problems.append(f"{prefix}.{name}: got {shown_value(values.get(name))}; allowed: {allowed(cls, name)}")
        return None
    return section if ok else None


def _check_train(prefix: str, raw: Any, base: TrainParams, problems: list[str]) -> None:
    """Settings that are valid one by one but not together, checked on the raw values over ``base``,
    so they are named beside any other key's error, not only once the rest is valid."""
    merged = {**asdict(base), **(raw if isinstance(raw, dict) else {})}
    if merged.get("bucketing") is True and merged.get("unroll") is True:
        problems.append(
            f"{prefix}.bucketing: got True with unroll: true; allowed: bucketing only with "
            f"{prefix}.unroll: false or auto (unrolling needs a fixed length)"
        )


def _check_cell(prefix: str, settings: dict, raw_train: Any, problems: list[str]) -> None:
    """A gated cell needs the loop (``unroll: false`` or ``auto``): the unrolled fast path is SimpleRNN's, and
    Keras' own unrolled loop gets masked ``Bidirectional`` layers wrong. Checked on the raw values, beside any
    other key's error."""
    own = settings.get("train")
    unroll = next((t["unroll"] for t in (own, raw_train) if isinstance(t, dict) and "unroll" in t), "auto")
    if settings.get("cell") in ("gru", "lstm") and unroll is True:
        problems.append(
            f"{prefix}.cell: got {shown_value(settings['cell'])} with unroll: {shown_value(unroll)}; allowed: "
            f"simple, or gru and lstm with {prefix}.train.unroll: false or auto (the unrolled fast path is SimpleRNN's)"
        )


def _with_vocabulary(
    prefix: str, model: ModelParams, settings: dict, data: DataParams | None, problems: list[str]
) -> ModelParams:
    """A variant's vocabulary: its own ``max_features`` (the most frequent words of the prepared
    vocabulary, which ranks words by frequency), or all of ``data.max_features`` when it sets none."""
    if data is None:
        return model
    if "max_features" not in settings:
        return dataclasses.replace(model, max_features=data.max_features)
    if model.max_features > data.max_features:
        problems.append(
            f"{prefix}.max_features: got {model.max_features}; allowed: at most data.max_features "
            f"({data.max_features}), the vocabulary prepare builds; raise data.max_features to use more words"
        )
    return model


def _variants(
    raw_models: Any, data: DataParams | None, train: TrainParams | None, raw_train: Any, problems: list[str]
) -> tuple[dict[str, ModelParams], dict[str, TrainParams]]:
    models: dict[str, ModelParams] = {}
    overrides: dict[str, TrainParams] = {}
    if not isinstance(raw_models, dict) or not raw_models:
        problems.append(
            f"models: got {shown_value(raw_models)}; allowed: a non-empty mapping of variant name to its settings"
        )
        return models, overrides
    for name, settings in raw_models.items():
        prefix = f"models.{shown_key(name)}"
        if not isinstance(name, str) or not VARIANT_NAME.match(name):
            problems.append(
                f"{prefix}: invalid variant name; allowed: letters, digits and _, not starting with a digit"
            )
            continue
        model = _section(prefix, settings, ModelParams, ModelParams(), problems, ("train",))
        settings = settings if isinstance(settings, dict) else {}
        if model is not None:
            models[name] = _with_vocabulary(prefix, model, settings, data, problems)
        _check_cell(prefix, settings, raw_train, problems)
        if settings.get("train") is not None and train is not None:
            own = _section(f"{prefix}.train", settings["train"], TrainParams, train, problems)
            _check_train(f"{prefix}.train", settings["train"], train, problems)
            if own is not None:
                overrides[name] = own
    return models, overrides


def parse_params(raw: Any) -> Params:
    """Validate a loaded ``params.yaml`` mapping; raise ConfigError listing every problem."""
    problems: list[str] = []
    if not isinstance(raw, dict):
        raise ConfigError([f"params: got {shown_value(raw)}; allowed: a mapping with data, train, models, mlflow"])
    sections = ("data", "train", "models", "mlflow")
    for key in raw:
        if key not in sections:
            problems.append(f"{shown_key(key)}: unknown section; allowed sections: {', '.join(sections)}")
    data = _section("data", raw.get("data"), DataParams, DataParams(), problems)
    train = _section("train", raw.get("train"), TrainParams, TrainParams(), problems)
    _check_train("train", raw.get("train"), TrainParams(), problems)
    mlflow = _section("mlflow", raw.get("mlflow"), MlflowParams, MlflowParams(), problems)
    models, overrides = _variants(raw.get("models"), data, train, raw.get("train"), problems)
    if problems or data is None or train is None or mlflow is None:  # a None section has listed its problems
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
