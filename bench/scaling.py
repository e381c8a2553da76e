"""How does training cost grow with review length and data size, on each training path? `make scaling`.

One variant (default stacked_rnn, the lesson's stack of four: the costliest graph to trace) trained for a few
epochs on the two paths the pipeline has: the unrolled graph (`unroll: true`, one set of graph nodes per step
and layer, traced in the first epoch) and Keras' loop on length buckets (`unroll: false, bucketing: true`,
which runs each batch for its own reviews' length, not maxlen). Lengths: data.maxlen 250, 500, 1000 and 2000,
each made by the prepare stage into .bench/prepared/maxlen-N, on every training review; sizes: 25, 50 and
100% of the training reviews (and of the validation ones) at params.yaml's maxlen. One seed per cell, each
fit in a fresh process (bench/harness.py), so its peak memory is its own; a cell the pipeline refuses (its
memory guard) or that fails is reported with its error line. Every finished fit is appended to
reports/scaling.jsonl, so a stopped run resumes; reports/scaling.md gives per cell the first epoch (tracing
included), the steady epoch, a 10-epoch fit (first + 9 steady), peak memory against the guard's estimate,
and the best validation accuracy, and per length which path is cheaper: where the crossover lies.
"""

from __future__ import annotations

import argparse
import functools
import json
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, replace
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT / "bench"))

from benchmark_report import table  # noqa: E402
from harness import FitSpec, missing_seeds, read_results, recorded_machine, run_fits  # noqa: E402

from imdb_rnn import paths  # noqa: E402
from imdb_rnn.config import UNROLL_UP_TO_MAXLEN, load_params  # noqa: E402
from imdb_rnn.errors import ImdbRnnError, run_cli  # noqa: E402
from imdb_rnn.files import file_md5, load_npz, write_text  # noqa: E402
from imdb_rnn.machine import machine_lines  # noqa: E402
from imdb_rnn.memory import training_bytes  # noqa: E402

PATHS = {
    "unrolled": {"unroll": True, "bucketing": False},
    "loop + buckets": {"unroll": False, "bucketing": True},
}
MAXLENS = (250, 500, 1000, 2000)
SHARES = (25, 50, 100)  # % of the training (and validation) reviews, at params.yaml's maxlen
PREPARED = Path(".bench") / "prepared"  # maxlen-N folders (git-ignored), relative to the repository
FIT_EPOCHS = 10  # the whole fit the report extrapolates to: first epoch + 9 steady ones


@functools.cache  # both paths of a cell, and every share at one length, read the same folder
def prepared_at(maxlen: int, archive: Path) -> str:
    """The prepare stage's arrays at ``maxlen`` (params.yaml's other data keys), made again only when the archive
    or those keys changed (what the folder's vocab.json says it was made from); the folder, relative."""
    folder = PREPARED / f"maxlen-{maxlen}"
    data = replace(load_params(ROOT / paths.PARAMS).data, maxlen=maxlen)
    wanted = json.loads(json.dumps({"archive_md5": file_md5(archive), "params": asdict(data)}))
    vocab = ROOT / folder / "vocab.json"
    if vocab.is_file() and json.loads(vocab.read_text(encoding="utf-8"))["source"] == wanted:
        return str(folder)
    raw = yaml.safe_load((ROOT / paths.PARAMS).read_text(encoding="utf-8"))
    raw["data"]["maxlen"] = maxlen
    with tempfile.TemporaryDirectory(prefix="bench-scaling-") as tmp:
        params = Path(tmp) / "params.yaml"
        params.write_text(yaml.safe_dump(raw), encoding="utf-8")
        cmd = [sys.executable, "stages/prepare.py", "--archive", str(archive), "--params", str(params)]
        cmd += ["--out", str(folder), "--report", f"{tmp}/data.json"]
        print(f"--- prepare at maxlen {maxlen}", file=sys.stderr, flush=True)
        if subprocess.run(cmd, cwd=ROOT, stdout=sys.stderr).returncode:
            raise ImdbRnnError(f"prepare at maxlen {maxlen} failed; its error is above")
    return str(folder)


def cells(args, default_maxlen: int) -> list[tuple[int, int]]:
    """(maxlen, share) pairs: every length on all reviews, then the smaller shares at params.yaml's length."""
    return [(n, 100) for n in args.maxlens] + [(default_maxlen, s) for s in args.shares if s != 100]


def label(path: str, maxlen: int, share: int) -> str:
    return f"{path}, maxlen {maxlen}, {share}%"


def spec_for(path: str, maxlen: int, share: int, args, train_reviews: int) -> FitSpec:
    """One seed of ``args.variant`` on ``path`` at ``maxlen`` with ``share``% of the reviews, every epoch run."""
    train = {**PATHS[path], "epochs": args.epochs, "early_stopping_patience": 0}
    limit = None if share == 100 else train_reviews * share // 400 * 4  # divisible by 4: N/4 validation reviews
    return FitSpec(
        args.variant,
        [args.seed],
        label=label(path, maxlen, share),
        train=train,
        data={"maxlen": maxlen},
        prepared=prepared_at(maxlen, args.archive),
        limit=limit,
    )


def run_cell(spec: FitSpec, results_file: Path) -> None:
    """Fit one cell in a fresh process; a fit that exits with an error is recorded with its last error line,
    so the report shows it and a rerun does not repeat it (delete its line to retry)."""
    print(f"--- {spec.label}", file=sys.stderr, flush=True)
    with tempfile.TemporaryFile("w+", encoding="utf-8") as log:
        outcome = run_fits(spec, results_file, log=log)
        log.seek(0)
        lines = [line.rstrip() for line in log if line.strip()]
    print("\n".join(lines[-20:]), file=sys.stderr)
    if outcome["exit"]:
        errors = [line for line in lines if line.startswith("error:")] or lines[-1:] or ["no output"]
        seed = spec.seeds[0]
        failed = {"key": spec.key(seed), "label": spec.label, "seed": seed, "peak_mb": round(outcome["peak_mb"])}
        with open(results_file, "a", encoding="utf-8") as out:
            out.write(json.dumps({**failed, "failed": f"exit {outcome['exit']}: {errors[-1]}"}) + "\n")


def estimate_mb(params, variant: str, maxlen: int, path: str) -> float:
    """The memory guard's estimate (imdb_rnn.memory) for this cell, in MB."""
    train = replace(params.train_for(variant), **PATHS[path])
    cell = replace(params, data=replace(params.data, maxlen=maxlen), train_overrides={variant: train})
    return training_bytes(cell, variant) / 1e6


def figures(fit: dict | None) -> dict | None:
    """First and steady epoch (median of the later ones), the extrapolated 10-epoch fit, peak memory, best val."""
    if fit is None:
        return None
    if fit.get("failed"):
        return {"failed": fit["failed"], "peak_mb": fit["peak_mb"]}
    epochs = [r["seconds"] for r in fit["history"]]
    first = epochs[0] if epochs else None
    steady = statistics.median(epochs[1:]) if len(epochs) > 1 else None
    return {
        "first_s": first,
        "steady_s": steady,
        "fit10_s": None if steady is None else first + (FIT_EPOCHS - 1) * steady,
        "peak_mb": fit["peak_mb"],
        "best": fit["best_val_accuracy"],
        "train_reviews": fit["train_reviews"],
        "diverged": fit.get("diverged"),
    }


def cell_row(path: str, maxlen: int, share: int, fig: dict | None, estimate: float) -> list[str]:
    head = [path, str(maxlen), f"{share}%"]
    if fig is None:
        return [*head, "not measured", *["-"] * 6]
    if "failed" in fig:
        return [*head, f"failed: {fig['failed']}", "-", "-", "-", f"{fig['peak_mb']:.0f}", f"{estimate:.0f}", "-"]
    s = lambda v: "-" if v is None else f"{v:.1f}"  # noqa: E731
    best = "-" if fig["best"] is None else f"{fig['best']:.4f}" + (" (diverged)" if fig["diverged"] else "")
    return [*head, str(fig["train_reviews"]), s(fig["first_s"]), s(fig["steady_s"]), s(fig["fit10_s"]),
            f"{fig['peak_mb']:.0f}", f"{estimate:.0f}", best]  # fmt: skip


def crossover_lines(figs: dict, maxlens: list[int]) -> list[str]:
    """Per length, the cheaper path over a 10-epoch fit and by how much; then where the loop starts to win."""
    lines, cheaper = [], {}
    for n in maxlens:
        a, b = figs.get(("unrolled", n, 100)), figs.get(("loop + buckets", n, 100))
        if a and b and a.get("fit10_s") and b.get("fit10_s"):
            cheaper[n] = "unrolled" if a["fit10_s"] <= b["fit10_s"] else "loop + buckets"
            ratio = b["fit10_s"] / a["fit10_s"]
            lines.append(
                f"- maxlen {n}: {cheaper[n]} is cheaper; loop / unrolled = {ratio:.2f}x over {FIT_EPOCHS} epochs"
            )
        elif a or b:
            failed = [p for p, f in (("unrolled", a), ("loop + buckets", b)) if f and "failed" in f]
            lines.append(f"- maxlen {n}: {' and '.join(failed) or 'one path'} did not finish; no comparison")
    wins = [n for n in cheaper if cheaper[n] == "loop + buckets"]
    if wins:
        lines.append(
            f"- crossover: Keras' loop on length buckets is cheaper from maxlen {min(wins)} on (of those measured)"
        )
    elif cheaper:
        lines.append("- crossover: not reached; the unrolled graph is cheaper at every length measured")
    auto = {n: "unrolled" if n <= UNROLL_UP_TO_MAXLEN else "loop + buckets" for n in cheaper}
    wrong = [n for n in cheaper if auto[n] != cheaper[n]]
    verdict = f"the costlier path at maxlen {wrong}" if wrong else "the cheaper path at every length"
    lines.append(
        f"- `unroll: auto` (params.yaml's default) unrolls a SimpleRNN up to maxlen {UNROLL_UP_TO_MAXLEN} and takes "
        f"the loop on buckets past it: {verdict} measured"
    )
    return lines


def guard_lines(figs: dict, estimates: dict) -> list[str]:
    """Per path, the measured peak against the memory guard's estimate: where the guard is not on the safe side."""
    lines = []
    for path in PATHS:
        ratios = [f["peak_mb"] / estimates[k] for k, f in figs.items() if k[0] == path and f and "failed" not in f]
        if ratios:
            short = [r for r in ratios if r > 1]
            verdict = (
                f"falls short of the peak in {len(short)} of {len(ratios)} cells, by up to {max(short) - 1:.0%}"
                if short
                else "covers every peak"
            )
            lines.append(
                f"- {path}: measured peak / estimate {min(ratios):.2f}x - {max(ratios):.2f}x; the estimate {verdict}"
            )
    return lines


def render(args, params, results: list[dict]) -> str:
    newest = {r["label"]: r for r in results}
    keys = [(p, n, s) for n, s in cells(args, params.data.maxlen) for p in PATHS]
    figs = {k: figures(newest.get(label(*k))) for k in keys}
    shown = [newest[label(*k)] for k in keys if label(*k) in newest and "failed" not in newest[label(*k)]]
    m, t = params.model(args.variant), params.train_for(args.variant)
    header = ["path", "maxlen", "reviews", "train reviews", "first epoch s", "steady epoch s",
              f"{FIT_EPOCHS}-epoch fit s", "peak MB", "guard's estimate MB", "best val acc"]  # fmt: skip
    estimates = {k: estimate_mb(params, args.variant, k[1], k[0]) for k in keys}
    rows = [cell_row(*k, figs[k], estimates[k]) for k in keys]
    return "\n".join(
        [
            "# Scaling: training cost by review length and data size, per training path",
            "",
            __doc__.split("\n\n")[1].strip().replace("\n", " "),
            "",
            *machine_lines([recorded_machine(f) for f in shown]),
            "## Settings",
            "",
            f"- `{args.variant}`: Embedding({m.max_features}, {m.embedding_dim}), {m.layers} x SimpleRNN({m.units}), "
            f"mask_padding {m.mask_padding}, pooling {m.pooling}; batch {t.batch_size}, {t.optimizer} lr "
            f"{t.learning_rate:g}; {args.epochs} epochs, seed {args.seed}, one fresh process per cell",
            "- first epoch: build and graph tracing included; steady epoch: the median of the later epochs; "
            f"{FIT_EPOCHS}-epoch fit: first + {FIT_EPOCHS - 1} x steady (extrapolated); epoch times include validation",
            "- peak MB: the fit process' resident peak; guard's estimate: what imdb_rnn.memory refuses a stage on",
            f"- {len(shown)} fits, {sum(f['fit_s'] for f in shown) / 60:.0f} min of training",
            "",
            "## Cells",
            "",
            *table(header, rows),
            "",
            "## Crossover",
            "",
            *crossover_lines(figs, args.maxlens),
            "",
            "## Memory guard",
            "",
            *guard_lines(figs, estimates),
            "",
        ]
    )


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--variant", default="stacked_rnn", help="the params.yaml variant trained in every cell")
    parser.add_argument("--epochs", type=int, default=3, help="epochs per fit (at least 2: first and steady)")
    parser.add_argument("--maxlens", type=int, nargs="+", default=list(MAXLENS), help="data.maxlen values")
    parser.add_argument("--shares", type=int, nargs="+", default=list(SHARES), help="%% of the reviews, 1-100")
    parser.add_argument("--seed", type=int, help="the fits' seed (default: the variant's first train seed)")
    parser.add_argument("--archive", type=Path, default=ROOT / paths.RAW_ARCHIVE, help="what prepare reads")
    parser.add_argument("--report-only", action="store_true", help="write the report from the recorded fits")
    parser.add_argument("--out", type=Path, default=ROOT / "reports" / "scaling.md", help="the report")
    args = parser.parse_args(argv)
    if args.epochs < 2:
        parser.error("--epochs must be at least 2: the first epoch traces the graph, the others are steady")
    if not all(0 < s <= 100 for s in args.shares) or not all(n > 0 for n in args.maxlens):
        parser.error("--shares are percentages from 1 to 100 and --maxlens positive lengths")
    results_file = args.out.with_suffix(".jsonl")

    def run() -> None:
        params = load_params(ROOT / paths.PARAMS)
        params.model(args.variant)  # an unknown variant: one line naming the known ones
        args.seed = params.train_for(args.variant).seeds[0] if args.seed is None else args.seed
        start = time.perf_counter()
        if not args.report_only:
            folder = prepared_at(params.data.maxlen, args.archive)
            train_reviews = len(load_npz(ROOT / folder / "train.npz")["y"])  # the same reviews at every maxlen
            for maxlen, share in cells(args, params.data.maxlen):
                for path in PATHS:
                    spec = spec_for(path, maxlen, share, args, train_reviews)
                    if missing_seeds(spec, read_results(results_file)):
                        run_cell(spec, results_file)
        write_text(args.out, render(args, params, read_results(results_file)))
        print(f"wrote {args.out} ({time.perf_counter() - start:.0f} s)", file=sys.stderr)

    return run_cli(run, interrupted="scaling benchmark stopped; finished cells are kept, rerun to resume")


if __name__ == "__main__":
    sys.exit(main())
