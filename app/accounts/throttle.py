"""Failed sign-ins, counted per account name and per client address.

After `limit` failures for one key within `window` seconds, further attempts for
that key are refused until the oldest failure leaves the window. In memory: a
restart forgets, which costs an attacker a restart of our server to gain 5 more
guesses.
"""

from __future__ import annotations

import math
import time
from collections import deque
from collections.abc import Callable, Iterable

# Keys kept at most; past it, keys whose failures all left the window are dropped.
MAX_KEYS = 100_000


class Throttle:
    def __init__(
        self,
        *,
        limit: int = 5,
        window: float = 15 * 60,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.limit = limit
        self.window = window
        self._clock = clock
        self._failures: dict[str, deque[float]] = {}

    def _recent(self, key: str, now: float) -> deque[float] | None:
        failures = self._failures.get(key)
        if failures is None:
            return None
        while failures and failures[0] <= now - self.window:
            failures.popleft()
        if not failures:
            del self._failures[key]
            return None
        return failures

    def retry_after(self, keys: Iterable[str]) -> int | None:
        """Seconds until an attempt for all `keys` is allowed again, or None if it is now."""
        now = self._clock()
        wait = 0.0
        for key in keys:
            failures = self._recent(key, now)
            if failures is not None and len(failures) >= self.limit:
                wait = max(wait, failures[-self.limit] + self.window - now)
        return max(1, math.ceil(wait)) if wait > 0 else None

    def failed(self, keys: Iterable[str]) -> None:
        now = self._clock()
        if len(self._failures) >= MAX_KEYS:
            for key in list(self._failures):
                self._recent(key, now)
        for key in keys:
            self._failures.setdefault(key, deque(maxlen=self.limit)).append(now)

    def forget(self, key: str) -> None:
        self._failures.pop(key, None)
