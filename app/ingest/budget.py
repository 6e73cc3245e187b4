"""A budget for request bodies held whole in memory (JSON file signals).

Every other transport streams, so its memory is a few MiB per upload whatever the
size. A signals body is JSON: it is read whole, then parsed, so each one costs about
twice its length while it is handled. Without a bound, 60 concurrent 15 MB bodies
took the server to 885 MiB. With one, a request that does not fit waits a little
for others to finish, then is told to come back (503 with Retry-After): the server
never takes more memory than the budget, whatever the mix.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

# How long a request waits for room before it is refused, and what it is told.
WAIT_SECONDS = 5.0
RETRY_AFTER_SECONDS = 2


class OverBudget(Exception):
    """No room in the budget within WAIT_SECONDS."""


class MemoryBudget:
    """`total` bytes shared by every request that holds a body in memory."""

    def __init__(self, total: int, *, wait_seconds: float = WAIT_SECONDS) -> None:
        self.total = total
        self.used = 0
        self.wait_seconds = wait_seconds
        # Completed whenever bytes are given back; waiters then look again.
        self._released: asyncio.Future[None] | None = None

    @asynccontextmanager
    async def hold(self, amount: int) -> AsyncIterator[None]:
        """Hold `amount` bytes for the block, waiting up to `wait_seconds` for room.
        More than the whole budget is held as the whole budget: such a request runs
        alone rather than never."""
        amount = min(amount, self.total)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.wait_seconds
        while self.used + amount > self.total:
            if self._released is None or self._released.done():
                self._released = loop.create_future()
            remaining = deadline - loop.time()
            if remaining <= 0:
                raise OverBudget
            try:
                await asyncio.wait_for(asyncio.shield(self._released), remaining)
            except TimeoutError:
                raise OverBudget from None
        self.used += amount
        try:
            yield
        finally:
            # Given back at once, with no await: a cancelled request cannot leak it.
            self.used -= amount
            if self._released is not None and not self._released.done():
                self._released.set_result(None)
