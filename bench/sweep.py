"""The lever sweep as DVC experiments: `python bench/sweep.py` (`make sweep`), plan in bench/sweep.yaml.

Queues one `dvc exp run` per configuration of the first pass, runs the queue, then the best
configurations (by mean validation accuracy) again with every seed, and writes reports/sweep.md from
what DVC (`dvc exp show`) and MLflow (each experiment's runs) recorded: every configuration, its
changes, mean and per-seed validation and test accuracy, epochs and training time.
`--report-only` rewrites reports/sweep.md from the experiments already there.
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from imdb_rnn import paths, stats  # noqa: E402
from imdb_rnn.errors import ImdbRnnError, print_error  # noqa: E402
from imdb_rnn.files import write_text  # noqa: E402
from imdb_rnn.machine import machine_lines  # noqa: E402

PASSES = ("first", "second", "third")  # the third (optional): combinations of what the first two showed


class SweepError(ImdbRnnError):
    """A step of the sweep failed; the message names it."""


def dvc(*args: str, check: bool = True, capture: bool = True) -> str:
    """Run `dvc ...` at the project root (the venv's dvc, as `make` puts it first on PATH)."""
    proc = subprocess.run(
        ["dvc", *args],
        cwd=ROOT,
        text=True,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE if capture else subprocess.DEVNULL,
        stderr=subprocess.PIPE if capture else subprocess.DEVNULL,
    )
    if check and proc.returncode:
        raise SweepError(f"`dvc {' '.join(args)}` failed: {(proc.stderr or '').strip().splitlines()[-1:]}")
    return proc.stdout or ""


def hydra_value(value) -> str:
    """A params value as `dvc exp run -S` (Hydra) reads it."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        return "[" + ",".join(hydra_value(v) for v in value) + "]"
    return str(value)


def overrides(plan: dict, pass_name: str, changes: dict, drop: list[str]) -> list[str]:
    """The `-S` list of one configuration: drop the variants ``drop`` (params.yaml's), then base + pass +
    changes."""
    variant = plan["variant"]
    model, train, data = dict(plan["base"]["model"]), dict(plan["base"].get("train", {})), {}
    train.update(plan[f"{pass_name}_pass"]["train"])
    for key, value in changes.items():
        if key.startswith("train."):
            train[key[len("train.") :]] = value
        elif key.startswith("data."):
            data[key[len("data.") :]] = value
        else:
            model[key] = value
    out = [f"~models.{v}" for v in drop if v != variant]
    out += [f"++models.{variant}.{k}={hydra_value(v)}" for k, v in model.items()]
    out += [f"++models.{variant}.train.{k}={hydra_value(v)}" for k, v in train.items()]
    out += [f"++data.{k}={hydra_value(v)}" for k, v in data.items()]
    return out


def run_pass(plan: dict, pass_name: str, configurations: dict[str, dict], jobs: int) -> None:
    """Queue every configuration as an experiment named `<pass>-<configuration>` and run the queue."""
    names = [f"{pass_name}-{name}" for name in configurations]
    existing = set(dvc("exp", "ls", "--all-commits", "--name-only").split())
    stale = [name for name in names if name in existing]
    if stale:
        dvc("exp", "remove", *stale)
    from imdb_rnn.config import load_params

    variants = list(load_params(ROOT / paths.PARAMS).models)
    for name, changes in configurations.items():
        args = [arg for o in overrides(plan, pass_name, changes, variants) for arg in ("-S", o)]
        dvc("exp", "run", "--queue", "-n", f"{pass_name}-{name}", *args)
        print(f"queued {pass_name}-{name}", file=sys.stderr, flush=True)
    started = time.monotonic()
    while True:
        status = dvc("queue", "status")
        states = [line.split()[-1] for line in status.splitlines() if line.split()[-1:] in (["Queued"], ["Running"])]
        if not states:
            break
        workers = re.search(r"Worker status: (\d+) active, (\d+) idle", status)
        if "Running" not in states and (workers is None or workers.group(1) == workers.group(2) == "0"):
            # DVC's workers stop when they see an empty queue, at times before the last task: start them again
            dvc("queue", "start", "-j", str(jobs), capture=False)  # workers outlive the command
        time.sleep(5)
    dvc("queue", "stop", check=False)
    print(f"{pass_name} pass: {len(names)} experiments in {time.monotonic() - started:.0f} s", file=sys.stderr)


def mlflow_records(experiment: str) -> dict[str, dict]:
    """Per DVC experiment name, from MLflow: per seed, its epochs run, best validation and test accuracy
    and training seconds (`dvc exp show` leaves lists out of metrics); the machine its runs are tagged with."""
    import mlflow

    from imdb_rnn import tracking

    tracking.setup(experiment, root=ROOT)
    client = mlflow.MlflowClient()
    found = client.get_experiment_by_name(experiment)
    runs = client.search_runs([found.experiment_id], filter_string="tags.dvc_exp_name LIKE '%-%'", max_results=5000)
    records: dict[str, dict] = {}
    for run in sorted(runs, key=lambda r: r.info.start_time):  # the newest run of a name wins
        name, kind, metrics = run.data.tags.get("dvc_exp_name"), run.data.tags.get("run_kind"), run.data.metrics
        record = records.setdefault(name, {"seeds": {}})
        if "cpu" in run.data.tags:  # the CPU and library versions the run was tagged with (machine.environment_tags)
            versions = {k.removeprefix("version."): v for k, v in run.data.tags.items() if k.startswith("version.")}
            record["machine"] = {"cpu": run.data.tags["cpu"], "versions": versions}
        if kind == "seed" and "test_accuracy" in metrics:
            record["seeds"][int(run.data.tags["seed"])] = {
                "epochs": metrics.get("epochs_run"),
                "best_val_accuracy": metrics.get("best_val_accuracy"),
                "accuracy": metrics["test_accuracy"],
                "train_seconds": metrics.get("train_seconds"),
            }
    return records


def collect(plan: dict) -> list[dict]:
    """One row per sweep experiment DVC knows, with its metrics and MLflow's timings."""
    from imdb_rnn.config import load_params

    shown = json.loads(dvc("exp", "show", "--json", "--all-commits"))  # also experiments of earlier commits
    metrics_file = (paths.variant_reports(plan["variant"]) / "metrics.json").as_posix()
    records = mlflow_records(load_params(ROOT / paths.PARAMS).mlflow.experiment)
    rows = []
    for entry in shown:
        for experiment in entry.get("experiments") or []:
            name = experiment.get("name") or ""
            pass_name, _, configuration = name.partition("-")
            if pass_name not in PASSES:
                continue
            rev = experiment["revs"][0]
            data = rev.get("data") or {}
            state = (experiment.get("executor") or {}).get("state")  # queued, running, success, failed
            metrics = ((data.get("metrics") or {}).get(metrics_file) or {}).get("data")
            record = records.get(name, {})
            seeds = [record["seeds"][seed] for seed in sorted(record.get("seeds", {}))]
            epochs = [s["epochs"] for s in seeds if s["epochs"] is not None]
            seconds = [s["train_seconds"] for s in seeds if s["train_seconds"] is not None]
            rows.append(
                {
                    "pass": pass_name,
                    "name": configuration,
                    "experiment": name,
                    "failed": metrics is None,  # failed, or not finished yet
                    "error": (rev.get("error") or {}).get("msg") or ("failed" if state == "failed" else None),
                    "metrics": metrics or {},
                    "per_seed": seeds,
                    "train_seconds": sum(seconds) if seconds else None,
                    "epochs": sum(epochs) / len(epochs) if epochs else None,
                    "machine": record.get("machine"),
                }
            )
    return rows


def changes_of(plan: dict, row: dict) -> str:
    where = "third_pass" if row["pass"] == "third" else "first_pass"
    changes = plan[where]["configurations"].get(row["name"], {})
    return ", ".join(f"{k}={hydra_value(v)}" for k, v in changes.items()) or "(the base)"


def per_seed(row: dict, key: str) -> str:
    return " ".join(f"{s[key]:.4f}" for s in row["per_seed"] if s.get(key) is not None)


def with_interval(metrics: dict, key: str) -> str:
    if metrics.get(key) is None:
        return "-"
    return stats.format_interval(metrics[key], metrics.get(f"{key}_ci95_low"), metrics.get(f"{key}_ci95_high"))


def render(plan: dict, rows: list[dict]) -> str:
    """reports/sweep.md: every pass, best mean validation accuracy first; the selected configuration: the best
    mean validation accuracy among those trained with every seed (second and third passes)."""
    lines = [
        "# The lever sweep",
        "",
        "Generated by `python bench/sweep.py` (`make sweep`) from `dvc exp show` and the experiments' MLflow",
        f"runs; plan: `bench/sweep.yaml`. Base: model {plan['base']['model']}, train {plan['base']['train']}.",
        "Sorted by mean validation accuracy (the selection criterion); test accuracy is reported, never used",
        "to choose. Means over seeds with 95% intervals (Student's t).",
        "",
        *machine_lines([r["machine"] for r in rows if r.get("machine")]),
    ]
    finished = [r for r in rows if r["pass"] != "first" and not r["failed"]]
    winner = min(finished, key=lambda r: (-r["metrics"]["best_val_accuracy"], r["name"]), default=None)
    for pass_name in reversed(PASSES):
        chosen = sorted(
            (r for r in rows if r["pass"] == pass_name),
            key=lambda r: (-(r["metrics"].get("best_val_accuracy") or 0.0), r["name"]),
        )
        if not chosen:
            continue
        settings = plan[f"{pass_name}_pass"]["train"]
        lines += [
            f"## {pass_name.capitalize()} pass ({settings})",
            "",
            "| configuration | changes | seeds | val acc | val acc per seed | test acc | test acc per seed "
            "| epochs | train s |",
            "| --- | --- | ---: | ---: | --- | ---: | --- | ---: | ---: |",
        ]
        for row in chosen:
            m = row["metrics"]
            if row["failed"]:
                status = "failed" if row["error"] else "not finished"
                lines.append(f"| {row['name']} | {changes_of(plan, row)} | - | {status} | | | | | |")
                continue
            epochs = f"{row['epochs']:.1f}" if row["epochs"] is not None else "-"
            seconds = f"{row['train_seconds']:.0f}" if row["train_seconds"] is not None else "-"
            lines.append(
                f"| {row['name']} | {changes_of(plan, row)} | {m.get('seeds', '-')} "
                f"| {with_interval(m, 'best_val_accuracy')} | {per_seed(row, 'best_val_accuracy')} "
                f"| {with_interval(m, 'accuracy')} | {per_seed(row, 'accuracy')} | {epochs} | {seconds} |"
            )
        lines.append("")
    if winner:
        accuracies = {r["name"]: [s["accuracy"] for s in r["per_seed"]] for r in finished}
        m = winner["metrics"]
        lines += [
            "## Selected",
            "",
            f"`{winner['name']}` ({changes_of(plan, winner)}): mean validation accuracy "
            f"{m['best_val_accuracy']:.4f}, test accuracy {with_interval(m, 'accuracy')}.",
            "",
        ]
        others = [n for n in accuracies if n != winner["name"]]
        for other in others:
            verdict = stats.welch_verdict(accuracies[winner["name"]], accuracies[other])
            lines.append(f"- vs {other} (Welch's t-test over seeds): test accuracy difference {verdict}")
        lines.append("")
    return "\n".join(lines)


def best_first_pass(plan: dict, rows: list[dict]) -> dict[str, dict]:
    """The configurations of the first pass with the best validation accuracy, for the second."""
    done = sorted(
        (r for r in rows if r["pass"] == "first" and not r["failed"]),
        key=lambda r: (-r["metrics"]["best_val_accuracy"], r["name"]),
    )  # ties: by name
    names = [r["name"] for r in done[: plan["second_pass"]["best"]]]
    return {name: plan["first_pass"]["configurations"][name] for name in names}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--plan", type=Path, default=ROOT / "bench" / "sweep.yaml")
    parser.add_argument("--jobs", type=int, default=2, help="experiments run at once (dvc queue start -j)")
    parser.add_argument("--passes", nargs="+", choices=PASSES, default=list(PASSES))
    parser.add_argument("--only", nargs="+", metavar="NAME", help="run only these first-pass configurations")
    parser.add_argument("--report-only", action="store_true", help="only rewrite reports/sweep.md")
    args = parser.parse_args(argv)
    try:
        plan = yaml.safe_load(args.plan.read_text(encoding="utf-8"))
        if not args.report_only:
            if "first" in args.passes:
                first = plan["first_pass"]["configurations"]
                unknown = sorted(set(args.only or []) - set(first))
                if unknown:
                    raise SweepError(f"--only {', '.join(unknown)}: not in the plan's first pass; see {args.plan}")
                run_pass(plan, "first", {k: v for k, v in first.items() if not args.only or k in args.only}, args.jobs)
            if "second" in args.passes:
                run_pass(plan, "second", best_first_pass(plan, collect(plan)), args.jobs)
            if "third" in args.passes and plan.get("third_pass"):
                run_pass(plan, "third", plan["third_pass"]["configurations"], args.jobs)
        report = render(plan, collect(plan))
    except ImdbRnnError as exc:
        print_error(exc)
        return 1
    write_text(ROOT / paths.REPORTS / "sweep.md", report)
    print(report)
    return 0


if __name__ == "__main__":
    sys.exit(main())
