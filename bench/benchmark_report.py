"""reports/benchmark.md from bench/benchmark.py's measurements: the whole fit first (what a user waits for),
then its parts, the accuracy as equivalence to the plain script, the targets, and the stages.

Rendered from the measurements' JSON alone, so `bench/benchmark.py --report-only` gives the same report.
"""

from __future__ import annotations

import statistics
from collections.abc import Iterator

from harness import COLLAPSED_BELOW, recorded_machine

from imdb_rnn import stats
from imdb_rnn.machine import machine_lines

# Targets (issue 25), on the machine the report names.
FIRST_EPOCH_MAX = 1.0  # pipeline's first epoch (graph tracing included) at most the plain script's
WHOLE_FIT_MAX = 0.25  # whole fit at params.yaml's epochs, pipeline / plain
EQUIVALENCE_MARGIN = 0.01  # best validation accuracy equivalent to the plain script's within this (TOST)
EPOCH_MAX_S = {"best_rnn": 10.0}  # steady epoch of the variants the plain script cannot fit
PREPARE_MAX_S = 10.0
REPRO_MAX_S = 5.0
ARM_NAMES = {"plain": "plain script", "lesson-exact": "pipeline, lesson-exact", "default": "pipeline, default"}


def table(header: list[str], rows: list[list[str]]) -> list[str]:
    """A Markdown table, first column left-aligned, the others right-aligned."""
    align = ["---"] + ["---:"] * (len(header) - 1)
    return ["| " + " | ".join(cells) + " |" for cells in [header, align, *rows]]


def summarize(fits: list[dict], epochs_target: int) -> dict:
    """One arm's figures over its seeds. Whole fit: build + compile + every epoch (the first included), mean
    over seeds; at ``epochs_target``: each fit's whole time plus its missing epochs at the arm's steady epoch;
    steady: the median (and mean) of every later epoch of every seed; peak memory: the largest process."""
    epochs = [[row["seconds"] for row in f["history"]] for f in fits]
    steady = [s for e in epochs for s in e[1:]]
    best = [f["best_val_accuracy"] for f in fits if f["best_val_accuracy"] is not None]
    steady_s = statistics.median(steady)
    return {
        "epochs": max(len(e) for e in epochs),
        "whole_s": statistics.mean(f["fit_s"] for f in fits),
        "at_target_s": statistics.mean(f["fit_s"] + (epochs_target - len(e)) * steady_s for f, e in zip(fits, epochs)),
        "outside_s": statistics.mean(f["fit_s"] - sum(e) for f, e in zip(fits, epochs)),
        "first_s": statistics.mean(e[0] for e in epochs),
        "steady_s": steady_s,
        "steady_mean_s": statistics.mean(steady),
        "process_s": statistics.mean(f["process_s"] for f in fits),
        "peak_mb": max(f["process_mb"] for f in fits),
        "epoch_s": epochs,
        "best": best,
        "seeds": [f["seed"] for f in fits],
        "collapsed": sum(b < COLLAPSED_BELOW for b in best),
        "diverged": sum(f["diverged"] is not None for f in fits),
        "reviews": (fits[0]["train_reviews"], fits[0]["val_reviews"]),
    }


def arms_of(measured: dict) -> dict[str, dict[str, dict]]:
    """variant -> arm -> its summary, in the order measured."""
    out: dict[str, dict[str, dict]] = {}
    for variant, described in measured["variants"].items():
        for arm in described["arms"]:
            fits = [f for f in measured["fits"] if f["variant"] == variant and f["arm"] == arm]
            if fits:
                out.setdefault(variant, {})[arm] = summarize(fits, described["epochs"])
    return out


def ratio(value: float, base: float) -> str:
    return f"{value / base:.2f}x"


def extrapolated(measured: dict, variant: str, arm: dict) -> str:
    """How a whole fit at params.yaml's epochs was had: measured when the run ran them all."""
    return "measured" if arm["epochs"] == measured["variants"][variant]["epochs"] else "extrapolated"


def header_lines(measured: dict) -> list[str]:
    """Title, partial-run warning, machine, settings."""
    s = measured["settings"]
    lines = ["# Benchmark: the lesson's Keras script vs the pipeline", ""]
    if s["limit"]:
        lines += [
            f"**Partial run** ({s['limit']} training reviews, {s['epochs']} epochs, {s['seeds']} seeds): timings and "
            "accuracies do not compare with a full run; the targets are only indicative.",
            "",
        ]
    lines += machine_lines([recorded_machine(f) for f in measured["fits"]])[:-1]
    lines += [
        f"- load average (1 min) at start / end: {measured['load'][0]:.1f} / {measured['load'][-1]:.1f}; "
        f"started {measured['started']}",
        "",
        "## Settings",
        "",
        f"- seeds {', '.join(map(str, measured['seeds']))}, {s['epochs']} epochs a fit, each fit in a fresh process "
        "(bench/harness.py), interleaved: every arm of a seed, then the next seed",
    ]
    for variant, described in measured["variants"].items():
        for arm, text in described["arms"].items():
            lines.append(f"- {variant}, {ARM_NAMES[arm]}: {text}")
    return lines + [
        "- plain fits train + val with validation_split=0.2, which validates on exactly the validation rows",
        "- whole fit: build + compile + every epoch, first (graph tracing) included, mean over seeds; at params.yaml's "
        "epochs: extrapolated with the steady epoch unless the run ran them all; steady epoch: median of the later "
        "epochs of all seeds (the mean too); epoch times include validation; process: the worker's wall time "
        "(interpreter start and data loading included); peak MB: the largest worker's peak RSS",
        f"- best val acc: the best epoch's, mean over seeds [95% CI]; equivalence: two one-sided Welch tests that "
        f"the difference to the plain script lies within +-{EQUIVALENCE_MARGIN} (TOST p < 0.05, equivalently its "
        f"90% CI inside the margin); collapsed: best below {COLLAPSED_BELOW}",
        "",
    ]


def headline_lines(measured: dict, arms: dict) -> list[str]:
    """The whole fit, pipeline against plain, per lesson variant and arm."""
    rows = []
    for variant, by_arm in arms.items():
        if "plain" not in by_arm:
            continue
        plain, epochs = by_arm["plain"], measured["variants"][variant]["epochs"]
        for name, arm in by_arm.items():
            if name == "plain":
                continue
            rows.append(
                [
                    f"{variant}, {ARM_NAMES[name]}",
                    f"{arm['whole_s']:.1f} s vs {plain['whole_s']:.1f} s: {ratio(arm['whole_s'], plain['whole_s'])}",
                    f"{epochs} epochs: {arm['at_target_s']:.0f} s vs {plain['at_target_s']:.0f} s: "
                    f"{ratio(arm['at_target_s'], plain['at_target_s'])} ({extrapolated(measured, variant, arm)})",
                    stats.equivalence_verdict(arm["best"], plain["best"], EQUIVALENCE_MARGIN),
                ]
            )
    if not rows:
        return []
    n = measured["settings"]["epochs"]
    header = ["", f"whole fit, {n} epochs", "whole fit at params.yaml's epochs", "best val acc vs plain"]
    return ["## Headline: whole fits, pipeline vs the plain script", "", *table(header, rows), ""]


def variant_lines(variant: str, by_arm: dict) -> list[str]:
    """Every figure of one variant's arms; ratios against the plain script where it ran."""
    plain = by_arm.get("plain")
    names = list(by_arm)
    header = [""] + [
        c for n in names for c in ([ARM_NAMES[n]] if n == "plain" or not plain else [ARM_NAMES[n], "vs plain"])
    ]
    keys = (
        ("whole_s", "whole fit s"),
        ("at_target_s", "whole fit at params.yaml's epochs s"),
        ("outside_s", "of the whole fit, outside epochs s (build, compile, between epochs)"),
        ("first_s", "first epoch s"),
        ("steady_s", "steady epoch s (median)"),
        ("steady_mean_s", "steady epoch s (mean)"),
        ("process_s", "process s"),
        ("peak_mb", "peak MB"),
    )
    rows = []
    for key, label in keys:
        row = [label]
        for n in names:
            row.append(f"{by_arm[n][key]:.{0 if key == 'peak_mb' else 2}f}")
            if plain and n != "plain":
                row.append(ratio(by_arm[n][key], plain[key]))
        rows.append(row)
    accuracy, counts = ["best val acc [95% CI]"], ["collapsed, diverged"]
    for n in names:
        s = stats.summarize(by_arm[n]["best"]) if by_arm[n]["best"] else None
        accuracy.append(stats.format_interval(s["mean"], s["ci95_low"], s["ci95_high"]) if s else "-")
        counts.append(f"{by_arm[n]['collapsed']}, {by_arm[n]['diverged']} of {len(by_arm[n]['seeds'])}")
        if plain and n != "plain":
            accuracy.append("")
            counts.append("")
    reviews = next(iter(by_arm.values()))["reviews"]
    lines = [f"## {variant}", "", f"{reviews[0]} training / {reviews[1]} validation reviews.", ""]
    lines += [*table(header, rows + [accuracy, counts]), ""]
    for n in names:
        if plain and n != "plain":
            verdict = stats.equivalence_verdict(by_arm[n]["best"], plain["best"], EQUIVALENCE_MARGIN)
            lines.append(f"- {ARM_NAMES[n]} vs plain script, best val acc: {verdict}")
    for n in names:
        arm = by_arm[n]
        per_seed = "; ".join(
            f"{seed}: {' '.join(f'{t:.1f}' for t in e)}" for seed, e in zip(arm["seeds"], arm["epoch_s"])
        )
        lines.append(f"- {ARM_NAMES[n]}, seconds per epoch by seed: {per_seed}")
        lines.append(f"- {ARM_NAMES[n]}, best val acc by seed: {' '.join(f'{b:.4f}' for b in arm['best'])}")
    return lines + [""]


def replicate_lines(measured: dict) -> list[str]:
    """The default arm's seeds in one process (the compiled step built once) against one process each."""
    if not measured["replicates"]:
        return []
    rows = [
        [v, str(r["seeds"]), f"{r['together_s']:.0f}", f"{r['apart_s']:.0f}", ratio(r["together_s"], r["apart_s"])]
        for v, r in measured["replicates"].items()
    ]
    return [
        "## Replicates: seeds in one process vs one process per seed",
        "",
        *table(["variant", "seeds", "one process s", "separate processes s", "one / separate"], rows),
        "",
        "Wall time of the whole processes (interpreter start and data loading included); the separate processes "
        "are the benchmark's own default-arm fits of the same seeds.",
        "",
    ]


def target_row(name: str, measured: str, holds: bool | None) -> list[str]:
    return [name, measured, "-" if holds is None else ("yes" if holds else "**no**")]


def pipeline_arms(measured: dict, arms: dict) -> Iterator[tuple[str, str, dict, dict | None, int]]:
    """Each pipeline arm with what it is held against: (variant, arm name, arm, the plain arm or None, epochs)."""
    for variant, by_arm in arms.items():
        for name, arm in by_arm.items():
            if name != "plain":
                yield variant, name, arm, by_arm.get("plain"), measured["variants"][variant]["epochs"]


def target_lines(measured: dict, arms: dict) -> list[str]:
    """Each target with its measured value, and by how much a missed one misses."""
    rows = []
    for variant, name, arm, plain, epochs in pipeline_arms(measured, arms):
        if plain:
            first = arm["first_s"] / plain["first_s"]
            whole = arm["at_target_s"] / plain["at_target_s"]
            tost = stats.tost(arm["best"], plain["best"], EQUIVALENCE_MARGIN)
            who = f"{variant}, {ARM_NAMES[name]}"
            rows += [
                target_row(
                    f"{who}: first epoch <= {FIRST_EPOCH_MAX:g}x plain", f"{first:.2f}x", first <= FIRST_EPOCH_MAX
                ),
                target_row(
                    f"{who}: whole {epochs}-epoch fit <= {WHOLE_FIT_MAX:g}x plain",
                    f"{whole:.2f}x ({extrapolated(measured, variant, arm)}; {whole / WHOLE_FIT_MAX:.1f}x the target)",
                    whole <= WHOLE_FIT_MAX,
                ),
                target_row(
                    f"{who}: best val acc equivalent to plain within +-{EQUIVALENCE_MARGIN}",
                    f"90% CI [{tost['low']:+.4f}, {tost['high']:+.4f}], TOST p = {tost['p']:.3g}",
                    tost["p"] < stats.SIGNIFICANCE,
                ),
            ]
        if name == "default" and variant in EPOCH_MAX_S:
            limit = EPOCH_MAX_S[variant]
            rows.append(
                target_row(
                    f"{variant}: steady epoch <= {limit:g} s", f"{arm['steady_s']:.1f} s", arm["steady_s"] <= limit
                )
            )
    prepare, repro = measured["prepare"], measured["repro"]
    rows.append(
        target_row(
            f"prepare <= {PREPARE_MAX_S:g} s", f"{prepare['seconds']:.1f} s", prepare["seconds"] <= PREPARE_MAX_S
        )
    )
    if "skipped" in repro:
        rows.append(target_row(f"no-op dvc repro <= {REPRO_MAX_S:g} s", f"skipped: {repro['skipped']}", None))
    else:
        rows.append(
            target_row(
                f"no-op dvc repro <= {REPRO_MAX_S:g} s", f"{repro['seconds']:.1f} s", repro["seconds"] <= REPRO_MAX_S
            )
        )
    return ["## Targets", "", *table(["target", "measured", "holds"], rows), ""]


def profile(arm: dict, plain: dict, epochs: int) -> dict:
    """Where an arm's whole fit at ``epochs`` goes: outside the epochs (build, compile, and between epochs: the
    pipeline calls ``model.fit`` once per epoch, and the plain script's epochs time the gaps in), the first epoch
    (of it, its excess over a steady epoch: graph tracing) and the later epochs, which add up to the fit;
    against the time the whole-fit target allows. ``floor``: every epoch at the steady pace, against the plain
    fit: the ratio that no cut in set-up or tracing gets below."""
    return {
        "fit_s": arm["at_target_s"],
        "allowed_s": WHOLE_FIT_MAX * plain["at_target_s"],
        "outside_s": arm["outside_s"],
        "first_s": arm["first_s"],
        "tracing_s": arm["first_s"] - arm["steady_s"],
        "later_s": arm["at_target_s"] - arm["outside_s"] - arm["first_s"],
        "floor": epochs * arm["steady_s"] / plain["at_target_s"],
    }


def profile_lines(measured: dict, arms: dict) -> list[str]:
    """The whole-fit target's profile per pipeline arm: what the time goes to, and what a fix has to cut."""
    rows, floors = [], []
    for variant, name, arm, plain, epochs in pipeline_arms(measured, arms):
        if plain is None:
            continue
        part = profile(arm, plain, epochs)
        rows.append(
            [
                f"{variant}, {ARM_NAMES[name]}",
                f"{part['fit_s']:.0f} s ({epochs} epochs)",
                f"{part['allowed_s']:.0f} s",
                f"{part['outside_s']:.1f} s",
                f"{part['first_s']:.1f} s ({part['tracing_s']:.1f} s)",
                f"{part['later_s']:.0f} s",
                f"{part['floor']:.2f}x",
            ]
        )
        if part["floor"] > WHOLE_FIT_MAX:
            floors.append(f"{variant}, {ARM_NAMES[name]} ({part['floor']:.2f}x)")
    if not rows:
        return []
    header = ["arm", "whole fit at params.yaml's epochs", f"allowed ({WHOLE_FIT_MAX:g}x plain)", "outside the epochs",
              "first epoch (of it, tracing)", "later epochs", "every epoch at the steady pace, vs plain"]  # fmt: skip
    verdict = (
        f"Every epoch at the steady pace is already over the target for {', '.join(floors)}: cutting what lies "
        "outside the epochs and "
        "tracing cannot meet it there; the steady epoch itself has to get faster."
        if floors
        else "Every epoch at the steady pace is within the target: what is over it lies outside the epochs (build, "
        "compile, between epochs) and in tracing."
    )
    return ["## Where the whole fit's time goes", "", *table(header, rows), "", verdict, ""]


def stage_lines(measured: dict) -> list[str]:
    prepare, repro = measured["prepare"], measured["repro"]
    repro_text = f"skipped: {repro['skipped']}" if "skipped" in repro else f"{repro['seconds']:.1f} s wall"
    runs = ", ".join(f"{t:.1f}" for t in prepare["runs_s"])
    return [
        "## Prepare and no-op repro",
        "",
        f"- prepare (full archive, output to a temp folder): {prepare['seconds']:.1f} s wall (median of {runs} s), "
        f"peak {prepare['peak_mb']:.0f} MB",
        f"- no-op `dvc repro` (nothing changed; the always-changed `track` stage runs): {repro_text}",
        "",
    ]


def render(measured: dict) -> str:
    """The whole Markdown report."""
    arms = arms_of(measured)
    lines = header_lines(measured) + headline_lines(measured, arms)
    for variant, by_arm in arms.items():
        lines += variant_lines(variant, by_arm)
    lines += replicate_lines(measured) + target_lines(measured, arms) + profile_lines(measured, arms)
    lines += stage_lines(measured)
    return "\n".join(lines)
