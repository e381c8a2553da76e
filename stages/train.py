"""DVC stage `train`: fit one model variant, save it, record the run in MLflow."""

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))  # this workspace's code, also in DVC temp workspaces

from imdb_rnn import paths, variant_stage  # noqa: E402
from imdb_rnn.errors import run_cli  # noqa: E402


def main(argv=None) -> None:
    args, params = variant_stage.start(__doc__, argv)
    from imdb_rnn.memory import require_training_memory
    from imdb_rnn.train import train_variant

    require_training_memory(params, args.variant)

    run_id = train_variant(
        args.variant,
        params,
        data_dir=args.data,
        model_dir=paths.model_dir(args.variant, args.models),
        report_dir=paths.variant_reports(args.variant, args.reports),
        workspace=ROOT,
    )
    print(f"trained {args.variant}: MLflow run {run_id}")


if __name__ == "__main__":
    sys.exit(run_cli(main, interrupted="training stopped; the MLflow run is marked KILLED and no model was written"))
