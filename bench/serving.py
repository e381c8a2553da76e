"""Serving under load: `python bench/serving.py [--project DIR]` -> reports/serving.md.

Starts `mlflow models serve` on the project's registry champion as the README does (from the project root,
MLflow's default of one worker), waits for ``/ping``, sends one warm-up request, then from 1, 4 and 16
concurrent clients (threads, each with its own HTTP session) ``--requests`` requests of one test review each:
requests per second, p50 and p99 latency, errors (a non-200 answer or a failed request: must be 0), and the
server's memory (RSS of its whole process tree) before and after. The report names the machine and the model
served: its variant, settings and how many reviews it trained on, so a small test model is never taken for the
real champion. It needs a project after `dvc repro` (champion and reports/data.json) and an archive of reviews.
"""

from __future__ import annotations

import argparse
import datetime
import os
import statistics
import subprocess
import sys
import threading
import time
from dataclasses import asdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT / "tests"))  # the tests' support code: free_port

from imdb_rnn import paths  # noqa: E402
from imdb_rnn.errors import ImdbRnnError, run_cli  # noqa: E402
from imdb_rnn.files import read_json, write_text  # noqa: E402
from imdb_rnn.machine import describe_machine, machine_lines  # noqa: E402
from imdb_rnn.processes import stop_group  # noqa: E402
from support.commands import free_port  # noqa: E402

CHAMPION = "models:/imdb-rnn-sentiment@champion"
CLIENTS = (1, 4, 16)
START_TIMEOUT_S = 300
STOP_GRACE_S = 10


def stop(server: subprocess.Popen) -> None:
    """The server's whole process group (the CLI and the uvicorn processes it starts), then its exit status."""
    stop_group(server.pid, STOP_GRACE_S)
    server.wait(timeout=30)


def start_server(project: Path, port: int) -> tuple[subprocess.Popen, float]:
    """`mlflow models serve` of the champion, from ``project``, in its own process group; the seconds until
    ``/ping`` answers."""
    import requests

    cmd = ["mlflow", "models", "serve", "-m", CHAMPION, "--env-manager", "local", "-h", "127.0.0.1", "-p", str(port)]
    env = {k: v for k, v in os.environ.items() if k != "MLFLOW_TRACKING_URI"} | {"MLFLOW_DISABLE_TELEMETRY": "true"}
    started = time.perf_counter()
    server = subprocess.Popen(
        cmd, cwd=project, env=env, start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    while time.perf_counter() - started < START_TIMEOUT_S:
        if server.poll() is not None:
            raise ImdbRnnError(f"mlflow models serve exited {server.returncode}; run `{' '.join(cmd)}` in {project}")
        try:
            if requests.get(f"http://127.0.0.1:{port}/ping", timeout=1).status_code == 200:
                return server, time.perf_counter() - started
        except requests.RequestException:
            pass
        time.sleep(0.05)
    stop(server)
    raise ImdbRnnError(f"mlflow models serve did not answer /ping within {START_TIMEOUT_S} s")


def tree_rss_mb(pid: int) -> float:
    """Resident memory of a process and all its descendants (the CLI, the uvicorn server and its workers)."""
    import psutil

    root = psutil.Process(pid)
    total = 0
    for process in [root, *root.children(recursive=True)]:
        try:
            total += process.memory_info().rss
        except psutil.NoSuchProcess:
            continue
    return total / 2**20


def load(url: str, reviews: list[str], clients: int, requests_total: int) -> dict:
    """``requests_total`` requests of one review each, split over ``clients`` threads sending one after another;
    latencies of the successful ones, errors counted (with the first one's text)."""
    import requests

    latencies: list[float] = []
    errors: list[str] = []
    lock = threading.Lock()

    def client(index: int) -> None:
        with requests.Session() as session:
            for i in range(index, requests_total, clients):
                body = {"dataframe_records": [{"text": reviews[i % len(reviews)]}]}
                start = time.perf_counter()
                try:
                    response = session.post(url, json=body, timeout=60)
                    failure = None if response.status_code == 200 else f"HTTP {response.status_code}"
                except requests.RequestException as exc:
                    failure = type(exc).__name__
                elapsed = time.perf_counter() - start
                with lock:
                    latencies.append(elapsed) if failure is None else errors.append(failure)

    threads = [threading.Thread(target=client, args=(i,)) for i in range(clients)]
    start = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    seconds = time.perf_counter() - start
    centiles = statistics.quantiles(latencies, n=100, method="inclusive") if len(latencies) > 1 else [float("nan")] * 99
    return {
        "clients": clients,
        "requests": requests_total,
        "errors": len(errors),
        "first_error": errors[0] if errors else "",
        "per_second": len(latencies) / seconds,
        "p50_ms": centiles[49] * 1000,
        "p99_ms": centiles[98] * 1000,
    }


def served_model(project: Path) -> str:
    """The champion in words: version, variant, its settings and the reviews it trained on (fewer than the full
    data's: said, since the speed is a model of these settings' but the accuracy is not the champion's)."""
    from imdb_rnn.config import load_params
    from imdb_rnn.memory import REVIEWS
    from imdb_rnn.report import model_in_words

    champion = read_json(project / "reports" / "champion.json")["champion"]
    params = load_params(project / paths.PARAMS)
    variant = champion["variant"]
    trained = read_json(project / "reports" / "data.json")["splits"]["train"]["reviews"]
    full = round(REVIEWS / 2 * (1 - params.data.val_split))
    return (
        f"`{CHAMPION}`: version {champion['version']}, `{variant}` ({model_in_words(asdict(params.model(variant)))}; "
        f"maxlen {params.data.maxlen}), trained on {trained:,} reviews for {params.train_for(variant).epochs} "
        "epoch(s)"
        + ("" if trained >= full else f": a test model (the full data trains on {full:,}), served as the champion is")
    )


def render(project: Path, reviews: Path, startup_s: float, rss: tuple[float, float], levels: list[dict]) -> str:
    rows = [
        f"| {r['clients']} | {r['requests']} | {r['errors']}{' (' + r['first_error'] + ')' if r['errors'] else ''} "
        f"| {r['per_second']:.1f} | {r['p50_ms']:.1f} | {r['p99_ms']:.1f} |"
        for r in levels
    ]
    return "\n".join(
        [
            "# Serving under load",
            "",
            f"`python bench/serving.py` on {datetime.datetime.now().astimezone():%Y-%m-%d %H:%M %Z}: `mlflow models "
            "serve` (one worker, MLflow's default) as the README starts it; each request one test review of "
            f"{reviews.name}, each client a thread sending one request after another.",
            "",
            *machine_lines([describe_machine()])[:-1],
            f"- load average (1 min) after the run: {os.getloadavg()[0]:.1f}",
            "",
            "## Model",
            "",
            f"- {served_model(project)}",
            f"- start-up until `/ping` answers: {startup_s:.1f} s",
            f"- server memory (RSS of its process tree): {rss[0]:.0f} MB before the load, {rss[1]:.0f} MB after",
            "",
            "## Load",
            "",
            "| clients | requests | errors | requests/s | p50 ms | p99 ms |",
            "| ---: | ---: | ---: | ---: | ---: | ---: |",
            *rows,
            "",
        ]
    )


def main(argv=None) -> int:
    from imdb_rnn.archive import read_reviews

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--project", type=Path, default=ROOT, help="a project after `dvc repro` (default: this one)")
    parser.add_argument("--reviews", type=Path, help="archive whose test reviews are sent (the project's data/raw)")
    parser.add_argument("--clients", type=int, nargs="+", default=list(CLIENTS), help="concurrent clients per level")
    parser.add_argument("--requests", type=int, default=400, help="requests per level, over its clients")
    parser.add_argument("--out", type=Path, default=ROOT / paths.REPORTS / "serving.md")
    args = parser.parse_args(argv)

    def run() -> None:
        project = args.project.resolve()
        reviews_archive = args.reviews or project / paths.RAW_ARCHIVE
        reviews = read_reviews(reviews_archive)["test"].texts[:1000]
        port = free_port()
        url = f"http://127.0.0.1:{port}/invocations"
        server, startup_s = start_server(project, port)
        try:
            warm = load(url, reviews, 1, 1)
            if warm["errors"]:
                raise ImdbRnnError(f"the warm-up request failed: {warm['first_error']}")
            before = tree_rss_mb(server.pid)
            levels = []
            for clients in args.clients:
                print(f"--- {clients} client(s), {args.requests} requests", file=sys.stderr, flush=True)
                levels.append(load(url, reviews, clients, args.requests))
            after = tree_rss_mb(server.pid)
        finally:
            stop(server)
        report = render(project, reviews_archive, startup_s, (before, after), levels)
        write_text(args.out, report)
        print(report)

    return run_cli(run, interrupted="serving benchmark stopped; nothing written")


if __name__ == "__main__":
    sys.exit(main())
