"""DVC stage `evaluate`: test metrics, plots and their data for one variant, logged to its run."""

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
    from imdb_rnn.evaluate import ModelFileError, evaluate_variant

    try:
        metrics = evaluate_variant(args.variant, params, Path(args.data), Path(args.models) / args.variant,
                                   Path(args.reports) / args.variant)
    except (ModelFileError, tracking.TrackingError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        tracking.exit_interrupted("evaluation stopped; the MLflow run is marked KILLED and no metrics were written")
    print(f"{args.variant} test: " + ", ".join(f"{k} {v:.4f}" for k, v in metrics.items()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
