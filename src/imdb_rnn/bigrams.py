"""Word pairs as a second id per step: each token's (previous word, word) pair, hashed to a bucket.

The model computes these ids itself from the token ids (``model.build_model`` applies ``pair_ids``
with ``keras.ops``), so `predict` and the served model derive them exactly as training did, by
construction. The same function runs on NumPy arrays, which is how the tests check it against the
exact formula ``(prev * max_features + word) % (buckets - 1) + 1``; id 0 is padding, nothing else.

The first token of a review (or of what truncation kept) pairs with the padding before it, ``prev =
0``; a batch cut to its longest review (length bucketing) starts with that same padding, so the
ids of a review never depend on its batch. ``prev * max_features`` would overflow int32 (JAX has no
int64 by default), so the product is reduced modulo ``buckets - 1`` in two parts, ``prev = hi *
SPLIT + lo``, each product below 2**31 for any vocabulary up to 1,000,000 words and up to
``config.BIGRAM_BUCKETS_MAX`` buckets.
"""

from __future__ import annotations

from typing import Any

import numpy as np

SPLIT = 1024  # prev = hi * SPLIT + lo: hi < 977 and lo < 1024 for ids below 1,000,000


def pair_ids(ids: Any, max_features: int, buckets: int, xp: Any = np) -> Any:
    """Bucket ids in ``[1, buckets - 1]`` of each step's (previous id, id) pair, 0 at padding (id 0).

    ``ids``: int32 token ids, shape (reviews, steps), each below ``max_features``; ``xp``: ``numpy``
    or ``keras.ops`` (the functions used have the same names and meaning in both).
    """
    modulus = buckets - 1
    first = xp.equal(xp.cumsum(xp.ones_like(ids), axis=1), 1)
    prev = xp.where(first, 0, xp.roll(ids, 1, axis=1))  # the id one step earlier; 0 before the first
    hi = xp.mod(xp.multiply(xp.floor_divide(prev, SPLIT), (SPLIT * max_features) % modulus), modulus)
    lo = xp.mod(xp.multiply(xp.mod(prev, SPLIT), max_features % modulus), modulus)
    hashed = xp.add(xp.mod(xp.add(xp.add(hi, lo), xp.mod(ids, modulus)), modulus), 1)
    return xp.where(xp.equal(ids, 0), 0, hashed)
