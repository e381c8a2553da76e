"""Benchmark the pipeline against the lesson's plain script: `python bench/benchmark.py` (`make bench`).

Measures, in one run:
  * per variant, the lesson's Keras script (bench/lesson_script.py) against the pipeline's own
    training path, on the same prepared arrays and seeds (5 by default): epoch times, total time,
    best validation accuracy over seeds (mean, 95% interval, collapsed runs, Welch's t-test), peak memory;
  * the seeds of a variant trained in one process against one process per seed;
  * the prepare stage on the full archive, written to a temp folder (never data/prepared);
  * a no-op `dvc repro`, only when `dvc status` says nothing would run;
then writes reports/benchmark.md (reports/benchmark-partial.md for a `--limit` trial).

Each fit runs in a fresh interpreter (this file with `--worker`): the Keras backend is fixed once
per process, and the process's peak RSS then belongs to that fit alone.
"""

from __future__ import annotations

import argparse
import datetime
import json
import math
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))  # this workspace's code, as the stages use it

from imdb_rnn import paths, stats  # noqa: E402
from imdb_rnn.backend import select_backend  # noqa: E402
from imdb_rnn.config import int_arg, load_params  # noqa: E402
from imdb_rnn.errors import ImdbRnnError, print_error  # noqa: E402
from imdb_rnn.files import load_npz, write_text  # noqa: E402
from imdb_rnn.machine import NOT_INSTALLED, dist_version  # noqa: E402
from imdb_rnn.text import within_vocabulary  # noqa: E402

PREPARED = ROOT / paths.PREPARED
RUNS = {"plain": "plain (lesson)", "pipeline": "pipeline"}
STEADY_RATIO_MAX = 0.5  # pipeline steady epoch at most half the plain one
COLLAPSED_BELOW = 0.70  # best validation accuracy under this: a run that never generalised
PREPARE_MAX_S = 10.0
PREPARE_RUNS = 3  # prepare is timed this many times; the median counts
REPRO_MAX_S = 5.0


class BenchError(ImdbRnnError):
    """A measurement could not be taken; the message says why and what to do."""


def log(message: str) -> None:
    """Progress goes to stderr, so stdout carries only the report."""
    print(message, file=sys.stderr, flush=True)


def rss_mb(ru_maxrss: int) -> float:
    """``ru_maxrss`` in MB: kilobytes on Linux, bytes on macOS."""
    return ru_maxrss / (1024 * 1024 if sys.platform == "darwin" else 1024)


# --- worker: one fit in this fresh process ---------------------------------------------


def every_nth(arrays: dict, n: int) -> dict:
    """``n`` evenly spaced rows: the prepared files are sorted by class, so the first rows are all negative."""
    rows = np.arange(n) * len(arrays["y"]) // n
    return {k: v[rows] for k, v in arrays.items()}


def load_data(limit: int | None, max_features: int) -> tuple[dict, dict]:
    """The prepared train and val arrays in a variant's vocabulary; with ``limit``, N train and N/4 val
    rows (the full 4:1 ratio)."""
    train, val = (within_vocabulary(load_npz(PREPARED / f"{split}.npz"), max_features) for split in ("train", "val"))
    if limit:
        if limit > len(train["y"]) or limit // 4 > len(val["y"]):
            raise BenchError(f"--limit {limit} exceeds the {len(train['y'])} prepared training reviews")
        train, val = every_nth(train, limit), every_nth(val, limit // 4)
    return train, val


def fit_plain(train: dict, val: dict, params, args) -> dict:
    """The lesson script on train + val: its ``validation_split`` then validates on exactly ``val``."""
    import keras
    import lesson_script

    max_features, maxlen = params.model(args.variant).max_features, params.data.maxlen
    if (max_features, maxlen) != (lesson_script.max_features, lesson_script.maxlen):
        raise BenchError(
            f"{args.variant}'s max_features and data.maxlen are {max_features}/{maxlen}, the lesson's "
            f"{lesson_script.max_features}/{lesson_script.maxlen}: the lesson model cannot take this data"
        )
    input_train = np.concatenate([train["x"], val["x"]]).astype(np.int32)  # int32, as pad_sequences returns
    y_train = np.concatenate([train["y"], val["y"]])
    split_at = math.floor(len(y_train) * (1.0 - lesson_script.validation_split))  # Keras: the last rows validate
    if (split_at, len(y_train) - split_at) != (len(train["y"]), len(val["y"])):
        raise BenchError(
            f"validation_split={lesson_script.validation_split} of {len(y_train)} reviews validates on "
            f"{len(y_train) - split_at}, not the {len(val['y'])} of val.npz: rerun `dvc repro prepare` "
            "with data.val_split 0.2 (and use a --limit divisible by 4)"
        )
    keras.utils.set_random_seed(args.seed)
    start = time.perf_counter()
    history = lesson_script.fit_lesson_model(input_train, y_train, params.model(args.variant).layers, args.epochs)
    return {
        "total_s": time.perf_counter() - start,
        "epoch_s": history.history["epoch_seconds"],
        "val_acc": history.history["val_acc"],
    }


def fit_pipeline(train: dict, val: dict, params, args) -> dict:
    """The train stage's own path (``SeedTrainer``: build, compile, fit) with the variant's params.yaml settings;
    with ``--seed-list``, every seed in this one process (the compiled step built once)."""
    from imdb_rnn.fitting import SeedTrainer

    seeds = [int(s) for s in args.seed_list.split(",")] if args.seed_list else [args.seed]
    variant_train = replace(params.train_for(args.variant), epochs=args.epochs, seeds=tuple(seeds))
    params = replace(params, train_overrides={**params.train_overrides, args.variant: variant_train})
    trainer = SeedTrainer(args.variant, params)
    start = time.perf_counter()
    results = [trainer.fit_seed(seed, train, val) for seed in seeds]
    return {
        "total_s": time.perf_counter() - start,
        "epoch_s": [row["seconds"] for row in results[0].history],
        "val_acc": [row["val_accuracy"] for row in results[0].history],
        "seeds": len(seeds),
    }


def worker(args, params) -> None:
    """Choose the backend, fit once, write the measurements as JSON to ``args.result``."""
    select_backend("tensorflow" if args.worker == "plain" else params.train_for(args.variant).backend)
    import keras

    train, val = load_data(args.limit, params.model(args.variant).max_features)
    measured = (fit_plain if args.worker == "plain" else fit_pipeline)(train, val, params, args)
    measured.update(
        backend=keras.backend.backend(),
        devices=keras.distribution.list_devices(),
        train_size=len(train["y"]),
        val_size=len(val["y"]),
        peak_mb=rss_mb(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss),
    )
    Path(args.result).write_text(json.dumps(measured), encoding="utf-8")


# --- parent: run the measurements -------------------------------------------------------


def run_worker(kind: str, variant: str, seed: int, args, seed_list: list[int] | None = None) -> dict:
    """One fit (or, with ``seed_list``, one per seed) in a fresh interpreter; its measurements, with
    the wall time of the whole process (interpreter start and data loading included)."""
    with tempfile.TemporaryDirectory(prefix="bench-") as tmp:
        result = Path(tmp) / "result.json"
        cmd = [
            sys.executable,
            str(Path(__file__).resolve()),
            "--worker",
            kind,
            "--variant",
            variant,
            "--seed",
            str(seed),
            "--epochs",
            str(args.epochs),
            "--result",
            str(result),
        ]
        if seed_list:
            cmd += ["--seed-list", ",".join(map(str, seed_list))]
        if args.limit:
            cmd += ["--limit", str(args.limit)]
        log(f"--- {variant}: {RUNS[kind]}, seeds {','.join(map(str, seed_list or [seed]))}")
        started = time.perf_counter()
        code = subprocess.run(cmd, cwd=ROOT, stdout=sys.stderr).returncode
        if code:
            raise BenchError(f"the {kind} fit of {variant} failed (exit {code}); its error is above")
        return {**json.loads(result.read_text(encoding="utf-8")), "wall_s": time.perf_counter() - started}


def summarize(runs: list[dict]) -> dict:
    """Figures over seeds: steady epoch as the median (and mean) of every later epoch of every
    seed, the others as means; peak memory is the largest; the raw epoch times are kept."""
    steady = [s for r in runs for s in r["epoch_s"][1:]]
    per_run = [{"first_s": r["epoch_s"][0], "total_s": r["total_s"], "wall_s": r["wall_s"]} for r in runs]
    summary = {key: statistics.mean(p[key] for p in per_run) for key in per_run[0]}
    best = [max(r["val_acc"]) for r in runs]
    summary.update(
        steady_s=statistics.median(steady),
        steady_mean_s=statistics.mean(steady),
        peak_mb=max(r["peak_mb"] for r in runs),
        epoch_s=[r["epoch_s"] for r in runs],
        best_acc=stats.summarize(best),
        best_accs=best,
        collapsed=sum(b < COLLAPSED_BELOW for b in best),
    )
    summary.update({key: runs[0][key] for key in ("backend", "devices", "train_size", "val_size")})
    return summary


def run_measured(cmd: list[str]) -> tuple[int, float, float]:
    """Run a child to its end: exit code, wall seconds, its own peak RSS in MB.

    ``os.wait4`` returns this child's rusage alone; ``getrusage(RUSAGE_CHILDREN)`` would give the
    largest of all children so far, the training workers included.
    """
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=sys.stderr)
    _, status, usage = os.wait4(proc.pid, 0)
    seconds = time.perf_counter() - start
    proc.returncode = os.waitstatus_to_exitcode(status)
    return proc.returncode, seconds, rss_mb(usage.ru_maxrss)


def measure_prepare(archive: Path, runs: int = PREPARE_RUNS) -> dict:
    """The prepare stage on the full archive, into a temp folder (the real outputs stay untouched);
    the median of ``runs`` runs, since single runs on a shared machine vary by a quarter."""
    seconds, peaks = [], []
    for i in range(runs):
        log(f"--- prepare (full archive, temp output), run {i + 1} of {runs}")
        with tempfile.TemporaryDirectory(prefix="bench-prepare-") as tmp:
            code, wall, peak_mb = run_measured(
                [
                    sys.executable,
                    "stages/prepare.py",
                    "--archive",
                    str(archive),
                    "--out",
                    f"{tmp}/prepared",
                    "--report",
                    f"{tmp}/data.json",
                ]
            )
        if code:
            raise BenchError(f"prepare failed (exit {code}); its error is above")
        seconds.append(wall)
        peaks.append(peak_mb)
    return {"seconds": statistics.median(seconds), "runs_s": seconds, "peak_mb": max(peaks)}


def measure_noop_repro() -> dict:
    """`dvc repro` with nothing to do; skipped unless `dvc status` is clean, so it never trains."""
    dvc = [sys.executable, "-m", "dvc"]
    log("--- dvc status")
    status = subprocess.run(dvc + ["status", "--json"], cwd=ROOT, capture_output=True, text=True)
    if status.returncode:
        reason = (status.stderr.strip().splitlines() or ["no message"])[-1]
        return {"skipped": f"`dvc status` failed: {reason}"}
    if json.loads(status.stdout or "{}"):
        return {"skipped": "pipeline not up to date"}
    log("--- no-op dvc repro")
    code, seconds, _ = run_measured(dvc + ["repro"])
    if code:
        raise BenchError(f"`dvc repro` failed (exit {code}); its error is above")
    return {"seconds": seconds}


# --- report -----------------------------------------------------------------------------


def table(header: list[str], rows: list[list[str]]) -> list[str]:
    """A Markdown table, first column left-aligned, the others right-aligned."""
    align = ["---"] + ["---:"] * (len(header) - 1)
    return ["| " + " | ".join(cells) + " |" for cells in [header, align, *rows]]


def machine_lines(training: dict) -> list[str]:
    """Where the numbers come from: timings only compare on the same machine and versions."""
    backends = {f"{s['backend']} ({', '.join(s['devices'])})" for runs in training.values() for s in runs.values()}
    return [
        "## Machine",
        "",
        f"- CPUs: {os.cpu_count()}; {platform.platform()}; Python {platform.python_version()}",
        f"- keras {dist_version('keras') or NOT_INSTALLED}, "
        f"tensorflow {dist_version('tensorflow', 'tensorflow-cpu') or NOT_INSTALLED}, "
        f"jax {dist_version('jax') or NOT_INSTALLED}",
        f"- backends (visible devices): {'; '.join(sorted(backends))}",
        f"- run at {datetime.datetime.now().astimezone():%Y-%m-%d %H:%M %Z}",
        "",
    ]


def settings_lines(args, params, training: dict) -> list[str]:
    """What was run on both sides, so a reader can tell what differs between them."""
    first = next(iter(next(iter(training.values())).values()))
    lines = ["## Settings", ""]
    if args.limit:
        lines += [
            f"**Partial run** (`--limit {args.limit}`): a class-balanced subset, so timings and "
            "accuracies are not comparable to a full run and the targets are only indicative.",
            "",
        ]
    lines += [
        f"- epochs {args.epochs}; seeds {', '.join(map(str, seeds(args, params)))}, each fit in a fresh process "
        "(times are means over seeds, peak memory the largest)",
        f"- data: {first['train_size']} train / {first['val_size']} validation reviews from data/prepared, "
        f"maxlen {params.data.maxlen}, each variant's own max_features words",
        "- plain: bench/lesson_script.py, TensorFlow, no unroll, batch 128, rmsprop; fits on train + val "
        "with validation_split=0.2, which validates on exactly the validation rows",
    ]
    for variant in training:
        m, t = params.model(variant), params.train_for(variant)
        lines.append(
            f"- pipeline {variant}: imdb_rnn SeedTrainer with params.yaml's settings: Embedding({m.max_features}), "
            f"{m.layers} x SimpleRNN({m.units}), mask_padding {m.mask_padding}, pooling {m.pooling}, "
            f"bidirectional {m.bidirectional}; "
            f"backend {t.backend}, unroll {t.unroll}, bucketing {t.bucketing}, {t.optimizer} lr "
            f"{t.learning_rate:g}, clipnorm {t.clipnorm}, batch {t.batch_size}, deterministic {t.deterministic}"
        )
    return lines + [
        "- first epoch includes graph tracing; steady epoch = median of the later epochs of all seeds "
        "(the target uses it: on a shared machine single epochs run up to 1.5x slower on either side; "
        "the mean is shown too); total = build + compile + fit; epoch times include validation",
        f"- best val acc: the best epoch's validation accuracy, mean over seeds with its 95% interval; collapsed: "
        f"runs whose best is below {COLLAPSED_BELOW} (the model never generalised); p: Welch's t-test, pipeline vs "
        "plain",
        "",
    ]


def lesson_architecture(model_params) -> bool:
    """The lesson's layers (its script can build them): N x SimpleRNN(32) on Embedding(10000, 32), last output.
    Masking changes no layer, so a masked variant still compares with the lesson's script."""
    m = model_params
    return (m.embedding_dim, m.units, m.pooling, m.bidirectional, m.spatial_dropout) == (32, 32, "last", False, 0.0)


def other_lines(params, results: dict) -> list[str]:
    """Epoch times of the variants the lesson's script cannot build (one seed each)."""
    if not results["others"]:
        return []
    rows = []
    for variant, r in results["others"].items():
        m, t = params.model(variant), params.train_for(variant)
        settings = (
            f"{'bidirectional ' if m.bidirectional else ''}{m.layers} x SimpleRNN({m.units}), embedding "
            f"{m.embedding_dim}, pooling {m.pooling}, mask {m.mask_padding}, bucketing {t.bucketing}, "
            f"unroll {t.unroll}"
        )
        rows.append([variant, settings, f"{r['first_s']:.1f}", f"{r['steady_s']:.1f}", f"{r['peak_mb']:.0f}"])
    return [
        "## Other variants: epoch times (pipeline only, one seed)",
        "",
        *table(["variant", "settings", "first epoch s", "steady epoch s (median)", "peak MB"], rows),
        "",
    ]


def accuracy_verdict(plain: dict, pipe: dict) -> tuple[float, bool]:
    """(Welch's p, holds): the pipeline is not significantly below the plain script and collapses no more often."""
    p = stats.welch_p(pipe["best_accs"], plain["best_accs"])
    below = pipe["best_acc"]["mean"] < plain["best_acc"]["mean"] and p < stats.SIGNIFICANCE
    return p, not below and pipe["collapsed"] <= plain["collapsed"]


def variant_lines(variant: str, runs: dict) -> list[str]:
    """Plain vs pipeline for one variant: ratios for times and memory; accuracy over seeds."""
    plain, pipe = runs["plain"], runs["pipeline"]
    rows = [
        [label, f"{plain[key]:.2f}", f"{pipe[key]:.2f}", f"{pipe[key] / plain[key]:.2f}x"]
        for key, label in (
            ("first_s", "first epoch s"),
            ("steady_s", "steady epoch s (median)"),
            ("steady_mean_s", "steady epoch s (mean)"),
            ("total_s", "total s"),
        )
    ]
    acc = {
        kind: stats.format_interval(r["best_acc"]["mean"], r["best_acc"]["ci95_low"], r["best_acc"]["ci95_high"])
        for kind, r in runs.items()
    }
    p, _ = accuracy_verdict(plain, pipe)
    rows.append(
        [
            "best val acc, mean [95% CI]",
            acc["plain"],
            acc["pipeline"],
            f"{pipe['best_acc']['mean'] - plain['best_acc']['mean']:+.4f} (p = {p:.2g})",
        ]
    )
    rows.append(
        [
            "collapsed runs",
            f"{plain['collapsed']} of {len(plain['best_accs'])}",
            f"{pipe['collapsed']} of {len(pipe['best_accs'])}",
            "",
        ]
    )
    rows.append(
        ["peak MB", f"{plain['peak_mb']:.0f}", f"{pipe['peak_mb']:.0f}", f"{pipe['peak_mb'] / plain['peak_mb']:.2f}x"]
    )
    times = [
        f"- {RUNS[kind]}, seconds per epoch per seed: "
        + "; ".join(" ".join(f"{t:.1f}" for t in seed) for seed in runs[kind]["epoch_s"])
        for kind in RUNS
    ]
    accs = [
        f"- {RUNS[kind]}, best val acc per seed: " + " ".join(f"{a:.4f}" for a in runs[kind]["best_accs"])
        for kind in RUNS
    ]
    return [
        f"## {variant}",
        "",
        *table(["", RUNS["plain"], RUNS["pipeline"], "pipeline vs plain"], rows),
        "",
        *times,
        *accs,
        "",
    ]


def replicate_lines(results: dict) -> list[str]:
    """N seeds in one process (the compiled step built once) against N processes of one seed each."""
    lines = [
        "## Replicates: seeds in one process vs one process per seed",
        "",
        *table(
            ["variant", "seeds", "one process s", "separate processes s", "one / separate"],
            [
                [
                    variant,
                    str(r["seeds"]),
                    f"{r['together_s']:.0f}",
                    f"{r['apart_s']:.0f}",
                    f"{r['together_s'] / r['apart_s']:.2f}x",
                ]
                for variant, r in results["replicates"].items()
            ],
        ),
        "",
        "Wall time of the whole processes (interpreter start and data loading included); the separate "
        "processes are the benchmark's own pipeline fits of the same seeds.",
        "",
    ]
    return lines


def target_lines(params, results: dict) -> list[str]:
    """Each target with its measured value; every variant of params.yaml is listed, run or not."""

    def row(name: str, measured: str, holds: bool | None) -> list[str]:
        return [name, measured, "-" if holds is None else ("yes" if holds else "**no**")]

    rows = []
    for variant in results["training"]:
        runs = results["training"].get(variant)
        if runs is None:
            rows.append(row(f"{variant}: steady epoch, accuracy", "not run", None))
            continue
        plain, pipe = runs["plain"], runs["pipeline"]
        ratio = pipe["steady_s"] / plain["steady_s"]
        p, holds = accuracy_verdict(plain, pipe)
        rows.append(
            row(
                f"{variant}: pipeline steady epoch <= {STEADY_RATIO_MAX} x plain",
                f"{ratio:.2f}x",
                ratio <= STEADY_RATIO_MAX,
            )
        )
        rows.append(
            row(
                f"{variant}: best val acc not significantly below plain, no more collapses",
                f"{pipe['best_acc']['mean'] - plain['best_acc']['mean']:+.4f}, p = {p:.2g}; collapsed "
                f"{pipe['collapsed']} vs {plain['collapsed']}",
                holds,
            )
        )
    prepare, repro = results["prepare"], results["repro"]
    rows.append(
        row(f"prepare <= {PREPARE_MAX_S:g} s", f"{prepare['seconds']:.1f} s", prepare["seconds"] <= PREPARE_MAX_S)
    )
    if "skipped" in repro:
        rows.append(row(f"no-op dvc repro <= {REPRO_MAX_S:g} s", f"skipped: {repro['skipped']}", None))
    else:
        rows.append(
            row(f"no-op dvc repro <= {REPRO_MAX_S:g} s", f"{repro['seconds']:.1f} s", repro["seconds"] <= REPRO_MAX_S)
        )
    return ["## Targets", "", *table(["target", "measured", "holds"], rows), ""]


def stage_lines(results: dict) -> list[str]:
    """The prepare and no-op repro figures, memory included."""
    prepare, repro = results["prepare"], results["repro"]
    repro_text = f"skipped: {repro['skipped']}" if "skipped" in repro else f"{repro['seconds']:.1f} s wall"
    return [
        "## Prepare and no-op repro",
        "",
        f"- prepare (full archive, output to a temp folder): {prepare['seconds']:.1f} s wall (median of "
        f"{', '.join(f'{t:.1f}' for t in prepare['runs_s'])} s), peak {prepare['peak_mb']:.0f} MB",
        f"- no-op `dvc repro`: {repro_text}",
        "",
    ]


def render(args, params, results: dict) -> str:
    """The whole Markdown report (also printed to stdout)."""
    training = results["training"]
    lines = ["# Benchmark: the lesson's Keras script vs the pipeline", ""]
    lines += machine_lines(training) + settings_lines(args, params, training)
    for variant, runs in training.items():
        lines += variant_lines(variant, runs)
    lines += other_lines(params, results) + replicate_lines(results) + target_lines(params, results)
    lines += stage_lines(results)
    return "\n".join(lines)


# --- command line -----------------------------------------------------------------------


def seeds(args, params) -> list[int]:
    """The pipeline's first seed and the next ones: train.seeds[0], +1, ..."""
    return [params.train.seeds[0] + i for i in range(args.seeds)]


def parse_args(argv=None):
    """User options, plus hidden ones the parent passes to its workers."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--epochs",
        type=int_arg(2),
        default=3,
        help="epochs per fit (at least 2: the steady epoch is the mean after the first)",
    )
    parser.add_argument("--variants", nargs="+", help="model variants from params.yaml (default: all)")
    parser.add_argument(
        "--seeds",
        type=int_arg(2),
        default=5,
        help="fits per side and variant, seeds train.seeds[0], +1, ... (default 5)",
    )
    parser.add_argument(
        "--replicates",
        type=int_arg(2),
        default=3,
        help="seeds trained in one process against as many processes (default 3)",
    )
    parser.add_argument(
        "--limit", type=int_arg(4), help="quick trial: N train and N/4 validation reviews (N divisible by 4)"
    )
    parser.add_argument(
        "--archive",
        type=Path,
        default=ROOT / paths.RAW_ARCHIVE,
        help="IMDB archive the prepare measurement reads (default: data/raw/aclImdb_v1.tar.gz)",
    )
    parser.add_argument(
        "--out", type=Path, help="report path (default reports/benchmark.md, reports/benchmark-partial.md with --limit)"
    )
    for hidden in ("--worker", "--variant", "--result"):  # set by run_worker only
        parser.add_argument(hidden, help=argparse.SUPPRESS)
    parser.add_argument("--seed", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--seed-list", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.limit and args.limit % 4:
        parser.error("--limit must be divisible by 4 (train:validation is 4:1)")
    return args


def main(argv=None) -> int:
    """Measure everything, then print and write the report; 1 on a failed measurement."""
    args = parse_args(argv)
    try:
        params = load_params(ROOT / paths.PARAMS)
        if args.worker:
            worker(args, params)
            return 0
        args.variants = args.variants or list(params.models)
        for variant in args.variants:
            params.model(variant)  # unknown name: ConfigError listing the known ones
        if not all((PREPARED / f"{split}.npz").is_file() for split in ("train", "val")):
            raise BenchError(f"no prepared data in {PREPARED}: run `dvc repro prepare` first")
        results = {"prepare": measure_prepare(args.archive.resolve()), "repro": measure_noop_repro()}
        results["training"], results["replicates"], results["others"] = {}, {}, {}
        for variant in args.variants:
            if not lesson_architecture(params.model(variant)):  # no plain script to compare with: timings only
                results["others"][variant] = summarize([run_worker("pipeline", variant, seeds(args, params)[0], args)])
                continue
            fits = {kind: [run_worker(kind, variant, seed, args) for seed in seeds(args, params)] for kind in RUNS}
            results["training"][variant] = {kind: summarize(runs) for kind, runs in fits.items()}
            together = run_worker("pipeline", variant, 0, args, seed_list=seeds(args, params)[: args.replicates])
            results["replicates"][variant] = {
                "seeds": args.replicates,
                "together_s": together["wall_s"],
                "apart_s": sum(r["wall_s"] for r in fits["pipeline"][: args.replicates]),
            }
    except ImdbRnnError as exc:
        print_error(exc)
        return 1
    report = render(args, params, results)
    out = args.out or ROOT / paths.REPORTS / ("benchmark-partial.md" if args.limit else "benchmark.md")
    write_text(out, report)
    print(report)
    log(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
