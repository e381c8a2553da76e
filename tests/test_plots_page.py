"""`dvc plots show|diff` use the committed offline page and the project's own Vega-Lite template (what they
draw in a browser is checked in test_browser.py)."""

from __future__ import annotations

import json
import subprocess
import sys

import yaml
from configobj import ConfigObj  # DVC's own config reader

from imdb_rnn.fitting import HISTORY_COLUMNS
from support.commands import REPO_ROOT

PLOTS_DIR = REPO_ROOT / ".dvc" / "plots"  # DVC looks up a plot's `template: <name>` here first


def stage_plots() -> dict[str, dict]:
    """Every stage-level plot of dvc.yaml: path -> its properties."""
    stages = yaml.safe_load((REPO_ROOT / "dvc.yaml").read_text(encoding="utf-8"))["stages"]
    return {
        path: props or {}
        for stage in stages.values()
        for entry in stage.get("do", stage).get("plots", [])
        for path, props in (entry.items() if isinstance(entry, dict) else [(entry, {})])
    }


def test_the_projects_plots_page_is_the_offline_one():
    page = ConfigObj(str(REPO_ROOT / ".dvc" / "config"))["plots"]["html_template"]
    assert (REPO_ROOT / ".dvc" / page).resolve() == PLOTS_DIR / "offline_page.html"  # relative to .dvc/
    check = subprocess.run(
        [sys.executable, "scripts/build_plots_page.py", "--check"], cwd=REPO_ROOT, capture_output=True, text=True
    )
    assert check.returncode == 0, check.stderr


def test_the_training_curves_template_reads_the_history_columns():
    history = stage_plots()["reports/variants/${key}/history.csv"]
    template = json.loads((PLOTS_DIR / f"{history['template']}.json").read_text(encoding="utf-8"))
    assert template["data"]["values"] == "<DVC_METRIC_DATA>"
    folded = [
        column
        for chart in template["hconcat"]
        for step in chart["transform"]
        if "fold" in step
        for column in step["fold"]
    ]
    assert folded == ["accuracy", "val_accuracy", "loss", "val_loss"]
    assert set(folded) | {history["x"], "seed"} <= set(HISTORY_COLUMNS)


def test_the_confusion_plot_is_oriented_as_the_png():
    """rows = actual, columns = predicted, as plots.confusion_matrix_figure; DVC's x is the columns."""
    confusion = stage_plots()["reports/variants/${key}/predictions.csv"]
    assert (confusion["template"], confusion["x"], confusion["y"]) == ("confusion", "predicted", "actual")
