"""DVC stage `train`: fit one model variant, save it, record the run in MLflow."""

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))  # this workspace's code, also in DVC temp workspaces

from imdb_rnn import variant_stage  # noqa: E402


def main(argv=None) -> int:
    args, params = variant_stage.start(__doc__, argv)
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
