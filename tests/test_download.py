"""Behaviour of imdb_rnn.download against a real local HTTP server (no mocks)."""

from __future__ import annotations

import hashlib
import io
import os
import random
import signal
import socket
import subprocess
import sys
import tarfile
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from imdb_rnn.download import OFFICIAL_MD5, OFFICIAL_URL, fetch, resolve_source
from imdb_rnn.errors import DownloadError
from imdb_rnn.files import file_md5
from support.commands import default_sigint

REPO = Path(__file__).resolve().parents[1]
STAGE = REPO / "stages" / "download.py"
FAST = dict(retries=3, backoff=0.01, timeout=5.0, progress=False)


def _make_archive(folder: Path) -> Path:
    """A tiny aclImdb-shaped tar.gz, plus an incompressible member so it spans >1 MiB chunks."""
    path = folder / "aclImdb_v1.tar.gz"
    members = {
        "aclImdb/README": b"Large Movie Review Dataset (test copy)\n",
        "aclImdb/train/pos/0_9.txt": b"A wonderful film, I loved it.",
        "aclImdb/train/neg/0_2.txt": b"Dull and far too long.",
        "aclImdb/test/pos/0_10.txt": b"Brilliant acting throughout.",
        "aclImdb/test/neg/0_1.txt": b"I want those two hours back.",
        "aclImdb/train/unsup/0_0.bin": random.Random(0).randbytes(1_500_000),
    }
    with tarfile.open(path, "w:gz") as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return path


@dataclass
class Server:
    """Controls for the test server: `mode` picks the behaviour, `fail_first` how many 5xx first."""

    url: str
    archive: bytes
    md5: str
    mode: str = "ok"  # ok | fail_first | truncate | truncate_first | stall | 404
    fail_first: int = 0
    fail_status: int = 503
    requests: int = 0
    half_sent: threading.Event = field(default_factory=threading.Event)
    release: threading.Event = field(default_factory=threading.Event)
    lock: threading.Lock = field(default_factory=threading.Lock)


def _handler(state: Server) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 (http.server API)
            with state.lock:
                state.requests += 1
                n = state.requests
            body = state.archive
            if state.mode == "404":
                self.send_error(404)
            elif state.mode == "fail_first" and n <= state.fail_first:
                self.send_error(state.fail_status)
            elif state.mode == "truncate" or (state.mode == "truncate_first" and n == 1):
                self._send_partial(body)
            elif state.mode == "stall":
                self._send_partial(body, wait=True)
            else:
                self.send_response(200)
                self.send_header("Content-Type", "application/x-gzip")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        def _send_partial(self, body: bytes, wait: bool = False) -> None:
            """Promise the full length, send half, then hang up (or hang)."""
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body[: len(body) // 2])
            self.wfile.flush()
            state.half_sent.set()
            if wait:
                state.release.wait(15)
            self.close_connection = True

        def log_message(self, *args: object) -> None:
            pass

    return Handler


@pytest.fixture
def archive(tmp_path_factory: pytest.TempPathFactory) -> Path:
    # Outside tmp_path, so tests can assert that tmp_path holds nothing but their outputs.
    return _make_archive(tmp_path_factory.mktemp("archive"))


@pytest.fixture
def server(archive: Path):
    data = archive.read_bytes()
    state = Server(url="", archive=data, md5=hashlib.md5(data).hexdigest())
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _handler(state))
    httpd.daemon_threads = True
    state.url = f"http://127.0.0.1:{httpd.server_address[1]}/aclImdb_v1.tar.gz"
    thread = threading.Thread(target=httpd.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    yield state
    state.release.set()
    httpd.shutdown()
    httpd.server_close()
    thread.join(5)


@pytest.fixture
def closed_port_url() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}/aclImdb_v1.tar.gz"


def _leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.startswith(".") and p.name.endswith(".tmp"))


# --- resolve_source -----------------------------------------------------------------


def test_resolve_source_defaults_to_official_url_with_its_md5():
    assert resolve_source({}) == (OFFICIAL_URL, OFFICIAL_MD5)
    assert resolve_source({"IMDB_SOURCE": ""}) == (OFFICIAL_URL, OFFICIAL_MD5)


def test_resolve_source_mirror_is_unverified_unless_md5_given():
    assert resolve_source({"IMDB_SOURCE": "/data/a.tar.gz"}) == ("/data/a.tar.gz", None)
    env = {"IMDB_SOURCE": "http://mirror/a.tar.gz", "IMDB_MD5": "abc"}
    assert resolve_source(env) == ("http://mirror/a.tar.gz", "abc")
    assert resolve_source({"IMDB_MD5": "abc"}) == (OFFICIAL_URL, "abc")


# --- HTTP ---------------------------------------------------------------------------


def test_http_download_is_byte_identical_and_verified(server: Server, tmp_path: Path):
    dest = tmp_path / "new" / "dir" / "aclImdb_v1.tar.gz"  # parent does not exist yet
    assert fetch(server.url, dest, server.md5, **FAST) == dest
    assert dest.read_bytes() == server.archive
    assert file_md5(dest) == server.md5
    assert server.requests == 1
    assert _leftovers(dest.parent) == []
    with tarfile.open(dest) as tar:
        assert "aclImdb/train/pos/0_9.txt" in tar.getnames()


@pytest.mark.parametrize("status", [503, 500, 429])
def test_http_retries_transient_errors_then_recovers(server: Server, tmp_path: Path, status: int):
    server.mode, server.fail_first, server.fail_status = "fail_first", 2, status
    dest = tmp_path / "out" / "a.tar.gz"
    fetch(server.url, dest, server.md5, **FAST)
    assert dest.read_bytes() == server.archive
    assert server.requests == 3
    assert _leftovers(dest.parent) == []


def test_http_gives_up_after_retries(server: Server, tmp_path: Path):
    server.mode, server.fail_first = "fail_first", 100
    dest = tmp_path / "out" / "a.tar.gz"
    with pytest.raises(DownloadError) as err:
        fetch(server.url, dest, server.md5, **FAST)
    assert server.requests == FAST["retries"] + 1
    msg = str(err.value)
    assert server.url in msg
    assert "503" in msg
    assert "IMDB_SOURCE" in msg
    assert "\n" not in msg
    assert not dest.exists()
    assert _leftovers(dest.parent) == []


def test_truncated_body_is_retried_and_never_published(server: Server, tmp_path: Path):
    server.mode = "truncate"
    dest = tmp_path / "out" / "a.tar.gz"
    with pytest.raises(DownloadError) as err:
        fetch(server.url, dest, None, **FAST)  # no md5: truncation must be caught on its own
    assert server.requests == FAST["retries"] + 1
    assert "IncompleteRead" in str(err.value) or "truncated" in str(err.value)
    assert not dest.exists()
    assert list(dest.parent.iterdir()) == []


def test_truncated_first_attempt_then_recovers(server: Server, tmp_path: Path):
    server.mode = "truncate_first"
    dest = tmp_path / "a.tar.gz"
    fetch(server.url, dest, None, **FAST)
    assert dest.read_bytes() == server.archive
    assert server.requests == 2


def test_404_fails_fast_without_retry(server: Server, tmp_path: Path):
    server.mode = "404"
    dest = tmp_path / "a.tar.gz"
    start = time.monotonic()
    with pytest.raises(DownloadError, match="404") as err:
        fetch(server.url, dest, None, retries=4, backoff=5.0, progress=False)
    assert time.monotonic() - start < 2  # backoff=5 would show if it slept
    assert server.requests == 1
    assert server.url in str(err.value)
    assert "IMDB_SOURCE" in str(err.value)
    assert not dest.exists()
    assert _leftovers(tmp_path) == []


def test_md5_mismatch_fails_without_retry_and_names_both(server: Server, tmp_path: Path):
    dest = tmp_path / "a.tar.gz"
    wrong = "0" * 32
    with pytest.raises(DownloadError) as err:
        fetch(server.url, dest, wrong, **FAST)
    msg = str(err.value)
    assert wrong in msg
    assert server.md5 in msg
    assert server.url in msg
    assert server.requests == 1
    assert not dest.exists()
    assert _leftovers(tmp_path) == []


def test_md5_is_case_insensitive(server: Server, tmp_path: Path):
    fetch(server.url, tmp_path / "a.tar.gz", server.md5.upper(), **FAST)
    assert file_md5(tmp_path / "a.tar.gz") == server.md5


def test_failed_download_does_not_clobber_existing_dest(server: Server, tmp_path: Path):
    dest = tmp_path / "a.tar.gz"
    dest.write_bytes(b"previous good copy")
    for mode, md5 in [("truncate", None), ("404", None), ("ok", "f" * 32)]:
        server.mode = mode
        with pytest.raises(DownloadError):
            fetch(server.url, dest, md5, **FAST)
        assert dest.read_bytes() == b"previous good copy"
        assert _leftovers(tmp_path) == []


def test_unreachable_host_names_url_and_fix(closed_port_url: str, tmp_path: Path):
    dest = tmp_path / "a.tar.gz"
    with pytest.raises(DownloadError) as err:
        fetch(closed_port_url, dest, None, **FAST)
    msg = str(err.value)
    assert closed_port_url in msg
    assert "IMDB_SOURCE" in msg
    assert "\n" not in msg
    assert not dest.exists()
    assert _leftovers(tmp_path) == []


# --- local sources ------------------------------------------------------------------


def test_local_path_and_file_url(archive: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    md5 = file_md5(archive)
    fetch(str(archive), tmp_path / "abs.tar.gz", md5, progress=False)
    fetch(archive.as_uri(), tmp_path / "uri.tar.gz", md5, progress=False)
    monkeypatch.chdir(archive.parent)  # relative paths resolve against the cwd
    fetch(archive.name, tmp_path / "rel.tar.gz", md5, progress=False)
    for name in ("abs", "uri", "rel"):
        assert (tmp_path / f"{name}.tar.gz").read_bytes() == archive.read_bytes()
    assert _leftovers(tmp_path) == []


def test_local_md5_mismatch(archive: Path, tmp_path: Path):
    dest = tmp_path / "a.tar.gz"
    with pytest.raises(DownloadError, match=file_md5(archive)):
        fetch(str(archive), dest, "1" * 32, progress=False)
    assert not dest.exists()
    assert _leftovers(tmp_path) == []


def test_missing_local_file(tmp_path: Path):
    missing = tmp_path / "nope.tar.gz"
    for source in (str(missing), missing.as_uri()):
        with pytest.raises(DownloadError) as err:
            fetch(source, tmp_path / "out" / "a.tar.gz", None, progress=False)
        assert str(missing) in str(err.value)
        assert "IMDB_SOURCE" in str(err.value)
    assert list(tmp_path.iterdir()) == []  # not even the destination folder


# --- the DVC stage script -----------------------------------------------------------


def _stage(out: Path, source: str, cwd: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "IMDB_SOURCE": source}
    env.pop("IMDB_MD5", None)
    cmd = [sys.executable, str(STAGE), str(out), *extra]
    return subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=30)


def test_stage_script_downloads(server: Server, tmp_path: Path):
    out = tmp_path / "data" / "raw" / "aclImdb_v1.tar.gz"
    proc = _stage(out, server.url, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == f"downloading {server.url} -> {out}"
    assert out.read_bytes() == server.archive


def test_stage_script_reports_one_line_error(closed_port_url: str, tmp_path: Path):
    out = tmp_path / "aclImdb_v1.tar.gz"
    proc = _stage(out, closed_port_url, tmp_path, "--retries", "1", "--backoff", "0.01")
    assert proc.returncode == 1
    lines = proc.stderr.splitlines()
    assert len(lines) == 1
    assert lines[0].startswith("error: ")
    assert closed_port_url in lines[0]
    assert "IMDB_SOURCE" in lines[0]
    assert not out.exists()


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")
def test_stage_interrupted_mid_download_leaves_nothing(server: Server, tmp_path: Path):
    server.mode = "stall"  # half the body, then the server hangs
    out = tmp_path / "aclImdb_v1.tar.gz"
    env = {**os.environ, "IMDB_SOURCE": server.url}
    proc = subprocess.Popen(
        [sys.executable, str(STAGE), str(out)],
        env=env,
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=default_sigint,
    )
    try:
        assert server.half_sent.wait(15)
        deadline = time.monotonic() + 10
        while not _leftovers(tmp_path) and time.monotonic() < deadline:
            time.sleep(0.02)
        assert _leftovers(tmp_path), "the download should be writing a temp file"
        time.sleep(0.2)  # let the client get into the blocking read
        proc.send_signal(signal.SIGINT)
        _, stderr = proc.communicate(timeout=15)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130, stderr
    assert stderr.startswith("error: interrupted")
    assert list(tmp_path.iterdir()) == []
