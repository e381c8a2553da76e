"""The machine and software a result comes from: CPU model and flags, library versions, numerics settings.

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


# CPU features that change which kernels TensorFlow and oneDNN run, so its speed and its rounding.
KERNEL_FLAGS = ("avx2", "fma", "avx512f", "avx512_vnni", "avx512_bf16", "avx512_fp16", "amx_tile", "amx_bf16")


def cpu_fields(cpuinfo: Path = Path("/proc/cpuinfo")) -> dict[str, str]:
    """The first processor's fields of ``/proc/cpuinfo`` (``model name``, ``flags``, ...); empty where there is none."""
    try:
        lines = cpuinfo.read_text(encoding="utf-8", errors="replace").splitlines()
    except OSError:
        return {}
    field: dict[str, str] = {}
    for line in lines:
        key, _, value = line.partition(":")
        field.setdefault(key.strip(), value.strip())
    return field


def cpu_model(cpuinfo: Path = Path("/proc/cpuinfo")) -> str:
    """``AMD EPYC, 2 CPUs, AVX-512``: the model name and whether it has AVX-512 (TensorFlow's kernels differ)."""
    field = cpu_fields(cpuinfo)
    if not field:
        return f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs"
    name = field.get("model name") or platform.machine()
    avx512 = "avx512f" in field.get("flags", "").split()
    return f"{name}, {os.cpu_count()} CPUs, {'AVX-512' if avx512 else 'no AVX-512'}"


def describe_machine(cpuinfo: Path = Path("/proc/cpuinfo")) -> dict:
    """What a timing depends on, as JSON a result can carry: the CPU model and its kernel flags, the CPUs this
    process may use, memory, OS, Python and library versions. Timings compare only between equal descriptions."""
    import psutil

    field = cpu_fields(cpuinfo)
    flags = set(field.get("flags", "").split())
    return {
        "cpu": field.get("model name") or platform.processor() or platform.machine(),
        "flags": [flag for flag in KERNEL_FLAGS if flag in flags],
        "cpus": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count(),
        "memory_gb": round(psutil.virtual_memory().total / 1e9, 1),
        "os": platform.platform(),
        "python": platform.python_version(),
        "versions": versions(),
    }


def machine_line(machine: dict) -> str:
    """``Intel(R) Xeon(R) Processor (2 CPUs, flags avx2 fma avx512f, 8.3 GB memory); Linux-...; Python 3.11.7;
    tensorflow 2.21.0, ...``. Parts a description lacks are left out: results recorded before ``describe_machine``
    carry only ``cpu`` (``cpu_model``'s text) and ``versions``."""
    hardware = [
        f"{machine['cpus']} CPUs" if "cpus" in machine else None,
        f"flags {' '.join(machine['flags']) or 'none of ' + ' '.join(KERNEL_FLAGS)}" if "flags" in machine else None,
        f"{machine['memory_gb']:g} GB memory" if "memory_gb" in machine else None,
    ]
    hardware_text = ", ".join(filter(None, hardware))
    cpu = f"{machine['cpu']} ({hardware_text})" if hardware_text else machine["cpu"]
    software = [machine.get("os"), f"Python {machine['python']}" if "python" in machine else None]
    software.append(", ".join(f"{lib} {v}" for lib, v in machine.get("versions", {}).items()))
    return "; ".join(filter(None, [cpu, *software]))


def machine_lines(machines: list[dict]) -> list[str]:
    """A report's ``## Machine`` section, one line per distinct description: a report re-rendered from recorded
    results names the machines they ran on, not the one rendering it."""
    distinct = [m for i, m in enumerate(machines) if m not in machines[:i]]
    listed = [f"- {machine_line(m)}" for m in distinct] or ["- not recorded"]
    return ["## Machine", "", *listed, ""]


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
