"""DVC stage `prepare`: archive -> padded train/val/test arrays, vocabulary, data report."""

import argparse
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))  # this workspace's code, also in DVC temp workspaces

from imdb_rnn import paths  # noqa: E402
from imdb_rnn.config import load_params  # noqa: E402
from imdb_rnn.dataset import prepare_dataset, write_prepared  # noqa: E402
from imdb_rnn.errors import run_cli  # noqa: E402
from imdb_rnn.files import write_json  # noqa: E402
from imdb_rnn.memory import require_prepare_memory  # noqa: E402


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--archive", type=Path, default=paths.RAW_ARCHIVE)
    parser.add_argument("--out", type=Path, default=paths.PREPARED)
    parser.add_argument("--report", type=Path, default=paths.DATA_REPORT)
    parser.add_argument("--params", type=Path, default=paths.PARAMS)
    args = parser.parse_args(argv)
    params = load_params(args.params).data
    require_prepare_memory(params)
    start = time.perf_counter()
    prepared = prepare_dataset(args.archive, params)
    write_prepared(prepared, args.out, params)
    write_json(args.report, prepared.report)
    shapes = ", ".join(f"{k} {v['x'].shape}" for k, v in prepared.arrays.items())
    print(f"prepared {shapes} in {time.perf_counter() - start:.1f} s -> {args.out}")


if __name__ == "__main__":
    sys.exit(run_cli(main, interrupted="prepare stopped; data/prepared is unchanged"))
