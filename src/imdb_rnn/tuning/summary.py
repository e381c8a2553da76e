"""reports/tune.md and its figures: what the study tried, what pruning saved, the best trial, and the
study against the hand-planned grid sweep (reports/sweep.md) per second of training."""

from __future__ import annotations

import re
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import optuna  # noqa: E402
from optuna.trial import TrialState  # noqa: E402

from ..files import atomic_file, write_text  # noqa: E402
from ..machine import cpu_model  # noqa: E402
from .confirm import chosen, confirmations, seed_values, seeds_mean  # noqa: E402
from .space import SearchSpace  # noqa: E402


def figures(study: optuna.Study, folder: Path) -> list[Path]:
    """Optimization history (each complete trial, the best so far) and the levers' importances."""
    folder.mkdir(parents=True, exist_ok=True)
    done = [t for t in study.trials if t.state == TrialState.COMPLETE]
    values = [float(t.value or 0.0) for t in done]  # a complete trial has its value
    history = folder / "history.png"
    fig, ax = plt.subplots(figsize=(6, 3.5))
    ax.scatter([t.number for t in done], values, s=14, label="trial")
    best, line = float("-inf"), []
    for value in values:
        best = max(best, value)
        line.append(best)
    ax.step([t.number for t in done], line, where="post", color="C1", label="best so far")
    ax.set(xlabel="trial", ylabel="best validation accuracy", title=f"study {study.study_name}")
    ax.legend()
    _save(fig, history)
    out = [history]
    if len(done) >= 2 and len({tuple(sorted(t.params.items())) for t in done}) >= 2:
        importances = optuna.importance.get_param_importances(study)
        path = folder / "importance.png"
        fig, ax = plt.subplots(figsize=(6, 3.5))
        ax.barh(list(importances)[::-1], list(importances.values())[::-1])
        ax.set(xlabel="importance (fANOVA)", title="what moved validation accuracy")
        _save(fig, path)
        out.append(path)
    return out


def grid_passes(sweep_report: Path) -> list[tuple[str, float, float]]:
    """The grid sweep's passes in the order they ran: (pass, cumulative training seconds, best seed-42
    validation accuracy so far), read from the tables bench/sweep.py writes; empty without the report."""
    if not sweep_report.is_file():
        return []
    sections = re.split(r"^## ", sweep_report.read_text(encoding="utf-8"), flags=re.M)[1:]
    passes, seconds, best = [], 0.0, float("-inf")
    for section in reversed([s for s in sections if " pass " in s.splitlines()[0]]):  # the report lists the last first
        rows = [line.split("|")[1:-1] for line in section.splitlines() if re.match(r"^\| [^-\s]", line)][1:]
        for cells in rows:  # configuration | changes | seeds | val acc | val acc per seed | ... | train s
            if not re.fullmatch(r"\s*[\d.]+\s*", cells[-1]):
                continue  # a failed or unfinished configuration
            seconds += float(cells[-1])
            best = max(best, float(cells[4].split()[0]))  # seeds run 42 first: the trials' seed
        passes.append((section.split()[0].lower() + " pass", seconds, best))
    return passes


def versus_grid(study: optuna.Study, grid: list[tuple[str, float, float]], path: Path) -> Path:
    """Best validation accuracy found against training seconds spent: the study's trials, the grid's passes."""
    fig, ax = plt.subplots(figsize=(6, 3.5))
    seconds, best, xs, ys = 0.0, float("-inf"), [], []
    for t in study.trials:
        seconds += t.user_attrs.get("seconds", 0.0)
        if t.state == TrialState.COMPLETE:
            best = max(best, float(t.value or 0.0))
        if best > float("-inf"):
            xs.append(seconds)
            ys.append(best)
    ax.step(xs, ys, where="post", label=f"study {study.study_name} (Optuna)")
    ax.plot([g[1] for g in grid], [g[2] for g in grid], "o--", label="grid sweep, by pass")
    ax.set(xlabel="training seconds", ylabel="best validation accuracy (seed 42)", title="study vs grid")
    ax.legend()
    _save(fig, path)
    return path


def _save(fig, path: Path) -> None:
    fig.tight_layout()
    with atomic_file(path) as tmp:
        fig.savefig(tmp, format="png", dpi=110)
    plt.close(fig)


def write_report(study: optuna.Study, space: SearchSpace, out: Path) -> list[Path]:
    """The study in a page: counts, epochs trained against a study without pruning, the top trials."""
    trials = study.trials
    counts = {s: sum(t.state == s for t in trials) for s in (TrialState.COMPLETE, TrialState.PRUNED, TrialState.FAIL)}
    trained = sum(t.user_attrs.get("epochs", 0) for t in trials)
    full = space.settings.epochs * (counts[TrialState.COMPLETE] + counts[TrialState.PRUNED])
    confirmed = confirmations(study)
    confirm_seconds = sum(c.get("seconds", 0.0) for c in confirmed.values())
    seconds = sum(t.user_attrs.get("seconds", 0.0) for t in trials) + confirm_seconds
    images = figures(study, out.parent / out.stem)  # reports/tune.md: reports/tune/
    grid = grid_passes(out.parent / "sweep.md")
    if grid:
        images.append(versus_grid(study, grid, out.parent / out.stem / "versus_grid.png"))
    done = sorted((t for t in trials if t.state == TrialState.COMPLETE), key=lambda t: -float(t.value or 0.0))
    levers = list(space.levers)
    lines = [
        f"# Study `{study.study_name}`",
        "",
        f"`imdb-rnn tune` on {cpu_model()}: base variant `{space.settings.base}`, "
        f"{space.settings.epochs} epochs a trial, seed {space.settings.seed}, pruner {space.settings.pruner}.",
        "",
        f"- trials: {counts[TrialState.COMPLETE]} complete, {counts[TrialState.PRUNED]} pruned, "
        f"{counts[TrialState.FAIL]} failed; {seconds:.0f} s of training"
        + (f" ({confirm_seconds:.0f} s of it confirming the top trials)" if confirmed else ""),
        f"- epochs trained: {trained} of the {full} the same trials would train unpruned "
        f"({full - trained} saved by pruning)",
        *(
            [
                f"- the grid sweep of reports/sweep.md: {grid[-1][1]:.0f} s of training over {len(grid)} passes, best "
                f"seed-42 validation accuracy {grid[-1][2]:.4f}; the study used {seconds / grid[-1][1]:.0%} of that "
                "time"
            ]
            if grid
            else []
        ),
        "",
        "Selection is on validation accuracy only. The best of many single-seed trials is optimistic (the",
        "maximum of noisy draws): export it (`imdb-rnn tune --export NAME`) and let `dvc repro` train it over",
        "the usual seeds for its real figure.",
        "",
        *confirmation_lines(study, space, confirmed),
        "| trial | best val accuracy | epochs | " + " | ".join(levers) + " |",
        "|---:|---:|---:|" + "---|" * len(levers),
    ]
    for t in done[:10]:
        cells = [_cell(t.params.get(k)) for k in levers]
        lines.append(f"| {t.number} | {t.value:.4f} | {t.user_attrs.get('epochs', '')} | " + " | ".join(cells) + " |")
    lines += ["", *(f"![{p.stem}]({out.stem}/{p.name})" for p in images), ""]
    write_text(out, "\n".join(lines))
    return [out, *images]


def confirmation_lines(study: optuna.Study, space: SearchSpace, confirmed: dict[int, dict]) -> list[str]:
    """The confirmed trials, each seed's value and their mean, and the trial export takes."""
    if not confirmed:
        return []
    seeds = [space.settings.seed, *space.settings.confirm_seeds]
    trial, values = chosen(study, space)
    lines = [
        f"## Confirmation: the top {space.settings.confirm} trials on seeds {', '.join(map(str, seeds[1:]))}",
        "",
        "| trial | " + " | ".join(f"seed {seed}" for seed in seeds) + " | mean |",
        "|---:|" + "---:|" * (len(seeds) + 1),
    ]
    by_number = {t.number: t for t in study.trials}
    for number in sorted(confirmed, key=lambda n: -float(by_number[n].value or 0.0)):
        row = seed_values(by_number[number], space, confirmed)
        cells = [f"{row[seed]:.4f}" if seed in row else "" for seed in seeds]
        lines.append(f"| {number} | " + " | ".join(cells) + f" | {seeds_mean(row):.4f} |")
    lines += [
        "",
        f"`--export` takes trial {trial.number}: mean validation accuracy {seeds_mean(values):.4f} "
        f"over {len(values)} seeds.",
        "",
    ]
    return lines


def _cell(value) -> str:
    return f"{value:.3g}" if isinstance(value, float) else str(value)
