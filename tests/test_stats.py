"""Equivalence by two one-sided tests (TOST): what the benchmark's "as accurate as the lesson's script" rests on.
Checked against SciPy's one-sided Welch tests and against the properties any equivalence test must have."""

from __future__ import annotations

import math

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st
from scipy import stats as scipy_stats

from imdb_rnn import stats

accuracies = st.lists(st.floats(0.5, 0.95, allow_nan=False), min_size=2, max_size=10)
margins = st.floats(0.001, 0.1)


def spread(values: list[float]) -> bool:
    return max(values) - min(values) > 1e-6


@pytest.mark.filterwarnings("ignore:Precision loss occurred:RuntimeWarning")  # SciPy's, on a side without spread
@given(accuracies, accuracies, margins)
def test_p_is_the_larger_of_scipys_two_one_sided_welch_tests(a, b, margin):
    assume(spread(a) or spread(b))
    lower = scipy_stats.ttest_ind([x + margin for x in a], b, equal_var=False, alternative="greater").pvalue
    upper = scipy_stats.ttest_ind([x - margin for x in a], b, equal_var=False, alternative="less").pvalue
    assert stats.tost(a, b, margin)["p"] == pytest.approx(max(lower, upper), rel=1e-6, abs=1e-12)


@given(accuracies, accuracies, margins)
def test_equivalent_exactly_when_the_90_percent_interval_lies_within_the_margin(a, b, margin):
    assume(spread(a) or spread(b))
    t = stats.tost(a, b, margin)
    assume(abs(t["p"] - stats.SIGNIFICANCE) > 1e-9)  # not on the boundary, where rounding decides
    assert (t["p"] < stats.SIGNIFICANCE) == (-margin < t["low"] and t["high"] < margin)
    assert t["low"] <= t["difference"] <= t["high"]


@given(accuracies, accuracies, margins, st.floats(-0.3, 0.3))
def test_swapping_the_sides_or_shifting_both_changes_no_verdict(a, b, margin, shift):
    assume(spread(a) or spread(b))
    t = stats.tost(a, b, margin)
    swapped = stats.tost(b, a, margin)
    assert swapped["p"] == pytest.approx(t["p"], rel=1e-9, abs=1e-12)
    assert swapped["difference"] == pytest.approx(-t["difference"], abs=1e-12)
    shifted = stats.tost([x + shift for x in a], [x + shift for x in b], margin)
    assert shifted["p"] == pytest.approx(t["p"], rel=1e-6, abs=1e-9)


@given(accuracies, accuracies, margins, margins)
def test_a_wider_margin_never_makes_equivalence_harder_to_show(a, b, m1, m2):
    assume(spread(a) or spread(b))
    narrow, wide = sorted((m1, m2))
    assert stats.tost(a, b, wide)["p"] <= stats.tost(a, b, narrow)["p"] + 1e-12


def test_equal_samples_are_equivalent_within_a_wide_margin_only():
    """[0.85, 0.86, 0.87] twice: difference 0, standard error 0.00816 on 4 degrees of freedom: t = 1.22 for
    a margin of 0.01 (p = 0.14: not shown), 6.12 for 0.05 (p = 0.0018)."""
    a = [0.85, 0.86, 0.87]
    assert stats.tost(a, a, 0.01)["p"] == pytest.approx(0.144, abs=1e-3)
    assert stats.tost(a, a, 0.05)["p"] == pytest.approx(0.0018, abs=1e-4)
    assert stats.equivalence_verdict(a, a, 0.05).startswith("equivalent within +-0.05 (+0.0000, 90% CI [")
    assert stats.equivalence_verdict(a, a, 0.01).startswith("**not shown equivalent** within +-0.01")


@pytest.mark.parametrize("a, b", [([0.85], [0.85, 0.86]), ([0.85, 0.85], [0.86, 0.86])], ids=["one-seed", "no-spread"])
def test_too_few_seeds_or_no_spread_cannot_be_tested(a, b):
    t = stats.tost(a, b, 0.01)
    assert math.isnan(t["p"]) and math.isnan(t["low"]) and math.isnan(t["high"])
    assert t["difference"] == pytest.approx(sum(a) / len(a) - sum(b) / len(b))
    assert "not testable" in stats.equivalence_verdict(a, b, 0.01)
