"""From study to pipeline: the best trial as a variant of params.yaml, comments and layout kept.

The entry is the base variant's with the trial's levers set (its own epochs and early stopping,
not the study's): `dvc repro` then trains it over the usual seeds. Selection is on validation accuracy
only: the best mean over seeds of the confirmed trials (tuning/confirm.py), else the best trial.
"""

from __future__ import annotations

import io
from pathlib import Path

import optuna
from ruamel.yaml import YAML

from ..config import parse_params
from ..errors import ConfigError
from ..files import write_text
from .confirm import chosen
from .space import SearchSpace
from .study import TuneError, completed


def export_variant(space: SearchSpace, study: optuna.Study, name: str, params_path: Path) -> tuple[int, dict]:
    """Add ``models.<name>`` to params.yaml (a round trip: the diff is that entry alone); returns the
    trial's number and its validation accuracy per seed."""
    if not completed(study):
        raise TuneError(f"study {study.study_name} has no complete trial yet; run `imdb-rnn tune` first")
    trial, values = chosen(study, space)
    yaml = YAML()  # round-trip mode: comments, order and layout survive
    yaml.preserve_quotes = True
    document = yaml.load(Path(params_path).read_text(encoding="utf-8"))
    if name in document["models"]:
        raise ConfigError([f"--export {name}: params.yaml already has a variant {name}; give another name"])
    entry = space.variant(dict(trial.params), for_trial=False)
    document["models"][name] = entry
    buffer = io.StringIO()
    yaml.dump(document, buffer)
    text = buffer.getvalue()
    from yaml import safe_load  # the pipeline's own reader decides validity

    parse_params(safe_load(text))  # a variant params.yaml would refuse is never written
    write_text(params_path, text)
    return trial.number, values
