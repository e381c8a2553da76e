"""DVC stage `register`: the execution's best variant becomes the registry's champion when it is
significantly better on the same validation reviews (exact McNemar test)."""

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))  # this workspace's code, also in DVC temp workspaces

from imdb_rnn import gate, paths, registry, tracking  # noqa: E402
from imdb_rnn.config import load_params  # noqa: E402
from imdb_rnn.errors import run_cli  # noqa: E402
from imdb_rnn.files import read_json, write_json  # noqa: E402


def previous_record(path: Path) -> dict | None:
    """The champion.json this stage wrote last time (DVC keeps it: ``persist``); unreadable or absent: None,
    which loses only the earlier promotion's reason."""
    try:
        return read_json(path)
    except (OSError, ValueError):
        return None


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--params", type=Path, default=paths.PARAMS)
    parser.add_argument("--summary", type=Path, default=paths.SUMMARY, help="the report's table")
    parser.add_argument("--models", type=Path, default=paths.MODELS)
    parser.add_argument("--reports", type=Path, default=paths.VARIANT_REPORTS, help="per-variant report folders")
    parser.add_argument("--out", type=Path, default=paths.CHAMPION)
    args = parser.parse_args(argv)
    params = load_params(args.params)
    tracking.setup(params.mlflow.experiment)
    candidate = registry.best_candidate(args.summary, args.models)
    predictions = paths.variant_reports(candidate.variant, args.reports) / gate.VAL_PREDICTIONS
    with tracking.refusals_named():  # a 403 on the registry (an account without EDIT on the model): one line
        decision = registry.register(params, candidate, predictions)
    decision["promotion"] = registry.promotion(decision, previous_record(args.out))
    write_json(args.out, decision)
    print(f"{decision['registered_model']}@{decision['alias']}: {decision['reason']}")


if __name__ == "__main__":
    sys.exit(run_cli(main, interrupted="register stopped"))
