"""DVC stage `evaluate`: test metrics, plots and their data for one variant, logged to its run."""

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))  # this workspace's code, also in DVC temp workspaces

from imdb_rnn import paths, variant_stage  # noqa: E402
from imdb_rnn.errors import run_cli  # noqa: E402
from imdb_rnn.evaluate import evaluate_variant  # noqa: E402
from imdb_rnn.stats import format_interval  # noqa: E402


def main(argv: list[str] | None = None) -> None:
    args, params = variant_stage.start(__doc__, argv)
    metrics = evaluate_variant(
        args.variant,
        params,
        args.data,
        paths.model_dir(args.variant, args.models),
        paths.variant_reports(args.variant, args.reports),
    )
    accuracy = format_interval(metrics["accuracy"], metrics["accuracy_ci95_low"], metrics["accuracy_ci95_high"])
    seeds = ", ".join(f"{r['seed']}: {r['accuracy']:.4f}" for r in metrics["per_seed"])
    served = "the ensemble" if metrics["serve"] == "ensemble" else f"seed {metrics['selected_seed']}"
    print(
        f"{args.variant} test over {metrics['seeds']} seed(s): accuracy {accuracy} (mean [95% CI]), ROC AUC "
        f"{metrics['roc_auc']:.4f}; per seed: {seeds}; their ensemble: {metrics['ensemble_accuracy']:.4f}; "
        f"served ({served}): {metrics['served_accuracy']:.4f}"
    )


if __name__ == "__main__":
    sys.exit(run_cli(main, interrupted="evaluation stopped; the MLflow run is KILLED and no metrics were written"))
