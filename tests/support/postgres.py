"""A throwaway PostgreSQL 15 cluster for the tests (Debian's `postgresql` package).

PostgreSQL refuses to run as root: as root the cluster runs as the `postgres` user
(through runuser), as anyone else it runs as that user. It listens on 127.0.0.1 on a
free port with its socket in its own directory, trusts every local connection (it
holds nothing but test data and lives for one test run), and is always stopped:
`pg_ctl -m fast stop`, then SIGKILL should that not do.

Each test gets a catalog of its own: a fresh schema in one shared database, named
first in the URL's search_path, so every table, function, trigger and collation the
catalog makes lands there. (A fresh database per test, copied from a template,
measured ~0.3 s here; a schema costs a few milliseconds.)
"""

from __future__ import annotations

import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path

PG_BIN = Path("/usr/lib/postgresql/15/bin")
SUPERUSER = "stowage"


class PostgresMissing(RuntimeError):
    """No PostgreSQL 15 binaries here; `.ci/run` installs them (apt-get install postgresql)."""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Cluster:
    """One running cluster: `url(name)` addresses one of its databases."""

    def __init__(self, *, fsync: bool = False) -> None:
        """`fsync` off by default: a crash of the test machine loses nothing anyone
        keeps. The benchmarks turn it on, so commits cost what they do on a server."""
        self.fsync = fsync
        if not (PG_BIN / "pg_ctl").exists():
            raise PostgresMissing(f"no PostgreSQL at {PG_BIN}; apt-get install postgresql")
        self.as_root = os.geteuid() == 0
        self.dir = Path(tempfile.mkdtemp(prefix="stowage-pg-"))
        self.data = self.dir / "data"
        self.log = self.dir / "log"
        self.port = _free_port()
        self._made = 0
        if self.as_root:
            # mkdtemp makes 0700 directories: the postgres user must reach its own.
            os.chmod(self.dir, 0o755)
            owner = pwd.getpwnam("postgres")
            os.chown(self.dir, owner.pw_uid, owner.pw_gid)
        self._run("initdb", "-D", str(self.data), "-A", "trust", "-U", SUPERUSER, "-E", "UTF8",
                  "--no-sync")  # fmt: skip
        self.start()
        self.execute("postgres", "CREATE DATABASE tests")

    def _command(self, tool: str, *args: str) -> list[str]:
        command = [str(PG_BIN / tool), *args]
        return ["runuser", "-u", "postgres", "--", *command] if self.as_root else command

    def _run(self, tool: str, *args: str) -> None:
        done = subprocess.run(self._command(tool, *args), capture_output=True, text=True)
        if done.returncode != 0:
            raise RuntimeError(f"{tool} failed: {done.stdout}{done.stderr}")

    def start(self) -> None:
        options = (
            f"-p {self.port} -k {self.dir} -c listen_addresses=127.0.0.1 -c max_connections=200"
        )
        if not self.fsync:
            options += " -c fsync=off -c full_page_writes=off"
        self._run("pg_ctl", "-D", str(self.data), "-o", options, "-l", str(self.log),
                  "-w", "-t", "30", "start")  # fmt: skip

    def stop(self) -> None:
        subprocess.run(self._command("pg_ctl", "-D", str(self.data), "-m", "fast", "-t", "10",
                                     "stop"), capture_output=True)  # fmt: skip
        self._kill_leftover()

    def restart(self) -> None:
        self.stop()
        self.start()

    def _kill_leftover(self) -> None:
        pid_file = self.data / "postmaster.pid"
        try:
            pid = int(pid_file.read_text().split()[0])
        except (OSError, ValueError, IndexError):
            return
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            return
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                return
            time.sleep(0.05)

    def url(self, database: str) -> str:
        return f"postgresql://{SUPERUSER}@127.0.0.1:{self.port}/{database}"

    def execute(self, database: str, sql: str) -> None:
        self._run("psql", "-h", "127.0.0.1", "-p", str(self.port), "-U", SUPERUSER, "-d",
                  database, "-v", "ON_ERROR_STOP=1", "-q", "-c", sql)  # fmt: skip

    def new_database(self) -> str:
        """The URL of a fresh, empty catalog (a schema of its own, see the module doc)."""
        import psycopg

        self._made += 1
        name = f"t{os.getpid()}_{self._made}"
        with psycopg.connect(self.url("tests"), autocommit=True) as conn:
            conn.execute(f"CREATE SCHEMA {name}")
        return f"{self.url('tests')}?options=-csearch_path%3D{name}"

    def close(self) -> None:
        try:
            self.stop()
        finally:
            shutil.rmtree(self.dir, ignore_errors=True)
