"""The benchmark's figures from recorded fits (bench/benchmark_report.py): the whole fit, its extrapolation to
params.yaml's epochs, the steady epoch, and what lies outside the epochs, on fits with known timings."""

from __future__ import annotations

import sys

import pytest

from support.commands import REPO_ROOT

sys.path.insert(0, str(REPO_ROOT / "bench"))
from benchmark_report import summarize  # noqa: E402


def fit(seed: int, fit_s: float, epochs: list[float], best: float | None = 0.85, diverged: str | None = None) -> dict:
    """A harness line as a benchmark fit records it."""
    history = [{"epoch": i + 1, "seconds": s, "val_accuracy": 0.8} for i, s in enumerate(epochs)]
    return {"seed": seed, "fit_s": fit_s, "history": history, "best_val_accuracy": best, "diverged": diverged,
            "process_s": fit_s + 7, "process_mb": 900 + seed, "train_reviews": 64, "val_reviews": 16}  # fmt: skip


def test_the_whole_fit_and_its_extrapolation_from_known_timings():
    """Steady: the median of the later epochs [2, 2, 2, 3] = 2; at 10 epochs each fit adds its 7 missing
    epochs at 2 s: (10 + 14 + 12 + 14) / 2 = 25."""
    s = summarize([fit(42, 10.0, [4, 2, 2]), fit(43, 12.0, [6, 2, 3], best=0.65)], epochs_target=10)
    assert s["whole_s"] == 11.0
    assert s["steady_s"] == 2.0 and s["steady_mean_s"] == 2.25
    assert s["at_target_s"] == 25.0
    assert s["first_s"] == 5.0
    assert s["outside_s"] == 1.5  # (10 - 8 + 12 - 11) / 2: build, compile, fit set-up
    assert s["peak_mb"] == 943 and s["process_s"] == 18.0
    assert s["best"] == [0.85, 0.65] and s["collapsed"] == 1


def test_a_diverged_fit_extrapolates_from_the_epochs_it_ran():
    """Seed 43 stopped after 2 of 3 epochs: its missing 8 epochs at the steady 2 s give 9 + 16 = 25."""
    s = summarize([fit(42, 10.0, [4, 2, 2]), fit(43, 9.0, [6, 2], best=None, diverged="loss is nan")], 10)
    assert s["at_target_s"] == pytest.approx((10 + 14 + 9 + 16) / 2)
    assert s["diverged"] == 1 and s["best"] == [0.85]


def test_the_profile_of_a_whole_fit_adds_up_and_names_its_floor():
    """Pipeline: 10 s fit of epochs [4, 2, 2]: set-up 2 s, first 4 s (2 s over the steady 2 s), at 10 epochs
    24 s, so 18 s of later epochs. Plain: 40 s fit of [10, 10, 10], 110 s at 10 epochs; the target allows
    27.5 s; 10 epochs at the steady pace are 20 s, 0.18x of plain."""
    from benchmark_report import profile

    arm = summarize([fit(42, 10.0, [4, 2, 2])], epochs_target=10)
    plain = summarize([fit(42, 40.0, [10, 10, 10])], epochs_target=10)
    part = profile(arm, plain, 10)
    assert part["outside_s"] + part["first_s"] + part["later_s"] == part["fit_s"] == 24.0
    assert part["tracing_s"] == 2.0 and part["allowed_s"] == 27.5
    assert part["floor"] == pytest.approx(20 / 110)
