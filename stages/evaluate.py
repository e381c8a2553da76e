"""DVC stage `evaluate`: test metrics, plots and their data for one variant, logged to its run."""

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))  # this workspace's code, also in DVC temp workspaces

from imdb_rnn import paths, variant_stage  # noqa: E402
from imdb_rnn.errors import run_cli  # noqa: E402


def main(argv=None) -> None:
    args, params = variant_stage.start(__doc__, argv)
    from imdb_rnn.evaluate import evaluate_variant

    metrics = evaluate_variant(args.variant, params, args.data, paths.model_dir(args.variant, args.models),
                               paths.variant_reports(args.variant, args.reports))
    print(f"{args.variant} test over {metrics['seeds']} seeds: accuracy {metrics['accuracy']:.4f} "
          f"[95% CI {metrics['accuracy_ci95_low']:.4f}, {metrics['accuracy_ci95_high']:.4f}], "
          f"ROC AUC {metrics['roc_auc']:.4f}; per seed: "
          + ", ".join(f"{row['seed']}: {row['accuracy']:.4f}" for row in metrics["per_seed"]))


if __name__ == "__main__":
    sys.exit(run_cli(main, interrupted="evaluation stopped; the MLflow run is KILLED and no metrics were written"))
