"""Serving figures: `python bench/serving.py` starts `mlflow models serve` on the registry's champion as the
README does, from the project root, and measures its start-up (until ``/ping`` answers) and the latency of
``POST /invocations`` for 1 and for 100 test reviews of the archive (median and 90th percentile over
``--requests`` requests, after one warm-up request). Run it after `dvc repro`: it needs the champion and
``data/raw/aclImdb_v1.tar.gz``. Nothing is written.
"""

from __future__ import annotations

import argparse
import os
import signal
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT / "tests"))  # the tests' support code: free_port

from imdb_rnn import paths  # noqa: E402
from imdb_rnn.archive import read_reviews  # noqa: E402
from support.commands import free_port  # noqa: E402


def main() -> None:
    import requests

    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--project", type=Path, default=ROOT)
    parser.add_argument("--model", default="models:/imdb-rnn-sentiment@champion")
    parser.add_argument("--requests", type=int, default=50, help="timed requests per batch size")
    args = parser.parse_args()
    reviews = read_reviews(args.project / paths.RAW_ARCHIVE)["test"].texts[:100]
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    cmd = ["mlflow", "models", "serve", "-m", args.model, "--env-manager", "local", "-h", "127.0.0.1", "-p", str(port)]
    started = time.perf_counter()
    server = subprocess.Popen(
        cmd,
        cwd=args.project,
        start_new_session=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env={**os.environ, "MLFLOW_DISABLE_TELEMETRY": "true"},
    )
    try:
        while True:
            if server.poll() is not None:
                sys.exit(f"mlflow models serve exited {server.returncode}; run `{' '.join(cmd)}` to see why")
            try:
                if requests.get(f"{base}/ping", timeout=1).status_code == 200:
                    break
            except requests.RequestException:
                pass
            time.sleep(0.05)
        print(f"start-up (until /ping answers): {time.perf_counter() - started:.1f} s")
        with requests.Session() as session:
            for n in (1, 100):
                body = {"dataframe_records": [{"text": text} for text in reviews[:n]]}
                session.post(f"{base}/invocations", json=body).raise_for_status()
                times = []
                for _ in range(args.requests):
                    start = time.perf_counter()
                    session.post(f"{base}/invocations", json=body).raise_for_status()
                    times.append((time.perf_counter() - start) * 1000)
                p90 = statistics.quantiles(times, n=10)[-1]
                print(
                    f"{n} review(s) a request: median {statistics.median(times):.1f} ms, p90 {p90:.1f} ms "
                    f"({args.requests} requests)"
                )
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=30)


if __name__ == "__main__":
    main()
