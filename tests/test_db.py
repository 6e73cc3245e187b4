"""Group commit: concurrent inserts share commits, and one bad request sinks no other."""

import asyncio
import sqlite3

import pytest

from app.db import Database

SCHEMA = "CREATE TABLE IF NOT EXISTS t (id INTEGER PRIMARY KEY, v TEXT NOT NULL);"
INSERT = "INSERT INTO t (id, v) VALUES (?, ?)"


async def test_concurrent_inserts_all_commit_in_few_commits(tmp_path):
    db = await Database.open(tmp_path / "db.sqlite", SCHEMA)
    commits = 0
    real_commit = db.conn.commit

    async def counting_commit():
        nonlocal commits
        commits += 1
        await real_commit()

    db.conn.commit = counting_commit  # type: ignore[method-assign]
    await asyncio.gather(*(db.insert_many(INSERT, [(n, f"v{n}")]) for n in range(50)))
    await db.close()
    check = sqlite3.connect(tmp_path / "db.sqlite")
    assert check.execute("SELECT count(*) FROM t").fetchone() == (50,)
    assert commits < 10


async def test_a_failing_request_does_not_sink_its_group(tmp_path):
    db = await Database.open(tmp_path / "db.sqlite", SCHEMA)
    await db.insert_many(INSERT, [(1, "taken")])
    results = await asyncio.gather(
        db.insert_many(INSERT, [(2, "a"), (3, "b")]),
        db.insert_many(INSERT, [(4, "c"), (1, "duplicate")]),
        db.insert_many(INSERT, [(5, "d")]),
        return_exceptions=True,
    )
    assert results[0] is None and results[2] is None
    assert isinstance(results[1], sqlite3.IntegrityError)
    async with db.conn.execute("SELECT id FROM t ORDER BY id") as cursor:
        ids = [row[0] async for row in cursor]
    assert ids == [1, 2, 3, 5]  # all of request 2 rolled back, none of the others
    await db.close()


async def test_uploads_in_parallel_all_land(client):
    responses = await asyncio.gather(
        *(client.put(f"/uploads/f{n}.txt", content=f"file {n}".encode()) for n in range(20))
    )
    assert [r.status_code for r in responses] == [201] * 20
    listed = (await client.get("/api/files")).json()["files"]
    assert sorted(f["name"] for f in listed) == sorted(f"f{n}.txt" for n in range(20))


@pytest.mark.parametrize("n", [1])
async def test_single_insert_is_durable_on_return(tmp_path, n):
    db = await Database.open(tmp_path / "db.sqlite", SCHEMA)
    await db.insert_many(INSERT, [(n, "x")])
    check = sqlite3.connect(tmp_path / "db.sqlite")
    assert check.execute("SELECT v FROM t").fetchall() == [("x",)]
    await db.close()
