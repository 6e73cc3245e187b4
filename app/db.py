"""The catalog: one interface (`Database`), SQLite here and PostgreSQL in
app/postgres.py; `open_catalog` in app/main.py picks one by `--database`.

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
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from pathlib import Path
from typing import Any, Protocol

import aiosqlite

type Rows = list[tuple[object, ...]]
type Row = tuple[object, ...]
type Spawn = Callable[[Coroutine[Any, Any, None]], asyncio.Task[None]]
type Request = tuple[str, Rows, asyncio.Future[None]]


# PostgreSQL's SQLSTATE for "could not extend file: No space left on device".
POSTGRES_DISK_FULL = "53100"


def is_disk_full(exc: BaseException) -> bool:
    """The catalog could not grow: SQLITE_FULL ("database or disk is full"), or
    PostgreSQL's disk_full on the database server's own disk."""
    if getattr(exc, "sqlstate", None) == POSTGRES_DISK_FULL:
        return True
    code = getattr(exc, "sqlite_errorcode", None)
    return (
        isinstance(exc, sqlite3.Error) and code is not None and code & 0xFF == sqlite3.SQLITE_FULL
    )


# What the catalog says when a file row's owner is no longer an account (the trigger
# `files_need_their_owner`, app/accounts/store.py and app/postgres.py).
OWNER_GONE = "stowage: the account that owns the file has been removed"


def is_owner_gone(exc: BaseException) -> bool:
    """A file row refused because its account was removed meanwhile."""
    return OWNER_GONE in str(exc)


# The PostgreSQL notification channel every node listens on (app/cluster.py).
NODES_CHANNEL = "stowage"


class CatalogUnavailable(Exception):
    """The catalog cannot be reached just now (PostgreSQL restarting or down): the
    request is answered 503 with this message, and is worth retrying."""


class Database(Protocol):
    """What the features use of the catalog, whichever database holds it. SQL is
    written once, for SQLite, with `?` placeholders; the PostgreSQL catalog
    translates it (app/postgres.py). `transaction()` yields a connection whose
    `execute` is awaited (or used with `async with`) for a cursor with `rowcount`,
    `fetchone` and `fetchall`, and whose `executemany` is awaited."""

    # The SQLite file; for PostgreSQL, where the file would be (in the data dir), so
    # the credentials marker beside it (app/accounts/store.py) still has a place.
    path: Path | None
    make_room: Callable[[], None] | None
    # True when processes on other machines may use this catalog too (PostgreSQL):
    # what must reach all of them goes out as a notification on NODES_CHANNEL.
    shared: bool

    def read_one(self, sql: str, params: tuple[object, ...] = ()) -> Row | None: ...

    async def fetch_all(self, sql: str, params: tuple[object, ...] = ()) -> Rows: ...

    async def fetch_one(self, sql: str, params: tuple[object, ...] = ()) -> Row | None: ...

    async def insert_many(self, sql: str, rows: Rows) -> None: ...

    def transaction(self) -> AbstractAsyncContextManager[Any]: ...

    async def close(self) -> None: ...


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


type WriteGroup = Callable[[list[tuple[str, Rows]]], Awaitable[list[Exception | None]]]


class GroupCommit:
    """Group commit, the same for either catalog: requests that arrive while a commit
    is under way are written together in the next one (`write_group`: one transaction,
    one outcome per request), so sixteen concurrent uploads share one commit. `lock`
    is the catalog's write lock, `before` runs before each group (SQLite's room on a
    full disk), `spawn` starts the committing task (Stario's `app.create_task`, so
    shutdown waits for a commit in flight instead of abandoning its callers)."""

    def __init__(
        self,
        write_group: WriteGroup,
        lock: asyncio.Lock,
        spawn: Spawn,
        before: Callable[[], None] = lambda: None,
    ) -> None:
        self._write_group = write_group
        self._lock = lock
        self._spawn = spawn
        self._before = before
        self._waiting: list[Request] = []
        self._committer: asyncio.Task[None] | None = None

    async def insert_many(self, sql: str, rows: Rows) -> None:
        committed = asyncio.get_running_loop().create_future()
        self._waiting.append((sql, rows, committed))
        if self._committer is None:
            self._committer = self._spawn(self._commit_waiting())
        await committed

    async def drain(self) -> None:
        """Wait for the commit in flight (at close)."""
        if self._committer is not None:
            await asyncio.gather(self._committer, return_exceptions=True)

    async def _commit_waiting(self) -> None:
        try:
            while self._waiting:
                group, self._waiting = self._waiting, []
                await self._commit_group(group)
        finally:
            # Should this task end early, requests still queued are answered too.
            waiting, self._waiting = self._waiting, []
            for _, _, committed in waiting:
                if not committed.done():
                    committed.set_exception(RuntimeError("the catalog is shutting down"))
            self._committer = None

    async def _commit_group(self, group: list[Request]) -> None:
        """Write `group` and answer every one of its callers, whatever happens."""
        interrupted: BaseException | None = None
        try:
            async with self._lock:
                self._before()
                write = asyncio.ensure_future(
                    self._write_group([(sql, rows) for sql, rows, _ in group])
                )
                try:
                    await asyncio.shield(write)
                except asyncio.CancelledError as cancel:
                    # The transaction ends for real regardless: wait for its outcome,
                    # so no caller is told "failed" about a row that was committed
                    # (its blob would be removed under it).
                    interrupted = cancel
                    await asyncio.wait({write})
                outcomes = write.result()
        except Exception as exc:
            # The group as a whole failed (COMMIT, or a ROLLBACK after it): every
            # caller hears of it, none is left waiting.
            outcomes = [exc] * len(group)
        for (_, _, committed), outcome in zip(group, outcomes, strict=True):
            if committed.done():
                continue
            if outcome is None:
                committed.set_result(None)
            else:
                committed.set_exception(outcome)
        if interrupted is not None:
            raise interrupted


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
        schema: str,
        *,
        spawn: Spawn | None = None,
        make_room: Callable[[], None] | None = None,
    ) -> SQLiteDatabase:
        path.parent.mkdir(parents=True, exist_ok=True)
        conn = await aiosqlite.connect(path)
        try:
            await conn.execute("PRAGMA journal_mode=WAL")
            # FULL: a committed row survives power loss, like the fsynced blob it describes.
            await conn.execute("PRAGMA synchronous=FULL")
            await conn.execute("PRAGMA busy_timeout=5000")
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
