"""A whole `dvc repro` timed stage by stage: what a user waits for, from prepare to register.

Runs `dvc repro --force` (every stage, as on a fresh clone) in the project, stamps each stage's start
from DVC's own "Running stage" lines (a stage's time runs to the next one's start, so DVC's hashing and
caching of its outputs count), and writes reports/repro-times.json and .md: each stage's wall seconds,
the total against the 10-minute target, and the machine it ran on. The training stages' own split
(first epoch, later epochs) is in reports/benchmark.md; this is the pipeline around them.
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT / "bench"))

from benchmark_report import table  # noqa: E402

from imdb_rnn.checkpoints import STORE  # noqa: E402
from imdb_rnn.errors import ImdbRnnError, run_cli  # noqa: E402
from imdb_rnn.files import read_json, write_json, write_text  # noqa: E402
from imdb_rnn.machine import describe_machine, machine_lines  # noqa: E402

TARGET_S = 600  # issue 25: a full default `dvc repro` from a fresh clone in 10 minutes
STAGE_START = re.compile(r"^Running stage '([^']+)'")
RESUMED = "resuming its interrupted training"  # a train stage continuing an interrupted run's checkpoint


def stage_seconds(events: list[tuple[float, str]], end: float) -> dict[str, float]:
    """Each stage's wall seconds from its start to the next stage's start (the last one's: to ``end``)."""
    starts = [t for t, _ in events] + [end]
    return {name: round(starts[i + 1] - t, 1) for i, (t, name) in enumerate(events)}


def require_no_checkpoints(project: Path) -> None:
    """A train stage resumes an interrupted run's checkpoint (no work lost), which would time only its rest."""
    if any(p.is_file() for p in (project / STORE).rglob("*")):
        raise ImdbRnnError(
            f"{project / STORE} holds an interrupted training's checkpoint, which a timed stage would resume; "
            "finish it with `dvc repro` first, or delete that folder"
        )


def run_repro(project: Path, force: bool, targets: list[str]) -> dict:
    """`dvc repro` in ``project``, its output passed through, each stage's start stamped."""
    require_no_checkpoints(project)
    cmd = [sys.executable, "-m", "dvc", "repro", *(["--force"] if force else []), *targets]
    load = os.getloadavg()[0]
    start = time.perf_counter()
    events: list[tuple[float, str]] = []
    resumed: list[str] = []
    with subprocess.Popen(cmd, cwd=project, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True) as proc:
        for line in proc.stdout:
            sys.stderr.write(line)
            if match := STAGE_START.match(line):
                events.append((time.perf_counter() - start, match.group(1)))
            if RESUMED in line and events:  # not expected after the check above, but never a silent part-figure
                resumed.append(events[-1][1])
    total = time.perf_counter() - start
    if proc.returncode:
        raise ImdbRnnError(f"`dvc repro` failed (exit {proc.returncode}); its error is above")
    stages = stage_seconds(events, total)
    return {
        "command": " ".join(["dvc", *cmd[3:]]),
        "commit": subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=project, capture_output=True, text=True
        ).stdout.strip(),
        "total_s": round(total, 1),
        "stages_s": stages,
        "training": training_profiles(project, stages),
        "resumed": resumed,
        "load_1min": [load, os.getloadavg()[0]],
        "machine": describe_machine(),
        "finished": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
    }


def epoch_profile(history_csv: Path) -> dict:
    """A train stage's epochs from its history.csv: how many (over its seeds), and the seconds of each seed's
    first epoch (graph building and tracing) and of the later ones, validation included."""
    import pandas as pd

    history = pd.read_csv(history_csv)
    first = history["epoch"] == history.groupby("seed")["epoch"].transform("min")
    return {
        "seeds": int(history["seed"].nunique()),
        "epochs": len(history),
        "first_epochs_s": round(float(history.loc[first, "seconds"].sum()), 1),
        "later_epochs_s": round(float(history.loc[~first, "seconds"].sum()), 1),
    }


def training_profiles(project: Path, stages: dict[str, float]) -> dict[str, dict]:
    """Each train stage that ran: its epochs, from the history.csv it just wrote."""
    return {
        stage: epoch_profile(project / "reports" / "variants" / stage.split("@")[1] / "history.csv")
        for stage in stages
        if stage.startswith("train@")
    }


def retime(result: dict, project: Path, stage: str) -> dict:
    """``stage`` timed again on its own (`dvc repro --force --single-item`), its figures put in place of the
    whole run's (which stay in ``retimed``): for a stage the whole run did not time whole."""
    again = run_repro(project, True, ["--single-item", stage])
    if stage not in again["stages_s"]:
        raise ImdbRnnError(f"`dvc repro --single-item {stage}` ran no stage {stage}; name one of dvc.yaml's stages")
    was = result["stages_s"][stage]
    result["stages_s"][stage] = again["stages_s"][stage]
    result["total_s"] = round(result["total_s"] - was + again["stages_s"][stage], 1)
    result["training"].update(again["training"])
    result["resumed"] = [s for s in result.get("resumed", []) if s != stage]
    result.setdefault("retimed", {})[stage] = {
        "was_s": was,
        "finished": again["finished"],
        "load_1min": again["load_1min"],
    }
    return result


def group_of(stage: str) -> str:
    """train@simple_rnn -> train: the foreach stages summed per kind."""
    return stage.split("@")[0]


def render(result: dict) -> str:
    stages, total = result["stages_s"], result["total_s"]
    resumed, retimed = result.get("resumed", []), result.get("retimed", {})
    groups: dict[str, float] = {}
    for stage, seconds in stages.items():
        groups[group_of(stage)] = groups.get(group_of(stage), 0) + seconds
    rows = [[f"`{s}`", f"{v:,.0f}", f"{v / total:.0%}"] for s, v in stages.items()]
    kinds = [[f"`{g}`", f"{v:,.0f}", f"{v / total:.0%}", f"{v / TARGET_S:.2f}x"] for g, v in groups.items()]
    verdict = "met" if total <= TARGET_S else f"missed by {total - TARGET_S:,.0f} s ({total / TARGET_S:.1f}x)"
    training = [
        [f"`{stage}`", f"{stages[stage]:,.0f}", str(p["seeds"]), str(p["epochs"]), f"{p['first_epochs_s']:,.0f}",
         f"{p['later_epochs_s']:,.0f}", f"{stages[stage] - p['first_epochs_s'] - p['later_epochs_s']:,.0f}"]
        for stage, p in result.get("training", {}).items()
    ]  # fmt: skip
    return "\n".join(
        [
            "# A whole dvc repro, stage by stage",
            "",
            f"Generated by `python bench/repro_times.py` (`{result['command']}` of {result['commit']}: every stage, "
            "as on a fresh clone), "
            f"finished {result['finished']}. A stage's time runs from DVC's \"Running stage\" line to the next "
            "one's, so hashing and caching its outputs count. The training stages' own profile (first epoch, "
            "later epochs) is in reports/benchmark.md.",
            "",
            *machine_lines([result["machine"]]),
            f"- load average (1 min) at the start and the end: {result['load_1min'][0]:.2f}, "
            f"{result['load_1min'][1]:.2f}",
            "",
            "## Total",
            "",
            f"- {total:,.0f} s ({total / 60:.1f} min) for {len(stages)} stages; the target, {TARGET_S} s from "
            f"prepare to register: {verdict}",
            f"- DVC itself before the first stage (reading the pipeline, checking what changed): "
            f"{total - sum(stages.values()):,.1f} s",
            *[f"- `{s}` resumed an interrupted run's checkpoint: its figure is only the rest" for s in resumed],
            *[
                f"- `{s}` timed again on its own (`dvc repro --force --single-item`, {r['finished']}), its figure in "
                f"place of the whole run's {r['was_s']:,.0f} s"
                for s, r in retimed.items()
            ],
            "",
            "## By kind of stage",
            "",
            *table(["stage", "s", "share", "of the target"], kinds),
            "",
            "## Every stage",
            "",
            *table(["stage", "s", "share"], rows),
            "",
            "## The training stages: where their time goes",
            "",
            "From each stage's history.csv: every seed's first epoch (graph building and tracing included) and "
            "its later epochs, validation included; the rest of the stage is loading the data, building and "
            "saving the models and MLflow logging.",
            "",
            *table(["stage", "s", "seeds", "epochs", "first epochs s", "later epochs s", "the rest s"], training),
            "",
        ]
    )


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("targets", nargs="*", help="dvc.yaml stages to reproduce (default: all)")
    parser.add_argument("--project", type=Path, default=ROOT, help="the project to reproduce (this one)")
    parser.add_argument("--no-force", action="store_true", help="run only the stages DVC finds changed")
    parser.add_argument("--retime", metavar="STAGE", help="time STAGE again on its own, in place of its figure")
    parser.add_argument("--report-only", action="store_true", help="render the report from the JSON")
    parser.add_argument("--json", type=Path, default=ROOT / "reports" / "repro-times.json", help="the figures")
    parser.add_argument("--out", type=Path, default=ROOT / "reports" / "repro-times.md", help="the report")
    args = parser.parse_args(argv)

    def run() -> None:
        if args.retime:
            write_json(args.json, retime(read_json(args.json), args.project, args.retime))
        elif not args.report_only:
            write_json(args.json, run_repro(args.project, not args.no_force, args.targets))
        write_text(args.out, render(read_json(args.json)))
        print(f"wrote {args.out}", file=sys.stderr)

    return run_cli(run, interrupted="timing stopped, nothing written; the stages DVC finished are cached")


if __name__ == "__main__":
    sys.exit(main())
