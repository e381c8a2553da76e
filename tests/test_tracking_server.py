"""The pipeline against a real `mlflow server` on 127.0.0.1, and against servers that do not answer.

The server is the venv's ``mlflow server`` binary with a SQLite backend and a local artifacts
folder, bound to 127.0.0.1 on a free port, checked through ``GET /health`` and always stopped
(its whole process group) when the module ends.
"""

from __future__ import annotations

import ipaddress
import json
import os
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import yaml

from imdb_rnn.processes import group_members
from support.commands import free_port, run
from support.params import ONE_VARIANT
from support.projects import make_project

pytestmark = pytest.mark.slow  # real dvc repro / queues / servers / signals

VARIANT = "simple_rnn"
TINY = ONE_VARIANT


def tiny_project(tmp_path: Path) -> Path:
    repo = make_project(tmp_path)
    (repo / "params.yaml").write_text(yaml.safe_dump(TINY, sort_keys=False), encoding="utf-8")
    run(["git", "commit", "-qam", "tiny params, one variant"], repo)
    return repo


def listening_sockets(pids: list[int]) -> set[tuple[str, int]]:
    """(address, port) of every TCP socket in LISTEN state that one of ``pids`` holds."""
    inodes = set()
    for pid in pids:
        try:
            for fd in Path(f"/proc/{pid}/fd").iterdir():
                target = os.readlink(fd)
                if target.startswith("socket:["):
                    inodes.add(target[8:-1])
        except OSError:
            continue
    found = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            cols = line.split()
            local, state, inode = cols[1], cols[3], cols[9]
            if state != "0A" or inode not in inodes:  # 0A: LISTEN
                continue
            hex_addr, hex_port = local.split(":")
            raw = bytes.fromhex(hex_addr)
            # /proc prints each 32-bit word in host (little-endian) order
            raw = b"".join(raw[i : i + 4][::-1] for i in range(0, len(raw), 4))
            found.add((str(ipaddress.ip_address(raw)), int(hex_port, 16)))
    return found


def test_server_listens_on_loopback_only(mlflow_server):
    pids = group_members(mlflow_server["proc"].pid)
    assert mlflow_server["proc"].pid in pids
    assert listening_sockets(pids) == {("127.0.0.1", mlflow_server["port"])}
    # and a non-loopback address of this machine, if it has one, is refused on that port
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        try:
            s.connect(("192.0.2.1", 9))  # TEST-NET: no packet is sent; picks the outbound address
            own = s.getsockname()[0]
        except OSError:
            own = None
    if own and not ipaddress.ip_address(own).is_loopback:
        with pytest.raises(OSError):
            socket.create_connection((own, mlflow_server["port"]), timeout=2).close()


def test_repro_logs_everything_to_the_server(mlflow_server, tmp_path, small_archive):
    import mlflow

    uri, server_root = mlflow_server["uri"], mlflow_server["root"]
    repo = tiny_project(tmp_path)
    proc = run(["dvc", "repro"], repo, env={"MLFLOW_TRACKING_URI": uri, "IMDB_SOURCE": small_archive}, timeout=600)
    assert f"Running stage 'evaluate@{VARIANT}'" in proc.stdout

    client = mlflow.MlflowClient(tracking_uri=uri)
    experiment = client.get_experiment_by_name("imdb-rnn")
    assert experiment is not None
    runs = client.search_runs([experiment.experiment_id])
    (r,) = [x for x in runs if x.data.tags.get("run_kind") == "variant"]
    (seed_run,) = [x for x in runs if x.data.tags.get("run_kind") == "seed"]
    assert r.info.status == "FINISHED"
    assert r.info.run_id == json.loads((repo / "models" / VARIANT / "run.json").read_text())["run_id"]
    assert r.data.params["data.maxlen"] == "40"
    assert r.data.params["model.units"] == "8"
    for key in ("loss", "accuracy", "val_loss", "val_accuracy", "epoch_seconds"):
        assert [m.step for m in client.get_metric_history(seed_run.info.run_id, key)] == [1, 2], key
    metrics = json.loads((repo / "reports" / "variants" / VARIANT / "metrics.json").read_text())
    (per_seed,) = metrics["per_seed"]
    for key in ("accuracy", "loss", "precision", "recall", "f1", "roc_auc"):
        assert r.data.metrics[f"test_{key}_mean"] == pytest.approx(metrics[key], abs=1e-6), key
        assert seed_run.data.metrics[f"test_{key}"] == pytest.approx(per_seed[key], abs=1e-6), key

    plots = {a.path for a in client.list_artifacts(r.info.run_id, "plots")}
    figures = ("accuracy", "loss", "confusion", "roc", "length")  # what evaluate logs per variant run
    assert plots == {f"plots/{n}.png" for n in figures}
    assert {"model_summary.txt", "plots", "reports"} <= {a.path for a in client.list_artifacts(r.info.run_id)}
    # MLflow 3 keeps the model as a LoggedModel whose source is the seed's run
    seed_run = client.get_run(seed_run.info.run_id)
    assert [o.model_id for o in seed_run.outputs.model_outputs] != []
    (logged,) = client.search_logged_models(
        [experiment.experiment_id], filter_string=f"source_run_id = '{seed_run.info.run_id}'"
    )
    assert logged.name == f"{VARIANT}-seed42"
    assert logged.model_id in [o.model_id for o in seed_run.outputs.model_outputs]
    assert {"MLmodel", "data"} <= {a.path for a in client.list_logged_model_artifacts(logged.model_id)}
    keras_file = Path(
        mlflow.artifacts.download_artifacts(
            artifact_uri=f"{logged.artifact_location}/data/model.keras",
            tracking_uri=uri,
            dst_path=str(tmp_path / "download"),
        )
    )
    assert keras_file.read_bytes()[:4] == b"PK\x03\x04"  # the saved model, served back

    summaries = client.get_experiment_by_name("imdb-rnn summaries")
    (summary,) = client.search_runs([summaries.experiment_id])
    assert summary.info.status == "FINISHED"
    assert summary.data.tags["run_kind"] == "summary"

    # nothing went to a local store; the files are in the server's artifacts folder
    for local in ("mlflow.db", "mlflow.db.lock", "mlartifacts"):
        assert not (repo / local).exists(), local
    stored = {
        p.relative_to(server_root / "server-artifacts").as_posix()
        for p in (server_root / "server-artifacts").rglob("*")
        if p.is_file()
    }
    for name in figures:
        assert any(s.endswith(f"{r.info.run_id}/artifacts/plots/{name}.png") for s in stored), name
    assert any(s.endswith(f"{logged.model_id}/artifacts/data/model.keras") for s in stored), sorted(stored)


def silent_server():
    """A TCP server that accepts connections and never answers (a hung tracking server)."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(8)
    held: list[socket.socket] = []
    stop = threading.Event()

    def accept():
        sock.settimeout(0.2)
        while not stop.is_set():
            try:
                held.append(sock.accept()[0])
            except OSError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()

    def close():
        stop.set()
        thread.join(5)
        for conn in held:
            conn.close()
        sock.close()

    return f"http://127.0.0.1:{sock.getsockname()[1]}", close


def not_mlflow_server():
    """Some other web service on the port: /health says 200, every MLflow API call 404."""
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):
            ok = self.path == "/health"
            self.send_response(200 if ok else 404)
            self.send_header("Content-Type", "text/plain")
            self.end_headers()
            self.wfile.write(b"OK" if ok else b"Not Found")

        do_POST = do_GET

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()

    def close():
        server.shutdown()
        server.server_close()

    return f"http://127.0.0.1:{server.server_address[1]}", close


@pytest.fixture(scope="module")
def prepared_repo(tmp_path_factory, small_archive):
    repo = tiny_project(tmp_path_factory.mktemp("server_down"))
    run(["dvc", "repro", "prepare"], repo, env={"IMDB_SOURCE": small_archive, "MLFLOW_TRACKING_URI": None})
    return repo


@pytest.mark.parametrize("kind", ["closed-port", "hangs", "not-mlflow"])
def test_train_fails_fast_naming_the_uri_when_the_server_does_not_answer(prepared_repo, kind):
    repo = prepared_repo
    if kind == "closed-port":
        uri, close = f"http://127.0.0.1:{free_port()}", lambda: None
    else:
        uri, close = silent_server() if kind == "hangs" else not_mlflow_server()
    try:
        start = time.monotonic()
        proc = run(
            [sys.executable, "stages/train.py", VARIANT],
            repo,
            env={"MLFLOW_TRACKING_URI": uri},
            check=False,
            timeout=60,
        )
        elapsed = time.monotonic() - start
    finally:
        close()
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert elapsed < 60, f"took {elapsed:.1f} s"  # seconds, not MLflow's minutes of retries (even on a busy machine)
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("error: "), proc.stderr
    assert uri in lines[0], proc.stderr
    assert not (repo / "models").exists()
    assert not (repo / "mlflow.db").exists()  # no local store as a silent fallback
    print(f"{kind}: {elapsed:.1f} s: {lines[0]}")


def test_processes_creating_one_experiment_at_once_all_get_it(mlflow_server, tmp_path: Path):
    """A sweep's nodes start together against one server: each must get the experiment, none fail
    because another created it between its lookup and its create (found by a CI sweep)."""
    script = (
        "import sys, time; from pathlib import Path; import mlflow; from imdb_rnn.tracking import setup\n"
        "time.sleep(max(0.0, float(sys.argv[3]) - time.time()))  # all imported: start together\n"
        "print(setup(sys.argv[1], root=Path(sys.argv[2])))\n"
    )
    env = {"MLFLOW_TRACKING_URI": mlflow_server["uri"]}
    for attempt in range(3):  # the window is small: several rounds of six processes each
        name, start_at = f"race-{attempt}", time.time() + 20
        procs = [
            subprocess.Popen(
                [sys.executable, "-c", script, name, str(tmp_path), str(start_at)],
                env={**os.environ, **env},
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
            for _ in range(6)
        ]
        results = [proc.communicate(timeout=120) for proc in procs]
        assert [proc.returncode for proc in procs] == [0] * 6, [err for _, err in results]
        assert len({out.strip() for out, _ in results}) == 1  # one experiment id for all
