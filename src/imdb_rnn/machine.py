"""The machine and software a result comes from: CPU model, library versions, numerics settings.

Another CPU, thread count or oneDNN setting changes TensorFlow's floating-point rounding, and a
SimpleRNN's training amplifies it; every run is tagged with these, so two machines' results can be
compared knowing what differed. Keras-free: it is read before any backend is chosen.
"""

from __future__ import annotations

import os
import platform
from collections.abc import Mapping
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

# Environment variables that change TensorFlow's numerics (unset: TensorFlow's default).
NUMERICS_ENV = ("TF_ENABLE_ONEDNN_OPTS", "TF_NUM_INTRAOP_THREADS", "TF_NUM_INTEROP_THREADS", "OMP_NUM_THREADS")
# Libraries whose versions decide a result, by the distribution names each may be installed as.
LIBRARIES = {
    "tensorflow": ("tensorflow-cpu", "tensorflow"),
    "keras": ("keras",),
    "numpy": ("numpy",),
    "mlflow": ("mlflow",),
    "dvc": ("dvc",),
}
NOT_INSTALLED = "not installed"


def dist_version(*names: str) -> str | None:
    """Installed version of the first of ``names`` found, else None: the project's one version lookup
    (a distribution may be installed under several names: tensorflow-cpu or tensorflow)."""
    for name in names:
        try:
            return version(name)
        except PackageNotFoundError:
            continue
    return None


def versions() -> dict[str, str]:
    """``{"tensorflow": "2.21.0", ...}``, "not installed" where one is missing."""
    return {lib: dist_version(*dists) or NOT_INSTALLED for lib, dists in LIBRARIES.items()}


def cpu_model(cpuinfo: Path = Path("/proc/cpuinfo")) -> str:
    """``AMD EPYC, 2 CPUs, AVX-512``: the model name and whether it has AVX-512 (TensorFlow's kernels differ)."""
    try:
        lines = cpuinfo.read_text(encoding="utf-8", errors="replace").splitlines()
    except OSError:
        return f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs"
    field: dict[str, str] = {}
    for line in lines:
        key, _, value = line.partition(":")
        field.setdefault(key.strip(), value.strip())
    name = field.get("model name") or platform.machine()
    avx512 = "avx512f" in field.get("flags", "").split()
    return f"{name}, {os.cpu_count()} CPUs, {'AVX-512' if avx512 else 'no AVX-512'}"


def numerics(env: Mapping[str, str] = os.environ) -> dict[str, str]:
    """The numerics settings in effect: each variable's value, or "default"."""
    return {name: env.get(name) or "default" for name in NUMERICS_ENV}


def environment_tags(env: Mapping[str, str] = os.environ) -> dict[str, str]:
    """Run tags: ``cpu``, ``version.<library>``, ``numerics.<variable>``."""
    return {
        "cpu": cpu_model(),
        **{f"version.{lib}": v for lib, v in versions().items()},
        **{f"numerics.{name}": v for name, v in numerics(env).items()},
    }
