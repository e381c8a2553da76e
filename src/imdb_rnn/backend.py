"""Pick the Keras backend before Keras is imported, and keep TensorFlow's start-up noise quiet.

Keras-free on purpose: the choice must be made before the first ``import keras``.
"""

from __future__ import annotations

import importlib.util
import os
import sys

from .errors import ImdbRnnError
from .native_logs import quiet_tensorflow


def select_backend(backend: str) -> None:
    """Make ``backend`` Keras' backend (``tensorflow`` or ``jax``) and quiet the native logs."""
    if "keras" in sys.modules and os.environ.get("KERAS_BACKEND", "tensorflow") != backend:
        raise ImdbRnnError(f"keras already imported with another backend; cannot switch to {backend}")
    if importlib.util.find_spec(backend) is None:
        install = "pip install -e '.[jax]'" if backend == "jax" else "make install"
        raise ImdbRnnError(f"the backend is {backend} (train.backend) but {backend} is not installed; run `{install}`")
    os.environ["KERAS_BACKEND"] = backend
    quiet_tensorflow()
