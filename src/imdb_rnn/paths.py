"""Where everything lives, relative to the project root (dvc.yaml names the same paths).

The stages run from the root (DVC runs them there); the CLI and the benchmark resolve these
against the root they are given.
"""

from __future__ import annotations

from pathlib import Path

from .errors import TrackingError

PARAMS = Path("params.yaml")
RAW_ARCHIVE = Path("data/raw/aclImdb_v1.tar.gz")
PREPARED = Path("data/prepared")
VOCAB = PREPARED / "vocab.json"
REPORTS = Path("reports")
PARAMS_CHECKED = REPORTS / "params.checked"  # the validate stage's mark: every stage after it depends on it
DATA_REPORT = REPORTS / "data.json"
SUMMARY = REPORTS / "summary.csv"
CHAMPION = REPORTS / "champion.json"  # the register stage's decision: which version is the champion, and why
VARIANT_REPORTS = REPORTS / "variants"
MODELS = Path("models")
MLFLOW_STORE = "mlflow.db"  # at the project root, also for DVC's temporary experiment workspaces
MLFLOW_ARTIFACTS = "mlartifacts"


def model_dir(variant: str, models: Path = MODELS) -> Path:
    """``models/<variant>``: model.keras, summary.txt, run.json."""
    return Path(models) / variant


def variant_reports(variant: str, reports: Path = VARIANT_REPORTS) -> Path:
    """``reports/variants/<variant>``: history, test metrics, plot data and figures."""
    return Path(reports) / variant


def project_root(start: Path | None = None) -> Path:
    """The workspace root: the folder holding ``dvc.yaml``, outside any DVC temp workspace.

    DVC runs queued experiments in ``.dvc/tmp/exps/<id>/``; they must log into the workspace's
    one MLflow store, so their root is the workspace above.
    """
    path = (start or Path(__file__)).resolve()
    parts = path.parts
    for i in range(len(parts) - 3):
        if parts[i : i + 4] == (".dvc", "tmp", "exps", parts[i + 3]):
            return Path(*parts[:i])
    for candidate in [path, *path.parents]:
        if (candidate / "dvc.yaml").is_file():
            return candidate
    raise TrackingError(f"no dvc.yaml above {path}; run from inside the project")
