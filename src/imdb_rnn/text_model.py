"""The raw-text MLflow model: review text in, positive probability and label out.

Each variant's run logs one, named after the variant: its served Keras model (the selected seed's, or the
seeds' ensemble as one model) and the vocabulary as artifacts, and ``scoring.score`` (``prepare``'s own
preprocessing) to apply them, so a served score equals `imdb-rnn predict`'s. Its code travels with it
(MLflow ``code_paths``: this module, ``scoring.py``, ``text.py``, ``native_logs.py``), so loading it needs
MLflow and the pinned requirements it declares, not a checkout of this project. It imports nothing else
of the package. It is logged as code (``MODEL_CODE``: MLflow's models-from-code), so loading runs that
code and unpickles nothing.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path

import mlflow.pyfunc
import pandas as pd

from .native_logs import quiet_tensorflow
from .scoring import score

TEXT_COLUMN = "text"
MAX_REVIEW_CHARS = 100_000  # about 7x the longest IMDB review; longer input is refused, not tokenized
SHIPPED = ("__init__.py", "native_logs.py", "scoring.py", "text.py", "text_model.py")  # the code logged with the model
REQUIRES = ("numpy", "pandas", "pyarrow")  # imported by that code besides MLflow and Keras
EXAMPLE = ["A moving, beautifully acted film; I loved it.", "Dull, predictable and far too long."]
MODEL_CODE = f"""# The raw-text model's entry point, run by mlflow.pyfunc.load_model (models-from-code).
import mlflow

from {__package__}.text_model import TextSentimentModel

mlflow.models.set_model(TextSentimentModel())
"""


def review_texts(model_input) -> list[str]:
    """The reviews of a request, or an MLflow error the server answers with 400 naming the bad one."""
    from mlflow.exceptions import MlflowException

    texts = list(model_input[TEXT_COLUMN])
    if not texts:
        raise MlflowException.invalid_parameter_value(f"no reviews: send at least one row with a '{TEXT_COLUMN}'")
    for i, text in enumerate(texts, 1):
        if not isinstance(text, str):
            raise MlflowException.invalid_parameter_value(
                f"review {i}: '{TEXT_COLUMN}' must be a string, got {type(text).__name__}"
            )
        if not text.strip():
            raise MlflowException.invalid_parameter_value(f"review {i}: '{TEXT_COLUMN}' is empty")
        try:
            text.encode("utf-8")
        except UnicodeEncodeError as exc:  # JSON may carry "\ud800": a lone surrogate, not text
            raise MlflowException.invalid_parameter_value(
                f"review {i}: not valid Unicode text (a lone surrogate at character {exc.start}); send UTF-8 text"
            ) from None
        if len(text) > MAX_REVIEW_CHARS:
            raise MlflowException.invalid_parameter_value(
                f"review {i}: {len(text)} characters; at most {MAX_REVIEW_CHARS} are accepted"
            )
    return texts


class TextSentimentModel(mlflow.pyfunc.PythonModel):
    """Keras model + vocabulary behind MLflow's pyfunc interface (``mlflow models serve``, ``load_model``)."""

    def load_context(self, context):
        os.environ.setdefault("KERAS_BACKEND", context.model_config["keras_backend"])  # before Keras loads
        quiet_tensorflow()  # a served model's log: no TensorFlow start-up lines
        import keras

        self.model = keras.saving.load_model(context.artifacts["keras_model"], safe_mode=True, compile=False)
        self.vocab = json.loads(Path(context.artifacts["vocab"]).read_text(encoding="utf-8"))

    def predict(self, context, model_input: pd.DataFrame, params=None) -> pd.DataFrame:
        scored = score(review_texts(model_input), self.model, self.vocab)
        return pd.DataFrame({"probability": [s.probability for s in scored], "label": [s.label for s in scored]})


def log_text_model(name: str, keras_model: Path, vocab: Path, keras_backend: str, pip_requirements: list[str]):
    """Log the raw-text model into the active run; returns MLflow's ``ModelInfo``.

    Only the modules in ``SHIPPED`` are copied (into a package of this package's name), so the
    model carries no training code.
    """
    from mlflow.models import ModelSignature
    from mlflow.types import ColSpec, DataType, Schema

    signature = ModelSignature(
        inputs=Schema([ColSpec(DataType.string, TEXT_COLUMN)]),
        outputs=Schema([ColSpec(DataType.double, "probability"), ColSpec(DataType.string, "label")]),
    )
    here = Path(__file__).parent
    with tempfile.TemporaryDirectory() as tmp:
        package = Path(tmp) / here.name
        package.mkdir()
        for module in SHIPPED:
            shutil.copyfile(here / module, package / module)
        entry = Path(tmp) / "text_model_code.py"
        entry.write_text(MODEL_CODE, encoding="utf-8")
        return mlflow.pyfunc.log_model(
            name=name,
            python_model=str(entry),
            code_paths=[str(package)],
            artifacts={"keras_model": str(keras_model), "vocab": str(vocab)},
            model_config={"keras_backend": keras_backend},
            signature=signature,
            input_example=pd.DataFrame({TEXT_COLUMN: EXAMPLE}),
            pip_requirements=pip_requirements,
        )
