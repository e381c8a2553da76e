"""Fetch the IMDB archive (aclImdb_v1.tar.gz) reliably and atomically.

The Stanford host is slow and occasionally flaky, so downloads are retried with
exponential back-off, verified against a known md5 and only ever appear at the
destination path once complete. ``IMDB_SOURCE`` lets users point at a mirror or
at a local copy when the official host is unreachable (e.g. offline machines).
"""

from __future__ import annotations

import hashlib
import http.client
import os
import time
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import IO

import requests
import urllib3
from tqdm import tqdm

from .errors import DownloadError
from .files import CHUNK_SIZE, atomic_file

OFFICIAL_URL = "https://ai.stanford.edu/~amaas/data/sentiment/aclImdb_v1.tar.gz"
OFFICIAL_MD5 = "7c2ac02c03563afcf9b574c7e56c153a"

_FIX_HINT = "set IMDB_SOURCE to a mirror URL or a local copy of aclImdb_v1.tar.gz"

# Errors after which a fresh attempt may well succeed (network hiccups, cut-off bodies).
_TRANSIENT_ERRORS = (
    requests.ConnectionError,  # refused, DNS, reset; includes ConnectTimeout
    requests.Timeout,
    requests.exceptions.ChunkedEncodingError,
    urllib3.exceptions.HTTPError,  # ProtocolError, ReadTimeoutError, IncompleteRead...
    http.client.IncompleteRead,
    ConnectionError,  # builtin: reset/aborted sockets
    TimeoutError,
)


class _Transient(Exception):
    """Internal: an attempt failed in a way worth retrying."""


def resolve_source(env: Mapping[str, str]) -> tuple[str, str | None]:
    """Pick (source, expected_md5) from the environment.

    An unknown mirror has no known checksum, so it is not verified unless
    ``IMDB_MD5`` is given; the official URL always is.
    """
    source = env.get("IMDB_SOURCE") or OFFICIAL_URL
    if "IMDB_MD5" in env:
        md5 = env["IMDB_MD5"].strip().lower() or None
    else:
        md5 = OFFICIAL_MD5 if source == OFFICIAL_URL else None
    return source, md5


def fetch(
    source: str,
    dest: Path,
    md5: str | None,
    retries: int = 4,
    backoff: float = 1.0,
    timeout: float = 30.0,
    progress: bool = True,
) -> Path:
    """Download or copy ``source`` to ``dest`` atomically and return ``dest``.

    ``source`` is an http(s) URL, a ``file://`` URL or a local path (relative to
    the cwd). HTTP gets ``retries`` extra attempts after the first, sleeping
    ``backoff * 2**n`` seconds before retry n (0-based). A checksum mismatch is
    not retried: the bytes arrived intact, they are just not the expected ones.
    """
    dest = Path(dest)
    scheme = _checked_scheme(source)
    if scheme in ("http", "https"):
        return _fetch_http(source, dest, md5, retries, backoff, timeout, progress)
    if scheme not in ("", "file"):
        raise DownloadError(f"unsupported URL scheme {scheme!r} in {source}; {_FIX_HINT}")
    path = _local_path(source)
    if not path.is_file():
        raise DownloadError(
            f"local file not found: {path}; set IMDB_SOURCE to an existing copy of aclImdb_v1.tar.gz or to a mirror URL"
        )

    def copy(out: IO[bytes]) -> str:
        try:
            src = open(path, "rb")  # noqa: SIM115 (closed by the with below)
        except OSError as exc:
            raise DownloadError(f"cannot read {path}: {exc}; {_FIX_HINT}") from exc
        with src:
            chunks = iter(lambda: src.read(CHUNK_SIZE), b"")
            return _copy_stream(chunks, out, path.stat().st_size, progress, dest.name)

    return _write_atomically(dest, copy, md5, str(path))


def _checked_scheme(source: str) -> str:
    """The URL scheme of ``source`` ('' for a plain path), or one line saying why it does not parse."""
    if "://" not in source:
        if "\0" in source:
            raise DownloadError(f"IMDB_SOURCE {source!r} holds a NUL byte; {_FIX_HINT}")
        return ""
    try:
        parts = urllib.parse.urlsplit(source)
        parts.port  # noqa: B018 (parsing the port is what raises on a bad one)
    except ValueError as exc:
        raise DownloadError(f"IMDB_SOURCE {source!r} is not a valid URL ({exc}); {_FIX_HINT}") from None
    scheme = parts.scheme.lower()
    if scheme in ("http", "https") and not parts.hostname:
        raise DownloadError(f"IMDB_SOURCE {source!r} names no host; {_FIX_HINT}")
    return scheme


def _local_path(source: str) -> Path:
    """Turn a file:// URL or a (possibly relative) path into an absolute path."""
    if source.lower().startswith("file://"):
        parts = urllib.parse.urlsplit(source)
        if parts.netloc not in ("", "localhost"):
            raise DownloadError(f"file URL with remote host is not supported: {source}; {_FIX_HINT}")
        return Path(urllib.request.url2pathname(parts.path))
    # os.path leaves an unknown ~user as it is (then "not found"); Path.expanduser raises.
    path = Path(os.path.expanduser(source))
    return path if path.is_absolute() else Path.cwd() / path


def _fetch_http(
    url: str, dest: Path, md5: str | None, retries: int, backoff: float, timeout: float, progress: bool
) -> Path:
    """Retry transient failures; anything else (4xx, bad md5) fails at once."""
    attempts = max(0, retries) + 1
    reason = "no attempt made"
    for attempt in range(attempts):
        if attempt:
            time.sleep(backoff * 2 ** (attempt - 1))
        try:
            return _write_atomically(dest, lambda out: _stream_http(url, out, timeout, progress, dest.name), md5, url)
        except _Transient as exc:
            reason = str(exc)
    raise DownloadError(f"download of {url} failed after {attempts} attempt(s): {reason}; {_FIX_HINT}")


def _stream_http(url: str, out: IO[bytes], timeout: float, progress: bool, label: str) -> str:
    """One GET streamed into ``out``; returns the md5 of the bytes received."""
    try:
        # identity: we want the archive's bytes exactly as published, so the md5 and
        # Content-Length checks hold even if a server would gzip the response again.
        with requests.get(url, stream=True, timeout=timeout, headers={"Accept-Encoding": "identity"}) as resp:
            status = resp.status_code
            if status == 429 or status >= 500:
                raise _Transient(f"HTTP {status} {resp.reason}")
            if status >= 400:
                raise DownloadError(f"download of {url} failed: HTTP {status} {resp.reason}; {_FIX_HINT}")
            length = resp.headers.get("Content-Length")
            total = int(length) if length and length.isdigit() else None
            chunks = resp.raw.stream(CHUNK_SIZE, decode_content=False)
            digest = _copy_stream(chunks, out, total, progress, label)
    except _TRANSIENT_ERRORS as exc:
        raise _Transient(f"{type(exc).__name__}: {exc}") from exc
    except requests.RequestException as exc:  # invalid URL, too many redirects...
        raise DownloadError(f"download of {url} failed: {exc}; {_FIX_HINT}") from exc
    if total is not None and out.tell() != total:
        raise _Transient(f"truncated body: got {out.tell()} of {total} bytes")
    return digest


def _copy_stream(chunks: Iterable[bytes], out: IO[bytes], total: int | None, progress: bool, label: str) -> str:
    """Copy ``chunks`` to ``out`` with a progress bar; return their md5 (one pass, no re-read)."""
    digest = hashlib.md5(usedforsecurity=False)
    # disable=None lets tqdm hide itself when stderr is not a terminal (DVC logs, CI).
    with tqdm(
        total=total,
        unit="B",
        unit_scale=True,
        unit_divisor=1024,
        desc=label,
        disable=None if progress else True,
    ) as bar:
        for chunk in chunks:
            out.write(chunk)
            digest.update(chunk)
            bar.update(len(chunk))
    return digest.hexdigest()


def _write_atomically(dest: Path, fill: Callable[[IO[bytes]], str], md5: str | None, source: str) -> Path:
    """Run ``fill`` into a temp file beside ``dest``; publish it only if complete and verified.

    Any exception (KeyboardInterrupt included) removes the temp file, so ``dest``
    is either untouched or the full, checked archive.
    """
    with atomic_file(dest) as tmp:
        with open(tmp, "wb") as out:
            actual = fill(out)
        if md5 is not None and actual != md5.lower():
            raise DownloadError(
                f"md5 mismatch for {source}: expected {md5.lower()}, got {actual}; "
                "set IMDB_MD5 to the right checksum or IMDB_SOURCE to an intact copy"
            )
    return dest
