"""DVC stage `train`: fit one model variant, save it, record the run in MLflow."""

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))  # this workspace's code, also in DVC temp workspaces

from imdb_rnn.config import ConfigError, load_params  # noqa: E402


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("variant", help="a key of `models:` in params.yaml")
    parser.add_argument("--params", default="params.yaml")
    parser.add_argument("--data", default="data/prepared")
    parser.add_argument("--models", default="models")
    parser.add_argument("--reports", default="reports/variants")
    args = parser.parse_args(argv)
    try:
        params = load_params(args.params)
        params.model(args.variant)
    except ConfigError as exc:
        print("\n".join(f"error: {p}" for p in exc.problems), file=sys.stderr)
        return 1

    from imdb_rnn.train import select_backend

    try:
        select_backend(params.train.backend)
    except ImportError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    from imdb_rnn import tracking
    from imdb_rnn.data import DataError
    from imdb_rnn.train import DivergedError, train_variant

    try:
        run_id = train_variant(
            args.variant, params, data_dir=Path(args.data), model_dir=Path(args.models) / args.variant,
            report_dir=Path(args.reports) / args.variant, workspace=ROOT,
        )
    except (DataError, DivergedError, tracking.TrackingError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        tracking.exit_interrupted("training stopped; the MLflow run is marked KILLED and no model was written")
    print(f"trained {args.variant}: MLflow run {run_id}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
