"""The models: the lesson's structure and parameter counts, SimpleRNN == the NumPy loop, the
unrolled training layer == Keras' own loop (masks, both directions), pooling over real steps only,
and the saved model: standard layers that load without this package."""

import sys
from dataclasses import replace

import keras
import numpy as np
import pytest
import tensorflow as tf

from imdb_rnn.config import ModelParams, TrainParams, parse_params
from imdb_rnn.model import (
    build_model,
    compile_model,
    count_params,
    inference_copy,
    make_optimizer,
    param_counts,
    served_model,
    summary_text,
    unrolled_simple_rnn_class,
)
from support.commands import run
from support.references import simple_rnn_reference
from support.shipped import shipped_params_raw


@pytest.mark.parametrize(
    "variant, lesson_params",
    [("simple_rnn", 322_080), ("stacked_rnn", 328_320)],  # the lesson's model.summary() totals
)
def test_parameter_counts_match_the_lesson(variant, lesson_params):
    lesson = ModelParams(layers=1 if variant == "simple_rnn" else 4)  # the lesson's architecture
    model = build_model(variant, lesson, 500)
    counts = param_counts(model)
    # The lesson's summaries stop before the head; Dense(32 -> 1) adds 32 weights + 1 bias.
    assert counts["embedding"] + counts["recurrent"] == lesson_params
    assert counts["head"] == 33
    assert counts["total"] == lesson_params + 33 == model.count_params()
    summary = summary_text(model)
    assert f"Total params: {lesson_params + 33:,}" in summary
    assert "embedding (Embedding)" in summary
    assert "simple_rnn (SimpleRNN)" in summary
    assert isinstance(model, keras.Sequential)  # as the lesson builds it


VARIANTS = {
    "lesson": ModelParams(),
    "stack": ModelParams(layers=3, units=6),
    "masked-max": ModelParams(mask_padding=True, pooling="max"),
    "bidi-max_mean": ModelParams(bidirectional=True, pooling="max_mean", layers=2, units=5),
    "masked-bidi-mean": ModelParams(mask_padding=True, bidirectional=True, pooling="mean", embedding_dim=7),
    "spatial-dropout": ModelParams(spatial_dropout=0.3, pooling="max"),
    "gru": ModelParams(cell="gru", units=6),
    "lstm-bidi-2-max_mean": ModelParams(cell="lstm", layers=2, units=5, bidirectional=True, pooling="max_mean"),
    "gru-bidi-pairs": ModelParams(cell="gru", bidirectional=True, bigram_buckets=77, mask_padding=True),
    "pairs-last": ModelParams(bigram_buckets=2, embedding_dim=3),
}


@pytest.mark.parametrize("model_params", VARIANTS.values(), ids=VARIANTS.keys())
def test_param_count_from_settings_equals_keras(model_params):
    sized = replace(model_params, max_features=300)
    assert count_params(sized) == build_model("m", sized, 20).count_params()


def test_stack_returns_sequences_except_last_layer():
    model = build_model("stack", ModelParams(layers=4), 20)
    rnns = [layer for layer in model.layers if isinstance(layer, keras.layers.SimpleRNN)]
    assert [layer.return_sequences for layer in rnns] == [True, True, True, False]
    assert model.output_shape == (None, 1)
    assert model.layers[-1].activation is keras.activations.sigmoid


def test_compile_uses_configured_optimizer_clipping_and_bce():
    model = build_model("m", ModelParams(), 20)
    compile_model(model, TrainParams(learning_rate=0.01, clipnorm=1.5))
    assert isinstance(model.optimizer, keras.optimizers.RMSprop)
    assert float(model.optimizer.learning_rate) == pytest.approx(0.01)
    assert model.optimizer.clipnorm == 1.5
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
        ours = simple_rnn_reference(
            sample.astype(np.float64), kernel.T, recurrent_kernel.T, bias, return_sequences=return_sequences
        )
        assert ours.shape == expected.shape
        np.testing.assert_allclose(ours, expected, atol=1e-5)


def test_numpy_loop_state_starts_at_zero():
    W, U, b = np.eye(2), np.eye(2), np.zeros(2)
    out = simple_rnn_reference(np.array([[1.0, 0.0]]), W, U, b)
    np.testing.assert_allclose(out, np.tanh([1.0, 0.0]))


def padded_batch(padding: str, maxlen: int = 9, vocab: int = 50) -> np.ndarray:
    """Reviews of lengths 9, 4, 1, 6 (ids >= 1), padded with 0 at the start (pre) or end (post)."""
    rng = np.random.default_rng(1)
    x = np.zeros((4, maxlen), dtype="int32")
    for row, length in enumerate((9, 4, 1, 6)):
        ids = rng.integers(1, vocab, size=length)
        if padding == "pre":
            x[row, maxlen - length :] = ids
        else:
            x[row, :length] = ids
    return x


def recurrent_layers(model) -> list:
    return [layer for layer in model.layers if isinstance(layer, (keras.layers.SimpleRNN, keras.layers.Bidirectional))]


def outputs_and_gradients(model, x: np.ndarray) -> list[np.ndarray]:
    y = np.array([[0.0], [1.0], [1.0], [0.0]], dtype="float32")
    with tf.GradientTape() as tape:
        out = model(x)
        loss = keras.losses.binary_crossentropy(y, out)
    grads = tape.gradient(loss, model.trainable_weights)
    return [out.numpy(), *(tf.convert_to_tensor(g).numpy() for g in grads)]


TWINS = {
    "lesson-1": ModelParams(units=6, embedding_dim=5),
    "lesson-2": ModelParams(units=6, embedding_dim=5, layers=2),
    "masked-2": ModelParams(units=6, embedding_dim=5, layers=2, mask_padding=True),
    "bidi": ModelParams(units=4, embedding_dim=5, bidirectional=True),
    "masked-bidi-2-max_mean": ModelParams(
        units=4, embedding_dim=5, layers=2, bidirectional=True, mask_padding=True, pooling="max_mean"
    ),
    "masked-mean": ModelParams(units=4, embedding_dim=5, mask_padding=True, pooling="mean"),
}


@pytest.mark.parametrize("padding", ["pre", "post"])
@pytest.mark.parametrize("model_params", TWINS.values(), ids=TWINS.keys())
def test_unrolled_layer_equals_keras_loop_in_outputs_and_gradients(model_params, padding):
    """The training model (``UnrolledSimpleRNN``: hoisted projection, masks, go_backwards, zero
    outputs for masks, the free mask of pre-padding) against the same weights in Keras' own loop."""
    keras.utils.set_random_seed(0)
    hoisted = build_model("m", model_params, 9, unroll=True, padding=padding)
    reference = build_model("m", model_params, 9, unroll=False)
    reference.set_weights(hoisted.get_weights())
    inner = [getattr(layer, "forward_layer", layer) for layer in recurrent_layers(hoisted)]
    assert {type(layer) for layer in inner} == {unrolled_simple_rnn_class()}
    x = padded_batch(padding)
    for ours, keras_loop in zip(outputs_and_gradients(hoisted, x), outputs_and_gradients(reference, x)):
        np.testing.assert_allclose(ours, keras_loop, rtol=1e-4, atol=2e-6)


@pytest.mark.parametrize("layers", [1, 4])
def test_long_padding_never_turns_the_gradient_non_finite(layers):
    """The stack's divergence on other CPUs: a recurrent kernel of gain 2 and 290 steps of leading padding.
    Backpropagating through the padding's recurrent matmuls would give 2**290 (inf in float32, on any
    IEEE machine) times the mask's 0: NaN. The padding's state is held at 0 as Keras' loop holds it, so
    the gradients are finite and equal Keras' own loop's."""
    model_params = ModelParams(max_features=50, embedding_dim=4, units=4, layers=layers, mask_padding=True)
    x = np.zeros((4, 300), dtype="int32")
    x[:, -10:] = np.arange(3, 13)
    keras.utils.set_random_seed(0)
    hoisted = build_model("m", model_params, 300, unroll=True)
    for layer in recurrent_layers(hoisted):
        layer.cell.recurrent_kernel.assign(2.0 * np.eye(4, dtype="float32"))
    reference = build_model("m", model_params, 300, unroll=False)
    reference.set_weights(hoisted.get_weights())
    ours, keras_loop = outputs_and_gradients(hoisted, x), outputs_and_gradients(reference, x)
    assert all(np.isfinite(g).all() for g in ours)
    for a, b in zip(ours, keras_loop):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=2e-6)


@pytest.mark.parametrize("cell", ["simple", "gru", "lstm"])
@pytest.mark.parametrize("pooling", ["last", "max", "mean", "max_mean"])
@pytest.mark.parametrize("bidirectional", [False, True])
def test_masked_models_ignore_the_padding(pooling, bidirectional, cell):
    """With mask_padding, any amount of padding gives the same prediction: the recurrence and the
    pooling see only the review (what lets length bucketing cut batches short), for every cell."""
    keras.utils.set_random_seed(2)
    masked_params = ModelParams(
        units=4, embedding_dim=5, mask_padding=True, pooling=pooling, bidirectional=bidirectional, cell=cell
    )
    model = build_model("m", masked_params)
    x = padded_batch("pre", maxlen=12)
    full = model.predict(x, verbose=0)
    for width in (9, 10):  # the longest review has 9 tokens
        np.testing.assert_allclose(model.predict(x[:, -width:], verbose=0), full, rtol=1e-5, atol=1e-6)
    unmasked = build_model("m", replace(masked_params, mask_padding=False))  # reads the padding
    unmasked.set_weights(model.get_weights())
    assert not np.allclose(unmasked.predict(x[:, -9:], verbose=0), unmasked.predict(x, verbose=0))


@pytest.mark.parametrize("bidirectional", [False, True])
def test_masked_pooling_reads_only_the_reviews_steps(bidirectional):
    """max / mean pooling == NumPy max / mean of the last recurrent layer's outputs over real steps."""
    keras.utils.set_random_seed(3)
    params = ModelParams(units=4, embedding_dim=5, mask_padding=True, pooling="max_mean", bidirectional=bidirectional)
    model = build_model("m", params)
    x = padded_batch("pre", maxlen=12)
    last_rnn = recurrent_layers(model)[-1]
    sequences = keras.Model(model.inputs, last_rnn.output)([x]).numpy()
    pooled = keras.Model(model.inputs, model.get_layer("dense").input)([x]).numpy()
    real = x != 0
    expected = np.stack(
        [np.concatenate([seq[keep].max(axis=0), seq[keep].mean(axis=0)]) for seq, keep in zip(sequences, real)]
    )
    np.testing.assert_allclose(pooled, expected, rtol=1e-5, atol=1e-6)


def test_unrolled_class_only_without_dropout_and_with_a_fixed_length():
    hoisted = unrolled_simple_rnn_class()
    assert type(build_model("m", ModelParams(), 9, unroll=True).layers[1]) is hoisted
    dropout = build_model("m", ModelParams(dropout=0.2), 9, unroll=True).layers[1]
    assert type(dropout) is keras.layers.SimpleRNN
    assert dropout.unroll
    free_length = build_model("m", ModelParams(), None, unroll=True).layers[1]
    assert type(free_length) is keras.layers.SimpleRNN
    assert not free_length.unroll


@pytest.mark.parametrize(
    "model_params",
    [ModelParams(layers=2), TWINS["masked-bidi-2-max_mean"]],
    ids=["lesson-stack", "masked-bidi-max_mean"],
)
def test_inference_copy_has_standard_layers_and_loads_without_this_package(tmp_path, model_params):
    keras.utils.set_random_seed(4)
    hoisted = build_model("m", model_params, 9, unroll=True)
    compile_model(hoisted, TrainParams(learning_rate=0.01))
    x = padded_batch("pre")
    hoisted.fit(x, np.arange(4) % 2, epochs=1, verbose=0)
    copy = inference_copy(hoisted, "m", model_params)
    classes = {type(layer).__module__.split(".")[0] for layer in copy.layers}
    assert classes == {"keras"}
    assert copy.name == "m"
    rnns = [getattr(layer, "forward_layer", layer) for layer in recurrent_layers(copy)]
    assert all(type(layer) is keras.layers.SimpleRNN and not layer.unroll for layer in rnns)
    assert not copy.compiled  # no optimizer state or training-only optimizer class in the file
    np.testing.assert_allclose(copy.predict(x, verbose=0), hoisted.predict(x, verbose=0), rtol=1e-4, atol=1e-6)
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


def test_gated_cells_are_keras_own_layers_named_after_the_cell():
    for cell, layer_class in (("gru", keras.layers.GRU), ("lstm", keras.layers.LSTM)):
        model = build_model("m", ModelParams(cell=cell, layers=2, units=3), 9)
        rnns = [layer for layer in model.layers if isinstance(layer, keras.layers.RNN)]
        assert [type(layer) for layer in rnns] == [layer_class, layer_class]
        assert [layer.name for layer in rnns] == [cell, f"{cell}_1"]
        assert param_counts(model)["recurrent"] == sum(layer.count_params() for layer in rnns)
        assert f"{cell} ({layer_class.__name__})" in summary_text(model)


def test_an_ensemble_is_one_model_of_the_mean_probability_that_loads_without_this_package(tmp_path):
    """``serve: ensemble``: one functional model, each seed's copy inside, an Average layer on top; it
    loads in safe mode in an interpreter that never imports imdb_rnn and scores the seeds' mean."""
    params = ModelParams(max_features=50, units=4, embedding_dim=5, mask_padding=True, pooling="max_mean",
                         bidirectional=True, bigram_buckets=33, serve="ensemble")  # fmt: skip
    seeds = {}
    for seed in (42, 43, 44):
        keras.utils.set_random_seed(seed)
        seeds[seed] = build_model("v", params, 12, unroll=True)
    ensemble = served_model("v", params, seeds, 43)
    assert ensemble.name == "v"
    assert [layer.name for layer in ensemble.layers] == ["ids", "seed_42", "seed_43", "seed_44", "mean_probability"]
    x = padded_batch("pre", maxlen=12)
    mean = np.mean([np.asarray(model(x)) for model in seeds.values()], axis=0)
    np.testing.assert_allclose(ensemble(x), mean, rtol=1e-5, atol=1e-7)
    assert served_model("v", replace(params, serve="best_seed"), seeds, 43) is seeds[43]
    ensemble.save(tmp_path / "model.keras")
    np.save(tmp_path / "x.npy", x)
    np.save(tmp_path / "expected.npy", mean)
    script = (
        "import sys, numpy as np, keras\n"
        f"m = keras.saving.load_model({str(tmp_path / 'model.keras')!r}, safe_mode=True)\n"
        f"p = m.predict_on_batch(np.load({str(tmp_path / 'x.npy')!r}))\n"
        f"np.testing.assert_allclose(p, np.load({str(tmp_path / 'expected.npy')!r}), rtol=1e-5, atol=1e-7)\n"
        "assert not any(name.startswith('imdb_rnn') for name in sys.modules)\n"
    )
    run([sys.executable, "-c", script], tmp_path, env={"KERAS_BACKEND": "tensorflow"})
    one = served_model("v", params, {42: seeds[42]}, 42)  # one seed: its own probabilities
    np.testing.assert_allclose(one(x), seeds[42](x), rtol=1e-6)


def test_repository_variants_build():
    params = parse_params(shipped_params_raw())
    for variant in params.models:
        model = build_model(variant, params.model(variant), params.data.maxlen)
        assert model.count_params() == count_params(params.model(variant))


def test_optimizer_densifies_the_embedding_gradient_before_the_update():
    """The update is RMSprop's on the dense (summed) gradient, as on JAX; Keras' TensorFlow
    sparse path squares each occurrence of a repeated id separately, so only rows that occur
    once in the batch agree with it."""
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


@pytest.mark.parametrize("variant", ["simple_rnn", "stacked_rnn"])
def test_the_lesson_variants_start_from_the_lessons_own_initial_weights(variant):
    """Keras draws initial weights from the seed in the order the layers are made: the lesson's models start
    where the lesson's own Sequential model, Embedding made first, starts (the levers added after it must
    not change the lesson's results)."""
    model_params = parse_params(shipped_params_raw()).model(variant)
    keras.utils.set_random_seed(7)
    ours = build_model(variant, model_params, 50)
    keras.utils.set_random_seed(7)
    lesson = keras.Sequential(
        [
            keras.Input(shape=(50,), dtype="int32"),
            keras.layers.Embedding(model_params.max_features, model_params.embedding_dim, mask_zero=True),
            *(
                keras.layers.SimpleRNN(model_params.units, return_sequences=i < model_params.layers - 1)
                for i in range(model_params.layers)
            ),
            keras.layers.Dense(1, activation="sigmoid"),
        ]
    )
    assert len(ours.get_weights()) == len(lesson.get_weights())
    for mine, theirs in zip(ours.get_weights(), lesson.get_weights(), strict=True):
        np.testing.assert_array_equal(mine, theirs)
