"""The catalog's SQLite connections.

Writes go through one aiosqlite connection (its own thread), serialised by a lock
and group-committed. Point reads on the request path (who is this token, how much
has this account stored) use a second, read-only connection straight on the event
loop: an indexed lookup there costs a few microseconds, where a hop to aiosqlite's
thread and back costs a few hundred, and in WAL mode a reader never waits for the
writer.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import aiosqlite

type Rows = list[tuple[object, ...]]
type Row = tuple[object, ...]


class Database:
    """The shared connection plus a lock, so concurrent handlers' transactions never
    interleave on it (one handler's rollback must not undo another's insert).

    Inserts are group-committed: requests that arrive while a commit is under way
    are written together in the next one, so sixteen concurrent uploads share one
    WAL fsync and two trips to SQLite's thread instead of paying for sixteen."""

    def __init__(self, conn: aiosqlite.Connection, reader: sqlite3.Connection) -> None:
        self.conn = conn
        self._reader = reader
        self._write_lock = asyncio.Lock()
        self._waiting: list[tuple[str, Rows, asyncio.Future[None]]] = []
        self._committer: asyncio.Task[None] | None = None

    def read_one(self, sql: str, params: tuple[object, ...] = ()) -> Row | None:
        """One row by an indexed lookup, on the calling thread (see the module doc)."""
        row: Row | None = self._reader.execute(sql, params).fetchone()
        return row

    async def insert_many(self, sql: str, rows: Rows) -> None:
        """Insert `rows`, all or none, durably committed when this returns."""
        committed = asyncio.get_running_loop().create_future()
        self._waiting.append((sql, rows, committed))
        if self._committer is None:
            self._committer = asyncio.create_task(self._commit_waiting())
        await committed

    async def _commit_waiting(self) -> None:
        try:
            while self._waiting:
                group, self._waiting = self._waiting, []
                async with self._write_lock:
                    try:
                        await self._write(group)
                    except Exception:
                        await self.conn.rollback()
                        # One request's bad rows must not sink the others.
                        for request in group:
                            await self._write_alone(request)
                        continue
                for _, _, committed in group:
                    if not committed.done():
                        committed.set_result(None)
        finally:
            self._committer = None

    async def _write(self, group: list[tuple[str, Rows, asyncio.Future[None]]]) -> None:
        by_statement: dict[str, Rows] = {}
        for sql, rows, _ in group:
            by_statement.setdefault(sql, []).extend(rows)
        for sql, rows in by_statement.items():
            await self.conn.executemany(sql, rows)
        await self.conn.commit()

    async def _write_alone(self, request: tuple[str, Rows, asyncio.Future[None]]) -> None:
        committed = request[2]
        try:
            await self._write([request])
        except Exception as exc:
            await self.conn.rollback()
            if not committed.done():
                committed.set_exception(exc)
        else:
            if not committed.done():
                committed.set_result(None)

    @classmethod
    async def open(cls, path: Path, schema: str) -> Database:
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
        reader = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        reader.execute("PRAGMA query_only=1")
        reader.execute("PRAGMA busy_timeout=1000")
        return cls(conn, reader)

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[aiosqlite.Connection]:
        async with self._write_lock:
            try:
                yield self.conn
                await self.conn.commit()
            except BaseException:
                await self.conn.rollback()
                raise

    async def fetch_all(self, sql: str, params: tuple[object, ...] = ()) -> Rows:
        async with self.conn.execute(sql, params) as cursor:
            return [tuple(row) async for row in cursor]

    async def close(self) -> None:
        if self._committer is not None:
            await self._committer
        await self.conn.close()
        self._reader.close()
