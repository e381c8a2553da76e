"""DVC stage `report`: compare every variant in one table and chart (the `track` stage logs them to MLflow)."""

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))  # this workspace's code, also in DVC temp workspaces

from imdb_rnn import paths  # noqa: E402
from imdb_rnn.errors import run_cli  # noqa: E402


def main(argv=None) -> None:
    from imdb_rnn.config import load_params
    from imdb_rnn.report import brief_markdown, write_summary

    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--params", type=Path, default=paths.PARAMS)
    parser.add_argument("--variants", type=Path, default=paths.VARIANT_REPORTS, help="per-variant report folders")
    parser.add_argument("--out", type=Path, default=paths.REPORTS)
    args = parser.parse_args(argv)
    params = load_params(args.params)
    table = write_summary(params, args.variants, args.out)
    print(brief_markdown(table))
    print(f"every setting and per-seed figure: {args.out / 'summary.csv'}")


if __name__ == "__main__":
    sys.exit(run_cli(main, interrupted="report stopped"))
