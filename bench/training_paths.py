"""Which training path collapses the lesson's stack? `python bench/training_paths.py`.

Fits one variant (default stacked_rnn) for a few epochs with several seeds along each training
path: the lesson's plain script, and the pipeline's model with or without unrolling, with the
dense-gradient optimizer or Keras' own, with gradient clipping or masking. Every fit runs in a
fresh interpreter and appends one JSON line to the results file, so a long study can be stopped
and resumed (fits already in the file are skipped); `--report` prints the table.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT / "bench"))

COLLAPSED_BELOW = 0.70  # best validation accuracy under this: the run never generalised

# name -> (train overrides, model overrides, Keras' own optimizer instead of make_optimizer's);
# "plain" is bench/lesson_script.py itself
PATHS = {
    "plain": None,
    "unroll+dense": ({"unroll": True}, {}, False),
    "unroll+keras": ({"unroll": True}, {}, True),
    "loop+dense": ({"unroll": False}, {}, False),
    "loop+keras": ({"unroll": False}, {}, True),
    "unroll+dense+clip1": ({"unroll": True, "clipnorm": 1.0}, {}, False),
    "unroll+dense+mask": ({"unroll": True}, {"mask_padding": True}, False),
    "unroll+dense+mask+clip1": ({"unroll": True, "clipnorm": 1.0}, {"mask_padding": True}, False),
    "unroll+dense+lr5e-4": ({"unroll": True, "learning_rate": 5e-4}, {}, False),
    "bucket+mask": ({"unroll": False, "bucketing": True}, {"mask_padding": True}, False),
}


def fit_once(path: str, variant: str, seed: int, epochs: int) -> dict:
    """One fit along ``path``; per-epoch validation accuracy and seconds."""
    import os

    os.environ.setdefault("KERAS_BACKEND", "tensorflow")
    import keras
    import numpy as np

    from imdb_rnn.config import load_params
    from imdb_rnn.files import load_npz
    from imdb_rnn.text import within_vocabulary

    params = load_params(ROOT / "params.yaml")
    # the prepared ids run to data.max_features; the variant's Embedding has only its own max_features rows
    limit = params.model(variant).max_features
    train, val = (within_vocabulary(load_npz(ROOT / "data" / "prepared" / f"{s}.npz"), limit) for s in ("train", "val"))
    spec = PATHS[path]
    start = time.perf_counter()
    if spec is None:
        import lesson_script

        if limit > lesson_script.max_features:
            lesson = lesson_script.max_features
            raise SystemExit(f"{variant}'s max_features {limit} exceeds the lesson model's Embedding({lesson})")
        keras.utils.set_random_seed(seed)
        x = np.concatenate([train["x"], val["x"]]).astype(np.int32)
        y = np.concatenate([train["y"], val["y"]])
        history = lesson_script.fit_lesson_model(x, y, params.model(variant).layers, epochs)
        return {
            "val_acc": history.history["val_acc"],
            "epoch_s": history.history["epoch_seconds"],
            "total_s": time.perf_counter() - start,
        }

    from dataclasses import replace

    from imdb_rnn.fitting import SeedTrainer

    train_over, model_over, keras_optimizer = spec
    train_params = replace(
        params.train_for(variant), seeds=(seed,), epochs=epochs, early_stopping_patience=0, **train_over
    )
    params = replace(
        params, train=train_params, train_overrides={}, models={variant: replace(params.model(variant), **model_over)}
    )
    trainer = SeedTrainer(variant, params)
    if keras_optimizer:  # Keras' RMSprop (its sparse Embedding update) instead of the dense-gradient one
        trainer.model = trainer.build(seed)
        trainer.model.compile(
            optimizer=keras.optimizers.RMSprop(
                learning_rate=train_params.learning_rate, clipnorm=train_params.clipnorm
            ),
            loss="binary_crossentropy",
            metrics=["accuracy"],
        )
        trainer.model.optimizer.build(trainer.model.trainable_variables)
        trainer._optimizer_start = [np.asarray(v.numpy()).copy() for v in trainer.model.optimizer.variables]
    result = trainer.fit_seed(seed, train, val)
    return {
        "val_acc": [r["val_accuracy"] for r in result.history],
        "epoch_s": [r["seconds"] for r in result.history],
        "total_s": time.perf_counter() - start,
    }


def summary_rows(results: list[dict]) -> list[str]:
    """Per path: seeds, mean best val acc, range, collapsed count."""
    lines = [
        "| path | seeds | best val acc, mean | min | max | collapsed (< 0.70) | per seed |",
        "| --- | ---: | ---: | ---: | ---: | ---: | --- |",
    ]
    for path in PATHS:
        runs = sorted((r for r in results if r["path"] == path), key=lambda r: r["seed"])
        if not runs:
            continue
        best = [max(r["val_acc"]) for r in runs]
        per_seed = ", ".join(f"{r['seed']}: {b:.3f}" for r, b in zip(runs, best))
        lines.append(
            f"| {path} | {len(runs)} | {statistics.mean(best):.4f} | {min(best):.4f} | {max(best):.4f} "
            f"| {sum(b < COLLAPSED_BELOW for b in best)} | {per_seed} |"
        )
    return lines


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--paths", nargs="+", default=list(PATHS)[:5], choices=list(PATHS))
    parser.add_argument("--variant", default="stacked_rnn")
    parser.add_argument("--seeds", type=int, nargs="+", default=[42, 43, 44, 45, 46])
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--results", type=Path, default=ROOT / ".bench" / "training_paths.jsonl")
    parser.add_argument("--report", action="store_true", help="print the table of the results so far")
    parser.add_argument("--out", type=Path, help="also write the table, with what was run, to this Markdown file")
    parser.add_argument("--data-note", default="", help="with --out: which prepared data the fits used")
    parser.add_argument("--worker", nargs=2, metavar=("PATH", "SEED"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        measured = fit_once(args.worker[0], args.variant, int(args.worker[1]), args.epochs)
        print("RESULT " + json.dumps(measured), flush=True)
        return 0
    args.results.parent.mkdir(parents=True, exist_ok=True)
    results = [json.loads(line) for line in args.results.read_text().splitlines()] if args.results.exists() else []
    if not args.report:
        done = {(r["path"], r["variant"], r["seed"], r["epochs"]) for r in results}
        for seed in args.seeds:
            for path in args.paths:
                if (path, args.variant, seed, args.epochs) in done:
                    continue
                print(f"--- {path}, {args.variant}, seed {seed}", file=sys.stderr, flush=True)
                proc = subprocess.run(
                    [
                        sys.executable,
                        __file__,
                        "--worker",
                        path,
                        str(seed),
                        "--variant",
                        args.variant,
                        "--epochs",
                        str(args.epochs),
                    ],
                    cwd=ROOT,
                    capture_output=True,
                    text=True,
                )
                line = next((x for x in proc.stdout.splitlines() if x.startswith("RESULT ")), None)
                if line is None:
                    print(proc.stdout[-2000:], proc.stderr[-3000:], file=sys.stderr)
                    return 1
                record = {
                    "path": path,
                    "variant": args.variant,
                    "seed": seed,
                    "epochs": args.epochs,
                    **json.loads(line[len("RESULT ") :]),
                }
                print(
                    f"    best val acc {max(record['val_acc']):.4f}, epochs "
                    f"{' '.join(f'{t:.0f}' for t in record['epoch_s'])} s",
                    file=sys.stderr,
                    flush=True,
                )
                with args.results.open("a") as fh:
                    fh.write(json.dumps(record) + "\n")
                results.append(record)
    table = summary_rows([r for r in results if r["variant"] == args.variant])
    print("\n".join(table))
    if args.out:
        from imdb_rnn.files import write_text

        epochs = sorted({r["epochs"] for r in results if r["variant"] == args.variant})
        write_text(
            args.out,
            "\n".join(
                [
                    f"# Training paths of {args.variant}: which collapse?",
                    "",
                    f"Generated by `python bench/training_paths.py --report --out {args.out}` from "
                    f"{args.results.name}: each row one training path, each seed one fit of "
                    f"{'/'.join(map(str, epochs))} epochs in a fresh process, on the same prepared data (lesson "
                    "params otherwise: Embedding(10000, 32), 4 x SimpleRNN(32), rmsprop 1e-3, batch 128). A run is "
                    f"collapsed when its best validation accuracy stays below 0.70. {args.data_note}".rstrip(),
                    "",
                    "Paths: `plain` is the lesson's script; `unroll` unrolls the recurrence (the pipeline's "
                    "UnrolledSimpleRNN), `loop` uses Keras' loop; `dense` is the pipeline's dense-gradient "
                    "RMSprop, `keras` Keras' own; `clip1` clips each step's gradient to norm 1 "
                    "(`train.clipnorm: 1.0`); `mask` masks the padding (`mask_padding: true`); `bucket` trains on "
                    "length buckets.",
                    "",
                    *table,
                    "",
                ]
            ),
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
