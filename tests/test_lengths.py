"""Accuracy by review length: every review in one group, the cut ones apart, quartiles in length order,
and accuracies that count what they say."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from imdb_rnn.lengths import CUT, GROUPS, accuracy_by_length, length_groups, review_tokens
from imdb_rnn.text import pad_flat

lengths = st.lists(st.integers(0, 600), min_size=1, max_size=300).map(np.array)


@settings(max_examples=300, deadline=None)
@given(tokens=lengths, maxlen=st.integers(1, 600))
def test_each_review_is_in_one_group_in_length_order_and_the_cut_ones_apart(tokens, maxlen):
    group = length_groups(tokens, maxlen)
    assert group.shape == tokens.shape
    assert set(group.tolist()) <= set(range(len(GROUPS)))
    np.testing.assert_array_equal(group == GROUPS.index(CUT), tokens + 1 > maxlen)  # the start id takes a slot
    fits = group < GROUPS.index(CUT)
    for lower, upper in zip(range(4), range(1, 4)):  # no quartile's review is longer than the next one's
        a, b = tokens[fits & (group == lower)], tokens[fits & (group == upper)]
        if len(a) and len(b):
            assert a.max() < b.min()


@settings(max_examples=200, deadline=None)
@given(tokens=st.sets(st.integers(0, 10_000), min_size=4, max_size=300).map(lambda s: np.array(sorted(s))))
def test_distinct_lengths_split_into_four_near_equal_quartiles(tokens):
    group = length_groups(np.random.default_rng(0).permutation(tokens), 10**6)
    sizes = np.bincount(group, minlength=4)[:4]
    assert sizes.sum() == len(tokens)
    assert sizes.max() - sizes.min() <= 2, sizes


def test_lengths_come_from_prepare_or_else_from_the_padded_ids():
    """Data prepared before lengths were kept: a review that fills maxlen counts as cut."""
    lengths_with_start = np.array([3, 5, 8, 12])  # the start id and 2, 4, 7, 11 tokens
    x = pad_flat(np.arange(1, 1 + lengths_with_start.sum()), lengths_with_start, maxlen=8)
    assert review_tokens({"x": x, "lengths": np.array([2, 4, 7, 11])}, 8).tolist() == [2, 4, 7, 11]
    assert review_tokens({"x": x}, 8).tolist() == [2, 4, 8, 8]  # 7 tokens filled all 8 slots: read as cut
    assert length_groups(np.array([2, 4, 7, 11]), 8).tolist()[2:] == [3, 4]  # with prepare's: 7 tokens fit (q4)


def test_accuracy_by_length_counts_each_groups_reviews():
    tokens = np.array([1, 2, 3, 4, 5, 6, 7, 8, 20, 30])  # maxlen 10: the last two are cut
    y = np.array([1, 0, 1, 0, 1, 0, 1, 0, 1, 0])
    served = np.array([0.9, 0.1, 0.2, 0.4, 0.6, 0.7, 0.8, 0.3, 0.1, 0.9])  # right: 1 1 0 1 1 0 1 1 0 0
    seeds = [served, np.where(y == 1, 0.9, 0.1)]  # the second seed is always right
    table = accuracy_by_length(tokens, 10, y, served, seeds)
    assert table["group"].tolist() == ["q1", "q2", "q3", "q4", "cut"]
    assert table["reviews"].tolist() == [2, 2, 2, 2, 2]
    assert table["label"].tolist() == ["1-2 tokens", "3-4 tokens", "5-6 tokens", "7-8 tokens", "cut (20+ tokens)"]
    assert table["accuracy"].tolist() == [1.0, 0.5, 0.5, 1.0, 0.0]
    assert table["seeds_mean_accuracy"].tolist() == [1.0, 0.75, 0.75, 1.0, 0.5]
    short = accuracy_by_length(np.array([1, 1, 1]), 10, y[:3], served[:3], [served[:3]])
    assert short["group"].tolist() == ["q1"]  # empty groups are left out, not shown as NaN
