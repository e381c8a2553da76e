"""The lesson's models: Embedding -> N x SimpleRNN -> Dense(1, sigmoid); building, training copies, loading."""

from __future__ import annotations

import functools
import io

from .errors import ModelFileError


@functools.cache
def unrolled_simple_rnn_class():
    """``UnrolledSimpleRNN``: ``keras.layers.SimpleRNN`` unrolled, with the input projection hoisted.

    The same layer, weights and maths as ``SimpleRNN(unroll=True)``; it only computes
    ``input_t · kernel + bias`` for all steps in one matmul before the loop instead of one small
    matmul per step, so the unrolled graph has about a third fewer nodes (faster steps, faster
    graph build). Used for training only: ``inference_copy`` turns it back into ``SimpleRNN``.
    Built lazily so importing this module does not import Keras.
    """
    import keras
    from keras import ops

    class UnrolledSimpleRNN(keras.layers.SimpleRNN):
        __doc__ = unrolled_simple_rnn_class.__doc__

        def call(self, sequences, initial_state=None, mask=None, training=False):
            cell = self.cell
            projected = ops.matmul(sequences, cell.kernel)
            if cell.use_bias:
                projected = ops.add(projected, cell.bias)
            outputs, state = [], None
            for step_input in ops.unstack(projected, axis=1):
                if state is not None:  # the state starts at zeros: nothing to add at step 0
                    step_input = ops.add(step_input, ops.matmul(state, cell.recurrent_kernel))
                state = cell.activation(step_input)
                outputs.append(state)
            return ops.stack(outputs, axis=1) if self.return_sequences else state

    return UnrolledSimpleRNN


def build_model(variant: str, model_params, max_features: int, maxlen: int | None = None,
                unroll: bool = False):
    """``Embedding(max_features, embedding_dim)`` -> ``layers`` x ``SimpleRNN(units)`` -> ``Dense(1)``.

    Every recurrent layer but the last returns sequences. ``unroll`` needs a fixed ``maxlen``;
    it trades memory for speed on CPU (see README, Performance) and, without dropout, builds
    the recurrent layers as ``UnrolledSimpleRNN`` (train with it, save ``inference_copy``).
    """
    import keras
    from keras import layers

    unroll = bool(unroll and maxlen)
    hoisted = unroll and not (model_params.dropout or model_params.recurrent_dropout)
    recurrent_layer = unrolled_simple_rnn_class() if hoisted else layers.SimpleRNN
    model = keras.Sequential(name=variant)
    model.add(keras.Input(shape=(maxlen,), dtype="int32"))
    model.add(layers.Embedding(max_features, model_params.embedding_dim, name="embedding"))
    for i in range(model_params.layers):
        model.add(recurrent_layer(
            model_params.units,
            return_sequences=i < model_params.layers - 1,
            dropout=model_params.dropout,
            recurrent_dropout=model_params.recurrent_dropout,
            unroll=unroll,
            name="simple_rnn" if i == 0 else f"simple_rnn_{i}",
        ))
    model.add(layers.Dense(1, activation="sigmoid", name="dense"))
    return model


def make_optimizer(name: str, learning_rate: float):
    """The configured Keras optimizer; on TensorFlow, one that sums sparse gradients densely first.

    TensorFlow hands the Embedding's gradient over as ``IndexedSlices``: one row per token of
    the batch (64,000 rows for 128 x 500), repeated words repeated. Keras' optimizers then work
    on those rows with TensorFlow's CPU scatter and segment-sum kernels, about 20 ms a step on
    2 cores, a quarter of a SimpleRNN step. Summing them once with an XLA-compiled kernel
    (about 2 ms) gives the dense gradient, and the optimizer's dense update, as on JAX. (Keras'
    sparse path for rmsprop also squares each repeat of a word separately in the velocity,
    so for words repeated in a batch it is not quite RMSprop; the dense update is.)
    """
    import keras

    base = type(keras.optimizers.get(name))
    if keras.backend.backend() != "tensorflow":
        return base(learning_rate=learning_rate)
    import tensorflow as tf

    @tf.function(jit_compile=True)
    def segment_sum(values, indices, rows: int):
        return tf.math.unsorted_segment_sum(values, indices, rows)

    def apply(self, grads, trainable_variables=None):
        variables = self._trainable_variables if trainable_variables is None else trainable_variables
        grads = [segment_sum(g.values, g.indices, v.shape[0]) if isinstance(g, tf.IndexedSlices) else g
                 for g, v in zip(grads, variables)]
        return base.apply(self, grads, trainable_variables)

    dense = type(f"DenseGradient{base.__name__}", (base,), {"apply": apply})
    return dense(learning_rate=learning_rate)


def compile_model(model, optimizer: str, learning_rate: float) -> None:
    """rmsprop (or the configured optimizer, see ``make_optimizer``), binary cross-entropy, accuracy."""
    model.compile(optimizer=make_optimizer(optimizer, learning_rate), loss="binary_crossentropy",
                  metrics=["accuracy"])


def inference_copy(model):
    """The model as the lesson writes it, with the trained weights: what is saved and logged.

    Only standard Keras layers (``UnrolledSimpleRNN`` becomes ``SimpleRNN``, same config and
    weights) and no optimizer or compile settings, so the file loads anywhere (MLflow, the
    other backend) without this package; the training-only classes stay out of it.
    """
    import keras

    copy = keras.Sequential(name=model.name)
    copy.add(keras.Input(shape=model.input_shape[1:], dtype=model.inputs[0].dtype))
    for layer in model.layers:
        standard = keras.layers.SimpleRNN if isinstance(layer, keras.layers.SimpleRNN) else type(layer)
        copy.add(standard.from_config(layer.get_config()))
    copy.set_weights(model.get_weights())
    return copy


def recurrent_params(model) -> int:
    """Parameters of the Embedding + SimpleRNN body: the lesson's 'Total params' figure."""
    return sum(layer.count_params() for layer in model.layers if layer.name != "dense")


def summary_text(model) -> str:
    """``model.summary()`` as text (the lesson's table), to save beside the model."""
    buf = io.StringIO()
    model.summary(print_fn=lambda line, **_: buf.write(line + "\n"), line_length=80)
    return buf.getvalue()


def load_model(path):
    """Load a saved ``.keras`` model in Keras' safe mode (no code in the file runs), with a clear error."""
    import zipfile
    from pathlib import Path

    path = Path(path)
    if not path.is_file():
        raise ModelFileError(f"no model at {path}; train it with `dvc repro`")
    if not zipfile.is_zipfile(path):  # Keras would call it "File not found", which misleads
        raise ModelFileError(
            f"{path} is not a loadable Keras model (not a .keras zip archive: corrupt or truncated); "
            "retrain it with `dvc repro`"
        )
    import keras

    try:
        return keras.saving.load_model(path, safe_mode=True, compile=False)
    except Exception as exc:  # Keras raises ValueError, OSError, zipfile errors, ... for bad files
        reason = str(exc).splitlines()[0][:160] if str(exc) else type(exc).__name__
        raise ModelFileError(f"{path} is not a loadable Keras model ({reason}); retrain it with `dvc repro`") from None
