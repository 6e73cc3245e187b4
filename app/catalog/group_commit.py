"""Group commit, the same for either catalog (app/catalog/sqlite.py,
app/catalog/postgres.py): inserts that arrive while a commit is under way share the next one."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from app.catalog.protocol import Rows, Spawn

type Request = tuple[str, Rows, asyncio.Future[None]]


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
