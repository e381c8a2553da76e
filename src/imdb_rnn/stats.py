"""Comparisons over seeds: mean, standard deviation, a 95% confidence interval, Welch's t-test, and
equivalence by two one-sided tests; and of two models on the same reviews: the exact McNemar test.

With a handful of seeds the interval uses Student's t distribution (n - 1 degrees of freedom),
and two variants are compared with Welch's t-test, which does not assume equal variances. A
p > 0.05 says only that the seeds cannot tell two variants apart; "as accurate as" is shown by
equivalence: two one-sided Welch tests (TOST) that the difference lies within +-margin.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from scipy import stats

CONFIDENCE = 0.95
SIGNIFICANCE = 0.05


def summarize(values: Sequence[float]) -> dict[str, float]:
    """``mean``, ``std`` (n - 1), ``ci95_low``/``ci95_high`` (t interval; NaN for one value), ``n``."""
    n = len(values)
    if n == 0:
        raise ValueError("no values to summarize")
    mean = math.fsum(values) / n
    if n == 1:
        return {"mean": mean, "std": float("nan"), "ci95_low": float("nan"), "ci95_high": float("nan"), "n": 1}
    std = math.sqrt(math.fsum((v - mean) ** 2 for v in values) / (n - 1))
    half = stats.t.ppf(0.5 + CONFIDENCE / 2, n - 1) * std / math.sqrt(n)
    return {"mean": mean, "std": std, "ci95_low": mean - half, "ci95_high": mean + half, "n": n}


def prefixed(name: str, values: Sequence[float], digits: int = 6) -> dict[str, float | None]:
    """``summarize`` as ``<name>_mean``, ``<name>_std``, ``<name>_ci95_low``, ``<name>_ci95_high``, rounded;
    None where undefined (one value: no spread, no interval), as JSON has no NaN."""
    return {
        f"{name}_{k}": round(v, digits) if math.isfinite(v) else None for k, v in summarize(values).items() if k != "n"
    }


def welch_p(a: Sequence[float], b: Sequence[float]) -> float:
    """Two-sided p-value of Welch's t-test that ``a`` and ``b`` have the same mean (NaN if undefined)."""
    if len(a) < 2 or len(b) < 2:
        return float("nan")
    return float(stats.ttest_ind(a, b, equal_var=False).pvalue)


def welch_verdict(a: Sequence[float], b: Sequence[float]) -> str:
    """Whether the seeds tell ``a`` and ``b`` apart, in the words every report uses: Welch's p at SIGNIFICANCE."""
    p = welch_p(a, b)
    if p != p:
        return "not testable (a side has fewer than 2 seeds, or no spread)"
    if p < SIGNIFICANCE:
        return f"significant (p = {p:.3g})"
    return f"**not significant** (p = {p:.3g}): these seeds cannot tell the two apart"


def tost(a: Sequence[float], b: Sequence[float], margin: float) -> dict[str, float]:
    """Two one-sided Welch tests that mean(a) - mean(b) lies within (-margin, +margin).

    ``difference``; ``p``, the larger of the two one-sided p-values (equivalent when below
    SIGNIFICANCE); ``low``/``high``, the difference's 1 - 2 x SIGNIFICANCE (90%) interval, which lies
    inside +-margin exactly when ``p`` < SIGNIFICANCE. NaN p and interval where a side has fewer than
    two values or neither has any spread.
    """
    sa, sb = summarize(a), summarize(b)
    difference = sa["mean"] - sb["mean"]
    undefined = {"difference": difference, "p": float("nan"), "low": float("nan"), "high": float("nan")}
    if len(a) < 2 or len(b) < 2:
        return undefined
    va, vb = sa["std"] ** 2 / len(a), sb["std"] ** 2 / len(b)
    se = math.sqrt(va + vb)
    if se == 0:
        return undefined
    df = (va + vb) ** 2 / (va**2 / (len(a) - 1) + vb**2 / (len(b) - 1))  # Welch-Satterthwaite
    p_above_low = stats.t.sf((difference + margin) / se, df)  # H0: difference <= -margin
    p_below_high = stats.t.cdf((difference - margin) / se, df)  # H0: difference >= +margin
    half = stats.t.ppf(1 - SIGNIFICANCE, df) * se
    return {
        "difference": difference,
        "p": float(max(p_above_low, p_below_high)),
        "low": difference - half,
        "high": difference + half,
    }


def equivalence_verdict(a: Sequence[float], b: Sequence[float], margin: float) -> str:
    """Whether the seeds show ``a`` as good as ``b`` within +-margin, in the words every report uses."""
    t = tost(a, b, margin)
    if t["p"] != t["p"]:
        return f"{t['difference']:+.4f}: not testable (a side has fewer than 2 seeds, or no spread)"
    interval = f"{t['difference']:+.4f}, 90% CI [{t['low']:+.4f}, {t['high']:+.4f}], TOST p = {t['p']:.3g}"
    if t["p"] < SIGNIFICANCE:
        return f"equivalent within +-{margin:g} ({interval})"
    return f"**not shown equivalent** within +-{margin:g} ({interval})"


def format_interval(mean: float, low: float | None, high: float | None) -> str:
    """``0.8512 [0.8401, 0.8623]``; the mean alone where there is no interval (one seed)."""
    defined = low is not None and high is not None and low == low and high == high
    return f"{mean:.4f} [{low:.4f}, {high:.4f}]" if defined else f"{mean:.4f}"


def mcnemar_p(first_only: int, second_only: int) -> float:
    """Two-sided p-value of the exact McNemar test: two models scored on the same reviews, ``first_only``
    reviews right by the first alone, ``second_only`` by the second alone.

    Paired: the reviews both get right or both get wrong say nothing about which is better, and each
    review is compared with itself, so review difficulty cancels. Under "equally good" each discordant
    review is a fair coin, so the count is Binomial(first_only + second_only, 1/2): exact for any
    count, with no normal approximation and no assumption about the reviews' distribution.
    """
    n = first_only + second_only
    if n == 0:
        return 1.0
    return float(min(1.0, 2 * stats.binom.cdf(min(first_only, second_only), n, 0.5)))
