"""The sweep's outcome as the user reads it: a `dvc exp show`-style table and each experiment's MLflow runs."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from tabulate import tabulate

from ..paths import VARIANT_REPORTS
from .grid import Point

METRICS = ("accuracy", "loss")  # shown per variant in the comparison; `dvc exp show` has them all


def comparison(root: Path, points: list[Point], failed: dict[str, str]) -> str:
    """A `dvc exp show`-style table of the grid: params set, each variant's test metrics, state."""
    out = subprocess.run(
        [sys.executable, "-m", "dvc", "exp", "show", "--json"],
        cwd=root,
        capture_output=True,
        text=True,
        timeout=600,
        check=True,
    )
    shown = {}
    for commit in json.loads(out.stdout):
        for exp in commit.get("experiments") or []:
            rev = exp["revs"][0]
            shown[exp.get("name") or rev.get("name")] = (rev.get("data") or {}).get("metrics") or {}
    files = sorted({f for metrics in shown.values() for f in metrics if f.startswith(f"{VARIANT_REPORTS}/")})
    keys = list(dict.fromkeys(k for p in points for k in p.settings))
    headers = ["Experiment", "State", *keys, *(f"{f.split('/')[2]} {m}" for f in files for m in METRICS)]
    rows = []
    for p in points:
        metrics = shown.get(p.name, {})
        values = [((metrics.get(f) or {}).get("data") or {}).get(m) for f in files for m in METRICS]
        values = [f"{v:.4f}" if isinstance(v, (int, float)) else v for v in values]
        state = "Success" if p.name in shown else "Failed" if p.name in failed else "Missing"
        rows.append([p.name, state, *(p.settings.get(k, "") for k in keys), *values])
    return tabulate(rows, headers=headers, disable_numparse=True, missingval="-")


def run_links(uri: str, names: list[str]) -> list[str]:
    """Each experiment's MLflow runs (found by their `dvc_exp_name` tag), with a link to each."""
    import mlflow

    client = mlflow.MlflowClient(tracking_uri=uri)
    ids = [e.experiment_id for e in client.search_experiments()]
    lines = []
    for name in names:
        runs = client.search_runs(ids, filter_string=f"tags.dvc_exp_name = '{name}'", order_by=["start_time ASC"])
        for r in runs:
            link = (
                f"{uri.rstrip('/')}/#/experiments/{r.info.experiment_id}/runs/{r.info.run_id}"
                if uri.startswith(("http://", "https://"))
                else f"runs:/{r.info.run_id}"
            )
            lines.append(f"{r.info.run_name:<28} {r.info.status:<9} {link}")
    return lines
