"""The shared start of the per-variant DVC stages (train, evaluate): arguments, params, backend."""

from __future__ import annotations

import argparse
from pathlib import Path

from . import paths
from .backend import select_backend
from .config import Params, load_params


def start(description: str, argv=None) -> tuple[argparse.Namespace, Params]:
    """Parse ``variant [--params --data --models --reports]``, load params.yaml, choose the backend.

    A bad params file, an unknown variant or a missing backend raise before any work.
    """
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("variant", help="a key of `models:` in params.yaml")
    parser.add_argument("--params", type=Path, default=paths.PARAMS)
    parser.add_argument("--data", type=Path, default=paths.PREPARED)
    parser.add_argument("--models", type=Path, default=paths.MODELS)
    parser.add_argument("--reports", type=Path, default=paths.VARIANT_REPORTS)
    args = parser.parse_args(argv)
    params = load_params(args.params)
    params.model(args.variant)
    select_backend(params.train_for(args.variant).backend)
    return args, params
