"""`imdb-rnn` command line: `imdb-rnn predict --model simple_rnn "A moving film."`."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from .errors import run_cli


def _predict(args) -> int:
    from .predict import predict_with_uri, predict_with_variant, read_texts

    root = Path(args.project).resolve()
    texts = read_texts(args.text, args.file, sys.stdin)
    if ":" in args.model:  # a model URI: variant names have no colon
        predictions = predict_with_uri(texts, args.model, root)
    else:
        predictions = predict_with_variant(texts, args.model, root)
    for p in predictions:
        snippet = p.text if len(p.text) <= 60 else p.text[:57] + "..."
        print(f"{p.label}\t{p.probability:.4f}\t{snippet}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="imdb-rnn", description="SimpleRNN sentiment models on IMDB")
    commands = parser.add_subparsers(dest="command", required=True)
    p = commands.add_parser("predict", help="score review text with a trained variant")
    p.add_argument("text", nargs="*", help="review text(s); none: read --file or stdin")
    p.add_argument("--model", default="simple_rnn",
                   help="a variant name from params.yaml (default simple_rnn), or an MLflow model URI: "
                        "models:/imdb-rnn-sentiment@champion, runs:/<run id>/<variant>")
    p.add_argument("--file", help="a file with one review per line ('-' for stdin)")
    p.add_argument("--project", default=".", help="project root holding params.yaml (default: .)")
    p.set_defaults(func=_predict)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return run_cli(lambda: args.func(args), interrupted=f"{args.command} stopped")


if __name__ == "__main__":
    sys.exit(main())
