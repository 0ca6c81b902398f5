"""A throwaway PostgreSQL 15 cluster on 127.0.0.1, for the tests and the benchmarks.

`initdb` and `postgres` refuse to run as root, and CI runs as root: there the cluster runs
as ``nobody`` (``setpriv``), in a data folder that user owns. It trusts every local
connection, listens only on 127.0.0.1 (a free port) and keeps its socket in its own
folder; durability is off (fsync) unless asked for, since it is thrown away.
"""

from __future__ import annotations

import itertools
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

PG_BIN = Path(os.environ.get("MASSAGE_BOT_PG_BIN", "/usr/lib/postgresql/15/bin"))
HOW_TO_GET_IT = (
    "install PostgreSQL 15's server (apt-get install postgresql-15) or point "
    "MASSAGE_BOT_PG_BIN at its bin folder; .ci/run installs it"
)
START_SECONDS = 30.0


def available() -> bool:
    return (PG_BIN / "initdb").is_file() and (PG_BIN / "postgres").is_file()


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class ThrowawayPostgres:
    """A PostgreSQL cluster in a temporary folder: `start`, `create_database`, `stop`."""

    def __init__(self, max_connections: int = 200, *, durable: bool = False) -> None:
        """`durable`: fsync and synchronous commits on, as in production (for benchmarks)."""
        self.folder = Path(tempfile.mkdtemp(prefix="massage-bot-pg-"))
        self.data = self.folder / "data"
        self.port = _free_port()
        self.max_connections = max_connections
        self.durable = durable
        self._process: subprocess.Popen[bytes] | None = None
        self._names = itertools.count(1)
        self._as_user: list[str] = []
        if os.geteuid() == 0:  # initdb and postgres refuse root
            nobody = pwd.getpwnam("nobody")
            os.chown(self.folder, nobody.pw_uid, nobody.pw_gid)
            self._as_user = ["setpriv", f"--reuid={nobody.pw_uid}", f"--regid={nobody.pw_gid}",
                             "--clear-groups"]  # fmt: skip

    @property
    def url(self) -> str:
        """The maintenance database's URL."""
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def database_url(self, name: str) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{name}"

    def start(self) -> None:
        subprocess.run(
            [*self._as_user, str(PG_BIN / "initdb"), "-D", str(self.data), "-U", "postgres",
             "-A", "trust", "-E", "UTF8", "--no-sync", "--no-instructions"],
            check=True, capture_output=True,
        )  # fmt: skip
        log = (self.folder / "postgres.log").open("wb")
        fast = [] if self.durable else ["-c", "fsync=off", "-c", "synchronous_commit=off",
                                        "-c", "full_page_writes=off"]  # fmt: skip
        self._process = subprocess.Popen(
            [*self._as_user, str(PG_BIN / "postgres"), "-D", str(self.data),
             "-c", "listen_addresses=127.0.0.1", "-p", str(self.port),
             "-c", f"unix_socket_directories={self.folder}",
             "-c", f"max_connections={self.max_connections}", *fast],
            stdout=log, stderr=subprocess.STDOUT,
        )  # fmt: skip
        deadline = time.monotonic() + START_SECONDS
        while subprocess.run(
            [str(PG_BIN / "pg_isready"), "-h", "127.0.0.1", "-p", str(self.port), "-q"],
            check=False,
        ).returncode:
            if self._process.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"PostgreSQL did not start; see {self.folder}/postgres.log")
            time.sleep(0.1)

    def create_database(self) -> str:
        """A new empty database; its URL."""
        name = f"test_{next(self._names)}"
        subprocess.run(
            [str(PG_BIN / "psql"), "-X", "-q", "-h", "127.0.0.1", "-p", str(self.port),
             "-U", "postgres", "-d", "postgres", "-c", f"CREATE DATABASE {name}"],
            check=True, capture_output=True,
        )  # fmt: skip
        return self.database_url(name)

    def stop(self) -> None:
        """Stop the server (fast shutdown) and remove its folder."""
        if self._process is not None and self._process.poll() is None:
            self._process.terminate()
            try:
                self._process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()
        shutil.rmtree(self.folder, ignore_errors=True)
