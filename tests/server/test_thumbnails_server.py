"""Thumbnails on the real `stowage serve`: served, and its worker processes end with it."""

import time
from pathlib import Path

import pytest
from tests.support.images import rotated_jpeg, webp_size


@pytest.mark.slow
@pytest.mark.parametrize("stop", ["terminate", "kill"])
def test_a_real_server_serves_thumbnails_and_its_workers_end_with_it(tmp_path, stop):
    from tests.support.fixtures import start_server

    servers = start_server(tmp_path)
    server = next(servers)
    try:
        with server.http() as http:
            r = http.put("/uploads/photo.jpg", content=rotated_jpeg())
            assert r.status_code == 201
            file_id = r.json()["files"][0]["id"]
            deadline = time.monotonic() + 30
            while (t := http.get(f"/files/{file_id}/thumbnail")).status_code != 200:
                assert time.monotonic() < deadline, t.text
                time.sleep(0.1)
        assert t.headers["content-type"] == "image/webp"
        assert webp_size(t.content) == (160, 320)
        workers = children_of(server.process.pid)
        assert workers
        if stop == "kill":  # SIGKILL: no clean-up runs; the workers die with it anyway
            server.process.kill()
            server.process.wait()
    finally:
        next(servers, None)
    deadline = time.monotonic() + 5
    while left := [pid for pid in workers if alive(pid)]:
        assert time.monotonic() < deadline, [Path(f"/proc/{p}/cmdline").read_bytes() for p in left]
        time.sleep(0.1)


def children_of(pid: int) -> set[int]:
    found: set[int] = set()
    for task in Path(f"/proc/{pid}/task").iterdir():
        found.update(int(p) for p in (task / "children").read_text().split())
    return found


def alive(pid: int) -> bool:
    """A process that still runs (a zombie waiting for its reaper does not)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except (FileNotFoundError, ProcessLookupError):
        return False
