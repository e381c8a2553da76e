"""bench/scaling.py on a tiny corpus through the fit harness: each length prepared by the prepare stage, each
(path, length, share) cell fitted once in the order the report reads, a rerun trains nothing, a cell that fails is
recorded with its error line (and not retried), and the report has a row per cell and a crossover per length."""

from __future__ import annotations

import json
import shutil
import sys

import numpy as np
import pytest

from imdb_rnn.machine import describe_machine
from support.commands import REPO_ROOT, run
from support.params import TINY, write_params
from support.projects import make_project

pytestmark = pytest.mark.slow  # dvc repro prepare, fits in fresh interpreters


def cells_of(report: str) -> list[list[str]]:
    table = report.split("## Cells\n\n")[1].split("\n\n")[0].splitlines()[2:]
    return [[c.strip() for c in row.split("|")[1:-1]] for row in table]


def test_every_cell_is_fitted_once_on_its_own_length_and_a_failed_cell_is_reported(tmp_path, small_archive):
    repo = make_project(tmp_path)
    shutil.copytree(REPO_ROOT / "bench", repo / "bench", ignore=shutil.ignore_patterns("__pycache__"))
    write_params(repo / "params.yaml", TINY, True)  # data.maxlen 40; stacked_rnn: 2 layers
    times = tmp_path / "repro-times.json"  # bench/repro_times.py, on the pipeline's first stages
    cmd = [sys.executable, "bench/repro_times.py", "prepare", "--json", times, "--out", tmp_path / "repro-times.md"]
    run(cmd, repo, env={"IMDB_SOURCE": small_archive})
    stages = json.loads(times.read_text())["stages_s"]
    assert list(stages)[-1] == "prepare" and all(s > 0 for s in stages.values()), stages  # forced: every stage ran
    assert sum(stages.values()) <= json.loads(times.read_text())["total_s"]
    report = (tmp_path / "repro-times.md").read_text()
    assert all(f"| `{stage}` |" in report for stage in stages), report
    whole = json.loads(times.read_text())
    run([*cmd[:2], "--retime", "prepare", *cmd[3:]], repo, env={"IMDB_SOURCE": small_archive})  # one stage again
    again = json.loads(times.read_text())
    assert again["retimed"]["prepare"]["was_s"] == whole["stages_s"]["prepare"]
    assert again["total_s"] == pytest.approx(
        whole["total_s"] - whole["stages_s"]["prepare"] + again["stages_s"]["prepare"]
    )
    assert "`prepare` timed again on its own" in (tmp_path / "repro-times.md").read_text()
    out = tmp_path / "scaling.md"
    cmd = [sys.executable, "bench/scaling.py", "--maxlens", "20", "--shares", "50", "100", "--epochs", "2"]
    cmd += ["--archive", small_archive, "--out", out]
    first = run(cmd, repo, timeout=900)
    assert [line for line in first.stderr.splitlines() if line.startswith("--- ") and "prepare" not in line] == [
        "--- unrolled, maxlen 20, 100%",  # both paths of a cell, then the next cell
        "--- loop + buckets, maxlen 20, 100%",
        "--- unrolled, maxlen 40, 50%",  # the smaller shares at params.yaml's maxlen
        "--- loop + buckets, maxlen 40, 50%",
    ]
    n_train, n_val = (len(np.load(repo / "data" / "prepared" / f"{s}.npz")["y"]) for s in ("train", "val"))
    half = n_train * 50 // 400 * 4  # divisible by 4: a quarter as many validation reviews
    for maxlen in (20, 40):  # made by the prepare stage at that length, from the same reviews
        x = np.load(repo / ".bench" / "prepared" / f"maxlen-{maxlen}" / "train.npz")["x"]
        assert x.shape == (n_train, maxlen)
    fits = [json.loads(line) for line in out.with_suffix(".jsonl").read_text().splitlines()]
    assert [f["train_reviews"] for f in fits] == [n_train, n_train, half, half]
    assert [f["val_reviews"] for f in fits] == [n_val, n_val, half // 4, half // 4]
    for fit in fits:
        assert fit["machine"] == describe_machine() and len(fit["history"]) == 2
        assert all(r["seconds"] > 0 for r in fit["history"])

    again = run(cmd, repo, timeout=300)
    assert not [line for line in again.stderr.splitlines() if line.startswith("--- ")]

    report = out.read_text()
    assert f"## Machine\n\n- {describe_machine()['cpu']} (" in report
    cells = cells_of(report)
    assert [c[:4] for c in cells] == [
        ["unrolled", "20", "100%", str(n_train)],
        ["loop + buckets", "20", "100%", str(n_train)],
        ["unrolled", "40", "50%", str(half)],
        ["loop + buckets", "40", "50%", str(half)],
    ]
    for c, fit in zip(cells, fits, strict=True):
        first_s, steady_s = fit["history"][0]["seconds"], fit["history"][1]["seconds"]  # 2 epochs: one steady
        assert c[4:7] == [f"{first_s:.1f}", f"{steady_s:.1f}", f"{first_s + 9 * steady_s:.1f}"]
        assert float(c[7]) > 0 and float(c[8]) > 0 and c[9] == f"{fit['best_val_accuracy']:.4f}"
    crossover = report.split("## Crossover\n\n")[1].splitlines()
    assert crossover[0].startswith("- maxlen 20: ") and " is cheaper; loop / unrolled = " in crossover[0]
    assert crossover[1].startswith("- crossover: ")
    guard = report.split("## Memory guard\n\n")[1].splitlines()[:2]
    assert guard[0].startswith("- unrolled: measured peak / estimate ") and "the estimate " in guard[0]
    assert guard[1].startswith("- loop + buckets: measured peak / estimate ")

    # a cell whose prepared folder holds the wrong length: the harness' child refuses it with one error line
    wrong_folder = repo / ".bench" / "prepared" / "maxlen-30"
    shutil.copytree(repo / ".bench" / "prepared" / "maxlen-40", wrong_folder)
    vocab = json.loads((wrong_folder / "vocab.json").read_text())
    vocab["source"]["params"]["maxlen"] = 30  # says it was made at 30: not made again
    (wrong_folder / "vocab.json").write_text(json.dumps(vocab))
    wrong = [sys.executable, "bench/scaling.py", "--maxlens", "30", "--shares", "100", "--epochs", "2"]
    wrong += ["--archive", small_archive, "--out", out]
    failed = run(wrong, repo, timeout=300)
    assert [line for line in failed.stderr.splitlines() if line.startswith("--- ")] == [
        "--- unrolled, maxlen 30, 100%",
        "--- loop + buckets, maxlen 30, 100%",
    ]
    rows = cells_of(out.read_text())
    assert [r[:3] for r in rows] == [["unrolled", "30", "100%"], ["loop + buckets", "30", "100%"]]
    assert all(r[3].startswith("failed: exit 1: error: ") and "not data.maxlen 30" in r[3] for r in rows)
    assert "- maxlen 30: unrolled and loop + buckets did not finish; no comparison" in out.read_text()
    rerun = run(wrong, repo, timeout=300)  # recorded: not retried
    assert not [line for line in rerun.stderr.splitlines() if line.startswith("--- ")]
