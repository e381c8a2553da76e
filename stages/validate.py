"""DVC stage `validate`: the whole params.yaml checked before any other stage removes its outputs.

DVC deletes a stage's outputs before it runs the stage's command, so a typo (or a length beyond
memory) caught inside `prepare` or `train` would cost their outputs. Every stage descends from
`prepare`, which depends on this stage's mark: DVC runs validate first, a bad edit stops here in one
line and every output stays in place. The mark's text never changes, so a valid edit reruns only the
stages whose params it touches.
"""

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))  # this workspace's code, also in DVC temp workspaces

from imdb_rnn import paths  # noqa: E402
from imdb_rnn.config import load_params  # noqa: E402
from imdb_rnn.errors import run_cli  # noqa: E402
from imdb_rnn.files import write_text  # noqa: E402
from imdb_rnn.memory import require_prepare_memory, require_training_memory  # noqa: E402

MARK = "params.yaml passed validation (stages/validate.py); the stages after it depend on this file.\n"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--params", type=Path, default=paths.PARAMS)
    parser.add_argument("--mark", type=Path, default=paths.PARAMS_CHECKED)
    args = parser.parse_args(argv)
    params = load_params(args.params)
    require_prepare_memory(params.data)  # the stages check again: memory is the machine's, not the file's
    for variant in params.models:
        require_training_memory(params, variant)
    if not args.mark.is_file() or args.mark.read_text(encoding="utf-8") != MARK:
        write_text(args.mark, MARK)
    print(f"params.yaml is valid: {len(params.models)} variant(s): {', '.join(params.models)}")


if __name__ == "__main__":
    sys.exit(run_cli(main, interrupted="validate stopped; nothing was written"))
