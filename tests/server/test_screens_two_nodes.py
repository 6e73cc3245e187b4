"""Every screen repaints from any node: a change made through node a shows in the
live stream of the same screen open on node b (Files is covered with folders in
test_folders_two_nodes.py, the Shared screen's download log in
test_share_log_two_nodes.py). The seconds are printed; `python -m bench screens`
measures them (goal p99 < 1 s)."""

import time
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest
from tests.server.test_two_nodes import two_nodes
from tests.support.fixtures import PASSWORD, RunningServer
from tests.support.livestream import LiveStream
from tests.support.postgres import Cluster
from tests.support.seaweed import Seaweed

pytestmark = [pytest.mark.slow]


def _shared(http: httpx.Client) -> str:
    made = http.put("/uploads/across nodes.txt", content=b"across")
    assert made.status_code == 201, made.text
    share = http.post(f"/api/files/{made.json()['files'][0]['id']}/shares", json={})
    assert share.status_code == 201, share.text
    return "across nodes.txt"


def _request(http: httpx.Client) -> str:
    made = http.post("/api/requests", json={"label": "Invoices from node a"})
    assert made.status_code == 201, made.text
    return "Invoices from node a"


def _token(http: httpx.Client) -> str:
    made = http.post("/api/tokens", json={"label": "made on node a"})
    assert made.status_code == 201, made.text
    return "made on node a"


def _account(http: httpx.Client) -> str:
    made = http.post("/admin/accounts", data={"name": "grace", "password": PASSWORD})
    assert made.status_code == 303, made.text
    return "grace"


CHANGES: list[tuple[str, Callable[[httpx.Client], str]]] = [
    ("/shared/live", _shared),
    ("/requests/live", _request),
    ("/account/live", _token),
    ("/admin/live", _account),
]


def _repaint(a: RunningServer, b: RunningServer, path: str, change) -> float:  # noqa: ANN001
    live = LiveStream(b, path=path)
    try:
        # The first paint has come (the stream opens with it).
        live.wait_for(lambda text: "datastar-patch-elements" in text)
        since = live.mark()
        with a.http() as http:
            began = time.monotonic()
            marker = change(http)
        live.wait_for(lambda text: marker in text, since, timeout=10)
        return time.monotonic() - began
    finally:
        live.close()


def test_each_screen_repaints_on_the_other_node(
    tmp_path: Path, postgres: Cluster, seaweed: Seaweed
) -> None:
    with two_nodes(tmp_path, postgres, seaweed, "screens") as (a, b, _database, _storage):
        seconds = {path: _repaint(a, b, path, change) for path, change in CHANGES}
    print("change on a to the repaint on b:", {k: f"{v:.2f} s" for k, v in seconds.items()})
