"""The shared start of the per-variant DVC stages (train, evaluate): arguments, params, backend."""

from __future__ import annotations

import argparse
import sys

from .config import ConfigError, Params, load_params


def start(description: str, argv=None) -> tuple[argparse.Namespace, Params]:
    """Parse ``variant [--params --data --models --reports]``, load params.yaml, choose the backend.

    A bad params file or an unknown variant prints one ``error:`` line per problem, a missing
    backend one line saying how to install it; both exit 1 before any work (SystemExit).
    """
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("variant", help="a key of `models:` in params.yaml")
    parser.add_argument("--params", default="params.yaml")
    parser.add_argument("--data", default="data/prepared")
    parser.add_argument("--models", default="models")
    parser.add_argument("--reports", default="reports/variants")
    args = parser.parse_args(argv)
    try:
        params = load_params(args.params)
        params.model(args.variant)
    except ConfigError as exc:
        print("\n".join(f"error: {p}" for p in exc.problems), file=sys.stderr)
        raise SystemExit(1) from None

    from .train import select_backend

    try:
        select_backend(params.train.backend)
    except ImportError as exc:
        print(f"error: {exc}", file=sys.stderr)
        raise SystemExit(1) from None
    return args, params
