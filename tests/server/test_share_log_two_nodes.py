"""Share download logs across two nodes on one PostgreSQL catalog: a download served
by node b repaints the Shared screen open on node a within a second, and one client
gets the same hash on both nodes (one key, in the shared catalog)."""

import time
from pathlib import Path

import httpx
import pytest
from tests.server.test_two_nodes import two_nodes
from tests.support.livestream import LiveStream
from tests.support.postgres import Cluster
from tests.support.seaweed import Seaweed

pytestmark = [pytest.mark.slow]

DOWNLOADS = 10


def _take(base_url: str, path: str, source: str) -> None:
    transport = httpx.HTTPTransport(local_address=source)
    with httpx.Client(base_url=base_url, transport=transport, timeout=30) as client:
        # A link without a limit: a 302 to the store (logged when handed out).
        assert client.get(path, follow_redirects=True).status_code == 200


def test_a_download_on_one_node_repaints_the_log_on_the_other(
    tmp_path: Path, postgres: Cluster, seaweed: Seaweed
) -> None:
    with two_nodes(tmp_path, postgres, seaweed, "share-log") as (a, b, _database, _storage):
        with a.http() as http:
            made = http.put("/uploads/log.bin", content=b"logged bytes" * 1000)
            file_id = made.json()["files"][0]["id"]
            share = http.post(f"/api/files/{file_id}/shares", json={}).json()["share"]
        live = LiveStream(a, path="/shared/live")
        try:
            live.wait_for(lambda text: "Download log (0 requests)" in text)
            seconds = []
            for n in range(1, DOWNLOADS + 1):
                since = live.mark()
                began = time.monotonic()
                _take(b.base_url, share["url"] + "/file", "127.0.0.2")
                wanted = f"Download log ({n} request{'' if n == 1 else 's'})"
                live.wait_for(lambda text, wanted=wanted: wanted in text, since, timeout=5)
                seconds.append(time.monotonic() - began)
            _take(a.base_url, share["url"] + "/file", "127.0.0.2")
            _take(a.base_url, share["url"] + "/file", "127.0.0.3")
        finally:
            live.close()
        worst = max(seconds)
        # Printed, not asserted: each wait above already fails past 5 s (a repaint that
        # never came live); the 1 s goal is `python -m bench screens`'s to measure, as a
        # timed assertion fails on a loaded machine (the suite runs on two workers).
        print(f"a download on b, to a's repaint of its log: max {worst:.3f} s of {DOWNLOADS}")
        with a.http() as http:
            rows = http.get(f"/api/shares/{share['id']}/downloads").json()["downloads"]
        assert len(rows) == DOWNLOADS + 2
        clients = [row["client"] for row in rows]  # newest first
        assert clients[0] != clients[1]  # 127.0.0.3, then 127.0.0.2 on a
        assert set(clients[1:]) == {clients[1]}  # 127.0.0.2 on a and on b alike
