"""Failed sign-ins, counted per account name and per client address.

After `limit` failures for one key within `window` seconds, further attempts for
that key are refused until the oldest failure leaves the window. In memory: a
restart forgets, which costs an attacker a restart of our server to gain 5 more
guesses.

With several nodes, each failure and each forgiven key is announced to the other
nodes (`announce`, wired to the node relay in app/main.py, which calls `absorb`
there), so five guesses are five across the whole cluster, not five per node.
"""

from __future__ import annotations

import json
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
        subject: str = "throttle.signin",
    ) -> None:
        self.subject = subject
        # Set when other nodes share the counts: `announce(subject, data)`.
        self.announce: Callable[[str, str], None] | None = None
        self._announced = 0
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
        keys = list(keys)
        self._count(keys)
        if self.announce is not None:
            # Numbered: identical notifications sent together reach other nodes once
            # (ours and PostgreSQL's de-duplication), and every failure must count.
            self._announced += 1
            self.announce(self.subject, json.dumps(["failed", keys, self._announced]))

    def _count(self, keys: list[str]) -> None:
        now = self._clock()
        if len(self._failures) >= MAX_KEYS:
            for key in list(self._failures):
                self._recent(key, now)
        for key in keys:
            self._failures.setdefault(key, deque(maxlen=self.limit)).append(now)

    def forget(self, key: str) -> None:
        self._failures.pop(key, None)
        if self.announce is not None:
            self.announce(self.subject, json.dumps(["forget", [key]]))

    def absorb(self, data: str) -> None:
        """What another node's `failed` or `forget` announced (malformed: ignored)."""
        try:
            action, keys, *_ = json.loads(data)
        except (ValueError, TypeError):
            return
        if not isinstance(keys, list) or not all(isinstance(key, str) for key in keys):
            return
        if action == "failed":
            self._count(keys)
        elif action == "forget":
            for key in keys:
                self._failures.pop(key, None)
