"""Running things in tests: tools with a clean environment, waiting for a condition, servers' ports and
process groups. ``REPO_ROOT`` is the repository the tests check; ``VENV_BIN`` the tools it installed."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Mapping
from pathlib import Path

from imdb_rnn.processes import stop_group as stop_process_group

REPO_ROOT = Path(__file__).resolve().parents[2]
VENV_BIN = Path(sys.executable).parent


def tool_env(env: Mapping[str, str | None] | None = None) -> dict[str, str]:
    """The environment for tools: venv ``bin`` first in PATH, telemetry off, plus ``env``.

    A ``None`` value in ``env`` removes that variable. ``MLFLOW_TRACKING_URI`` is dropped unless
    ``env`` sets it: a caller's server, or one set in-process (``mlflow.set_tracking_uri`` exports
    it), must not capture a test project's runs.
    """
    out = {k: v for k, v in os.environ.items() if k != "MLFLOW_TRACKING_URI"}
    out["PATH"] = os.pathsep.join([str(VENV_BIN), out.get("PATH", "")])
    out.update(
        MLFLOW_DISABLE_TELEMETRY="true",
        DVC_NO_ANALYTICS="true",
        TF_CPP_MIN_LOG_LEVEL="2",
        GIT_TERMINAL_PROMPT="0",
    )
    for key, value in (env or {}).items():
        if value is None:
            out.pop(key, None)
        else:
            out[key] = str(value)
    return out


def default_sigint() -> None:
    """``preexec_fn`` for a child that a test interrupts with SIGINT.

    A shell without job control starts background jobs with SIGINT ignored, and a child inherits
    that (Python then installs no KeyboardInterrupt handler): restore the default, so the test
    sends the signal a user's Ctrl-C sends, however the suite itself was started.
    """
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def run(
    cmd: list[str],
    cwd: str | os.PathLike,
    env: Mapping[str, str | None] | None = None,
    check: bool = True,
    timeout: float = 300,
    stdin: str | None = None,
) -> subprocess.CompletedProcess[str]:
    """Run ``cmd`` (text, output captured) with ``tool_env(env)``, ``stdin`` as its input (none: no input).

    With ``check``, a non-zero exit fails the test with the command's stdout and stderr.
    """
    start = time.monotonic()
    proc = subprocess.run(
        [str(c) for c in cmd],
        cwd=cwd,
        env=tool_env(env),
        capture_output=True,
        text=True,
        timeout=timeout,
        **({"input": stdin} if stdin is not None else {"stdin": subprocess.DEVNULL}),
    )
    proc.elapsed = time.monotonic() - start  # type: ignore[attr-defined]
    if check and proc.returncode != 0:
        raise AssertionError(
            f"{' '.join(map(str, cmd))} exited {proc.returncode} in {cwd}\n"
            f"--- stdout ---\n{proc.stdout}\n--- stderr ---\n{proc.stderr}"
        )
    return proc


def start_queue(repo: Path, env: Mapping[str, str | None] | None = None, jobs: int = 2) -> None:
    """`dvc queue start -j N`. Its workers outlive it and inherit its stdout/stderr, so capturing
    them would wait for the whole queue: the output goes nowhere instead."""
    proc = subprocess.run(
        ["dvc", "queue", "start", "-j", str(jobs)],
        cwd=repo,
        env=tool_env(env),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        timeout=120,
    )
    assert proc.returncode == 0, f"dvc queue start exited {proc.returncode}"


def wait_until(ready, what: str, timeout: float = 60, interval: float = 0.05):
    """Poll ``ready()`` until it returns a truthy value (returned); fail naming ``what`` after ``timeout``."""
    deadline = time.monotonic() + timeout
    while not (value := ready()):
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not within {timeout} s")
        time.sleep(interval)
    return value


def free_port() -> int:
    """A TCP port free on 127.0.0.1 right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def stop_group(proc: subprocess.Popen) -> None:
    """Stop a server's process group (it runs uvicorn as a child) as the sweep stops a point's, then reap it."""
    stop_process_group(proc.pid, grace_s=20)
    proc.wait(timeout=10)


def answering(proc: subprocess.Popen, url: str, log: Path) -> Callable[[], bool]:
    """A ``wait_until`` probe for a server started as ``proc``: ``url`` answers 200. Fails at once, with
    the tail of the server's ``log``, when the process has exited."""
    import requests

    def probe() -> bool:
        assert proc.poll() is None, f"{proc.args[0]} exited {proc.returncode}:\n{Path(log).read_text()[-3000:]}"
        try:
            return requests.get(url, timeout=2).status_code == 200
        except requests.RequestException:
            return False

    return probe
