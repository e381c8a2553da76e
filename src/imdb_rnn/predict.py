"""Score raw review text with a trained variant (its ``.keras`` file and the saved vocabulary) or with an
MLflow raw-text model (the registry's champion, a run's), through exactly `prepare`'s preprocessing."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TextIO

import pandas as pd

from . import paths, tracking
from .backend import select_backend
from .config import Params, load_params
from .errors import PredictError
from .files import read_json
from .model import load_model
from .native_logs import quiet_tensorflow
from .scoring import Prediction, score

URI_FORMS = "models:/<name>@<alias>, models:/<name>/<version> or runs:/<run id>/<variant>"


def _utf8(data: bytes, where: str) -> str:
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise PredictError(
            f"{where} is not UTF-8 text (byte {exc.start}); give UTF-8 text, one review per line"
        ) from None


def read_texts(texts: list[str], file: str | None, stdin: TextIO | None) -> list[str]:
    """Reviews from the arguments, else a file (one per line, ``-`` for stdin), else piped stdin.

    Bytes are decoded here, strictly, so text that is not UTF-8 is one error line, not a traceback later.
    """
    if texts:
        for number, text in enumerate(texts, 1):
            _utf8(_escaped_bytes(text, f"argument {number}"), f"argument {number}")
        lines = texts
    elif file:
        try:
            data = _read_stdin(stdin) if file == "-" else Path(file).read_bytes()
        except OSError as exc:
            raise PredictError(
                f"cannot read {file} ({type(exc).__name__}); give a UTF-8 text file, one review per line"
            ) from None
        lines = _utf8(data, "stdin" if file == "-" else file).splitlines()
    elif stdin is not None and not stdin.isatty():
        lines = _utf8(_read_stdin(stdin), "stdin").splitlines()
    else:
        lines = []
    reviews = [line.strip() for line in lines if line.strip()]
    if not reviews:
        raise PredictError("no review text given; pass it as an argument, with --file, or on stdin")
    return reviews


def _read_stdin(stdin: TextIO | None) -> bytes:
    """The raw bytes of stdin (a text stream's buffer), so decoding is ours to check."""
    if stdin is None:  # the process has no stdin at all
        return b""
    buffer = getattr(stdin, "buffer", None)
    return buffer.read() if buffer is not None else _escaped_bytes(stdin.read(), "stdin")


def _escaped_bytes(text: str, where: str) -> bytes:
    """The bytes behind a str that may hold undecodable bytes as lone surrogates (argv, a C-locale stdin)."""
    try:
        return text.encode("utf-8", "surrogateescape")
    except UnicodeEncodeError:
        raise PredictError(f"{where} is not UTF-8 text (a lone surrogate); give UTF-8 text") from None


def model_path(params: Params, variant: str, models_dir: Path) -> Path:
    """The saved model of a declared variant, or an error saying how to get one."""
    params.model(variant)  # unknown: ConfigError listing the known variants
    path = paths.model_dir(variant, models_dir) / "model.keras"
    if not path.is_file():
        raise PredictError(f"variant '{variant}' is not trained yet; run `dvc repro train@{variant}`")
    return path


def predict_with_variant(texts: list[str], variant: str, root: Path) -> list[Prediction]:
    """Score with a variant's model file ``models/<variant>/model.keras`` and ``data/prepared/vocab.json``."""
    params = load_params(root / paths.PARAMS)
    path = model_path(params, variant, root / paths.MODELS)
    vocab_file = root / paths.VOCAB
    if not vocab_file.is_file():
        raise PredictError(f"{vocab_file} is missing; run `dvc repro prepare`")
    select_backend(params.train_for(variant).backend)  # before load_model imports Keras
    return score(texts, load_model(path), read_json(vocab_file))


def predict_with_uri(texts: list[str], uri: str, root: Path) -> list[Prediction]:
    """Score with an MLflow raw-text model from the project's store (or ``MLFLOW_TRACKING_URI``'s)."""
    if not uri.startswith(("models:/", "runs:/")):
        raise PredictError(f"--model {uri}: not a variant name nor a model URI; give a variant or {URI_FORMS}")
    store = tracking.tracking_uri(root=root)
    tracking.check_reachable(store)
    if store.startswith("sqlite:") and not (root / paths.MLFLOW_STORE).is_file():
        raise PredictError(
            f"no MLflow store at {root / paths.MLFLOW_STORE}; run `dvc repro` first, or set "
            "MLFLOW_TRACKING_URI to your tracking server"
        )
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    quiet_tensorflow()
    import mlflow

    from .text_model import TEXT_COLUMN  # text_model imports MLflow

    mlflow.set_tracking_uri(store)
    try:
        model = mlflow.pyfunc.load_model(uri)
    except mlflow.exceptions.MlflowException as exc:
        reason = tracking.short_reason(exc)
        if uri.endswith("@champion") and exc.error_code in ("RESOURCE_DOES_NOT_EXIST", "INVALID_PARAMETER_VALUE"):
            raise PredictError(
                f"no champion at {uri} in {store} ({reason}); run `dvc repro` (its register stage "
                "registers the best variant), or check the model name"
            ) from None
        raise PredictError(f"cannot load {uri} from {store} ({reason}); check the URI ({URI_FORMS})") from None
    schema = model.metadata.get_input_schema()
    if schema is None or schema.input_names() != [TEXT_COLUMN]:
        raise PredictError(
            f"{uri} is not a raw-text model (its input is not one '{TEXT_COLUMN}' column); use a "
            "variant run's runs:/<run id>/<variant> or the registry's models:/<name>@champion"
        )
    out = model.predict(pd.DataFrame({TEXT_COLUMN: texts}))
    return [Prediction(label, float(p), text) for label, p, text in zip(out["label"], out["probability"], texts)]
