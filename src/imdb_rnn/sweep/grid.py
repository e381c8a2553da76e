"""The grid of a sweep: its points, parsed as `dvc exp run -S` parses them, and checked before any work."""

from __future__ import annotations

import hashlib
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

from dvc.exceptions import InvalidArgumentError
from dvc.utils.cli_parse import to_path_overrides
from dvc.utils.hydra import apply_overrides, get_hydra_sweeps
from hydra.errors import HydraException

from ..config import load_params
from ..errors import ConfigError
from ..paths import PARAMS
from . import SweepError

NAME_PREFIX = "sweep-"


@dataclass(frozen=True)
class Point:
    """One grid point: the `-S` overrides of one `dvc exp run`, as ``FILE:KEY=VALUE``."""

    overrides: tuple[str, ...]

    @property
    def name(self) -> str:
        """Deterministic experiment name: the same params give the same name on every run."""
        digest = hashlib.sha256("\n".join(sorted(self.overrides)).encode()).hexdigest()
        return NAME_PREFIX + digest[:10]

    @property
    def settings(self) -> dict[str, str]:
        """KEY -> VALUE, with the default params file's prefix left out."""
        pairs = (o.removeprefix(f"{PARAMS}:").split("=", 1) for o in self.overrides)
        return {key: value for key, value in pairs}


def grid(set_params: list[str]) -> list[Point]:
    """The cartesian product of every ``-S``, parsed exactly as ``dvc exp run --queue`` does."""
    try:
        sweeps = get_hydra_sweeps(to_path_overrides(set_params))
    except HydraException as exc:
        raise SweepError(
            f"cannot parse -S {' '.join(set_params)}: {str(exc).splitlines()[0]}; "
            "write KEY=VALUE or KEY=V1,V2 as for `dvc exp run -S`"
        ) from None
    points = [Point(tuple(f"{path}:{o}" for path, overrides in sorted(s.items()) for o in overrides)) for s in sweeps]
    return list(dict.fromkeys(points))


def check_points(root: Path, points: list[Point]) -> None:
    """Validate every point's params here, before any node clones anything (one line per problem)."""
    problems: list[str] = []
    with tempfile.TemporaryDirectory() as tmp:
        for point in points:
            params = Path(tmp) / "params.yaml"
            shutil.copyfile(root / PARAMS, params)
            own = [o.split(":", 1)[1] for o in point.overrides if o.startswith(f"{PARAMS}:")]
            try:
                apply_overrides(params, own)
                load_params(params)
            except InvalidArgumentError as exc:  # hydra's reason is its cause
                problems.append(f"{' '.join(own)}: {str(exc.__cause__ or exc).splitlines()[0]}")
            except ConfigError as exc:
                problems.extend(exc.problems)
    if problems:
        raise ConfigError([f"-S: {p}" for p in dict.fromkeys(problems)])
