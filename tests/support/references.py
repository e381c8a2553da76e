"""Reference implementations the library is checked against (the lesson's SimpleRNN as a loop, ...)."""

from __future__ import annotations

import itertools

import numpy as np


def tokenize(text: str) -> list[str]:
    """Tokens of one review through the library's batch tokenizer."""
    from imdb_rnn.text import tokenize_batch

    flat, _ = tokenize_batch([text], workers=1)
    return flat.to_pylist()


def pad(sequences: list[list[int]], maxlen: int, padding: str = "pre", truncating: str = "pre") -> np.ndarray:
    """The library's ``pad_flat`` on lists of ids (to compare with ``keras.utils.pad_sequences``)."""
    from imdb_rnn.text import pad_flat

    lengths = np.fromiter(map(len, sequences), dtype=np.int64, count=len(sequences))
    flat = np.fromiter(itertools.chain.from_iterable(sequences), dtype=np.int32, count=int(lengths.sum()))
    return pad_flat(flat, lengths, maxlen, padding, truncating)


def simple_rnn_reference(
    inputs: np.ndarray, W: np.ndarray, U: np.ndarray, b: np.ndarray, return_sequences: bool = False
) -> np.ndarray:
    """The lesson's SimpleRNN as a plain loop: ``output_t = tanh(W·input_t + U·state_t + b)``.

    ``inputs`` is (timesteps, input_features); the state starts at zeros (Keras stores ``W.T``
    as ``kernel`` and ``U.T`` as ``recurrent_kernel``).
    """
    state_t = np.zeros((W.shape[0],), dtype=np.float64)
    outputs = []
    for input_t in inputs:
        output_t = np.tanh(W @ input_t + U @ state_t + b)
        outputs.append(output_t)
        state_t = output_t
    return np.stack(outputs) if return_sequences else state_t
