"""What does a gated cell buy over the lesson's SimpleRNN, and what does it cost? `make cells`.

The lesson's simple_rnn variant as `dvc repro` trains it (Embedding(10000, 32), SimpleRNN(32), the
padding masked, unrolled) against the same model with Keras' GRU and LSTM cells at the same size, on
the same data with the same train settings, except that the gated cells train on Keras' loop with
length buckets (`unroll: false, bucketing: true`: the unrolled fast path is SimpleRNN's). A control
row, the SimpleRNN on that same bucketed path, tells what the cell changes from what the training path
changes. Each seed is one fit in a fresh process (bench/harness.py), seeds outermost (the control's
after every cell's), and its kept model (the best validation epoch's weights) is scored on the test
set as the evaluate stage scores a seed. Every finished fit is appended to reports/cells.jsonl, so a
stopped run resumes where it stopped; reports/cells.md gives per cell the test and best validation
accuracy, the epoch and whole-fit times and the parameters, and what each gated cell buys and costs
against the SimpleRNN.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
import warnings
from dataclasses import dataclass, field, replace
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT / "bench"))

from benchmark_report import table  # noqa: E402
from harness import (  # noqa: E402
    COLLAPSED_BELOW,
    FitSpec,
    missing_seeds,
    newest_fits,
    read_results,
    recorded_machine,
    run_fits,
)

from imdb_rnn import stats  # noqa: E402
from imdb_rnn.config import load_params  # noqa: E402
from imdb_rnn.errors import run_cli  # noqa: E402
from imdb_rnn.files import write_text  # noqa: E402
from imdb_rnn.machine import machine_lines  # noqa: E402

VARIANT = "simple_rnn"
BUCKETED = {"unroll": False, "bucketing": True}  # the path a gated cell needs (config refuses unroll: true)
EQUIVALENCE_MARGIN = 0.01  # a gated cell "as accurate as" the SimpleRNN: test accuracies within this (TOST)
# scipy's t-test on seeds with (nearly) equal accuracies: the verdict then says "not testable" or not significant
warnings.filterwarnings("ignore", "Precision loss occurred", RuntimeWarning)


@dataclass(frozen=True)
class Row:
    name: str
    cell: str
    train: dict = field(default_factory=dict)
    why: str = ""
    control: bool = False  # trained after every cell's seeds: a stopped run has the cells first


ROWS = (
    Row("simple", "simple", why="the lesson's SimpleRNN as `dvc repro` trains it: unrolled, fixed-length batches"),
    Row("gru", "gru", BUCKETED, "Keras' GRU (reset_after, as Keras builds it) on Keras' loop, length buckets"),
    Row("lstm", "lstm", BUCKETED, "Keras' LSTM on Keras' loop, length buckets"),
    Row(
        "simple bucketed",
        "simple",
        BUCKETED,
        "control: the SimpleRNN on the gated cells' path (Keras' loop, length buckets): the path's share",
        control=True,
    ),
)
BASE, CONTROL = ROWS[0], ROWS[-1]


def spec_for(row: Row, seed: int, args) -> FitSpec:
    """One seed of ``row``: the variant with ``cell`` and the row's training path; its kept model scored on test."""
    train = {**row.train, **({"epochs": args.epochs} if args.epochs else {})}
    return FitSpec(
        args.variant, [seed], label=row.name, train=train, model={"cell": row.cell}, limit=args.limit, test=True
    )


def run_missing(rows: list[Row], args, results_file: Path) -> None:
    """Fit every (row, seed) not yet recorded, one process each: the cells seed by seed, then the control's seeds."""
    for group in ([r for r in rows if not r.control], [r for r in rows if r.control]):
        for seed in args.seed_list:
            for row in group:
                if not missing_seeds(spec_for(row, seed, args), read_results(results_file)):
                    continue
                print(f"--- {row.name}, {args.variant}, seed {seed}", file=sys.stderr, flush=True)
                outcome = run_fits(spec_for(row, seed, args), results_file)
                if outcome["exit"]:
                    print(f"--- {row.name}, seed {seed} exited {outcome['exit']}; rerun to retry", file=sys.stderr)


def fits_of(row: Row, args, results: list[dict]) -> list[dict]:
    """The row's recorded fits, the newest per seed (whatever code they ran: see ``commit``)."""
    return newest_fits(results, row.name, "default", args.seed_list)


def test_accuracy(fit: dict) -> float | None:
    return (fit.get("test") or {}).get("test_accuracy")


def figures(fits: list[dict]) -> dict:
    """One row's figures over its seeds. First epoch: the mean over seeds (graph tracing included); steady epoch: the
    median of every later epoch of every seed; whole fit: build + compile + every epoch, mean over seeds."""
    epochs = [[r["seconds"] for r in f["history"]] for f in fits if f["history"]]
    steady = [s for e in epochs for s in e[1:]]
    best = [f["best_val_accuracy"] for f in fits if f["best_val_accuracy"] is not None]
    return {
        "fits": len(fits),
        "test": [a for a in map(test_accuracy, fits) if a is not None],
        "best": best,
        "collapsed": sum(b < COLLAPSED_BELOW for b in best),
        "diverged": sum(f["diverged"] is not None for f in fits),
        "first_s": statistics.mean(e[0] for e in epochs) if epochs else None,
        "steady_s": statistics.median(steady) if steady else None,
        "fit_s": statistics.mean(f["fit_s"] for f in fits) if fits else None,
        "parameters": sorted({f["test"]["parameters"] for f in fits if f.get("test")}),
    }


def interval(values: list[float]) -> str:
    if not values:
        return "-"
    s = stats.summarize(values)
    return stats.format_interval(s["mean"], s["ci95_low"], s["ci95_high"])


def seconds(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}"


def path_words(row: Row, train_params) -> str:
    """How the row trains: unrolled, or Keras' loop (with length buckets)."""
    t = replace(train_params, **row.train)
    return "unrolled" if t.unroll else "Keras' loop" + (", length buckets" if t.bucketing else "")


def summary_table(rows: list[Row], figs: dict, train_params) -> list[str]:
    header = [
        "cell",
        "path",
        "fits",
        "test acc [95% CI]",
        "best val acc [95% CI]",
        "first epoch s",
        "steady epoch s",
        "whole fit s",
        "parameters",
        "diverged",
        "collapsed",
    ]
    body = []
    for row in rows:
        fig = figs[row.name]
        if fig["fits"]:
            parameters = ", ".join(f"{p:,}" for p in fig["parameters"]) or "-"
            body.append(
                [
                    f"`{row.name}`",
                    path_words(row, train_params),
                    str(fig["fits"]),
                    interval(fig["test"]),
                    interval(fig["best"]),
                    seconds(fig["first_s"]),
                    seconds(fig["steady_s"]),
                    seconds(fig["fit_s"]),
                    parameters,
                    str(fig["diverged"]),
                    str(fig["collapsed"]),
                ]
            )
    return table(header, body)


def seed_table(rows: list[Row], args, results: list[dict]) -> list[str]:
    header = [
        "cell",
        "seed",
        "test acc",
        "best val acc",
        "kept epoch",
        "first epoch s",
        "steady epoch s (median)",
        "whole fit s",
        "test scoring s",
        "load avg start/end",
    ]
    body = []
    for row in rows:
        for f in fits_of(row, args, results):
            e = [r["seconds"] for r in f["history"]]
            acc, best, test = test_accuracy(f), f["best_val_accuracy"], f.get("test") or {}
            body.append(
                [
                    f"`{row.name}`",
                    str(f["seed"]),
                    "-" if acc is None else f"{acc:.4f}",
                    "-" if best is None else f"{best:.4f}",
                    str(f.get("kept_epoch") or "-"),
                    seconds(e[0] if e else None),
                    seconds(statistics.median(e[1:]) if e[1:] else None),
                    seconds(f["fit_s"]),
                    seconds(test.get("test_s")),
                    "/".join(f"{x:.1f}" for x in f.get("load_1min", [])) or "-",
                ]
            )
    return table(header, body)


def ratio(value: float | None, base: float | None) -> str:
    return "-" if value is None or not base else f"{value / base:.2f}x"


def mean_difference(a: list[float], b: list[float]) -> float:
    return statistics.mean(a) - statistics.mean(b)


def p_cell(p: float) -> str:
    return "-" if p != p else f"{p:.3g}" + (" (significant)" if p < stats.SIGNIFICANCE else "")


def comparison_row(name: str, fig: dict, base_name: str, base: dict) -> list[str]:
    """A row against a SimpleRNN row: test and best val accuracy differences (Welch; TOST for test), time ratios."""
    t = stats.tost(fig["test"], base["test"], EQUIVALENCE_MARGIN)
    equivalent = "not testable" if t["p"] != t["p"] else "yes" if t["p"] < stats.SIGNIFICANCE else "no"
    if t["p"] == t["p"]:
        equivalent += f" (p = {t['p']:.3g}, 90% CI [{t['low']:+.4f}, {t['high']:+.4f}])"
    parameters = fig["parameters"][:1], base["parameters"][:1]
    return [
        f"`{name}` vs `{base_name}`",
        f"{len(fig['test'])} vs {len(base['test'])}",
        f"{t['difference']:+.4f}",
        p_cell(stats.welch_p(fig["test"], base["test"])),
        equivalent,
        f"{mean_difference(fig['best'], base['best']):+.4f}",
        p_cell(stats.welch_p(fig["best"], base["best"])),
        *(ratio(fig[key], base[key]) for key in ("first_s", "steady_s", "fit_s")),
        ratio(parameters[0][0], parameters[1][0]) if parameters[0] and parameters[1] else "-",
    ]


def verdict_line(name: str, figs: dict) -> str:
    """What a gated cell buys against the SimpleRNN as `dvc repro` trains it, what it costs, and the cell's share."""
    fig, base, control = figs[name], figs[BASE.name], figs[CONTROL.name]
    line = (
        f"- `{name}`: {mean_difference(fig['test'], base['test']):+.4f} test accuracy against `{BASE.name}` "
        f"({statistics.mean(fig['test']):.4f} vs {statistics.mean(base['test']):.4f}), "
        f"{stats.welch_verdict(fig['test'], base['test'])}; "
        f"{stats.equivalence_verdict(fig['test'], base['test'], EQUIVALENCE_MARGIN)}. It takes "
        f"{ratio(fig['fit_s'], base['fit_s'])} the whole fit's time ({ratio(fig['steady_s'], base['steady_s'])} the "
        f"steady epoch's) with {ratio(fig['parameters'][0], base['parameters'][0])} the parameters."
    )
    if control["test"]:
        line += (
            f" Against `{CONTROL.name}` (the same path, so the cell alone): "
            f"{mean_difference(fig['test'], control['test']):+.4f}, "
            f"{stats.welch_verdict(fig['test'], control['test'])}, in {ratio(fig['fit_s'], control['fit_s'])} "
            "its whole fit's time."
        )
    return line


def verdict_lines(figs: dict) -> list[str]:
    """Per gated cell, a verdict against the SimpleRNN as `dvc repro` trains it; then every comparison's figures,
    the gated cells against the control (the same path) and the control against the SimpleRNN (the path alone)."""
    gated = [r.name for r in ROWS if r.cell != "simple" and figs[r.name]["test"]]
    lines = ["## Verdict: what a gated cell buys and costs", ""]
    if not figs[BASE.name]["test"] or not gated:
        return lines + ["- not yet: no test accuracies of a gated cell and of `simple` to compare", ""]
    lines += [verdict_line(name, figs) for name in gated]
    pairs = [(name, BASE.name) for name in gated]
    if figs[CONTROL.name]["test"]:
        pairs += [(name, CONTROL.name) for name in gated] + [(CONTROL.name, BASE.name)]
    header = ["comparison", "seeds", "test acc diff", "Welch p (test)", f"equivalent within +-{EQUIVALENCE_MARGIN}"]
    header += ["best val acc diff", "Welch p (val)", "first epoch", "steady epoch", "whole fit", "parameters"]
    rows = [comparison_row(a, figs[a], b, figs[b]) for a, b in pairs]
    return lines + [
        "",
        *table(header, rows),
        "",
        f"Differences are means over seeds, first minus second; times and parameters are ratios, first over second. "
        f"Welch's t-test over seeds at p < {stats.SIGNIFICANCE}: not significant says only that these seeds cannot "
        f"tell the two apart; equivalence (two one-sided tests, TOST) shows the test accuracy difference lies within "
        f"+-{EQUIVALENCE_MARGIN}. {len(rows)} comparisons, each at {stats.SIGNIFICANCE} with no correction for "
        "multiplicity: a single p a little under it is weak evidence. The times are this report's own fits on the "
        "machine above, under its load.",
        "",
    ]


def settings_lines(args, params, shown: list[dict]) -> list[str]:
    m, t = params.model(args.variant), params.train_for(args.variant)
    reviews = sorted({(f["train_reviews"], f["val_reviews"], (f.get("test") or {}).get("test_reviews")) for f in shown})
    commits = sorted({f["commit"] for f in shown})
    loads = [x for f in shown for x in f.get("load_1min", [])]
    epochs = args.epochs or t.epochs
    return [
        "## Settings",
        "",
        f"- `{args.variant}` of params.yaml: Embedding({m.max_features}, {m.embedding_dim}), {m.layers} x "
        f"{m.units} units, mask_padding {m.mask_padding}, pooling {m.pooling}, bidirectional {m.bidirectional}; "
        f"{epochs} epochs, batch {t.batch_size}, {t.optimizer} lr {t.learning_rate:g}, clipnorm {t.clipnorm}, "
        f"restore_best {t.restore_best}, early_stopping_patience {t.early_stopping_patience}, "
        f"deterministic {t.deterministic}, backend {t.backend}",
        f"- every row: that variant with `cell` set; the rows on length buckets add `train: {BUCKETED}`",
        f"- seeds {', '.join(map(str, args.seed_list))}, each fit in a fresh process; reviews (train, validation, "
        f"test): {'; '.join(', '.join(map(str, r)) for r in reviews) or '-'}",
        "- test accuracy: the kept model (best validation epoch) as the evaluate stage scores a seed (its inference "
        "copy, every test review at maxlen, positive at >= 0.5); best val acc: the best epoch's validation accuracy",
        "- first epoch includes graph tracing; steady epoch: the median of the later epochs of every seed; whole fit: "
        "build + compile + every epoch (validation included), mean over seeds; test scoring is not in it",
        f"- {len(shown)} fits, {sum(f['fit_s'] for f in shown) / 3600:.2f} h of training; load average (1 min) at "
        f"the fits' starts and ends: {min(loads):.1f} - {max(loads):.1f}"
        if loads
        else f"- {len(shown)} fits",
        f"- code of commit(s) {', '.join(commits) or '-'}",
        *(
            [f"- **partial run**: {args.limit or 'all'} training reviews, {epochs} epochs: not the reference"]
            if args.limit or args.epochs
            else []
        ),
        "",
    ]


def render(args, params, results: list[dict]) -> str:
    figs = {row.name: figures(fits_of(row, args, results)) for row in ROWS}
    shown = [f for row in ROWS for f in fits_of(row, args, results)]
    return "\n".join(
        [
            "# Reference cells: SimpleRNN, GRU and LSTM at the same size",
            "",
            __doc__.split("\n\n")[1].strip().replace("\n", " "),
            "",
            *machine_lines([recorded_machine(f) for f in shown]),
            *settings_lines(args, params, shown),
            "## Rows",
            "",
            *(f"- `{row.name}`: {row.why}" for row in ROWS),
            "",
            "## Per cell",
            "",
            *summary_table(list(ROWS), figs, params.train_for(args.variant)),
            "",
            "## Per seed",
            "",
            *seed_table(list(ROWS), args, results),
            "",
            *verdict_lines(figs),
        ]
    )


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--variant", default=VARIANT, help="the params.yaml variant whose cell is changed")
    parser.add_argument("--seeds", type=int, nargs="+", help="seeds (default: the variant's train.seeds)")
    parser.add_argument("--rows", nargs="+", choices=[r.name for r in ROWS], help="train only these rows")
    parser.add_argument("--limit", type=int, help="quick trial: N training, N/4 validation and N test reviews")
    parser.add_argument("--epochs", type=int, help="quick trial: epochs per fit instead of params.yaml's")
    parser.add_argument("--report-only", action="store_true", help="write the report from the recorded fits")
    parser.add_argument("--out", type=Path, help="report (default reports/cells.md; -partial with --limit/--epochs)")
    args = parser.parse_args(argv)
    partial = bool(args.limit or args.epochs)
    out = args.out or ROOT / "reports" / ("cells-partial.md" if partial else "cells.md")
    results_file = out.with_suffix(".jsonl")

    def run() -> None:
        params = load_params(ROOT / "params.yaml")
        params.model(args.variant)  # an unknown variant: one line naming the known ones
        args.seed_list = args.seeds or list(params.train_for(args.variant).seeds)
        start = time.perf_counter()
        if not args.report_only:
            results_file.parent.mkdir(parents=True, exist_ok=True)
            run_missing([r for r in ROWS if not args.rows or r.name in args.rows], args, results_file)
        write_text(out, render(args, params, read_results(results_file)))
        print(f"wrote {out} ({time.perf_counter() - start:.0f} s)", file=sys.stderr)

    return run_cli(run, interrupted="cells benchmark stopped; finished seeds are kept, rerun to resume")


if __name__ == "__main__":
    sys.exit(main())
