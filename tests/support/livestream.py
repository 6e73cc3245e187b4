"""A page's live stream read on a thread, for tests against a real server (one node
or two): what arrived, and how long a change took to show."""

from __future__ import annotations

import threading
import time

import httpx
from tests.support.fixtures import RunningServer


class LiveStream:
    """A page's live stream (GET /live; `path` "/live?folder=ID" for a folder's view)
    read on a thread; `wait_for` waits until the text it has received so far satisfies
    a condition."""

    def __init__(
        self, server: RunningServer, base_url: str | None = None, path: str = "/live"
    ) -> None:
        self.text = ""
        self._path = path
        self._changed = threading.Condition()
        self._client = httpx.Client(
            base_url=base_url or server.base_url,
            headers={**server.headers, "accept-encoding": "identity"},
            timeout=httpx.Timeout(5, read=None),
        )
        self._stopped = False
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()

    def _read(self) -> None:
        try:
            with self._client.stream("GET", self._path) as response:
                for chunk in response.iter_text():
                    with self._changed:
                        self.text += chunk
                        self._changed.notify_all()
                    if self._stopped:
                        return
        except httpx.HTTPError:
            return

    def mark(self) -> int:
        with self._changed:
            return len(self.text)

    def wait_for(self, condition, since: int = 0, timeout: float = 15.0) -> float:
        """Seconds until `condition(text received after since)` held."""
        started = time.monotonic()
        with self._changed:
            while not condition(self.text[since:]):
                left = started + timeout - time.monotonic()
                assert left > 0, f"not seen within {timeout} s: {self.text[since:][-2000:]}"
                self._changed.wait(left)
        return time.monotonic() - started

    def close(self) -> None:
        self._stopped = True
        self._client.close()
