"""The catalog on PostgreSQL (`--database postgresql://...`), behind the same
interface as SQLite's (app/catalog/sqlite.py), so several Stowage processes share accounts,
sessions, tokens, links, quotas and upload state.

The driver is psycopg 3, chosen by measurement (docs/scaling-out.md, "PostgreSQL catalog"): it
has synchronous connections as well as asynchronous ones, so the point reads on the
request path (`read_one`: who is this token, how much has this account stored) stay
synchronous, as they are on SQLite, at one loopback round trip (~60 us measured,
the same as asyncpg's asynchronous read); asyncpg would have made every one of them
and their callers asynchronous. Three connections, like SQLite's three: a writer
(group-committed inserts and transactions, serialised by a lock), a reader for lists
and lookups, and the synchronous point reader.

The SQL of queries is written once, for SQLite, with `?` placeholders. `translate`
turns a statement into PostgreSQL's dialect in one place: `%s` placeholders (and `%`
doubled), LIKE as ILIKE (SQLite's LIKE ignores ASCII case), and the column named
`offset` quoted (a reserved word in PostgreSQL). The schema is not translated: each
migration in app/catalog/migrations/ is written out for both dialects (there, every
table has a `rowid` identity column, which the queries order by as SQLite's rowid,
and `COLLATE NOCASE` names an ICU case-insensitive collation).

A database restarted or briefly unreachable: a connection found broken is replaced
on its next use. Reads are retried once on a fresh connection; a write transaction
is retried only if its BEGIN failed (nothing was sent that could have committed).
What still fails raises `CatalogUnavailable`, which the app answers with 503.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import AsyncIterator, Callable, Generator, Iterable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import psycopg

from app.catalog.group_commit import GroupCommit
from app.catalog.protocol import CatalogUnavailable, Row, Rows, Spawn

# Seconds a connection attempt may take (psycopg's floor is 2). After a failed
# attempt, the point reader, which runs on the event loop, does not try again for
# `POINT_READ_BACKOFF` seconds: an outage then costs the loop one attempt, not one
# per request.
CONNECT_TIMEOUT = 2
POINT_READ_BACKOFF = 0.5
# Any fixed number: two processes starting at once migrate the catalog one at a time
# (app/catalog/migrate.py).
MIGRATION_LOCK = 0x53_54_4F_57


def is_postgres_url(database: str | None) -> bool:
    return database is not None and database.startswith(("postgresql://", "postgres://"))


_translated: dict[str, str] = {}
_LIKE = re.compile(r"\bLIKE\b")
# Lower case only: `LIMIT ? OFFSET ?` is the clause, `offset` the column.
_OFFSET_COLUMN = re.compile(r"(?<![\"\w])offset\b")


def translate(sql: str) -> str:
    """One SQLite statement of this app in PostgreSQL's dialect (see the module doc)."""
    found = _translated.get(sql)
    if found is None:
        found = sql.replace("%", "%%").replace("?", "%s")
        found = _OFFSET_COLUMN.sub('"offset"', _LIKE.sub("ILIKE", found))
        _translated[sql] = found
    return found


class PostgresReader:
    """A synchronous connection for `stowage check` and the sweep (app/ops/check.py),
    shaped like the sqlite3 connection they otherwise use."""

    def __init__(self, url: str) -> None:
        try:
            self._conn = psycopg.connect(url, autocommit=True, connect_timeout=CONNECT_TIMEOUT)
        except psycopg.OperationalError as exc:
            raise unavailable(exc) from exc

    def execute(self, sql: str, params: tuple[object, ...] = ()) -> psycopg.Cursor[Any]:
        return self._conn.execute(translate(sql), params)

    def close(self) -> None:
        self._conn.close()


def unavailable(exc: BaseException) -> CatalogUnavailable:
    first_line = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return CatalogUnavailable(f"the catalog database is unavailable ({first_line}); try again")


class _Link:
    """One asynchronous connection, made again when found broken."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.conn: psycopg.AsyncConnection[Any] | None = None
        self._connecting = asyncio.Lock()

    async def get(self) -> psycopg.AsyncConnection[Any]:
        conn = self.conn
        if conn is not None and not conn.closed and not conn.broken:
            return conn
        async with self._connecting:
            if self.conn is None or self.conn.closed or self.conn.broken:
                await self.drop()
                try:
                    self.conn = await psycopg.AsyncConnection.connect(
                        self.url, autocommit=True, connect_timeout=CONNECT_TIMEOUT
                    )
                except psycopg.OperationalError as exc:
                    raise unavailable(exc) from exc
            return self.conn

    def lost(self, conn: psycopg.AsyncConnection[Any]) -> bool:
        """Whether an error on `conn` was the connection going away."""
        return conn.closed or conn.broken

    async def drop(self) -> None:
        conn, self.conn = self.conn, None
        if conn is not None:
            try:
                await conn.close()
            except psycopg.Error:
                pass


class _Transaction:
    """The writer connection inside `transaction()`, shaped like aiosqlite's: `execute`
    is awaited, or entered with `async with`, for a cursor."""

    def __init__(self, conn: psycopg.AsyncConnection[Any]) -> None:
        self._conn = conn

    def execute(self, sql: str, params: tuple[object, ...] = ()) -> _Statement:
        return _Statement(self._conn, sql, params)

    async def executemany(self, sql: str, rows: Iterable[tuple[object, ...]]) -> None:
        async with self._conn.cursor() as cursor:
            await cursor.executemany(translate(sql), list(rows))


class _Statement:
    def __init__(
        self, conn: psycopg.AsyncConnection[Any], sql: str, params: tuple[object, ...]
    ) -> None:
        self._conn, self._sql, self._params = conn, sql, params
        self._cursor: psycopg.AsyncCursor[Any] | None = None

    async def _run(self) -> psycopg.AsyncCursor[Any]:
        self._cursor = await self._conn.execute(translate(self._sql), self._params)
        return self._cursor

    def __await__(self) -> Generator[Any, None, psycopg.AsyncCursor[Any]]:
        return self._run().__await__()

    async def __aenter__(self) -> psycopg.AsyncCursor[Any]:
        return await self._run()

    async def __aexit__(self, *exc_info: object) -> None:
        if self._cursor is not None:
            await self._cursor.close()


class PostgresDatabase:
    """The catalog in a PostgreSQL database; see the module doc."""

    make_room: Callable[[], None] | None = None

    def __init__(self, url: str, *, spawn: Spawn | None = None, path: Path | None = None) -> None:
        self.url = url
        self.path = path
        self.shared = True
        self._writer = _Link(url)
        self._reader = _Link(url)
        self._point: psycopg.Connection[Any] | None = None
        self._point_down_until = 0.0
        self._spawn: Spawn = spawn or asyncio.create_task
        self._write_lock = asyncio.Lock()
        # Through a lambda, so a test may wrap `_write_group` on the instance.
        self._group = GroupCommit(
            lambda group: self._write_group(group), self._write_lock, self._spawn
        )

    @classmethod
    async def open(
        cls, url: str, schema: str = "", *, spawn: Spawn | None = None, path: Path | None = None
    ) -> PostgresDatabase:
        """Connect to the catalog at `url`. The app's schema is brought up to date
        before this (app/catalog/migrate.py); `schema`, statements run as written, is
        for tests and benchmarks that make tables of their own."""
        db = cls(url, spawn=spawn, path=path)
        try:
            await db._migrate([s for s in (part.strip() for part in schema.split(";")) if s])
        except BaseException:
            await db.close()
            raise
        return db

    async def _migrate(self, statements: list[str]) -> None:
        """Run `statements` in one transaction, one process at a time."""
        conn = await self._writer.get()
        try:
            async with conn.transaction():
                await conn.execute("SELECT pg_advisory_xact_lock(%s)", (MIGRATION_LOCK,))
                for statement in statements:
                    await conn.execute(statement)  # no parameters: sent as written
        except psycopg.OperationalError as exc:
            if self._writer.lost(conn):
                raise unavailable(exc) from exc
            raise

    # Reads ------------------------------------------------------------------------------

    def _point_conn(self) -> psycopg.Connection[Any]:
        conn = self._point
        if conn is not None and not conn.closed and not conn.broken:
            return conn
        if time.monotonic() < self._point_down_until:
            raise CatalogUnavailable("the catalog database is unavailable; try again")
        if conn is not None:
            conn.close()
            self._point = None
        try:
            self._point = psycopg.connect(
                self.url, autocommit=True, connect_timeout=CONNECT_TIMEOUT
            )
        except psycopg.OperationalError as exc:
            self._point_down_until = time.monotonic() + POINT_READ_BACKOFF
            raise unavailable(exc) from exc
        return self._point

    def read_one(self, sql: str, params: tuple[object, ...] = ()) -> Row | None:
        """One row by an indexed lookup, synchronously on the calling thread: one
        loopback round trip, cheaper than a hop to a thread or an await."""
        for attempt in (1, 2):
            conn = self._point_conn()
            try:
                row: Row | None = conn.execute(translate(sql), params).fetchone()
                return row
            except psycopg.OperationalError as exc:
                if not (conn.closed or conn.broken):
                    raise
                if attempt == 2:
                    raise unavailable(exc) from exc
        raise AssertionError("unreachable")

    async def _read(self, sql: str, params: tuple[object, ...], many: bool) -> Rows:
        for attempt in (1, 2):
            conn = await self._reader.get()
            try:
                cursor = await conn.execute(translate(sql), params)
                if many:
                    return list(await cursor.fetchall())
                row = await cursor.fetchone()
                return [] if row is None else [row]
            except psycopg.OperationalError as exc:
                if not self._reader.lost(conn):
                    raise
                if attempt == 2:
                    raise unavailable(exc) from exc
        raise AssertionError("unreachable")

    async def fetch_all(self, sql: str, params: tuple[object, ...] = ()) -> Rows:
        return await self._read(sql, params, many=True)

    async def fetch_one(self, sql: str, params: tuple[object, ...] = ()) -> Row | None:
        rows = await self._read(sql, params, many=False)
        return rows[0] if rows else None

    # Writes -----------------------------------------------------------------------------

    @asynccontextmanager
    async def _begun(self) -> AsyncIterator[psycopg.AsyncConnection[Any]]:
        """The writer inside a transaction (call with the write lock held). A BEGIN that
        fails on a lost connection is tried once more on a fresh one; a failure after
        it is final (CatalogUnavailable when the connection went away)."""
        for attempt in (1, 2):
            conn = await self._writer.get()
            transaction = conn.transaction()
            try:
                await transaction.__aenter__()
            except psycopg.OperationalError as exc:
                if not self._writer.lost(conn):
                    raise
                if attempt == 2:
                    raise unavailable(exc) from exc
                continue
            break
        try:
            yield conn
        except BaseException as exc:
            try:
                await transaction.__aexit__(type(exc), exc, exc.__traceback__)
            except psycopg.OperationalError as lost:
                if self._writer.lost(conn):
                    raise unavailable(lost) from exc
                raise
            if isinstance(exc, psycopg.OperationalError) and self._writer.lost(conn):
                raise unavailable(exc) from exc
            raise
        try:
            await transaction.__aexit__(None, None, None)
        except psycopg.OperationalError as exc:
            # COMMIT sent, answer lost: whether it committed is unknown. The caller is
            # told it failed, like SQLite's callers after a failed COMMIT.
            if self._writer.lost(conn):
                raise unavailable(exc) from exc
            raise

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[_Transaction]:
        async with self._write_lock, self._begun() as conn:
            yield _Transaction(conn)

    async def insert_many(self, sql: str, rows: Rows) -> None:
        """Insert `rows`, all or none, durably committed when this returns (PostgreSQL's
        default synchronous_commit flushes the WAL before COMMIT answers); group-
        committed as on SQLite (app/catalog/group_commit.py)."""
        await self._group.insert_many(sql, rows)

    async def _write_group(self, group: list[tuple[str, Rows]]) -> list[Exception | None]:
        """One transaction, one savepoint per request (a failing request rolls back
        alone); a group of one needs no savepoint, its transaction is its own. The
        savepoints are never released: a RELEASE per request would be a third round
        trip each, and COMMIT ends them all (a later SAVEPOINT of the same name hides
        the earlier ones, so ROLLBACK TO goes back to the latest)."""
        outcomes: list[Exception | None] = []
        alone = len(group) == 1
        async with self._begun() as conn:
            for sql, rows in group:
                try:
                    if not alone:
                        await conn.execute("SAVEPOINT request")
                    await _Transaction(conn).executemany(sql, rows)
                except psycopg.Error as exc:
                    if alone or self._writer.lost(conn):
                        raise
                    await conn.execute("ROLLBACK TO SAVEPOINT request")
                    outcomes.append(exc)
                else:
                    outcomes.append(None)
        return outcomes

    async def close(self) -> None:
        await self._group.drain()
        await self._writer.drop()
        await self._reader.drop()
        if self._point is not None:
            self._point.close()
            self._point = None
