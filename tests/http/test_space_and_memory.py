"""Room on disk and in memory: the free-space floor, a catalog that cannot grow, the
signals memory budget and file count, and a delete whose blob cannot be removed."""

import asyncio
import base64
import os

import pytest
from tests.support.fixtures import signed_in_client, stored_blobs
from tests.support.page import DATASTAR, IDENTITY, next_data, upload

import app.main
from app.config import Config
from app.features.home.urls import HOME_LIVE
from app.ingest.budget import MemoryBudget, OverBudget


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


async def test_a_catalog_that_cannot_grow_is_507_and_keeps_no_blob(config, owner, monkeypatch):
    """SQLITE_FULL ("database or disk is full") on the insert: the uploader is told the
    server is out of space, and the blobs already written are removed."""
    opened = []
    real_open = app.main.open_catalog

    async def open_and_remember(*args, **kwargs):
        db = await real_open(*args, **kwargs)
        opened.append(db)
        return db

    monkeypatch.setattr(app.main, "open_catalog", open_and_remember)
    async with signed_in_client(config, owner[1]) as client:
        [db] = opened
        async with db.conn.execute("PRAGMA page_count") as cursor:
            [pages] = await cursor.fetchone()
        # A real SQLite limit: the file may not grow by a page, as on a full disk.
        await db.conn.execute(f"PRAGMA max_page_count={pages}")
        files = [{"name": f"{n:03}-{'x' * 200}.txt", "contents": b64(b"data")} for n in range(100)]
        r = await client.post("/uploads", json={"files": files})
        assert r.status_code == 507, r.text
        assert "out of space" in r.json()["error"]
        assert stored_blobs(config) == []
        assert (await client.get("/api/files")).json()["files"] == []


async def test_uploads_beyond_the_free_space_floor_are_507_before_reading(tmp_path, owner):
    config = Config.load(
        {"data_dir": str(tmp_path / "data"), "min_free_bytes": "1000TiB"}, environ={}
    )
    async with signed_in_client(config, owner[1]) as client:
        for sent in (
            client.put("/uploads/a.txt", content=b"hello"),
            client.post("/uploads", json={"files": [{"name": "b", "contents": b64(b"b")}]}),
            client.post("/uploads", files={"f": ("c.txt", b"c")}),
        ):
            r = await sent
            assert r.status_code == 507, r.text
            assert r.json()["error"].startswith("the server is almost out of space:")
    assert stored_blobs(config) == []


async def test_at_most_100_files_per_signals_request(client, config):
    files = [{"name": f"f{n}.txt", "contents": b64(b"x")} for n in range(101)]
    r = await client.post("/uploads", json={"files": files})
    assert r.status_code == 413
    assert "at most 100" in r.json()["error"]
    assert stored_blobs(config) == []
    r = await client.post("/uploads", json={"files": files[:100]})
    assert r.status_code == 201 and len(r.json()["files"]) == 100


async def test_the_memory_budget_waits_for_room_then_refuses():
    budget = MemoryBudget(100, wait_seconds=0.3)
    async with budget.hold(80):
        with pytest.raises(OverBudget):
            async with budget.hold(30):
                pass
        later = budget.hold(30)
        waiting = asyncio.ensure_future(later.__aenter__())
        await asyncio.sleep(0.05)
        assert not waiting.done()
    await asyncio.wait_for(waiting, 1)  # room came back while it waited
    assert budget.used == 30
    await later.__aexit__(None, None, None)
    assert budget.used == 0
    async with budget.hold(10_000):  # more than the whole: held as the whole, alone
        assert budget.used == 100
    assert budget.used == 0


async def test_delete_answers_and_repaints_even_when_the_blob_cannot_be_removed(client, config):
    file_id = await upload(client, "stuck.txt", b"cannot be unlinked")
    blob = config.uploads_dir / file_id[:2] / file_id
    blob.unlink()
    blob.mkdir()  # unlink() now fails (EISDIR), as a real filesystem error would
    async with client.stream("GET", HOME_LIVE.href(), headers=IDENTITY) as live:
        events = live.iter_events()
        assert "stuck.txt" in await next_data(events, containing='id="files"')
        r = await client.delete(f"/files/{file_id}", headers=DATASTAR)
        assert r.status_code == 204
        painted = await next_data(events, containing='id="files"')
        assert "stuck.txt" not in painted
    assert (await client.get(f"/files/{file_id}")).status_code == 404
    assert (await client.get("/api/files")).json()["files"] == []


async def test_an_uploads_catalog_write_runs_in_the_apps_task_set(config, owner, monkeypatch):
    """While an upload's row is being committed, both the shielded recording and the
    group commit are tasks Stario's shutdown knows of (it waits for them)."""
    import threading

    opened = []
    real_open = app.main.open_catalog

    async def open_and_remember(*args, **kwargs):
        db = await real_open(*args, **kwargs)
        opened.append(db)
        return db

    monkeypatch.setattr(app.main, "open_catalog", open_and_remember)
    inside, go = threading.Event(), threading.Event()

    def pause() -> int:
        inside.set()
        go.wait(10)
        return 0

    async with signed_in_client(config, owner[1]) as client:
        [db] = opened
        await db.conn.create_function("pause", 0, pause)
        await db.conn.execute(
            "CREATE TEMP TRIGGER hold AFTER INSERT ON files BEGIN SELECT pause(); END"
        )
        await db.conn.commit()
        sending = asyncio.ensure_future(client.put("/uploads/a.txt", content=b"a"))
        try:
            assert await asyncio.to_thread(inside.wait, 10)
            running = {task.get_coro().__qualname__ for task in client.app.tasks}  # type: ignore[union-attr]
            assert {"Uploads._record", "GroupCommit._commit_waiting"} <= running, running
        finally:
            go.set()
        assert (await sending).status_code == 201


def test_the_free_space_floor_setting(tmp_path):
    from app.main import min_free_bytes
    from app.storage.space import default_min_free

    def floor(**flags: str) -> int:
        return min_free_bytes(Config.load({"data_dir": str(tmp_path), **flags}, environ={}))

    assert floor(min_free_bytes="0") == 0
    assert floor(min_free_bytes="10MiB") == 10 * 1024 * 1024
    stats = os.statvfs(tmp_path)
    expected = min(int(stats.f_blocks * stats.f_frsize * 0.05), 1024**3)
    assert floor() == default_min_free(tmp_path / "uploads") == expected
