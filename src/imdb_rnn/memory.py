"""Will a stage fit in this machine's memory? Refuse up front, naming the key and the estimate.

A length that does not fit is otherwise found minutes in, by the OOM killer, with no message at all.
The estimate is deliberately simple and on the safe side; the figures it rests on are measurements.
"""

from __future__ import annotations

import psutil

from .config import DataParams, Params
from .errors import ConfigError

# The figures below are fitted, on the safe side, to the stack's measured peaks in reports/scaling.md
# (maxlen 250 to 2000, both paths), which reports each cell's peak against this estimate.
# A training process's resident memory before the graph: TensorFlow, Keras, MLflow, the arrays.
BASE_BYTES = 0.8e9
# An unrolled recurrence builds one graph node set per step and layer, kept for the backward pass.
UNROLLED_BYTES_PER_STEP_LAYER = 0.65e6
# Keras' loop (unroll: false) traces its while loop and bucket shapes once (a fixed cost the unrolled
# path's per-step figure covers), then keeps each step's activations: batch x units x 4 bytes, with headroom.
LOOP_BASE_BYTES = 0.3e9
LOOP_BYTES_PER_VALUE = 24
# prepare holds every review's ids several times over (tokens, padded arrays, the compressed copy).
PREPARE_COPIES = 4
REVIEWS = 50_000  # the Large Movie Review Dataset: 25,000 train and 25,000 test reviews
GATES = {"simple": 1, "gru": 3, "lstm": 4}  # a gated cell keeps that many activations per step and unit
# an embedding table's floats: the weights, their (densified) gradient, the optimizer's slots, a checkpoint copy
EMBEDDING_COPIES = 5


def gigabytes(n: float) -> str:
    return f"{n / 1e9:.1f} GB"


def training_bytes(params: Params, variant: str) -> float:
    """Estimated peak memory of training ``variant`` as params.yaml says."""
    model, train, maxlen = params.model(variant), params.train_for(variant), params.data.maxlen
    cells = model.layers * (2 if model.bidirectional else 1) * GATES[model.cell]
    if train.unroll:
        graph = UNROLLED_BYTES_PER_STEP_LAYER * maxlen * cells
    else:
        per_step = LOOP_BYTES_PER_VALUE * train.batch_size * cells * max(model.units, model.embedding_dim)
        graph = LOOP_BASE_BYTES + per_step * maxlen
    pairs = EMBEDDING_COPIES * 4 * model.bigram_buckets * model.embedding_dim  # in BASE_BYTES without pairs
    return BASE_BYTES + graph + pairs + prepare_bytes(params.data) / PREPARE_COPIES


def prepare_bytes(data: DataParams) -> float:
    """Estimated peak memory of `prepare`: every review's padded ids, a few copies of them."""
    return PREPARE_COPIES * REVIEWS * data.maxlen * 4


def require_memory(needed: float, what: str, fix: str) -> None:
    """Refuse when ``needed`` exceeds the memory available now (one line: the estimate and the fix)."""
    available = psutil.virtual_memory().available
    if needed > available:
        raise ConfigError(
            [
                f"{what} needs about {gigabytes(needed)} of memory (an estimate), "
                f"{gigabytes(available)} is available; {fix}"
            ]
        )


def require_training_memory(params: Params, variant: str) -> None:
    model, unrolled = f"models.{variant}", params.train_for(variant).unroll
    require_memory(
        training_bytes(params, variant),
        f"training {variant} ({'unrolled' if unrolled else 'on the loop'}) at data.maxlen {params.data.maxlen} "
        f"with {params.model(variant).layers} layer(s)",
        f"lower data.maxlen, {model}.layers or {model}.bigram_buckets, or "
        + (
            f"set {model}.train.unroll: false (a loop, not one graph per step)"
            if unrolled
            else f"{model}.train.batch_size"
        ),
    )


def require_prepare_memory(data: DataParams) -> None:
    require_memory(prepare_bytes(data), f"prepare at data.maxlen {data.maxlen}", "lower data.maxlen")
