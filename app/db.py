"""The one SQLite connection every feature shares (aiosqlite runs it on its own thread)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import aiosqlite

type Rows = list[tuple[object, ...]]


class Database:
    """The shared connection plus a lock, so concurrent handlers' transactions never
    interleave on it (one handler's rollback must not undo another's insert).

    Inserts are group-committed: requests that arrive while a commit is under way
    are written together in the next one, so sixteen concurrent uploads share one
    WAL fsync and two trips to SQLite's thread instead of paying for sixteen."""

    def __init__(self, conn: aiosqlite.Connection) -> None:
        self.conn = conn
        self._write_lock = asyncio.Lock()
        self._waiting: list[tuple[str, Rows, asyncio.Future[None]]] = []
        self._committer: asyncio.Task[None] | None = None

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
        await conn.execute("PRAGMA journal_mode=WAL")
        # FULL: a committed row survives power loss, like the fsynced blob it describes.
        await conn.execute("PRAGMA synchronous=FULL")
        await conn.execute("PRAGMA busy_timeout=5000")
        await conn.executescript(schema)
        await conn.commit()
        return cls(conn)

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[aiosqlite.Connection]:
        async with self._write_lock:
            try:
                yield self.conn
                await self.conn.commit()
            except BaseException:
                await self.conn.rollback()
                raise

    async def close(self) -> None:
        if self._committer is not None:
            await self._committer
        await self.conn.close()
