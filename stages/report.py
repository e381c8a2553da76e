"""DVC stage `report`: compare every variant in one table and chart, also logged to MLflow."""

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))  # this workspace's code, also in DVC temp workspaces

from imdb_rnn.config import ConfigError, load_params  # noqa: E402


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--params", default="params.yaml")
    parser.add_argument("--variants", default="reports/variants", help="per-variant report folders")
    parser.add_argument("--out", default="reports")
    args = parser.parse_args(argv)
    try:
        params = load_params(args.params)
    except ConfigError as exc:
        print("\n".join(f"error: {p}" for p in exc.problems), file=sys.stderr)
        return 1

    from imdb_rnn import tracking
    from imdb_rnn.report import log_summary, write_summary

    out = Path(args.out)
    try:
        table = write_summary(params, Path(args.variants), out)
        log_summary(params, out, workspace=ROOT)
    except FileNotFoundError as exc:
        print(f"error: {exc.filename} is missing; run `dvc repro` to train and evaluate every variant",
              file=sys.stderr)
        return 1
    except tracking.TrackingError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(table.to_string(index=False))
    return 0


if __name__ == "__main__":
    sys.exit(main())
