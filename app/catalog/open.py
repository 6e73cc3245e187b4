"""Opening the catalog `--database` names, its schema brought up to date
(app/catalog/migrate.py), and the guards that keep a data dir's blobs with the catalog
that knows them. Used by the web app (app/main.py) and the command line (app/cli/),
which therefore never imports the web app to reach its accounts.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Callable
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from app.catalog.migrate import (
    CatalogTooNew,
    migrate_postgres,
    migrate_sqlite,
    postgres_version,
    refuse_if_too_new,
    sqlite_version,
)
from app.catalog.protocol import Database, Spawn
from app.catalog.sqlite import SQLiteDatabase
from app.config import Config

__all__ = [
    "POSTGRES_MARKER",
    "CatalogMismatch",
    "CatalogTooNew",
    "check_catalog_matches",
    "check_schema_version",
    "open_catalog",
]

# Left in a data dir whose catalog is in PostgreSQL. Its blobs are that catalog's: a
# start without --database would open an empty SQLite catalog beside them, take every
# blob for an orphan and reclaim it.
POSTGRES_MARKER = "stowage.postgres"


class CatalogMismatch(Exception):
    """The data dir's blobs belong to another catalog than `--database` names; the
    message says which, for a person."""


def _sqlite_file_rows(path: Path) -> int:
    try:
        conn = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)
    except sqlite3.Error:
        return 0
    try:
        return int(conn.execute("SELECT count(*) FROM files").fetchone()[0])
    except sqlite3.Error:
        return 0
    finally:
        conn.close()


def check_catalog_matches(config: Config) -> None:
    """Refuse a catalog that does not know the data dir's blobs (see POSTGRES_MARKER),
    before anything could reclaim them as orphans."""
    if config.database is None:
        if (config.data_dir / POSTGRES_MARKER).exists():
            raise CatalogMismatch(
                f"{config.data_dir} holds the blobs of a PostgreSQL catalog ({POSTGRES_MARKER}"
                " is there): pass its --database (an empty SQLite catalog would take every"
                " blob for an orphan)"
            )
        return
    if config.db_path.exists() and _sqlite_file_rows(config.db_path):
        raise CatalogMismatch(
            f"{config.data_dir} holds a SQLite catalog with files ({config.db_path.name}),"
            " which the PostgreSQL catalog does not know (it would take their blobs for"
            " orphans): serve this dir without --database, or give PostgreSQL a new --data-dir"
        )


def catalog_name(config: Config) -> str:
    """Where the catalog is, for a person: the SQLite file, or the PostgreSQL URL
    without its password."""
    if config.database is None:
        return str(config.db_path)
    parts = urlsplit(config.database)
    if parts.password is None:
        return config.database
    host = parts.hostname or ""
    user = f"{parts.username}@" if parts.username else ""
    port = f":{parts.port}" if parts.port else ""
    return urlunsplit(parts._replace(netloc=f"{user}{host}{port}"))


def check_schema_version(config: Config) -> None:
    """Refuse (CatalogTooNew) a catalog a newer Stowage has migrated, reading only:
    what `serve` and the commands check before they start."""
    if config.database is None:
        version = sqlite_version(config.db_path)
    else:
        version = postgres_version(config.database)
    if version is not None:
        refuse_if_too_new(catalog_name(config), version)


async def open_catalog(
    config: Config, *, spawn: Spawn | None = None, make_room: Callable[[], None] | None = None
) -> Database:
    """The catalog `--database` names, its schema brought up to date: PostgreSQL for a
    URL, else the SQLite file in the data dir. `make_room` frees the catalog's reserve
    on the data dir's disk before a write: SQLite's concern only, PostgreSQL's disk is
    the database server's."""
    check_catalog_matches(config)
    where = catalog_name(config)
    if config.database is not None:
        config.data_dir.mkdir(parents=True, exist_ok=True)
        (config.data_dir / POSTGRES_MARKER).write_text(
            "The blobs in this data dir are catalogued in PostgreSQL: stowage needs --database.\n"
        )
        await asyncio.to_thread(migrate_postgres, config.database, where=where)
        # Imported only here: psycopg and libpq add ~10 MB to a SQLite server's RSS.
        from app.catalog.postgres import PostgresDatabase

        # The credentials marker (app/accounts/store.py) stays in the data dir.
        return await PostgresDatabase.open(config.database, spawn=spawn, path=config.db_path)
    await asyncio.to_thread(migrate_sqlite, config.db_path)
    return await SQLiteDatabase.open(config.db_path, spawn=spawn, make_room=make_room)
