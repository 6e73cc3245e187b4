"""Folders live and across nodes: every change made on one node (create, rename, an
upload into a folder, a move in, a delete) repaints a page open on that folder on the
other node within a second; uploads and deletes racing into one folder from two nodes
leave its counters exact. The same live check runs on one node with local storage and
SQLite."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from tests.server.test_two_nodes import two_nodes
from tests.support.fixtures import ROOT, RunningServer
from tests.support.livestream import LiveStream
from tests.support.postgres import Cluster
from tests.support.seaweed import Seaweed

pytestmark = pytest.mark.slow

# A change shows live, not on a reload. The goal (within 1 s) is measured by
# `python -m bench screens`; a test's timed assertion would fail on a loaded machine
# (the suite runs on two workers), so this bound only tells live from never.
LIVE_SECONDS = 5.0


def _made_folder(server: RunningServer, name: str, parent: str = "root") -> str:
    with server.http() as http:
        made = http.post("/api/folders", json={"name": name, "parent": parent})
    assert made.status_code == 201, made.text
    return made.json()["folder"]["id"]


def changes_show_live(acting: RunningServer, watching: RunningServer) -> dict[str, float]:
    """Each folder change made on `acting`, and the seconds until the page open on that
    folder on `watching` showed it."""
    parent = _made_folder(acting, "Shoot")
    live = LiveStream(watching, path=f"/live?folder={parent}")
    seconds: dict[str, float] = {}

    def timed(step: str, act, shown) -> None:
        since = live.mark()
        act()
        seconds[step] = live.wait_for(shown, since, timeout=10)

    try:
        live.wait_for(lambda text: 'id="files"' in text and "Shoot" in text)
        with acting.http() as http:
            child: dict[str, str] = {}

            def create() -> None:
                made = http.post("/api/folders", json={"name": "Day one", "parent": parent})
                assert made.status_code == 201, made.text
                child["id"] = made.json()["folder"]["id"]

            timed("create", create, lambda text: "Day one" in text)

            def rename() -> None:
                renamed = http.patch(f"/api/folders/{child['id']}", json={"name": "Day 1"})
                assert renamed.status_code == 200, renamed.text

            timed("rename", rename, lambda text: "Day 1<" in text)

            def upload() -> None:
                put = http.put(f"/uploads/frame-001.jpg?folder={parent}", content=b"x" * 4096)
                assert put.status_code == 201, put.text

            timed("upload into it", upload, lambda text: "frame-001.jpg" in text)

            put = http.put("/uploads/notes.txt", content=b"notes")
            assert put.status_code == 201, put.text
            moved_id = put.json()["files"][0]["id"]

            def move_in() -> None:
                moved = http.post("/api/files/move", json={"ids": [moved_id], "to": parent})
                assert moved.status_code == 200, moved.text

            timed("move a file in", move_in, lambda text: "notes.txt" in text)

            row = f'id="folder-{child["id"]}"'

            def delete() -> None:
                assert http.delete(f"/api/folders/{child['id']}").status_code in (200, 204)

            # Gone: a patch that removes its row, or a folder head or list without it.
            timed(
                "delete",
                delete,
                lambda text: (
                    f"#folder-{child['id']}" in text
                    or (('id="files"' in text or ".folder-head" in text) and row not in text)
                ),
            )
    finally:
        live.close()
    return seconds


def racing_uploads_keep_counts(servers: list[RunningServer], each: int = 20) -> None:
    """`each` uploads into one folder from every server at once, all of the same names
    (each node's copy takes the next free name), then deletes of some from every
    server at once: the folder's size and file count are its files' sums."""
    target = _made_folder(servers[0], "Race")
    start = threading.Barrier(len(servers))
    stored: list[str] = []
    failures: list[str] = []
    lock = threading.Lock()

    def upload(server: RunningServer, node: int) -> None:
        with server.http(timeout=60) as http:
            start.wait()
            for n in range(each):
                put = http.put(
                    f"/uploads/shot-{n:02}.bin?folder={target}",
                    content=os.urandom(1000 + 37 * n + node),
                )
                with lock:
                    if put.status_code == 201:
                        stored.append(put.json()["files"][0]["id"])
                    else:
                        failures.append(f"{put.status_code} {put.text}")

    threads = [threading.Thread(target=upload, args=(s, i)) for i, s in enumerate(servers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    assert not failures, failures
    assert len(stored) == each * len(servers)

    doomed = stored[::3]
    start = threading.Barrier(len(servers))

    def delete(server: RunningServer, ids: list[str]) -> None:
        with server.http(timeout=60) as http:
            start.wait()
            for file_id in ids:
                gone = http.delete(f"/files/{file_id}")
                with lock:
                    if gone.status_code != 204:
                        failures.append(f"{gone.status_code} {gone.text}")

    threads = [
        threading.Thread(target=delete, args=(s, doomed[i :: len(servers)]))
        for i, s in enumerate(servers)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    assert not failures, failures

    for server in servers:
        with server.http() as http:
            shown = http.get(f"/api/folders/{target}").json()
        files = shown["files"]
        assert len(files) == len(stored) - len(doomed)
        assert len({f["name"].casefold() for f in files}) == len(files)
        assert shown["folder"]["files"] == len(files)
        assert shown["folder"]["size"] == sum(f["size"] for f in files)


def check_reports_no_drift(*flags: str, env: dict[str, str] | None = None) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "app.cli", "check", *flags],
        cwd=ROOT, capture_output=True, text=True, env={**os.environ, **(env or {})},
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    assert "0 whose counts differ from their files'" in done.stdout, done.stdout
    assert "; 0 files or folders in a folder that is gone" in done.stdout, done.stdout


def test_folder_changes_on_one_node_show_live_on_the_other(
    tmp_path: Path, postgres: Cluster, seaweed: Seaweed
) -> None:
    with two_nodes(tmp_path, postgres, seaweed, "folders") as (a, b, database, storage):
        seconds = changes_show_live(a, b)
        print("made on a, seen on b's folder page:", {k: f"{v:.2f} s" for k, v in seconds.items()})
        assert max(seconds.values()) < LIVE_SECONDS, seconds

        racing_uploads_keep_counts([a, b])
        check_reports_no_drift(
            "--data-dir", str(a.data_dir), "--database", database,
            "--storage", storage, "--s3-endpoint-url", seaweed.endpoint_url,
            env=seaweed.env,
        )  # fmt: skip


def test_folder_changes_show_live_on_one_node(server: RunningServer) -> None:
    """Local storage and the SQLite catalog: the same changes, the same second."""
    seconds = changes_show_live(server, server)
    print("one node, SQLite, local storage:", {k: f"{v:.2f} s" for k, v in seconds.items()})
    assert max(seconds.values()) < LIVE_SECONDS, seconds
    racing_uploads_keep_counts([server, server])
    check_reports_no_drift("--data-dir", str(server.data_dir))
