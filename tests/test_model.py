"""The lesson's models: layer structure, parameter counts, and SimpleRNN == the NumPy loop."""

import os
import sys

os.environ.setdefault("KERAS_BACKEND", "tensorflow")

import keras
import numpy as np
import pytest

from helpers import REPO_ROOT, run, simple_rnn_reference
from imdb_rnn.config import ModelParams, load_params
from imdb_rnn.model import (
    build_model,
    compile_model,
    inference_copy,
    make_optimizer,
    recurrent_params,
    summary_text,
    unrolled_simple_rnn_class,
)


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


def _twin_models(layers: int, seed: int = 0):
    """The same architecture and initial weights, built plain (Keras' own unroll) and hoisted."""
    models = []
    for build in (lambda: build_model("m", ModelParams(layers=layers, units=6, embedding_dim=5), 50, 9),
                  lambda: build_model("m", ModelParams(layers=layers, units=6, embedding_dim=5), 50, 9,
                                      unroll=True)):
        keras.utils.set_random_seed(seed)
        models.append(build())
    plain, hoisted = models
    for layer in plain.layers:  # Keras' own unrolled loop is the reference for the hoisted one
        if isinstance(layer, keras.layers.SimpleRNN):
            layer.unroll = True
    return plain, hoisted


@pytest.mark.parametrize("layers", [1, 2])
def test_unrolled_simple_rnn_matches_keras_outputs_and_gradients(layers):
    import tensorflow as tf

    plain, hoisted = _twin_models(layers)
    assert [type(layer) for layer in hoisted.layers][1:-1] == [unrolled_simple_rnn_class()] * layers
    assert type(plain.layers[1]) is keras.layers.SimpleRNN
    for a, b in zip(plain.get_weights(), hoisted.get_weights()):
        np.testing.assert_array_equal(a, b)
    x = np.random.default_rng(1).integers(0, 50, size=(4, 9)).astype("int32")
    y = np.array([[0.0], [1.0], [1.0], [0.0]], dtype="float32")
    grads = []
    for model in (plain, hoisted):
        with tf.GradientTape() as tape:
            out = model(x)
            loss = keras.losses.binary_crossentropy(y, out)
        grads.append([tf.convert_to_tensor(g).numpy() for g in tape.gradient(loss, model.trainable_weights)])
        grads[-1].insert(0, out.numpy())
    for a, b in zip(*grads):  # the outputs, then every weight's gradient
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)


def test_unrolled_class_only_without_dropout_and_with_a_fixed_length():
    hoisted = unrolled_simple_rnn_class()
    assert type(build_model("m", ModelParams(), 50, 9, unroll=True).layers[1]) is hoisted
    dropout = build_model("m", ModelParams(dropout=0.2), 50, 9, unroll=True).layers[1]
    assert type(dropout) is keras.layers.SimpleRNN and dropout.unroll
    free_length = build_model("m", ModelParams(), 50, None, unroll=True).layers[1]
    assert type(free_length) is keras.layers.SimpleRNN and not free_length.unroll


def test_inference_copy_is_the_lessons_model_with_the_trained_weights(tmp_path):
    _, hoisted = _twin_models(2)
    compile_model(hoisted, "rmsprop", 0.01)
    x = np.random.default_rng(2).integers(0, 50, size=(8, 9)).astype("int32")
    hoisted.fit(x, np.arange(8) % 2, epochs=1, verbose=0)
    copy = inference_copy(hoisted)
    assert [type(layer).__name__ for layer in copy.layers] == ["Embedding", "SimpleRNN", "SimpleRNN", "Dense"]
    assert [layer.name for layer in copy.layers] == [layer.name for layer in hoisted.layers] and copy.name == "m"
    assert all(layer.unroll for layer in copy.layers[1:3])
    assert not copy.compiled  # no optimizer state or training-only optimizer class in the file
    np.testing.assert_allclose(copy.predict(x, verbose=0), hoisted.predict(x, verbose=0), rtol=1e-6)
    copy.save(tmp_path / "model.keras")
    np.save(tmp_path / "x.npy", x)
    np.save(tmp_path / "expected.npy", copy.predict(x, verbose=0))
    # A fresh interpreter that never imports imdb_rnn loads it in safe mode and predicts the same.
    script = (
        "import sys, numpy as np, keras\n"
        f"m = keras.saving.load_model({str(tmp_path / 'model.keras')!r}, safe_mode=True)\n"
        f"p = m.predict(np.load({str(tmp_path / 'x.npy')!r}), verbose=0)\n"
        f"np.testing.assert_allclose(p, np.load({str(tmp_path / 'expected.npy')!r}), rtol=1e-6)\n"
        "assert not any(name.startswith('imdb_rnn') for name in sys.modules)\n"
    )
    run([sys.executable, "-c", script], tmp_path, env={"KERAS_BACKEND": "tensorflow"})


def test_optimizer_densifies_the_embedding_gradient_before_the_update():
    """The update is RMSprop's on the dense (summed) gradient, as on JAX; Keras' TensorFlow
    sparse path squares each occurrence of a repeated id separately, so only rows that occur
    once in the batch agree with it."""
    import tensorflow as tf

    ids = np.array([[1, 1, 3, 1], [3, 0, 0, 7]], dtype="int32")  # 0, 1, 3 repeated; 7 once
    weights = np.random.default_rng(3).normal(size=(10, 4)).astype("float32")

    def train(optimizer, densify: bool):
        table = keras.Variable(weights)
        for _ in range(3):
            with tf.GradientTape() as tape:
                loss = tf.reduce_sum(tf.gather(table, ids) ** 2)
            grad = tape.gradient(loss, [table])
            assert isinstance(grad[0], tf.IndexedSlices)
            optimizer.apply([tf.convert_to_tensor(grad[0])] if densify else grad, [table])
        return table.numpy()

    ours = train(make_optimizer("rmsprop", 0.01), densify=False)
    dense = train(keras.optimizers.RMSprop(learning_rate=0.01), densify=True)
    sparse = train(keras.optimizers.RMSprop(learning_rate=0.01), densify=False)
    assert type(make_optimizer("rmsprop", 0.01)).__name__ == "DenseGradientRMSprop"
    np.testing.assert_allclose(ours, dense, rtol=1e-6, atol=1e-7)
    assert not np.allclose(ours[[0, 1, 3]], weights[[0, 1, 3]])
    np.testing.assert_allclose(ours[7], sparse[7], rtol=1e-6)
    assert not np.allclose(ours[[0, 1, 3]], sparse[[0, 1, 3]], rtol=1e-3)
    np.testing.assert_array_equal(ours[[2, 4, 5, 6, 8, 9]], weights[[2, 4, 5, 6, 8, 9]])
