"""The live page through the real `stowage serve`: a slow curl upload shows in progress."""

import threading
import time

import httpx
import pytest


@pytest.mark.slow
def test_the_stream_shows_a_slow_curl_upload_in_progress(server):
    """A real server, a raw upload trickling in, and the page's stream watching it."""
    painted: list[str] = []

    def watch() -> None:
        with httpx.stream(
            "GET", server.base_url + "/live", headers=server.headers, timeout=10
        ) as r:
            for line in r.iter_lines():
                painted.append(line)
                if "slow.bin" in line and "file-list" in line:
                    return

    def trickle():
        for _ in range(12):
            yield b"x" * 100_000
            time.sleep(0.1)

    watcher = threading.Thread(target=watch)
    watcher.start()
    time.sleep(0.3)
    began = time.monotonic()
    r = httpx.post(
        server.base_url + "/uploads?name=slow.bin",
        content=trickle(),
        headers={"content-length": "1200000", **server.headers},
        timeout=10,
    )
    assert r.status_code == 201
    took = time.monotonic() - began
    watcher.join(10)
    progress_lines = [line for line in painted if "Receiving <strong>slow.bin" in line]
    assert progress_lines, painted
    assert any("of 1.1 MiB" in line and "<progress" in line for line in progress_lines)
    # Throttled: one repaint per 0.25 s of upload at most (app/ingest/progress.py), not
    # one per chunk; counted from the upload's own time (~1.2 s, longer under load).
    assert len(progress_lines) <= took / 0.25 + 2, (len(progress_lines), took)
