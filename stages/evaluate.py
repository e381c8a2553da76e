"""DVC stage `evaluate`: test metrics, plots and their data for one variant, logged to its run."""

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))  # this workspace's code, also in DVC temp workspaces

from imdb_rnn import variant_stage  # noqa: E402


def main(argv=None) -> int:
    args, params = variant_stage.start(__doc__, argv)
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
