"""Score raw review text with a trained variant, through exactly `prepare`'s preprocessing."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from .errors import PredictError
from .paths import model_dir


@dataclass(frozen=True)
class Prediction:
    label: str
    probability: float  # probability of a positive review
    text: str


def read_texts(texts: list[str], file: str | None, stdin) -> list[str]:
    """Reviews from the arguments, else a file (one per line, ``-`` for stdin), else piped stdin."""
    if texts:
        lines = texts
    elif file:
        source = stdin if file == "-" else None
        try:
            lines = (source.read() if source else Path(file).read_text(encoding="utf-8")).splitlines()
        except (OSError, UnicodeDecodeError) as exc:
            raise PredictError(
                f"cannot read {file} ({type(exc).__name__}); give a UTF-8 text file, one review per line"
            ) from None
    elif stdin is not None and not stdin.isatty():
        lines = stdin.read().splitlines()
    else:
        lines = []
    reviews = [line.strip() for line in lines if line.strip()]
    if not reviews:
        raise PredictError("no review text given; pass it as an argument, with --file, or on stdin")
    return reviews


def model_path(params, variant: str, models_dir: Path) -> Path:
    """The saved model of a declared variant, or an error saying how to get one."""
    params.model(variant)  # unknown: ConfigError listing the known variants
    path = model_dir(variant, models_dir) / "model.keras"
    if not path.is_file():
        raise PredictError(f"variant '{variant}' is not trained yet; run `dvc repro train@{variant}`")
    return path


def predict(texts: list[str], model, vocab: dict, threshold: float = 0.5) -> list[Prediction]:
    """Label and positive-class probability per review."""
    import numpy as np

    from .text import encode_texts

    x = encode_texts(texts, vocab["words"], vocab["maxlen"], vocab["padding"], vocab["truncating"])
    prob = np.asarray(model.predict(x.astype(np.int32), verbose=0)).ravel()
    return [Prediction("pos" if p >= threshold else "neg", float(p), t) for p, t in zip(prob, texts)]
