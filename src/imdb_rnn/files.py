"""Files in and out: the one atomic file writer, the one atomic folder swap, JSON, npz, md5.

Nothing half-written ever appears at an output path: files and folders are written beside
their destination under a temp name and renamed into place only once complete, so a crash,
a full disk or Ctrl-C leaves the previous output (or none), never a truncated one.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import os
import shutil
import tempfile
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from _hashlib import HASH

CHUNK_SIZE = 1 << 20  # 1 MiB reads: few syscalls, bounded memory


@contextlib.contextmanager
def atomic_file(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temp path beside ``path``; rename it into place (0644, fsynced) only if the block succeeds."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        yield Path(tmp)
        os.chmod(tmp, 0o644)
        with open(tmp, "rb") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp, path)
        _fsync_dir(path.parent)
    finally:
        Path(tmp).unlink(missing_ok=True)


@contextlib.contextmanager
def atomic_dir(path: str | os.PathLike) -> Iterator[Path]:
    """Yield an empty temp folder beside ``path``; swap it in for ``path`` only if the block succeeds."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=path.parent, prefix=f".{path.name}."))
    try:
        tmp.chmod(0o755)
        yield tmp
        if path.exists():
            shutil.rmtree(path)
        os.replace(tmp, path)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _fsync_dir(folder: Path) -> None:
    """Persist a rename itself; best effort, not every platform allows it."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def write_text(path: str | os.PathLike, text: str) -> None:
    with atomic_file(path) as tmp:
        tmp.write_text(text, encoding="utf-8")


def write_json(path: str | os.PathLike, obj: Any) -> None:
    write_text(path, json.dumps(obj, indent=2) + "\n")


def read_json(path: str | os.PathLike) -> Any:
    """A JSON file the project wrote (vocab.json, metrics.json, run.json), read as UTF-8 whatever the locale."""
    return json.loads(Path(path).read_text(encoding="utf-8"))


def save_npz(path: Path, **arrays: np.ndarray) -> None:
    """``np.savez_compressed`` with fixed zip timestamps, so the bytes depend on the data only."""
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=1) as zf:
        for name, array in arrays.items():
            info = zipfile.ZipInfo(f"{name}.npy", date_time=(1980, 1, 1, 0, 0, 0))
            info.compress_type = zipfile.ZIP_DEFLATED
            buf = io.BytesIO()
            np.lib.format.write_array(buf, np.ascontiguousarray(array), allow_pickle=False)
            zf.writestr(info, buf.getvalue(), compresslevel=1)


def load_npz(path: str | os.PathLike) -> dict[str, np.ndarray]:
    """Load prepared arrays (never with pickles)."""
    with np.load(path, allow_pickle=False) as npz:
        return {k: npz[k] for k in npz.files}


def md5_update(digest: HASH, path: str | os.PathLike) -> HASH:
    """Feed a file into ``digest`` in chunks; return the digest."""
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(CHUNK_SIZE), b""):
            digest.update(chunk)
    return digest


def file_md5(path: str | os.PathLike) -> str:
    return md5_update(hashlib.md5(usedforsecurity=False), path).hexdigest()


def folder_md5(folder: str | os.PathLike) -> str:
    """md5 over the names and bytes of a folder's files (sorted), e.g. the prepared data a run saw."""
    digest = hashlib.md5(usedforsecurity=False)
    for path in sorted(Path(folder).iterdir()):
        if path.is_file():
            digest.update(path.name.encode())
            md5_update(digest, path)
    return digest.hexdigest()
