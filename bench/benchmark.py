"""Benchmark the pipeline against the lesson's plain script: `python bench/benchmark.py` (`make bench`);
`--quick` for the inner loop (2 seeds, 2 epochs, 2,000 reviews, the lesson variants, prepare timed once).

Measures, in one run:
  * per lesson variant (the plain script's layers), three arms on the same prepared arrays: the lesson's plain
    script (bench/lesson_script.py), the pipeline on the lesson's exact model and optimizer (mask_padding false,
    no clipping), and the pipeline as params.yaml sets it; fits interleaved (plain 42, lesson-exact 42, default
    42, plain 43, ...), each in a fresh process (bench/harness.py), so a drift in machine load lands on every
    arm; per arm the whole fit (first epoch included) and its extrapolation to params.yaml's epochs, first and
    steady epoch, best validation accuracy and its equivalence to the plain script's (TOST, +-0.01), peak memory;
  * the other variants: the pipeline alone, one seed;
  * the default arm's seeds in one process (as the train stage trains them) against one process per seed;
  * prepare on the full archive and a no-op `dvc repro` (bench/stage_times.py);
then writes reports/benchmark.md (reports/benchmark-partial.md for a --quick or --limit run), and beside it
the measurements as JSON, from which `--report-only` renders the report again.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import sys
import tempfile
from dataclasses import replace
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))  # this workspace's code, as the stages use it
sys.path.insert(0, str(ROOT / "bench"))

from benchmark_report import render  # noqa: E402
from harness import FitSpec, lesson_architecture, read_results, run_fits  # noqa: E402
from stage_times import measure_noop_repro, measure_prepare  # noqa: E402

from imdb_rnn import paths  # noqa: E402
from imdb_rnn.config import load_params  # noqa: E402
from imdb_rnn.errors import ImdbRnnError, print_error  # noqa: E402
from imdb_rnn.files import write_text  # noqa: E402
from imdb_rnn.wording import int_arg  # noqa: E402

PREPARED = ROOT / paths.PREPARED
# arm -> (harness kind, model overrides, train overrides); every arm runs exactly --epochs epochs
ARMS = {
    "plain": ("plain", {}, {}),
    "lesson-exact": ("pipeline", {"mask_padding": False}, {"clipnorm": None}),
    "default": ("pipeline", {}, {}),
}
FULL = {"seeds": 5, "epochs": 3, "limit": None, "prepare_runs": 3, "replicates": 3}
QUICK = {"seeds": 2, "epochs": 2, "limit": 2000, "prepare_runs": 1, "replicates": 0}


class BenchError(ImdbRnnError):
    """A measurement could not be taken; the message says why and what to do."""


def arms_for(params, variant: str) -> list[str]:
    """The arms a variant is measured in: all three for the lesson's layers (lesson-exact only where it differs
    from the default), the default alone for the others."""
    if not lesson_architecture(params.model(variant)):
        return ["default"]
    model, train = params.model(variant), params.train_for(variant)
    same = not model.mask_padding and train.clipnorm is None
    return [arm for arm in ARMS if not (arm == "lesson-exact" and same)]


def spec_for(variant: str, arm: str, seeds: list[int], args) -> FitSpec:
    """The harness's fits of ``variant`` in ``arm``: exactly ``args.epochs`` epochs (no early stopping)."""
    kind, model, train = ARMS[arm]
    train = {**train, "epochs": args.epochs, "early_stopping_patience": 0}
    return FitSpec(variant, seeds, label=f"{variant} {arm}", train=train, model=model, kind=kind, limit=args.limit)


def fit(variant: str, arm: str, seeds: list[int], args, results: Path) -> list[dict]:
    """Fit ``seeds`` in one fresh process; their recorded lines, each with the arm and the process' wall time
    and peak memory (interpreter start and data loading included)."""
    print(f"--- {variant}: {arm}, seeds {', '.join(map(str, seeds))}", file=sys.stderr, flush=True)
    before = len(read_results(results))
    outcome = run_fits(spec_for(variant, arm, seeds, args), results)
    if outcome["exit"]:
        raise BenchError(f"the {arm} fit of {variant} failed (exit {outcome['exit']}); its error is above")
    lines = read_results(results)[before:]
    return [{**line, "arm": arm, "process_s": outcome["wall_s"], "process_mb": outcome["peak_mb"]} for line in lines]


def variant_settings(params, variant: str) -> dict:
    """What each arm of ``variant`` trains, in words, and the epochs params.yaml gives it."""
    m, t = params.model(variant), params.train_for(variant)
    settings = {}
    for arm in arms_for(params, variant):
        kind, model, train = ARMS[arm]
        if kind == "plain":
            settings[arm] = (
                f"bench/lesson_script.py: Embedding(10000, 32), {m.layers} x SimpleRNN(32), rmsprop, batch 128"
            )
            continue
        mm, tt = replace(m, **model), replace(t, **train)
        settings[arm] = (
            f"SeedTrainer: Embedding({mm.max_features}, {mm.embedding_dim}), "
            f"{'bidirectional ' if mm.bidirectional else ''}{mm.layers} x SimpleRNN({mm.units}), pooling "
            f"{mm.pooling}, mask_padding {mm.mask_padding}; unroll {tt.unroll}, bucketing {tt.bucketing}, "
            f"{tt.optimizer} lr {tt.learning_rate:g}, clipnorm {tt.clipnorm}, batch {tt.batch_size}, "
            f"deterministic {tt.deterministic}"
        )
    return {"epochs": t.epochs, "arms": settings}


def measure(args, params) -> dict:
    """Every measurement of the run, as the JSON the report renders from."""
    seeds = [params.train.seeds[0] + i for i in range(args.seeds)]
    measured: dict = {
        "settings": {k: v for k, v in vars(args).items() if k in (*FULL, "variants")},
        "seeds": seeds,
        "started": datetime.datetime.now().astimezone().strftime("%Y-%m-%d %H:%M %Z"),
        "load": [os.getloadavg()[0]],
        "variants": {v: variant_settings(params, v) for v in args.variants},
        "prepare": measure_prepare(args.archive.resolve(), args.prepare_runs),
        "repro": measure_noop_repro(),
        "fits": [],
        "replicates": {},
    }
    with tempfile.TemporaryDirectory(prefix="bench-") as tmp:
        results = Path(tmp) / "fits.jsonl"
        for variant in args.variants:
            arms = arms_for(params, variant)
            for seed in seeds if len(arms) > 1 else seeds[:1]:  # interleaved: every arm of a seed, then the next
                for arm in arms:
                    measured["fits"] += fit(variant, arm, [seed], args, results)
            if len(arms) > 1 and args.replicates:
                together = fit(variant, "default", seeds[: args.replicates], args, results)
                apart = [f for f in measured["fits"] if f["variant"] == variant and f["arm"] == "default"]
                measured["replicates"][variant] = {
                    "seeds": args.replicates,
                    "together_s": together[0]["process_s"],
                    "apart_s": sum(f["process_s"] for f in apart[: args.replicates]),
                }
    measured["load"].append(os.getloadavg()[0])
    return measured


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help=f"the inner loop: {QUICK} (any option below overrides)")
    parser.add_argument("--epochs", type=int_arg(2), help="epochs per fit (at least 2; default 3)")
    parser.add_argument("--variants", nargs="+", help="variants of params.yaml (default: all; --quick: the lesson's)")
    parser.add_argument("--seeds", type=int_arg(2), help="fits per arm and variant: train.seeds[0], +1, ... (5)")
    parser.add_argument("--replicates", type=int_arg(0), help="seeds in one process against as many processes (3)")
    parser.add_argument("--limit", type=int_arg(4), help="N train and N/4 validation reviews (divisible by 4)")
    parser.add_argument("--prepare-runs", type=int_arg(1), help="prepare is timed this many times (median; 3)")
    parser.add_argument(
        "--archive", type=Path, default=ROOT / paths.RAW_ARCHIVE, help="the archive prepare reads (data/raw's)"
    )
    parser.add_argument("--out", type=Path, help="report (reports/benchmark.md; -partial with --quick or --limit)")
    parser.add_argument("--report-only", action="store_true", help="render the report from the measurements' JSON")
    args = parser.parse_args(argv)
    for key, value in (QUICK if args.quick else FULL).items():
        if getattr(args, key) is None:
            setattr(args, key, value)
    if args.limit and args.limit % 4:
        parser.error("--limit must be divisible by 4 (train:validation is 4:1)")
    args.out = args.out or ROOT / paths.REPORTS / ("benchmark-partial.md" if args.limit else "benchmark.md")
    return args


def main(argv=None) -> int:
    """Measure everything (or read it back), then print and write the report; 1 on a failed measurement."""
    args = parse_args(argv)
    data = args.out.with_suffix(".json")
    try:
        params = load_params(ROOT / paths.PARAMS)
        if args.report_only:
            measured = json.loads(data.read_text(encoding="utf-8"))
        else:
            lesson = [v for v in params.models if lesson_architecture(params.model(v))]
            args.variants = args.variants or (lesson if args.quick else list(params.models))
            for variant in args.variants:
                params.model(variant)  # unknown name: ConfigError listing the known ones
            if not all((PREPARED / f"{split}.npz").is_file() for split in ("train", "val")):
                raise BenchError(f"no prepared data in {PREPARED}: run `dvc repro prepare` first")
            measured = measure(args, params)
            write_text(data, json.dumps(measured, indent=1))
    except ImdbRnnError as exc:
        print_error(exc)
        return 1
    report = render(measured)
    write_text(args.out, report)
    print(report)
    print(f"wrote {args.out} and {data.name}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
