"""The lesson's models: Embedding -> N x SimpleRNN -> Dense(1, sigmoid), plus its NumPy RNN loop."""

from __future__ import annotations

import io

import numpy as np


def simple_rnn_reference(inputs: np.ndarray, W: np.ndarray, U: np.ndarray, b: np.ndarray,
                         return_sequences: bool = False) -> np.ndarray:
    """The lesson's SimpleRNN as a plain loop: ``output_t = tanh(W·input_t + U·state_t + b)``.

    ``inputs`` is (timesteps, input_features); the state starts at zeros. Kept as the
    reference the Keras layer is tested against (Keras stores ``W.T`` as ``kernel`` and
    ``U.T`` as ``recurrent_kernel``).
    """
    state_t = np.zeros((W.shape[0],), dtype=np.float64)
    outputs = []
    for input_t in inputs:
        output_t = np.tanh(W @ input_t + U @ state_t + b)
        outputs.append(output_t)
        state_t = output_t
    return np.stack(outputs) if return_sequences else state_t


def build_model(variant: str, model_params, max_features: int, maxlen: int | None = None,
                unroll: bool = False):
    """``Embedding(max_features, embedding_dim)`` -> ``layers`` x ``SimpleRNN(units)`` -> ``Dense(1)``.

    Every recurrent layer but the last returns sequences. ``unroll`` needs a fixed
    ``maxlen``; it trades memory for speed on CPU (see README, Performance).
    """
    import keras
    from keras import layers

    model = keras.Sequential(name=variant)
    model.add(keras.Input(shape=(maxlen,), dtype="int32"))
    model.add(layers.Embedding(max_features, model_params.embedding_dim, name="embedding"))
    for i in range(model_params.layers):
        model.add(layers.SimpleRNN(
            model_params.units,
            return_sequences=i < model_params.layers - 1,
            dropout=model_params.dropout,
            recurrent_dropout=model_params.recurrent_dropout,
            unroll=bool(unroll and maxlen),
            name="simple_rnn" if i == 0 else f"simple_rnn_{i}",
        ))
    model.add(layers.Dense(1, activation="sigmoid", name="dense"))
    return model


def compile_model(model, optimizer: str, learning_rate: float) -> None:
    """rmsprop (or the configured optimizer), binary cross-entropy, accuracy."""
    import keras

    opt = keras.optimizers.get({"class_name": optimizer, "config": {"learning_rate": learning_rate}})
    model.compile(optimizer=opt, loss="binary_crossentropy", metrics=["accuracy"])


def recurrent_params(model) -> int:
    """Parameters of the Embedding + SimpleRNN body: the lesson's 'Total params' figure."""
    return sum(layer.count_params() for layer in model.layers if layer.name != "dense")


def summary_text(model) -> str:
    """``model.summary()`` as text (the lesson's table), to save beside the model."""
    buf = io.StringIO()
    model.summary(print_fn=lambda line, **_: buf.write(line + "\n"), line_length=80)
    return buf.getvalue()
