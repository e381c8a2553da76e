"""A throwaway PostgreSQL cluster on 127.0.0.1 for the team and tuner tests (skipped where PostgreSQL is absent)."""

from __future__ import annotations

import contextlib
import glob
import os
import re
import shutil
import tempfile
from pathlib import Path

from support.commands import free_port, run

INITDB = sorted(
    glob.glob("/usr/lib/postgresql/*/bin/initdb"),
    key=lambda p: [int(n) for n in re.findall(r"\d+", Path(p).parent.parent.name)],
)
PG_BIN = Path(INITDB[-1]).parent if INITDB else None
MISSING = "PostgreSQL server binaries not found (/usr/lib/postgresql/*/bin/initdb)"
# PostgreSQL refuses to run as root: as root, its commands run as the `postgres` user.
AS_POSTGRES = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []


class Cluster:
    """A PostgreSQL cluster: superuser ``mlflow``, trust auth, TCP on 127.0.0.1 only (no Unix socket)."""

    def __init__(self, root: Path):
        self.root, self.data, self.log, self.port = root, root / "data", root / "postgres.log", free_port()
        self.uri = f"postgresql://mlflow@127.0.0.1:{self.port}/mlflow"

    def pg_ctl(self, *args) -> None:
        run([*AS_POSTGRES, PG_BIN / "pg_ctl", "-D", self.data, "-l", self.log, *args], self.root)

    def start(self) -> None:
        self.pg_ctl(
            "-o", f"-c listen_addresses=127.0.0.1 -c port={self.port} -c unix_socket_directories=''", "-w", "start"
        )

    def stop(self) -> None:
        self.pg_ctl("-m", "fast", "-w", "stop")

    def running(self) -> bool:
        return (self.data / "postmaster.pid").exists()

    def query(self, sql: str, database: str = "mlflow") -> list[str]:
        out = run(
            [PG_BIN / "psql", "-h", "127.0.0.1", "-p", self.port, "-U", "mlflow", "-d", database, "-tAc", sql],
            self.root,
        )
        return out.stdout.split()

    def create_database(self, name: str) -> str:
        """A new database on the cluster (as README's `createdb`); returns its URI."""
        run([PG_BIN / "createdb", "-h", "127.0.0.1", "-p", self.port, "-U", "mlflow", name], self.root)
        return self.uri.rsplit("/", 1)[0] + f"/{name}"


@contextlib.contextmanager
def throwaway_cluster():
    """A throwaway cluster with the database ``mlflow``, made as README's team set-up makes it.

    pytest's temp root is private to its user (0700, reset so by every pytest session that starts),
    out of reach of the ``postgres`` user: the cluster gets its own temp folder, removed at the end.
    """
    root = Path(tempfile.mkdtemp(prefix="imdb-rnn-pg-"))
    if AS_POSTGRES:
        shutil.chown(root, "postgres", "postgres")
    cluster = Cluster(root)
    try:
        run(
            [
                *AS_POSTGRES,
                PG_BIN / "initdb",
                "-D",
                cluster.data,
                "-U",
                "mlflow",
                "--auth=trust",
                "-E",
                "UTF8",
                "--no-sync",
            ],
            root,
        )
        cluster.start()
        cluster.create_database("mlflow")
        yield cluster
    finally:
        try:
            if cluster.running():
                cluster.stop()
        finally:
            shutil.rmtree(root, ignore_errors=True)
