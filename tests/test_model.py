"""The lesson's models: layer structure, parameter counts, and SimpleRNN == the NumPy loop."""

import os

os.environ.setdefault("KERAS_BACKEND", "tensorflow")

import keras
import numpy as np
import pytest

from imdb_rnn.config import ModelParams, load_params
from imdb_rnn.model import build_model, compile_model, recurrent_params, simple_rnn_reference, summary_text
from helpers import REPO_ROOT


@pytest.mark.parametrize(
    "variant, lesson_params",
    [("simple_rnn", 322_080), ("stacked_rnn", 328_320)],  # the lesson's model.summary() totals
)
def test_parameter_counts_match_the_lesson(variant, lesson_params):
    params = load_params(REPO_ROOT / "params.yaml")
    model = build_model(variant, params.model(variant), params.data.max_features, params.data.maxlen)
    # The lesson's summaries stop before the head; Dense(32 -> 1) adds 32 weights + 1 bias.
    assert recurrent_params(model) == lesson_params
    assert model.count_params() == lesson_params + 33
    summary = summary_text(model)
    assert f"Total params: {lesson_params + 33:,}" in summary
    assert "embedding (Embedding)" in summary and "simple_rnn (SimpleRNN)" in summary


def test_stack_returns_sequences_except_last_layer():
    model = build_model("stack", ModelParams(layers=4), 100, 20)
    rnns = [layer for layer in model.layers if isinstance(layer, keras.layers.SimpleRNN)]
    assert [layer.return_sequences for layer in rnns] == [True, True, True, False]
    assert model.output_shape == (None, 1)
    assert model.layers[-1].activation is keras.activations.sigmoid


def test_compile_uses_configured_optimizer_and_bce():
    model = build_model("m", ModelParams(), 100, 20)
    compile_model(model, "rmsprop", 0.01)
    assert isinstance(model.optimizer, keras.optimizers.RMSprop)
    assert float(model.optimizer.learning_rate) == pytest.approx(0.01)
    assert model.loss == "binary_crossentropy"


@pytest.mark.parametrize("return_sequences", [False, True])
@pytest.mark.parametrize("unroll", [False, True])
def test_keras_simple_rnn_equals_numpy_loop(return_sequences, unroll):
    rng = np.random.default_rng(0)
    timesteps, input_features, units = 12, 8, 5
    inputs = rng.normal(size=(3, timesteps, input_features)).astype("float32")
    layer = keras.layers.SimpleRNN(units, return_sequences=return_sequences, unroll=unroll)
    keras_out = np.asarray(layer(inputs))
    kernel, recurrent_kernel, bias = (np.asarray(w, dtype=np.float64) for w in layer.get_weights())
    for sample, expected in zip(inputs, keras_out):
        ours = simple_rnn_reference(sample.astype(np.float64), kernel.T, recurrent_kernel.T, bias,
                                    return_sequences=return_sequences)
        assert ours.shape == expected.shape
        np.testing.assert_allclose(ours, expected, atol=1e-5)


def test_numpy_loop_state_starts_at_zero():
    W, U, b = np.eye(2), np.eye(2), np.zeros(2)
    out = simple_rnn_reference(np.array([[1.0, 0.0]]), W, U, b)
    np.testing.assert_allclose(out, np.tanh([1.0, 0.0]))
