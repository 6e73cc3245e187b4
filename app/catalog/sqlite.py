"""The catalog in SQLite (the default), behind the `Database` protocol
(app/catalog/protocol.py); PostgreSQL's is app/catalog/postgres.py, and
app/catalog/open.py picks one by `--database` and brings its schema up to date.

The SQLite catalog's connections:

Writes go through one aiosqlite connection (its own thread), serialised by a lock
and group-committed. Reads never touch it: a second aiosqlite connection, read-only
and on its own thread, answers lists and lookups, so a read sees only committed rows
(never a row of a group that is later rolled back) and never queues behind the
writer's fsync. Point reads on the request path (who is this token, how much has
this account stored) use a third, synchronous read-only connection straight on the
event loop: an indexed lookup there costs a few microseconds, where a hop to a
thread and back costs a few hundred. In WAL mode no reader waits for the writer.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path

import aiosqlite

from app.catalog.group_commit import GroupCommit
from app.catalog.protocol import Row, Rows, Spawn


def _write_group(conn: sqlite3.Connection, group: list[tuple[str, Rows]]) -> list[Exception | None]:
    """One transaction for the whole group: first without savepoints (every request's
    rows almost always go in, and two statements per request less is a tenth of the
    writer thread's work under small uploads); if any request's rows fail, that attempt
    is rolled back and the group is written again with a savepoint per request, so
    the failing request alone is left out. Either way the group pays a single commit
    (one WAL fsync) and one hop to the writer's thread. Raises when the transaction as
    a whole fails (COMMIT, or SQLite rolling everything back after SQLITE_FULL or an
    I/O error); then no request of the group is stored."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        for sql, rows in group:
            conn.executemany(sql, rows)
    except sqlite3.Error:
        if conn.in_transaction:
            conn.rollback()
        return _write_group_by_request(conn, group)
    except BaseException:
        if conn.in_transaction:
            conn.rollback()
        raise
    try:
        conn.commit()
    except BaseException:
        if conn.in_transaction:
            conn.rollback()  # may raise too; the caller answers everyone either way
        raise
    return [None] * len(group)


def _write_group_by_request(
    conn: sqlite3.Connection, group: list[tuple[str, Rows]]
) -> list[Exception | None]:
    """The group again, one savepoint per request: a request whose rows fail is
    rolled back to its savepoint alone and the others stay."""
    outcomes: list[Exception | None] = []
    conn.execute("BEGIN IMMEDIATE")
    try:
        for sql, rows in group:
            conn.execute("SAVEPOINT request")
            try:
                conn.executemany(sql, rows)
            except sqlite3.Error as exc:
                if not conn.in_transaction:
                    raise  # SQLite rolled the whole transaction back itself
                conn.execute("ROLLBACK TO request")
                conn.execute("RELEASE request")
                outcomes.append(exc)
            else:
                conn.execute("RELEASE request")
                outcomes.append(None)
        conn.commit()
    except BaseException:
        if conn.in_transaction:
            conn.rollback()  # may raise too; the caller answers everyone either way
        raise
    return outcomes


class SQLiteDatabase:
    """The writer connection plus a lock, so concurrent handlers' transactions never
    interleave on it (one handler's rollback must not undo another's insert).

    Inserts are group-committed: requests that arrive while a commit is under way
    are written together in the next one, so sixteen concurrent uploads share one
    WAL fsync and one trip to SQLite's thread instead of paying for sixteen.

    `spawn` starts the committing task; the app passes Stario's `app.create_task`,
    so shutdown waits for a commit in flight instead of abandoning its callers.
    `make_room`, when given, runs before every write transaction (see
    app/storage/space.py: it frees the catalog's reserve on a full disk)."""

    def __init__(
        self,
        conn: aiosqlite.Connection,
        reader: aiosqlite.Connection,
        point_reader: sqlite3.Connection,
        *,
        spawn: Spawn | None = None,
        make_room: Callable[[], None] | None = None,
        path: Path | None = None,
    ) -> None:
        self.path = path
        self.shared = False
        self.conn = conn
        self._reader = reader
        self._point_reader = point_reader
        self._spawn: Spawn = spawn or asyncio.create_task
        self.make_room = make_room
        self._write_lock = asyncio.Lock()
        # The reserve's check (a statvfs) runs on the writer's thread with each group,
        # not on the event loop (see `_on_writer_thread`).
        self._group = GroupCommit(self._on_writer_thread, self._write_lock, self._spawn)

    def read_one(self, sql: str, params: tuple[object, ...] = ()) -> Row | None:
        """One row by an indexed lookup, on the calling thread (see the module doc)."""
        row: Row | None = self._point_reader.execute(sql, params).fetchone()
        return row

    async def fetch_all(self, sql: str, params: tuple[object, ...] = ()) -> Rows:
        """Every row of a query, on the read-only connection's thread: committed rows
        only, and never behind a commit in flight."""
        rows = await self._reader.execute_fetchall(sql, params)
        return [tuple(row) for row in rows]

    async def fetch_one(self, sql: str, params: tuple[object, ...] = ()) -> Row | None:
        # Statement, first row and reset in one hop to the reader's thread. A cursor
        # left open across hops keeps SQLite's read transaction (its snapshot) open,
        # and every other read that runs meanwhile shares that snapshot: a row
        # committed a moment ago was then not found (a new resumable upload answered
        # its first PATCH with 404 while parallel uploads were reading).
        def first() -> Row | None:
            cursor = self._reader._conn.execute(sql, params)
            try:
                row = cursor.fetchone()
            finally:
                cursor.close()
            return None if row is None else tuple(row)

        found: Row | None = await self._reader._execute(first)
        return found

    async def insert_many(self, sql: str, rows: Rows) -> None:
        """Insert `rows`, all or none, durably committed when this returns."""
        await self._group.insert_many(sql, rows)

    async def _on_writer_thread(self, group: list[tuple[str, Rows]]) -> list[Exception | None]:
        # aiosqlite has no public "run this function on the connection's thread";
        # `_execute` is that. A whole group in one hop: with a hop per statement,
        # the savepoints would cost every request three thread round trips.
        # aiosqlite is pinned in uv.lock; tests/unit/test_db.py covers this path.
        def run() -> list[Exception | None]:
            self._room()
            return _write_group(self.conn._conn, group)

        outcomes: list[Exception | None] = await self.conn._execute(run)
        return outcomes

    def _room(self) -> None:
        if self.make_room is not None:
            self.make_room()

    @classmethod
    async def open(
        cls,
        path: Path,
        schema: str = "",
        *,
        spawn: Spawn | None = None,
        make_room: Callable[[], None] | None = None,
    ) -> SQLiteDatabase:
        """Connect to the catalog at `path`. The app's schema is brought up to date
        before this (app/catalog/migrate.py); `schema`, a script run as written, is for
        tests and benchmarks that make tables of their own."""
        path.parent.mkdir(parents=True, exist_ok=True)
        conn = await aiosqlite.connect(path)
        try:
            await conn.execute("PRAGMA journal_mode=WAL")
            # FULL: a committed row survives power loss, like the fsynced blob it describes.
            await conn.execute("PRAGMA synchronous=FULL")
            await conn.execute("PRAGMA busy_timeout=5000")
            if schema:
                await conn.executescript(schema)
                await conn.commit()
        except BaseException:
            # aiosqlite's thread would otherwise keep the process alive after the error.
            await conn.close()
            raise
        reader = await aiosqlite.connect(path, isolation_level=None)
        await reader.execute("PRAGMA query_only=1")
        await reader.execute("PRAGMA busy_timeout=1000")
        point_reader = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        point_reader.execute("PRAGMA query_only=1")
        point_reader.execute("PRAGMA busy_timeout=1000")
        return cls(conn, reader, point_reader, spawn=spawn, make_room=make_room, path=path)

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[aiosqlite.Connection]:
        async with self._write_lock:
            self._room()
            try:
                yield self.conn
                await self.conn.commit()
            except BaseException:
                await self.conn.rollback()
                raise

    async def close(self) -> None:
        await self._group.drain()
        await self.conn.close()
        await self._reader.close()
        self._point_reader.close()
