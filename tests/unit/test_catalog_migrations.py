"""The catalog's schema versions (app/catalog/migrate.py, app/catalog/migrations/).

A fresh catalog gets the latest version, opening twice changes nothing, processes
opening one catalog at once migrate it once, a catalog without a version (written by
5707150 or before versions) is recognised and brought up to date, each migration makes
the same things in both dialects, and a catalog newer than the code is refused with one
line by `serve` and by every command. tests/server/test_catalog_upgrade_server.py opens
what commit 5707150's own code wrote.
"""

from __future__ import annotations

import re
import sqlite3
import subprocess
import sys
import threading
from pathlib import Path

import psycopg
import pytest
from tests.support.fixtures import ROOT, environment_without_venv, free_port
from tests.support.postgres import Cluster

from app.catalog.migrate import (
    CatalogTooNew,
    migrate_postgres,
    migrate_sqlite,
    postgres_version,
    sqlite_version,
)
from app.catalog.migrations import LATEST, MIGRATIONS
from app.catalog.open import open_catalog
from app.config import Config

# Stowage as commit 5707150 shipped it -------------------------------------------------------


# Versions ------------------------------------------------------------------------------------


def sqlite_schema(path: Path) -> list[tuple[object, ...]]:
    conn = sqlite3.connect(path)
    try:
        return conn.execute(
            "SELECT type, name, sql FROM sqlite_master ORDER BY type, name"
        ).fetchall()
    finally:
        conn.close()


def version_rows(path: Path) -> list[tuple[object, ...]]:
    conn = sqlite3.connect(path)
    try:
        return conn.execute("SELECT version, name, how FROM schema_version ORDER BY 1").fetchall()
    finally:
        conn.close()


def sqlite_config(tmp_path: Path) -> Config:
    return Config.load({"data_dir": str(tmp_path / "data")}, environ={})


async def test_a_fresh_catalog_gets_the_latest_version_and_a_second_open_changes_nothing(
    tmp_path: Path,
):
    config = sqlite_config(tmp_path)
    db = await open_catalog(config)
    await db.close()
    assert sqlite_version(config.db_path) == LATEST
    applied = [(m.number, m.name, "applied") for m in MIGRATIONS]
    assert version_rows(config.db_path) == applied
    schema = sqlite_schema(config.db_path)
    db = await open_catalog(config)
    await db.close()
    assert sqlite_schema(config.db_path) == schema
    assert version_rows(config.db_path) == applied


async def test_a_fresh_postgres_catalog_gets_the_latest_version_and_a_second_open_changes_nothing(
    postgres: Cluster, tmp_path: Path
):
    url = postgres.new_database()
    config = Config.load({"data_dir": str(tmp_path / "data"), "database": url}, environ={})
    db = await open_catalog(config)
    await db.close()
    assert postgres_version(url) == LATEST
    with psycopg.connect(url) as conn:
        rows = conn.execute("SELECT version, how FROM schema_version ORDER BY 1").fetchall()
    assert rows == [(m.number, "applied") for m in MIGRATIONS]
    db = await open_catalog(config)
    await db.close()
    with psycopg.connect(url) as conn:
        again = conn.execute("SELECT version, how FROM schema_version ORDER BY 1").fetchall()
    assert again == rows


# Migrations 1-4 are what main had before versions existed; later ones never run on a
# catalog without a version.
BEFORE_VERSIONS = 4


def _main_before_versions(path: Path, *, upto: int, skip: tuple[int, ...] = ()) -> None:
    """A catalog as main wrote it before versions existed: the migrations' statements
    up to `upto` (but `skip`), and no schema_version table."""
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        for migration in MIGRATIONS[:upto]:
            if migration.number not in skip:
                for statement in migration.sqlite:
                    assert isinstance(statement, str)
                    conn.execute(statement)
        conn.execute(
            "INSERT INTO users (id, name, name_key, password_hash, created_at)"
            " VALUES ('u1', 'ada', 'ada', 'x', '2026')"
        )
        conn.execute(
            "INSERT INTO files (id, name, size, sha256, mime, created_at, owner)"
            " VALUES ('AAAAAAAAAAAAAAAAAAAAAA', 'kept.txt', 4, '0', 'text/plain', '2026', 'u1')"
        )
    finally:
        conn.close()


@pytest.mark.parametrize(
    ("upto", "skip", "found"),
    [
        (1, (), [1]),  # 5707150
        (BEFORE_VERSIONS, (), [1, 2, 3, 4]),  # main just before versions
        (BEFORE_VERSIONS, (2,), [1, 3, 4]),  # a commit between: one merged, one not
    ],
)
async def test_a_catalog_without_a_version_is_recognised_and_brought_up_to_date(
    tmp_path: Path, upto: int, skip: tuple[int, ...], found: list[int]
):
    config = sqlite_config(tmp_path)
    config.data_dir.mkdir(parents=True)
    _main_before_versions(config.db_path, upto=upto, skip=skip)
    db = await open_catalog(config)
    try:
        assert await db.fetch_all("SELECT name, owner FROM files") == [("kept.txt", "u1")]
        assert await db.fetch_all("SELECT used_bytes, file_count FROM users") == [(4, 1)]
    finally:
        await db.close()
    assert version_rows(config.db_path) == [
        (m.number, m.name, "found" if m.number in found else "applied") for m in MIGRATIONS
    ]
    fresh = sqlite_config(tmp_path / "fresh")
    db = await open_catalog(fresh)
    await db.close()
    # Whatever it lacked, it has now: the same tables, indexes and triggers as a new one.
    assert {(t, n) for t, n, _ in sqlite_schema(config.db_path)} == {
        (t, n) for t, n, _ in sqlite_schema(fresh.db_path)
    }


def test_a_catalog_from_before_file_requests_gets_their_column(tmp_path: Path):
    """What 5707150's add_request_column did for a catalog older than itself."""
    path = tmp_path / "stowage.db"
    conn = sqlite3.connect(path)
    conn.execute(
        "CREATE TABLE files (id TEXT PRIMARY KEY, name TEXT NOT NULL, size INTEGER NOT NULL,"
        " sha256 TEXT NOT NULL, mime TEXT NOT NULL, declared_mime TEXT,"
        " created_at TEXT NOT NULL, owner TEXT)"
    )
    conn.commit()
    conn.close()
    assert migrate_sqlite(path) == LATEST
    conn = sqlite3.connect(path)
    columns = [row[1] for row in conn.execute("PRAGMA table_info(files)")]
    conn.close()
    assert "request_id" in columns


def _newer(path: Path) -> None:
    conn = sqlite3.connect(path)
    conn.execute(
        "INSERT INTO schema_version (version, name, applied_at, how)"
        " VALUES (?, 'from the future', 0, 'applied')",
        (LATEST + 3,),
    )
    conn.commit()
    conn.close()


ONE_LINE = re.compile(
    rf"stowage( \w+)?: error: the catalog at \S+ has schema version {LATEST + 3}; this Stowage"
    rf" knows up to {LATEST}: upgrade Stowage\n"
)


async def test_a_catalog_newer_than_the_code_is_refused_with_one_line(tmp_path: Path):
    config = sqlite_config(tmp_path)
    migrate_sqlite(config.db_path)
    _newer(config.db_path)
    schema = sqlite_schema(config.db_path)
    with pytest.raises(CatalogTooNew, match=f"has schema version {LATEST + 3}"):
        await open_catalog(config)
    for args in (
        ["serve", "--port", str(free_port())],
        ["users", "list"],
        ["tokens", "list", "ada"],
        ["check"],
        ["backup", str(tmp_path / "copy")],
    ):
        done = subprocess.run(
            [sys.executable, "-m", "app.cli", *args, "--data-dir", str(config.data_dir)],
            capture_output=True, text=True, cwd=ROOT, timeout=60, env=environment_without_venv(),
        )  # fmt: skip
        assert done.returncode == 2, (args, done.stderr)
        assert ONE_LINE.fullmatch(done.stderr), (args, done.stderr)
    assert sqlite_schema(config.db_path) == schema  # nothing was written to it


async def test_a_postgres_catalog_newer_than_the_code_is_refused(postgres: Cluster, tmp_path):
    url = postgres.new_database()
    migrate_postgres(url, where="test")
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(
            "INSERT INTO schema_version VALUES (%s, 'from the future', 0, 'applied')",
            (LATEST + 3,),
        )
    config = Config.load({"data_dir": str(tmp_path / "data"), "database": url}, environ={})
    with pytest.raises(CatalogTooNew, match=f"has schema version {LATEST + 3}; this Stowage"):
        await open_catalog(config)
    done = subprocess.run(
        [sys.executable, "-m", "app.cli", "users", "list", "--data-dir", str(config.data_dir),
         "--database", url],
        capture_output=True, text=True, cwd=ROOT, timeout=60, env=environment_without_venv(),
    )  # fmt: skip
    assert done.returncode == 2 and ONE_LINE.fullmatch(done.stderr), done.stderr


def _at_once(migrate, times: int = 4) -> list[int]:
    results: list[int] = []
    errors: list[BaseException] = []

    def one() -> None:
        try:
            results.append(migrate())
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=one) for _ in range(times)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert not errors, errors
    return results


def test_processes_opening_one_catalog_at_once_migrate_it_once(postgres: Cluster, tmp_path):
    url = postgres.new_database()
    assert _at_once(lambda: migrate_postgres(url, where="test")) == [LATEST] * 4
    with psycopg.connect(url) as conn:
        assert conn.execute("SELECT count(*) FROM schema_version").fetchone() == (LATEST,)
    path = tmp_path / "stowage.db"
    assert _at_once(lambda: migrate_sqlite(path)) == [LATEST] * 4
    assert len(version_rows(path)) == LATEST


# The migrations themselves -------------------------------------------------------------------

_MADE = re.compile(
    r"CREATE (?:OR REPLACE )?(TABLE|INDEX|TRIGGER) (?:IF NOT EXISTS )?(\w+)"
    r"|ALTER TABLE (\w+) ADD COLUMN (\w+)"
)


def _made(statements: tuple[object, ...]) -> set[tuple[str, str]]:
    made = set()
    for statement in statements:
        if not isinstance(statement, str):
            continue  # a step in Python: the same function on both
        for kind, name, table, column in _MADE.findall(statement):
            made.add((kind, name) if kind else ("COLUMN", f"{table}.{column}"))
    return made


@pytest.mark.parametrize("migration", MIGRATIONS, ids=lambda m: f"{m.number}-{m.name}")
def test_each_migration_makes_the_same_things_in_both_dialects(migration):
    """What the regex translation's check did (a SQLite trigger without a PostgreSQL
    twin stopped the start): each table, index, trigger and column is written for both."""
    assert migration.sqlite and migration.postgres
    assert _made(migration.sqlite) == _made(migration.postgres)


WEB_APP_LOADED = (
    "import sys, app.cli.accounts, app.cli.ops, app.cli.main;"
    " print(sorted(m for m in sys.modules if m == 'app.main' or m.startswith('app.features')))"
)


def test_the_commands_but_serve_never_import_the_web_app():
    done = subprocess.run(
        [sys.executable, "-c", WEB_APP_LOADED],
        capture_output=True, text=True, cwd=ROOT, timeout=60,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"
