"""A throwaway PostgreSQL cluster for the tests, on a free port, in a temporary folder: Debian's `postgresql`
(initdb and pg_ctl; run as the `postgres` user when the tests run as root, which initdb refuses)."""

import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import uuid
from pathlib import Path

import psycopg

BIN = [Path(p) for p in sorted(Path("/usr/lib/postgresql").glob("*/bin"), reverse=True)]  # Debian's, newest first
INSTALL = "PostgreSQL is missing: apt-get install postgresql (the README's test command does)"


def tool(name: str) -> str:
    found = shutil.which(name) or next((str(b / name) for b in BIN if (b / name).exists()), None)
    if found is None:
        raise RuntimeError(INSTALL)
    return found


class Cluster:
    """initdb, start, a database a test, stop (`down`, `up`: a restart). `url()`: a new empty database's URL.
    Its folder is one of its own under /tmp: the `postgres` user cannot reach into pytest's (mode 0700, root's)."""

    def __init__(self):
        self.folder, self.port = Path(tempfile.mkdtemp(prefix="edge-postgres-")), _free_port()
        self.user = "postgres" if os.geteuid() == 0 else None
        if self.user:
            entry = pwd.getpwnam(self.user)
            os.chown(self.folder, entry.pw_uid, entry.pw_gid)
        self._run(tool("initdb"), "--no-sync", "-U", "edge", "--auth=trust", "-D", str(self.folder / "data"))
        self.up()

    def up(self) -> None:
        """Start the server (again, after `down`), on the same port."""
        options = f"-p {self.port} -k {self.folder} -c listen_addresses=127.0.0.1 -c fsync=off -c full_page_writes=off"
        self._run(
            tool("pg_ctl"),
            "-w",
            "-D",
            str(self.folder / "data"),
            "-l",
            str(self.folder / "log"),
            "-o",
            options,
            "start",
        )

    def down(self) -> None:
        """Stop the server as an administrator's restart would: its connections are cut."""
        self._run(tool("pg_ctl"), "-D", str(self.folder / "data"), "-m", "fast", "stop")

    def url(self, name: str | None = None) -> str:
        name = name or f"t{uuid.uuid4().hex[:12]}"
        with psycopg.connect(self._url("postgres"), autocommit=True) as admin:
            admin.execute(f'CREATE DATABASE "{name}"')
        return self._url(name)

    def stop(self) -> None:
        if (self.folder / "data" / "postmaster.pid").exists():  # up
            self.down()
        shutil.rmtree(self.folder, ignore_errors=True)

    def _url(self, name: str) -> str:
        return f"postgresql://edge@127.0.0.1:{self.port}/{name}"

    def _run(self, *command: str) -> None:
        prefix = ["runuser", "-u", self.user, "--"] if self.user else []
        subprocess.run([*prefix, *command], check=True, capture_output=True, timeout=60)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
