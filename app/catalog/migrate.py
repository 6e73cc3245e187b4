"""Bringing a catalog's schema up to date, the same way on SQLite and PostgreSQL.

The version: a catalog records each migration applied to it as a row of the table
`schema_version` (number, name, when, and `how`: 'applied', or 'found' when a catalog
written before versions existed already had it); its schema version is the highest
number there. One mechanism for both dialects, inside the catalog itself, so a backup
or a pg_dump carries it.

Opening a catalog (app/catalog/open.py) applies the migrations it lacks, in order, in
one transaction: all of them or none. Two processes opening one catalog at once
migrate it once: on SQLite the transaction is BEGIN IMMEDIATE (the second waits for
the first's write lock, then finds nothing left to do); on PostgreSQL it first takes
the advisory lock MIGRATION_LOCK (app/catalog/postgres.py), which ends with it.

A catalog without a version but with tables was written before versions existed (by
commit 5707150, or by main before this change). Migration 1 is run again on it (each
of its statements leaves what is there as it is, and fills in what an older catalog
lacks), then each later migration is recorded as found when its `FOUND_*` query
finds what it makes, else applied. Nothing is dropped or rewritten, so no row is lost.

A catalog whose version is above `LATEST` was migrated by a newer Stowage: it is
refused (CatalogTooNew), never written to.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from app.catalog.migrations import LATEST, MIGRATIONS, Dialect, Migration, Run

VERSION_TABLE: dict[Dialect, str] = {
    "sqlite": (
        "CREATE TABLE IF NOT EXISTS schema_version (version INTEGER PRIMARY KEY,"
        " name TEXT NOT NULL, applied_at REAL NOT NULL, how TEXT NOT NULL)"
    ),
    "postgres": (
        "CREATE TABLE IF NOT EXISTS schema_version (version BIGINT PRIMARY KEY,"
        " name TEXT NOT NULL, applied_at DOUBLE PRECISION NOT NULL, how TEXT NOT NULL)"
    ),
}
CURRENT_VERSION = "SELECT coalesce(max(version), 0) FROM schema_version"


class CatalogTooNew(Exception):
    """The catalog was migrated by a newer Stowage than this one; the message is the
    one line a person sees."""

    def __init__(self, where: str, version: int) -> None:
        super().__init__(
            f"the catalog at {where} has schema version {version}; this Stowage knows up"
            f" to {LATEST}: upgrade Stowage"
        )
        self.version = version


def refuse_if_too_new(where: str, version: int) -> None:
    if version > LATEST:
        raise CatalogTooNew(where, version)


def _record(run: Run, migration: Migration, how: str, now: float) -> None:
    run(
        "INSERT INTO schema_version (version, name, applied_at, how) VALUES (?, ?, ?, ?)",
        (migration.number, migration.name, now, how),
    )


def _apply(run: Run, dialect: Dialect, migration: Migration, now: float) -> None:
    for step in migration.statements(dialect):
        if isinstance(step, str):
            run(step, ())
        else:
            step(run)
    _record(run, migration, "applied", now)


def _adopt(run: Run, dialect: Dialect, now: float) -> None:
    """Version a catalog written before versions existed (see the module doc)."""
    if dialect == "sqlite":
        # A catalog made before file requests existed (what 5707150's
        # add_request_column did): CREATE TABLE IF NOT EXISTS adds no column.
        columns = [str(row[1]) for row in run("PRAGMA table_info(files)", ())]
        if "request_id" not in columns:
            run("ALTER TABLE files ADD COLUMN request_id TEXT", ())
    first, *later = MIGRATIONS
    for statement in first.statements(dialect):
        assert isinstance(statement, str)
        run(statement, ())
    _record(run, first, "found", now)
    for migration in later:
        if int(run(migration.found(dialect), ())[0][0]):
            _record(run, migration, "found", now)
        else:
            _apply(run, dialect, migration, now)


def bring_up_to_date(run: Run, dialect: Dialect, where: str, now: float) -> int:
    """Apply what the catalog lacks, inside the caller's transaction; its version."""
    run(VERSION_TABLE[dialect], ())
    version = int(run(CURRENT_VERSION, ())[0][0])
    refuse_if_too_new(where, version)
    if version == 0 and int(run(MIGRATIONS[0].found(dialect), ())[0][0]):
        _adopt(run, dialect, now)
        return LATEST
    for migration in MIGRATIONS[version:]:
        _apply(run, dialect, migration, now)
    return LATEST


def _switch_to_wal(conn: sqlite3.Connection, seconds: float = 10.0) -> None:
    """WAL mode, waiting for other processes: on a new catalog the switch needs the
    write lock while another process may be migrating it, and SQLite answers "database
    is locked" at once there (a read lock asking for more is never made to wait, lest
    two deadlock), whatever the busy timeout."""
    deadline = time.monotonic() + seconds
    while True:
        try:
            conn.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() > deadline:
                raise
            time.sleep(0.02)


def migrate_sqlite(path: Path, *, now: float | None = None) -> int:
    """The SQLite catalog at `path` (made if missing) brought up to date; its version."""
    path.parent.mkdir(parents=True, exist_ok=True)
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        conn.execute("PRAGMA busy_timeout=5000")
        _switch_to_wal(conn)
        conn.execute("PRAGMA synchronous=FULL")

        def run(sql: str, params: Sequence[object]) -> list[tuple[Any, ...]]:
            return conn.execute(sql, tuple(params)).fetchall()

        conn.execute("BEGIN IMMEDIATE")
        try:
            when = time.time() if now is None else now
            version = bring_up_to_date(run, "sqlite", str(path), when)
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise
        return version
    finally:
        conn.close()


def sqlite_version(path: Path) -> int | None:
    """The schema version of the SQLite catalog at `path`, read only: None when there
    is no catalog there (or none SQLite can read: opening it says why), 0 when it has
    no version yet."""
    if not path.is_file():
        return None
    try:
        conn = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)
    except sqlite3.Error:
        return None
    try:
        conn.execute("PRAGMA busy_timeout=5000")
        found = conn.execute(
            "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = 'schema_version'"
        ).fetchone()[0]
        return int(conn.execute(CURRENT_VERSION).fetchone()[0]) if found else 0
    except sqlite3.Error:
        return None
    finally:
        conn.close()


def migrate_postgres(url: str, *, where: str, now: float | None = None) -> int:
    """The PostgreSQL catalog at `url` brought up to date, under MIGRATION_LOCK; its
    version. `where` names it in messages (without its password)."""
    # Imported only here: psycopg and libpq add ~10 MB to a SQLite server's RSS.
    import psycopg

    from app.catalog.postgres import CONNECT_TIMEOUT, MIGRATION_LOCK, translate, unavailable

    try:
        conn = psycopg.connect(url, autocommit=True, connect_timeout=CONNECT_TIMEOUT)
    except psycopg.OperationalError as exc:
        raise unavailable(exc) from exc
    try:

        def run(sql: str, params: Sequence[object]) -> list[tuple[Any, ...]]:
            # Without parameters a statement is sent as written (a `%` stays a `%`).
            cursor = conn.execute(translate(sql), tuple(params)) if params else conn.execute(sql)
            return cursor.fetchall() if cursor.description is not None else []

        try:
            with conn.transaction():
                conn.execute("SELECT pg_advisory_xact_lock(%s)", (MIGRATION_LOCK,))
                when = time.time() if now is None else now
                return bring_up_to_date(run, "postgres", where, when)
        except psycopg.OperationalError as exc:
            if conn.closed or conn.broken:
                raise unavailable(exc) from exc
            raise
    finally:
        conn.close()


def postgres_version(url: str) -> int:
    """The schema version of the PostgreSQL catalog at `url`, read only (0: none yet)."""
    import psycopg

    from app.catalog.postgres import CONNECT_TIMEOUT, unavailable

    try:
        conn = psycopg.connect(url, autocommit=True, connect_timeout=CONNECT_TIMEOUT)
    except psycopg.OperationalError as exc:
        raise unavailable(exc) from exc
    try:
        row = conn.execute("SELECT to_regclass('schema_version') IS NOT NULL").fetchone()
        if row is None or not row[0]:
            return 0
        found = conn.execute(CURRENT_VERSION).fetchone()
        return 0 if found is None else int(found[0])
    finally:
        conn.close()
