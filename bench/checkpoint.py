"""What a training checkpoint costs: `python bench/checkpoint.py` -> reports/checkpoint.md.

At the end of every epoch the train stage snapshots each seed's state (every model variable, the
optimizer's, the kept best weights, the history) and replaces its checkpoint file atomically
(``imdb_rnn.checkpoints``). This builds every variant of params.yaml at full size, times that
snapshot-and-save as the stage does it, and sets it against the variant's epoch time from its last
training (the median epoch after the first, from ``reports/variants/<variant>/history.csv``).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path
from types import SimpleNamespace

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))


def measure(variant: str, params, repeats: int, folder: Path) -> dict:
    """Median and worst seconds of one snapshot + atomic save, and the file's size, for ``variant``."""
    import pandas as pd

    from imdb_rnn.checkpoints import CheckpointStore
    from imdb_rnn.fitting import FitResult, SeedTrainer, snapshot
    from imdb_rnn.model import compile_model

    trainer = SeedTrainer(variant, params)
    model = trainer.build(params.train_for(variant).seeds[0])
    compile_model(model, trainer.train_params)
    model.optimizer.build(model.trainable_variables)
    history_csv = ROOT / "reports" / "variants" / variant / "history.csv"
    history = pd.read_csv(history_csv) if history_csv.is_file() else None
    result = FitResult(seed=42, history=[] if history is None else history.to_dict("records")[:15])
    recorder = SimpleNamespace(kept_weights=[w.copy() for w in model.get_weights()])
    store = CheckpointStore(folder, variant, {"bench": variant})
    store.folder.mkdir(parents=True, exist_ok=True)
    seconds = []
    for _ in range(repeats):
        start = time.perf_counter()
        store.save_seed(42, snapshot(model, result, recorder, len(result.history), finished=False))
        seconds.append(time.perf_counter() - start)
    epoch = None
    if history is not None and (history["epoch"] > 1).any():
        epoch = float(history.loc[history["epoch"] > 1, "seconds"].median())
    return {
        "variant": variant,
        "params": model.count_params(),
        "size_mb": store.seed_path(42).stat().st_size / 1e6,
        "save_ms": statistics.median(seconds) * 1000,
        "worst_ms": max(seconds) * 1000,
        "epoch_s": epoch,
    }


def report(rows: list[dict], machine: dict, repeats: int) -> str:
    from imdb_rnn.machine import machine_lines

    lines = [
        "# What a checkpoint costs",
        "",
        f"`python bench/checkpoint.py`, {time.strftime('%Y-%m-%d')}: each",
        f"variant of params.yaml at full size, one snapshot + atomic save per epoch timed {repeats} times (median,",
        "worst), against the median epoch after the first of its last training (reports/variants/*/history.csv,",
        "which may come from another machine than the saves).",
        "",
        *machine_lines([machine]),
        "| variant | parameters | file | save (median) | save (worst) | epoch | save / epoch |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        epoch = f"{r['epoch_s']:.1f} s" if r["epoch_s"] else "no history"
        share = f"{r['save_ms'] / 10 / r['epoch_s']:.2f}%" if r["epoch_s"] else "-"
        lines.append(
            f"| {r['variant']} | {r['params']:,} | {r['size_mb']:.2f} MB | {r['save_ms']:.0f} ms | "
            f"{r['worst_ms']:.0f} ms | {epoch} | {share} |"
        )
    return "\n".join(lines) + "\n"


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=20, help="saves timed per variant")
    parser.add_argument("--variants", nargs="*", help="default: every variant of params.yaml")
    parser.add_argument("--out", type=Path, default=ROOT / "reports" / "checkpoint.md")
    args = parser.parse_args(argv)

    from imdb_rnn.backend import select_backend
    from imdb_rnn.config import load_params
    from imdb_rnn.files import write_text
    from imdb_rnn.machine import describe_machine

    params = load_params(ROOT / "params.yaml")
    select_backend(params.train.backend)
    with tempfile.TemporaryDirectory(dir=ROOT) as tmp:  # on the disk the checkpoints use
        rows = [measure(v, params, args.repeats, Path(tmp)) for v in args.variants or list(params.models)]
    text = report(rows, describe_machine(), args.repeats)
    write_text(args.out, text)
    print(text)


if __name__ == "__main__":
    main()
