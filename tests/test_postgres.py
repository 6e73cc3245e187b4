"""The catalog on PostgreSQL: migrations, two processes on one database, and a
database restart under a running server. (The feature tests themselves run on both
catalogs: see BOTH_CATALOGS_MODULES in conftest.py.)"""

import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from tests.conftest import PASSWORD, ROOT, start_server
from tests.postgres import PG_BIN, Cluster

from app.config import Config
from app.main import open_catalog
from app.postgres import postgres_schema


def schema_dump(url: str) -> str:
    done = subprocess.run(
        [str(PG_BIN / "pg_dump"), "--schema-only", url], capture_output=True, text=True, check=True
    )
    # pg_dump marks its output with a random \\restrict key each time.
    return "\n".join(line for line in done.stdout.splitlines() if "restrict" not in line)


def stowage(*args: str, data_dir: Path, database: str, stdin: str = "") -> str:
    done = subprocess.run(
        [sys.executable, "-m", "app.cli", *args, "--data-dir", str(data_dir), "--database",
         database],
        input=stdin, capture_output=True, text=True, cwd=ROOT, timeout=60,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    return done.stdout


async def test_a_second_start_changes_nothing(postgres: Cluster, tmp_path):
    url = postgres.new_database()
    config = Config.load({"data_dir": str(tmp_path / "data"), "database": url}, environ={})
    db = await open_catalog(config)
    await db.close()
    first = schema_dump(url)
    assert "CREATE TRIGGER usage_on_insert" in first and "rowid bigint" in first
    db = await open_catalog(config)
    await db.close()
    assert schema_dump(url) == first


def test_a_sqlite_trigger_without_a_postgres_twin_stops_the_start():
    with pytest.raises(RuntimeError, match="new_trigger"):
        postgres_schema(
            "CREATE TABLE IF NOT EXISTS t (id TEXT);\n"
            "CREATE TRIGGER IF NOT EXISTS new_trigger AFTER DELETE ON t BEGIN\n"
            "    DELETE FROM t;\nEND;\n"
        )


@pytest.mark.slow
def test_a_token_made_by_the_command_works_on_a_server_elsewhere(postgres: Cluster, tmp_path):
    """Two processes, two data dirs, one database: what `stowage tokens add` makes on
    one machine, a server on another accepts."""
    url = postgres.new_database()
    servers = start_server(tmp_path, account=False, database=url)
    server = next(servers)
    try:
        cli_dir = tmp_path / "cli-data"
        stowage("users", "add", "ada", "--admin", data_dir=cli_dir, database=url,
                stdin=PASSWORD + "\n")  # fmt: skip
        token = stowage("tokens", "add", "ada", data_dir=cli_dir, database=url).strip()
        headers = {"authorization": f"Bearer {token}"}
        with httpx.Client(base_url=server.base_url, headers=headers, timeout=10) as client:
            assert client.put("/uploads/hello.txt", content=b"hello").status_code == 201
            assert [f["name"] for f in client.get("/api/files").json()["files"]] == ["hello.txt"]
        listed = stowage("users", "list", data_dir=cli_dir, database=url)
        assert listed.splitlines()[1].split()[:6] == [
            "ada",
            "yes",
            "none",
            "(default)",
            "5",
            "bytes",
        ]
    finally:
        servers.close()


@pytest.mark.slow
def test_the_server_rides_out_a_database_restart(postgres: Cluster, tmp_path):
    """While PostgreSQL is down, requests get 503 with a reason; once it is back, the
    same server process serves again without a restart."""
    url = postgres.new_database()
    servers = start_server(tmp_path, database=url)
    server = next(servers)
    try:
        with server.http(timeout=10) as client:
            assert client.put("/uploads/before.txt", content=b"before").status_code == 201
            postgres.stop()
            try:
                down = client.get("/api/files")
                assert down.status_code == 503, down.text
                assert "catalog database is unavailable" in down.json()["error"]
                assert down.headers["retry-after"] == "1"
                refused = client.put("/uploads/during.txt", content=b"during")
                assert refused.status_code == 503, refused.text
            finally:
                postgres.start()
            deadline = time.monotonic() + 10
            while (answer := client.get("/api/files")).status_code == 503:
                assert time.monotonic() < deadline, answer.text
                time.sleep(0.1)
            assert answer.status_code == 200
            assert client.put("/uploads/after.txt", content=b"after").status_code == 201
            names = sorted(f["name"] for f in client.get("/api/files").json()["files"])
            assert names == ["after.txt", "before.txt"]
    finally:
        servers.close()


def test_database_must_be_a_postgresql_url(tmp_path):
    from app.config import ConfigError

    with pytest.raises(ConfigError, match="--database must be a postgresql:// URL"):
        Config.load({"data_dir": str(tmp_path), "database": "mysql://x/y"}, environ={})
    taken = Config.load({"data_dir": str(tmp_path)}, environ={"STOWAGE_DATABASE": "postgres://h/d"})
    assert taken.database == "postgres://h/d"


def test_backup_of_a_postgresql_catalog_points_to_pg_dump(tmp_path):
    done = subprocess.run(
        [sys.executable, "-m", "app.cli", "backup", str(tmp_path / "copy"), "--database",
         "postgresql://nobody@127.0.0.1:1/none"],
        capture_output=True, text=True, cwd=ROOT, timeout=60,
    )  # fmt: skip
    assert done.returncode == 2 and "pg_dump" in done.stderr
