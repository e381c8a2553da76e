"""The lesson's models: Embedding -> N x SimpleRNN -> Dense(1, sigmoid); building, training copies, loading.

Levers beyond the lesson: word pairs in the input, Keras' gated cells as a reference, pooling.
"""

from __future__ import annotations

import functools
import io
import zipfile
from pathlib import Path

from .errors import ModelFileError

GATE_EVERY = 16  # steps between the unrolled layer's mask multiplies (see UnrolledSimpleRNN)


@functools.cache
def unrolled_simple_rnn_class():
    """``UnrolledSimpleRNN``: ``keras.layers.SimpleRNN`` unrolled, with the input projection hoisted.

    The same layer, weights and maths as ``SimpleRNN``; it only computes ``input_t · kernel + bias``
    for all steps in one matmul before the loop instead of one small matmul per step, so the
    unrolled graph has about a third fewer nodes (faster steps, faster graph build). Masks,
    ``go_backwards`` and ``zero_output_for_mask`` (set by ``Bidirectional``) behave as in Keras'
    own loop. With ``leading_padding`` (the data is ``pre``-padded, so every masked step comes
    before the review) a mask costs almost nothing: zeroing the projected input of masked steps keeps
    the state at exactly 0 until the review starts (``tanh(0 + 0 · U) = 0``), which is what Keras'
    masking does there, and a multiply by the mask every ``GATE_EVERY`` steps keeps the backward pass
    finite through the padding. Used for training only: ``inference_copy`` saves standard layers.
    Built lazily so importing this module does not import Keras; registered so ``Bidirectional``
    can clone it.
    """
    import keras
    from keras import ops

    TANH = keras.activations.tanh

    @keras.saving.register_keras_serializable(package="imdb_rnn")
    class UnrolledSimpleRNN(keras.layers.SimpleRNN):
        __doc__ = unrolled_simple_rnn_class.__doc__

        def __init__(self, *args, leading_padding: bool = False, **kwargs):
            super().__init__(*args, **kwargs)
            self.leading_padding = leading_padding

        def get_config(self):
            return {**super().get_config(), "leading_padding": self.leading_padding}

        def call(self, sequences, initial_state=None, mask=None, training=False):
            cell = self.cell
            if self.go_backwards:  # as Keras: the reversed sequence, outputs in that order
                sequences = ops.flip(sequences, axis=1)
                mask = None if mask is None else ops.flip(mask, axis=1)
            projected = ops.matmul(sequences, cell.kernel)
            if cell.use_bias:
                projected = ops.add(projected, cell.bias)
            gates = {}  # step -> the mask, multiplied into the state there
            if mask is not None and self.leading_padding and not self.go_backwards and cell.activation is TANH:
                # The state is exactly 0 through the leading padding once its input is 0 (tanh(0 + 0 U) = 0),
                # as Keras' masked loop holds it. The backward pass, though, would run through every padding
                # step's recurrent matmul: mathematically nothing, numerically a product that overflows to
                # inf once the recurrent kernel's gain exceeds 1, and inf times the mask is NaN (the stack's
                # divergence). The state times the mask every GATE_EVERY steps (exact: it is 0 there, or
                # times 1) cuts that product before it can grow past gain ** GATE_EVERY.
                keep_float = ops.expand_dims(ops.cast(mask, projected.dtype), -1)
                projected = ops.multiply(projected, keep_float)
                gates = {t: keep_float[:, t] for t in range(GATE_EVERY, projected.shape[1], GATE_EVERY)}
                mask = None
            steps = ops.unstack(projected, axis=1)
            keep = [None] * len(steps)
            if mask is not None:
                keep = ops.unstack(ops.expand_dims(ops.cast(mask, "bool"), -1), axis=1)
            outputs, state = [], None
            for t, (step_input, keep_t) in enumerate(zip(steps, keep)):
                if state is not None:  # the state starts at zeros: nothing to add at step 0
                    step_input = ops.add(step_input, ops.matmul(state, cell.recurrent_kernel))
                new = cell.activation(step_input)
                if t in gates:
                    new = ops.multiply(new, gates[t])
                if keep_t is None:
                    state = output = new
                else:  # a masked step keeps the state and repeats it as output (zeros before any)
                    state = ops.where(keep_t, new, ops.zeros_like(new) if state is None else state)
                    output = ops.where(keep_t, new, ops.zeros_like(new)) if self.zero_output_for_mask else state
                outputs.append(output)
            return ops.stack(outputs, axis=1) if self.return_sequences else outputs[-1]

    return UnrolledSimpleRNN


CELLS = {"simple": "SimpleRNN", "gru": "GRU", "lstm": "LSTM"}  # the cell key -> its Keras layer class


def recurrent_layer_name(i: int, cell: str = "simple") -> str:
    base = {"simple": "simple_rnn", "gru": "gru", "lstm": "lstm"}[cell]
    return base if i == 0 else f"{base}_{i}"


def input_layers(m):
    """The word embedding and, with ``bigram_buckets``, the pair embedding: made before any other layer,
    as the lesson's Sequential model makes its Embedding first (Keras draws a layer's initial weights
    from the seed in the order the layers are made, so this order keeps the lesson's models' weights)."""
    from keras import layers

    words = layers.Embedding(m.max_features, m.embedding_dim, mask_zero=m.mask_padding, name="embedding")
    if not m.bigram_buckets:
        return words, None
    return words, layers.Embedding(m.bigram_buckets, m.embedding_dim, mask_zero=m.mask_padding, name="pair_embedding")


def embedded(ids, m, words, pairs):
    """Each step's input vector: the word's embedding, plus with ``pairs`` the embedding of its (previous
    word, word) pair (``bigrams.pair_ids``, computed here from the ids by Keras ops).

    Summed, not concatenated: the recurrence reads inputs of the same width as without pairs, so a
    variant with pairs differs from its twin only by the pair table, and both embeddings carry the
    same mask (pair id 0 exactly at padding), which ``Add`` keeps. The pairs enter the recurrence
    like the words: no path to the head goes around it.
    """
    from keras import layers, ops

    from .bigrams import pair_ids

    if pairs is None:
        return words(ids)
    return layers.Add(name="word_and_pair")([words(ids), pairs(pair_ids(ids, m.max_features, m.bigram_buckets, ops))])


def build_model(variant: str, model_params, maxlen: int | None = None, unroll: bool = False, padding: str = "pre"):
    """``Embedding(max_features, embedding_dim)`` -> ``layers`` x ``SimpleRNN(units)`` -> pooling -> ``Dense(1)``.

    With the lesson's settings (pooling ``last``, no masking, one direction) this is the lesson's
    Sequential model. ``mask_padding`` makes the Embedding mask id 0, so every SimpleRNN skips the
    padding (and ``Bidirectional``'s backward pass starts at the review's end); ``pooling`` max /
    mean / max_mean reads all outputs of the last recurrent layer, masked steps excluded;
    ``bigram_buckets`` adds word pairs to the input (``embedded``); ``cell`` gru / lstm uses Keras'
    own gated layers instead of SimpleRNN. ``unroll`` needs a fixed ``maxlen``; for SimpleRNN
    without dropout it builds ``UnrolledSimpleRNN`` layers (train with them, save
    ``inference_copy``; ``padding`` tells them where the padding is). Only standard Keras layers and
    ops otherwise.
    """
    import keras
    from keras import layers, ops

    m = model_params
    unroll = bool(unroll and maxlen)
    hoisted = unroll and m.has_fast_unrolled_layer
    rnn_class = unrolled_simple_rnn_class() if hoisted else getattr(layers, CELLS[m.cell])
    hoisted_only = {"leading_padding": padding == "pre"} if hoisted else {}
    words, pairs = input_layers(m)
    body = []
    if m.spatial_dropout:
        body.append(layers.SpatialDropout1D(m.spatial_dropout, name="spatial_dropout"))
    for i in range(m.layers):
        rnn = rnn_class(
            m.units,
            return_sequences=i < m.layers - 1 or m.pooling != "last",
            dropout=m.dropout,
            recurrent_dropout=m.recurrent_dropout,
            unroll=unroll,
            name=recurrent_layer_name(i, m.cell),
            **hoisted_only,
        )
        body.append(layers.Bidirectional(rnn, name=f"bidirectional_{i}") if m.bidirectional else rnn)
    head = layers.Dense(1, activation="sigmoid", name="dense")
    ids = keras.Input(shape=(maxlen,), dtype="int32", name="ids")
    simple_pool = m.pooling == "last" or (m.pooling == "max" and not m.mask_padding) or m.pooling == "mean"
    if simple_pool and not m.bigram_buckets:
        pool = {
            "last": [],
            "max": [layers.GlobalMaxPooling1D(name="max_pool")],
            "mean": [layers.GlobalAveragePooling1D(name="mean_pool")],
        }[m.pooling]
        return keras.Sequential([ids, words, *body, *pool, head], name=variant)
    x = embedded(ids, m, words, pairs)
    for layer in body:
        x = layer(x)
    if m.pooling == "last":
        pooled = [x]
    elif m.pooling == "mean":
        pooled = [layers.GlobalAveragePooling1D(name="mean_pool")(x)]
    elif m.mask_padding:  # GlobalMaxPooling1D ignores masks: masked steps get -2, below any tanh output
        pooled = [ops.max(ops.where(ops.expand_dims(ops.not_equal(ids, 0), -1), x, -2.0), axis=1)]
    else:
        pooled = [layers.GlobalMaxPooling1D(name="max_pool")(x)]
    if m.pooling == "max_mean":
        pooled.append(layers.GlobalAveragePooling1D(name="mean_pool")(x))
        pooled = [layers.Concatenate(name="max_mean")(pooled)]
    return keras.Model(ids, head(pooled[0]), name=variant)


def make_optimizer(name: str, learning_rate: float, clipnorm: float | None = None):
    """The configured Keras optimizer; on TensorFlow, one that sums sparse gradients densely first.

    TensorFlow hands the Embedding's gradient over as ``IndexedSlices``, one row per token of the
    batch, repeated words repeated, and Keras' optimizers work on those rows with TensorFlow's slow
    CPU scatter kernels. Summing them once with an XLA-compiled kernel gives the dense gradient and
    the optimizer's dense update, as on JAX (docs/performance.md). Keras' sparse path for rmsprop
    also squares each repeat of a word separately in the velocity, so it is not quite RMSprop.
    """
    import keras

    base = type(keras.optimizers.get(name))
    if keras.backend.backend() != "tensorflow":
        return base(learning_rate=learning_rate, clipnorm=clipnorm)
    import tensorflow as tf

    @tf.function(jit_compile=True)
    def segment_sum(values, indices, rows: int):
        return tf.math.unsorted_segment_sum(values, indices, rows)

    def apply(self, grads, trainable_variables=None):
        variables = self._trainable_variables if trainable_variables is None else trainable_variables
        grads = [
            segment_sum(g.values, g.indices, v.shape[0]) if isinstance(g, tf.IndexedSlices) else g
            for g, v in zip(grads, variables)
        ]
        return base.apply(self, grads, trainable_variables)

    dense = type(f"DenseGradient{base.__name__}", (base,), {"apply": apply})
    return dense(learning_rate=learning_rate, clipnorm=clipnorm)


def compile_model(model, train_params, optimizer=None) -> None:
    """The configured optimizer (see ``make_optimizer``; ``optimizer``: another, e.g. Keras' own for a benchmark
    row), binary cross-entropy, accuracy.

    The accuracy metric is made here, not named (``"accuracy"``): Keras makes a named metric inside the
    first trace of the training step, and a variable made there makes TensorFlow trace the whole step
    a second time, for nothing (docs/performance.md)."""
    import keras

    if optimizer is None:
        optimizer = make_optimizer(train_params.optimizer, train_params.learning_rate, train_params.clipnorm)
    accuracy = keras.metrics.BinaryAccuracy(name="accuracy")
    model.compile(optimizer=optimizer, loss="binary_crossentropy", metrics=[accuracy])


def inference_copy(model, variant: str, model_params):
    """The model as Keras builds it from the params, with the trained weights: what is saved and logged.

    Standard layers only (no ``UnrolledSimpleRNN``; Keras' own loop, as Keras' unrolled path gets
    masked ``Bidirectional`` layers wrong), any sequence length, no optimizer or compile settings:
    the file loads anywhere (safe mode, the other backend, MLflow) without this package.
    """
    copy = build_model(variant, model_params)
    copy.set_weights(model.get_weights())
    return copy


def served_model(variant: str, model_params, seed_models: dict, selected_seed: int):
    """What the variant serves (``models/<variant>/model.keras``, predict, the registry): the selected
    seed's model, or with ``serve: ensemble`` one model that averages every seed's probabilities.

    The ensemble is a functional model: the ids go to a copy of each seed's inference model (named
    ``seed_<s>``) and an ``Average`` layer takes the mean. Standard layers only, so it loads in safe
    mode without this package and the registered raw-text model stays one pyfunc.
    """
    if model_params.serve == "best_seed":
        return seed_models[selected_seed]
    import keras

    ids = keras.Input(shape=(None,), dtype="int32", name="ids")
    outputs = []
    for seed, model in seed_models.items():
        copy = build_model(f"seed_{seed}", model_params)
        copy.set_weights(model.get_weights())
        outputs.append(copy(ids))
    return keras.Model(ids, keras.layers.Average(name="mean_probability")(outputs), name=variant)


def count_params(model_params) -> int:
    """Parameters of the variant's model, from the settings alone (checked against Keras in the tests).

    Per direction and layer: SimpleRNN ``u (w + u + 1)``, LSTM 4 gates of that, GRU 3 gates with two
    biases each (Keras' ``reset_after``)."""
    m = model_params
    directions = 2 if m.bidirectional else 1
    total, width = (m.max_features + m.bigram_buckets) * m.embedding_dim, m.embedding_dim
    for _ in range(m.layers):
        gates, biases = {"simple": (1, 1), "gru": (3, 2), "lstm": (4, 1)}[m.cell]
        total += directions * gates * m.units * (width + m.units + biases)
        width = directions * m.units
    head_in = width * (2 if m.pooling == "max_mean" else 1)
    return total + head_in + 1


def param_counts(model) -> dict[str, int]:
    """Parameters by part: ``embedding`` (words and pairs), ``recurrent`` (every recurrent layer), ``head``
    (Dense), ``total``."""
    import keras

    counts = {"embedding": 0, "recurrent": 0, "head": 0}
    for layer in model.layers:
        if isinstance(layer, keras.layers.Embedding):
            counts["embedding"] += layer.count_params()
        elif isinstance(layer, (keras.layers.RNN, keras.layers.Bidirectional)):
            counts["recurrent"] += layer.count_params()
        elif isinstance(layer, keras.layers.Dense):
            counts["head"] += layer.count_params()
    counts["total"] = model.count_params()
    return counts


def summary_text(model) -> str:
    """``model.summary()`` as text (the lesson's table), to save beside the model."""
    buf = io.StringIO()
    model.summary(print_fn=lambda line, **_: buf.write(line + "\n"), line_length=80)
    return buf.getvalue()


def load_model(path):
    """Load a saved ``.keras`` model in Keras' safe mode (no code in the file runs), with a clear error."""
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
