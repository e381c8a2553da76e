"""Training checkpoints, so an interrupted `train` stage resumes where it stopped.

DVC deletes a stage's outputs before it runs it and dropped its own checkpoints, so these live
outside DVC's outputs, in ``.checkpoints/<variant>/<key>/`` at the project root (the one
workspace root, also for DVC's temporary experiment workspaces and a retried queue entry). The
key hashes everything that decides the result (the prepared data, the variant's params, the code
of the package and the stage, the library versions, the CPU and numerics settings), so a
checkpoint is only ever resumed by the training it came from. Each seed's state is one file,
replaced atomically at the end of every epoch; the folder goes when the stage completes.
"""

from __future__ import annotations

import hashlib
import io
import json
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from filelock import FileLock, Timeout

from .files import atomic_file, read_json, write_json
from .machine import environment_tags

STORE = ".checkpoints"
KEY_PARTS = ("data", "params", "code", "environment")


def code_digest(package: Path, stage_script: Path) -> str:
    """md5 of the package's Python files and the stage script (names and bytes)."""
    digest = hashlib.md5(usedforsecurity=False)
    for path in [*sorted(Path(package).rglob("*.py")), Path(stage_script)]:
        digest.update(path.name.encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()


def key_material(data_hash: str, flat_params: dict, code: str, env=None) -> dict:
    """What decides a training's result, in the parts a discard message names."""
    environment = environment_tags(env) if env is not None else environment_tags()
    return {"data": data_hash, "params": flat_params, "code": code, "environment": environment}


def material_key(material: dict) -> str:
    return hashlib.sha256(json.dumps(material, sort_keys=True, default=str).encode()).hexdigest()[:20]


def differences(old: dict, new: dict) -> str:
    """``params (train.epochs), code``: what makes an old checkpoint another training's."""
    parts = []
    for part in KEY_PARTS:
        before, after = old.get(part), new.get(part)
        if before == after:
            continue
        if isinstance(before, dict) and isinstance(after, dict):
            keys = sorted(k for k in {*before, *after} if before.get(k) != after.get(k))
            parts.append(f"{part} ({', '.join(keys[:4])}{', ...' if len(keys) > 4 else ''})")
        else:
            parts.append(part)
    return ", ".join(parts) or "its key"


@dataclass
class SeedState:
    """A seed's training after ``meta["epochs_done"]`` epochs: every model variable (the dropout
    seed generators' state included), the optimizer's, the kept (best) weights, and the history,
    best-epoch and early-stopping facts in ``meta``. ``meta["finished"]``: nothing left to train."""

    meta: dict
    variables: list[np.ndarray] = field(default_factory=list)
    optimizer: list[np.ndarray] = field(default_factory=list)
    kept: list[np.ndarray] = field(default_factory=list)

    def to_bytes(self) -> bytes:
        arrays: dict[str, Any] = {"meta": np.frombuffer(json.dumps(self.meta).encode(), dtype=np.uint8)}
        for name in ("variables", "optimizer", "kept"):
            arrays.update({f"{name}_{i}": np.asarray(a) for i, a in enumerate(getattr(self, name))})
        buffer = io.BytesIO()
        np.savez(buffer, **arrays)  # uncompressed: saving costs milliseconds, not a share of the epoch
        return buffer.getvalue()

    @classmethod
    def from_file(cls, path: Path) -> SeedState:
        with np.load(path, allow_pickle=False) as npz:
            state = cls(meta=json.loads(npz["meta"].tobytes()))
            for name in ("variables", "optimizer", "kept"):
                count = sum(1 for key in npz.files if key.startswith(f"{name}_"))
                setattr(state, name, [npz[f"{name}_{i}"] for i in range(count)])
        return state


class CheckpointStore:
    """One training's checkpoints: opened (locked) at the stage's start; as a context, removed when the
    training completes."""

    def __init__(self, root: Path, variant: str, material: dict):
        self.variant, self.material = variant, material
        self.parent = Path(root) / STORE / variant
        self.folder = self.parent / material_key(material)
        self._lock: FileLock | None = None

    def open(self) -> dict:
        """Lock this training's folder, discard the variant's stale ones, return the saved run ids
        (``{"parent": id, "seeds": {seed: id}}``, empty for a fresh start)."""
        self.folder.mkdir(parents=True, exist_ok=True)
        self._lock = FileLock(str(self.folder) + ".lock")
        self._lock.acquire(timeout=0)  # one training per key at a time; a second one would race it
        self.discard_stale()
        runs = self.folder / "runs.json"
        if (self.folder / "material.json").is_file() and runs.is_file():
            return read_json(runs)
        write_json(self.folder / "material.json", self.material)
        return {}

    def __enter__(self) -> CheckpointStore:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        """The training completed: its checkpoints are spent. It failed before it recorded a run (a server
        that refused it, say): nothing to resume, so nothing is left behind. Otherwise they stay to resume."""
        if exc_type is None or not (self.folder / "runs.json").is_file():
            self.remove()
        else:
            self.close()

    def discard_stale(self) -> None:
        """Remove the variant's checkpoints for other settings that no running training holds, saying why."""
        for other in sorted(p for p in self.parent.iterdir() if p.is_dir() and p != self.folder):
            lock = FileLock(str(other) + ".lock")
            try:
                lock.acquire(timeout=0)
            except Timeout:
                continue  # another training (e.g. a queued experiment) is using it
            try:
                material = other / "material.json"
                why = differences(read_json(material), self.material) if material.is_file() else "incomplete"
                age = time.strftime("%Y-%m-%d %H:%M", time.localtime(other.stat().st_mtime))
                print(f"{self.variant}: discarded the checkpoint of {age} (made with other {why})", flush=True)
                shutil.rmtree(other)
            finally:
                lock.release()
                Path(str(other) + ".lock").unlink(missing_ok=True)

    def save_runs(self, runs: dict) -> None:
        write_json(self.folder / "runs.json", runs)

    def seed_path(self, seed: int) -> Path:
        return self.folder / f"seed_{seed}.npz"

    def save_seed(self, seed: int, state: SeedState) -> None:
        with atomic_file(self.seed_path(seed)) as tmp:
            Path(tmp).write_bytes(state.to_bytes())

    def load_seed(self, seed: int) -> SeedState | None:
        path = self.seed_path(seed)
        return SeedState.from_file(path) if path.is_file() else None

    def remove(self) -> None:
        """The training completed: its checkpoints are spent."""
        shutil.rmtree(self.folder, ignore_errors=True)
        self.close()
        Path(str(self.folder) + ".lock").unlink(missing_ok=True)

    def close(self) -> None:
        if self._lock is not None:
            self._lock.release()
            self._lock = None
