"""Do the default variants train without diverging or collapsing, whatever the rounding? `make stability`.

Another CPU changes TensorFlow's floating-point rounding, and so do the thread count and oneDNN: a
default that trains on one machine may diverge on the next. This trains every default variant of
params.yaml at full length, as the train stage trains it, over several seeds under several numerics
settings, plus rows that test the proof itself: the stack at twice its learning rate, the stack
without gradient clipping, and a control, the code and defaults of an earlier revision (does the
benchmark catch what another CPU caught?). Every finished seed is appended to
reports/stability.jsonl, so a stopped run resumes where it stopped; the report,
reports/stability.md, counts diverged and collapsed fits and gives the spread of best validation
accuracy and the time taken.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT / "bench"))

from harness import (  # noqa: E402
    COLLAPSED_BELOW,
    SETTINGS,
    FitSpec,
    missing_seeds,
    newest_fits,
    read_results,
    recorded_machine,
    run_fits,
)

from imdb_rnn import stats  # noqa: E402
from imdb_rnn.config import load_params  # noqa: E402
from imdb_rnn.errors import ImdbRnnError, run_cli  # noqa: E402
from imdb_rnn.files import write_text  # noqa: E402
from imdb_rnn.machine import machine_lines  # noqa: E402

# The last revision before the fix: the lesson's variants without clipping, on the unrolled layer whose
# backward pass ran through the padding (NaN once the recurrent kernel's gain overflowed it).
CONTROL_REVISION = "da5978a"
TARGET_DROP = 0.01  # mean best validation accuracy may be at most this much below the control's


@dataclass(frozen=True)
class Row:
    name: str
    variant: str
    train: dict = field(default_factory=dict)
    code: str | None = None
    why: str = ""


def plan(params) -> list[Row]:
    """Every default variant as params.yaml trains it, then the rows that test the proof."""
    stack = params.train_for("stacked_rnn") if "stacked_rnn" in params.models else None
    rows = [Row(variant, variant, why="the default, as params.yaml trains it") for variant in params.models]
    if stack is not None:
        rows += [
            Row(
                "stacked_rnn 2x lr",
                "stacked_rnn",
                {"learning_rate": 2 * stack.learning_rate},
                why="a margin: twice the default learning rate",
            ),
            Row("stacked_rnn no clipping", "stacked_rnn", {"clipnorm": None}, why="the fixed layer alone"),
        ]
    rows += [
        Row(
            f"control {variant}", variant, code=CONTROL_REVISION, why=f"revision {CONTROL_REVISION}'s code and defaults"
        )
        for variant in ("simple_rnn", "stacked_rnn")
        if variant in params.models
    ]
    return rows


def spec_for(row: Row, setting: str, seeds: list[int], args) -> FitSpec:
    train = dict(row.train)
    if args.epochs:
        train["epochs"] = args.epochs
    return FitSpec(row.variant, seeds, label=row.name, train=train, setting=setting, code=row.code, limit=args.limit)


def run_missing(rows: list[Row], args, results_file: Path) -> None:
    """Fit every (row, setting, seed) not yet in the results file; one process per row and setting."""
    for row in rows:
        for setting in args.settings:
            missing = missing_seeds(spec_for(row, setting, args.seed_list, args), read_results(results_file))
            if not missing:
                continue
            print(f"--- {row.name} [{setting}]: seeds {', '.join(map(str, missing))}", file=sys.stderr, flush=True)
            outcome = run_fits(spec_for(row, setting, missing, args), results_file)
            if outcome["exit"]:
                print(f"--- {row.name} [{setting}] exited {outcome['exit']}; rerun to retry", file=sys.stderr)


def fits_of(row: Row, setting: str, args, results: list[dict]) -> list[dict]:
    """The row's recorded fits in one setting, the newest per seed (whatever code they ran: see ``commit``)."""
    return newest_fits(results, row.name, setting, args.seed_list)


def figures(fits: list[dict]) -> dict:
    """Counts and the spread of best validation accuracy (diverged seeds' best finite epoch included)."""
    best = [f["best_val_accuracy"] for f in fits if f["best_val_accuracy"] is not None]
    return {
        "fits": len(fits),
        "diverged": sum(f["diverged"] is not None for f in fits),
        "no_finite_epoch": sum(f["best_val_accuracy"] is None for f in fits),
        "collapsed": sum(b < COLLAPSED_BELOW for b in best),
        "best": best,
        "summary": stats.summarize(best) if best else None,
        "fit_s": [f["fit_s"] for f in fits],
    }


def accuracy_cell(fig: dict) -> str:
    s = fig["summary"]
    return "-" if s is None else stats.format_interval(s["mean"], s["ci95_low"], s["ci95_high"])


def render(rows: list[Row], args, results: list[dict]) -> str:
    import pandas as pd

    table = []
    for row in rows:
        for setting in SETTINGS:  # every setting with recorded fits, whichever this run trained
            if not fits_of(row, setting, args, results):
                continue
            fig = figures(fits_of(row, setting, args, results))
            diverged_at = [
                f"{f['seed']}: {f['diverged']}" for f in fits_of(row, setting, args, results) if f["diverged"]
            ]
            table.append(
                {
                    "row": row.name,
                    "setting": setting,
                    "code": ", ".join(
                        sorted(
                            {
                                f["commit"][:7] + ("+" if "+" in f["commit"] else "")
                                for f in fits_of(row, setting, args, results)
                            }
                        )
                    ),
                    "fits": fig["fits"],
                    "diverged": fig["diverged"],
                    "collapsed": fig["collapsed"],
                    "best val acc [95% CI]": accuracy_cell(fig),
                    "min - max": f"{min(fig['best']):.4f} - {max(fig['best']):.4f}" if fig["best"] else "-",
                    "fit s (mean)": f"{statistics.mean(fig['fit_s']):.0f}" if fig["fit_s"] else "-",
                    "where it diverged": "; ".join(diverged_at) or "",
                }
            )
    shown = [f for row in rows for setting in SETTINGS for f in fits_of(row, setting, args, results)]
    seconds = sum(f["fit_s"] for f in shown)
    commits = sorted({f["commit"] for f in shown})
    lines = [
        "# Stability: default variants under other numerics",
        "",
        __doc__.split("\n\n")[1].replace("\n", " "),
        "",
        *machine_lines([recorded_machine(f) for f in shown]),
        "## Settings",
        "",
        f"- seeds {', '.join(map(str, args.seed_list))}; settings: "
        + "; ".join(
            f"`{s}` ({' '.join(f'{k}={v}' for k, v in env.items()) or 'as shipped'})" for s, env in SETTINGS.items()
        ),
        f"- each row and setting trains its seeds in one process as the train stage does; collapsed: best validation "
        f"accuracy below {COLLAPSED_BELOW}; a diverged seed keeps its best finite epoch, which counts in the spread",
        f"- {len(shown)} fits, {seconds / 3600:.1f} h of training; code of commit(s) {', '.join(commits)}",
        *(
            [f"- **partial run**: {args.limit} training reviews, {args.epochs or 'params.yaml'} epochs: not the proof"]
            if args.limit or args.epochs
            else []
        ),
        "",
        "## Rows",
        "",
        *(f"- `{row.name}`: {row.why}" for row in rows),
        "",
        "## Fits",
        "",
        pd.DataFrame(table).to_markdown(index=False),
        "",
        *target_lines(rows, args, results),
    ]
    return "\n".join(lines)


def target_lines(rows: list[Row], args, results: list[dict]) -> list[str]:
    """Per default variant over every setting: 0 diverged, 0 collapsed, and mean best val no lower than the
    control's minus TARGET_DROP, compared on the (setting, seed) fits both rows have (a stopped control run
    has fewer)."""
    lines = ["## Targets", ""]
    for row in rows:
        if row.name != row.variant:
            continue
        fits = {(s, f["seed"]): f for s in SETTINGS for f in fits_of(row, s, args, results)}
        if not fits:
            continue
        figs = figures(list(fits.values()))
        verdict = "holds" if not figs["diverged"] and not figs["collapsed"] else "**misses**"
        line = (
            f"- `{row.variant}`: {figs['fits']} fits, {figs['diverged']} diverged, {figs['collapsed']} collapsed "
            f"({verdict}); mean best val acc {statistics.mean(figs['best']):.4f}"
        )
        control_row = next((r for r in rows if r.name == f"control {row.variant}"), None)
        control = {} if control_row is None else {
            (s, f["seed"]): f for s in SETTINGS for f in fits_of(control_row, s, args, results)
        }  # fmt: skip
        both = [k for k in fits if k in control and fits[k]["best_val_accuracy"] and control[k]["best_val_accuracy"]]
        if both:
            ours = statistics.mean(fits[k]["best_val_accuracy"] for k in both)
            theirs = statistics.mean(control[k]["best_val_accuracy"] for k in both)
            holds = "holds" if ours >= theirs - TARGET_DROP else "**misses**"
            line += (
                f"; on the {len(both)} fits the control also has: {ours:.4f} vs {theirs:.4f}, "
                f"{ours - theirs:+.4f} ({holds})"
            )
        else:
            line += "; no control fits to compare"
        lines.append(line)
    return lines + [""]


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=int, default=5, help="seeds per row and setting: train.seeds[0], +1, ...")
    parser.add_argument(
        "--settings", nargs="+", default=["default", "onednn-off"], choices=sorted(SETTINGS), help="numerics settings"
    )
    parser.add_argument("--rows", nargs="+", help="train only these rows (default: every row); the report has all")
    parser.add_argument("--limit", type=int, help="quick trial: N training reviews (a multiple of 4)")
    parser.add_argument("--epochs", type=int, help="quick trial: epochs per fit instead of params.yaml's")
    parser.add_argument("--report-only", action="store_true", help="write the report from the recorded fits")
    parser.add_argument(
        "--out", type=Path, help="report (default reports/stability.md; -partial with --limit/--epochs)"
    )
    args = parser.parse_args(argv)
    partial = bool(args.limit or args.epochs)
    out = args.out or ROOT / "reports" / ("stability-partial.md" if partial else "stability.md")
    results_file = out.with_suffix(".jsonl")

    def run() -> None:
        params = load_params(ROOT / "params.yaml")
        args.seed_list = [params.train.seeds[0] + i for i in range(args.seeds)]
        rows = plan(params)
        chosen = rows
        if args.rows:
            unknown = set(args.rows) - {r.name for r in rows}
            if unknown:
                raise ImdbRnnError(
                    f"unknown rows {', '.join(sorted(unknown))}; known: {', '.join(r.name for r in rows)}"
                )
            chosen = [r for r in rows if r.name in args.rows]
        start = time.perf_counter()
        if not args.report_only:
            run_missing(chosen, args, results_file)
        write_text(out, render(rows, args, read_results(results_file)))
        print(f"wrote {out} ({time.perf_counter() - start:.0f} s)", file=sys.stderr)

    return run_cli(run, interrupted="stability benchmark stopped; finished seeds are kept, rerun to resume")


if __name__ == "__main__":
    sys.exit(main())
