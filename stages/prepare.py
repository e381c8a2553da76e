"""DVC stage `prepare`: archive -> padded train/val/test arrays, vocabulary, data report."""

import argparse
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))  # this workspace's code, also in DVC temp workspaces

from imdb_rnn.config import ConfigError, load_params  # noqa: E402
from imdb_rnn.data import DataError, prepare_dataset, write_json_atomic, write_prepared  # noqa: E402


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--archive", default="data/raw/aclImdb_v1.tar.gz")
    parser.add_argument("--out", default="data/prepared")
    parser.add_argument("--report", default="reports/data.json")
    parser.add_argument("--params", default="params.yaml")
    args = parser.parse_args(argv)
    try:
        params = load_params(args.params).data
        start = time.perf_counter()
        prepared = prepare_dataset(args.archive, params)
        write_prepared(prepared, Path(args.out), params)
        write_json_atomic(Path(args.report), prepared.report)
    except (ConfigError, DataError) as exc:
        for line in exc.problems if isinstance(exc, ConfigError) else [str(exc)]:
            print(f"error: {line}", file=sys.stderr)
        return 1
    shapes = ", ".join(f"{k} {v['x'].shape}" for k, v in prepared.arrays.items())
    print(f"prepared {shapes} in {time.perf_counter() - start:.1f} s -> {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
