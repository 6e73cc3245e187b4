"""The catalog on PostgreSQL: migrations, two processes on one database, and a
database restart under a running server. (The feature tests themselves run on both
catalogs: see BOTH_CATALOGS_MODULES in tests/support/fixtures.py.)"""

import asyncio
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import urlencode

import httpx
import pytest
from tests.support.fixtures import PASSWORD, ROOT, start_server
from tests.support.postgres import PG_BIN, Cluster

from app.catalog.open import open_catalog
from app.config import Config


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


@pytest.mark.slow
def test_processes_on_one_database_share_accounts_tokens_and_sessions(postgres: Cluster, tmp_path):
    """Three processes, three data dirs, one database: what `stowage tokens add` makes
    on one machine, a server on another accepts; a session signed in on server A is
    good on server B; an upload on A counts in the usage B and the command see."""
    url = postgres.new_database()
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    a_servers = start_server(tmp_path / "a", account=False, database=url)
    b_servers = start_server(tmp_path / "b", account=False, database=url)
    try:
        a, b = next(a_servers), next(b_servers)
        cli_dir = tmp_path / "cli-data"
        stowage("users", "add", "ada", "--admin", data_dir=cli_dir, database=url,
                stdin=PASSWORD + "\n")  # fmt: skip
        token = stowage("tokens", "add", "ada", data_dir=cli_dir, database=url).strip()
        headers = {"authorization": f"Bearer {token}"}
        with httpx.Client(base_url=a.base_url, headers=headers, timeout=10) as on_a:
            assert on_a.put("/uploads/hello.txt", content=b"hello").status_code == 201
        with httpx.Client(base_url=b.base_url, headers=headers, timeout=10) as on_b:
            assert [f["name"] for f in on_b.get("/api/files").json()["files"]] == ["hello.txt"]
        listed = stowage("users", "list", data_dir=cli_dir, database=url).splitlines()
        assert listed[1].split()[:6] == ["ada", "yes", "none", "(default)", "5", "bytes"]
        with httpx.Client(base_url=a.base_url, timeout=10) as browser_a:
            signed_in = browser_a.post(
                "/login",
                content=urlencode({"name": "ada", "password": PASSWORD}).encode(),
                headers={"content-type": "application/x-www-form-urlencoded"},
            )
            assert signed_in.status_code == 303, signed_in.text
            cookies = dict(browser_a.cookies)
        assert cookies
        with httpx.Client(base_url=b.base_url, cookies=cookies, timeout=10) as browser_b:
            assert browser_b.get("/api/files").status_code == 200
        with httpx.Client(base_url=b.base_url, timeout=10) as stranger:
            assert stranger.get("/api/files").status_code == 401
        # Revoked by the command on a third machine: both servers, which have the token
        # cached, refuse it at once (a notification), not a minute later (their cache).
        listed = stowage("tokens", "list", "ada", data_dir=cli_dir, database=url)
        token_id = listed.splitlines()[1].split()[0]  # under the header line
        stowage("tokens", "revoke", token_id, data_dir=cli_dir, database=url)
        for server in (a, b):
            with httpx.Client(base_url=server.base_url, headers=headers, timeout=10) as client:
                deadline = time.monotonic() + 10
                while client.get("/api/files").status_code != 401:
                    assert time.monotonic() < deadline, "the revoked token is still accepted"
                    time.sleep(0.05)
    finally:
        a_servers.close()
        b_servers.close()


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
         "postgresql://nobody@127.0.0.1:1/none", "--data-dir", str(tmp_path / "data")],
        capture_output=True, text=True, cwd=ROOT, timeout=60,
    )  # fmt: skip
    assert done.returncode == 2 and "pg_dump" in done.stderr


# Group commit on PostgreSQL: the same promises as SQLite's (tests/unit/test_db.py).

GROUP_SCHEMA = """
CREATE TABLE IF NOT EXISTS t (id INTEGER PRIMARY KEY, v TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS parent (id INTEGER PRIMARY KEY);
CREATE TABLE IF NOT EXISTS child (
    id INTEGER PRIMARY KEY,
    parent INTEGER REFERENCES parent (id) DEFERRABLE INITIALLY DEFERRED
);
"""
INSERT = "INSERT INTO t (id, v) VALUES (?, ?)"


async def test_a_bad_request_rolls_back_alone_and_its_group_commits_once(postgres: Cluster):
    import psycopg

    from app.catalog.postgres import PostgresDatabase

    url = postgres.new_database()
    db = await PostgresDatabase.open(url, GROUP_SCHEMA)
    try:
        await db.insert_many(INSERT, [(1, "taken")])
        transactions = 0
        real_write_group = db._write_group

        async def counting(group):
            nonlocal transactions
            transactions += 1
            return await real_write_group(group)

        db._write_group = counting  # type: ignore[method-assign]
        requests = [db.insert_many(INSERT, [(n, "ok")]) for n in range(2, 20)]
        requests.insert(7, db.insert_many(INSERT, [(100, "fine"), (1, "duplicate")]))
        results = await asyncio.wait_for(asyncio.gather(*requests, return_exceptions=True), 10)
        assert isinstance(results[7], psycopg.errors.UniqueViolation)
        assert sum(r is not None for r in results) == 1
        assert transactions == 1
        # Durable and visible to any other connection once insert_many returned.
        with psycopg.connect(url) as other:
            ids = [r[0] for r in other.execute("SELECT id FROM t ORDER BY id")]
        assert ids == list(range(1, 20))  # 100 went with its request
    finally:
        await db.close()


async def test_a_failed_commit_answers_every_caller_and_stores_nothing(postgres: Cluster):
    from app.catalog.postgres import PostgresDatabase

    db = await PostgresDatabase.open(postgres.new_database(), GROUP_SCHEMA)
    try:
        await db.insert_many("INSERT INTO parent (id) VALUES (?)", [(1,)])
        results = await asyncio.wait_for(
            asyncio.gather(
                db.insert_many("INSERT INTO child (id, parent) VALUES (?, ?)", [(1, 1)]),
                db.insert_many("INSERT INTO child (id, parent) VALUES (?, ?)", [(2, 99)]),
                return_exceptions=True,
            ),
            10,
        )
        # The first may have committed alone before the second arrived; whatever
        # shared the failing COMMIT failed with it, and nobody waits forever.
        assert results[1] is not None
        assert await db.fetch_all("SELECT id FROM child WHERE parent = 99") == []
    finally:
        await db.close()


async def test_a_data_dir_is_never_served_by_a_catalog_that_does_not_know_its_blobs(
    postgres: Cluster, tmp_path
):
    """Its blobs would all look like orphans, and the start-up reclaim would delete
    them: a SQLite data dir with files refuses --database, a PostgreSQL one its absence."""
    sqlite_dir = tmp_path / "sqlite-data"
    db = await open_catalog(Config.load({"data_dir": str(sqlite_dir)}, environ={}))
    async with db.transaction() as conn:
        await conn.execute(
            "INSERT INTO files (id, name, size, sha256, mime, created_at, owner)"
            " VALUES ('AAAAAAAAAAAAAAAAAAAAAA', 'kept.txt', 4, '0', 'text/plain', '2026', NULL)"
        )
    await db.close()
    url = postgres.new_database()
    refused = subprocess.run(
        [sys.executable, "-m", "app.cli", "serve", "--data-dir", str(sqlite_dir), "--database",
         url, "--port", "1"],
        capture_output=True, text=True, cwd=ROOT, timeout=60,
    )  # fmt: skip
    assert refused.returncode == 2
    assert "holds a SQLite catalog with files" in refused.stderr

    postgres_dir = tmp_path / "postgres-data"
    stowage("users", "add", "ada", data_dir=postgres_dir, database=url, stdin=PASSWORD + "\n")
    without = subprocess.run(
        [sys.executable, "-m", "app.cli", "users", "list", "--data-dir", str(postgres_dir)],
        capture_output=True, text=True, cwd=ROOT, timeout=60,
    )  # fmt: skip
    assert without.returncode == 2 and "pass its --database" in without.stderr
    assert not (postgres_dir / "stowage.db").exists()
