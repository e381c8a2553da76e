"""DVC stage `track`: record this pipeline execution in MLflow (runs every time; see imdb_rnn.execution)."""

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))  # this workspace's code, also in DVC temp workspaces

from imdb_rnn import paths  # noqa: E402
from imdb_rnn.errors import run_cli  # noqa: E402


def main(argv=None) -> None:
    from imdb_rnn.config import load_params
    from imdb_rnn.execution import log_execution

    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--params", type=Path, default=paths.PARAMS)
    parser.add_argument("--models", type=Path, default=paths.MODELS)
    parser.add_argument("--reports", type=Path, default=paths.REPORTS)
    args = parser.parse_args(argv)
    run_id = log_execution(load_params(args.params), args.models, args.reports, workspace=ROOT)
    if run_id:
        print(f"MLflow: this execution's summary is run {run_id}")
    else:
        print("MLflow: the latest summary run already records these results; nothing logged")


if __name__ == "__main__":
    sys.exit(run_cli(main, interrupted="tracking stopped"))
