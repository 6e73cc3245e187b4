"""Group commit: concurrent inserts share commits, and one bad request sinks no other."""

import asyncio
import sqlite3

import pytest

from app.catalog.sqlite import SQLiteDatabase as Database

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


# The catalog connection: reads apart from the writer, savepoints, every caller answered.

FK_SCHEMA = """
CREATE TABLE IF NOT EXISTS parent (id INTEGER PRIMARY KEY);
CREATE TABLE IF NOT EXISTS child (
    id INTEGER PRIMARY KEY,
    parent INTEGER REFERENCES parent (id) DEFERRABLE INITIALLY DEFERRED
);
"""
CHILD = "INSERT INTO child (id, parent) VALUES (?, ?)"


async def test_one_bad_request_costs_its_group_no_extra_commits(tmp_path):
    """One savepoint per request: the bad one rolls back alone, the group commits once
    (redoing each request alone would commit once per request)."""
    db = await Database.open(tmp_path / "db.sqlite", SCHEMA)
    await db.insert_many(INSERT, [(1, "taken")])
    commits = 0
    real_execute = db.conn._execute

    async def counting(fn, *args, **kwargs):
        nonlocal commits
        commits += 1
        return await real_execute(fn, *args, **kwargs)

    db.conn._execute = counting  # type: ignore[method-assign]
    requests = [db.insert_many(INSERT, [(n, "ok")]) for n in range(2, 20)]
    requests.insert(7, db.insert_many(INSERT, [(100, "fine"), (1, "duplicate")]))
    results = await asyncio.wait_for(asyncio.gather(*requests, return_exceptions=True), 10)
    assert [type(r).__name__ for r in results].count("IntegrityError") == 1
    assert isinstance(results[7], sqlite3.IntegrityError)
    assert commits == 1
    rows = await db.fetch_all("SELECT id FROM t ORDER BY id")
    assert [r[0] for r in rows] == list(range(1, 20))  # 100 went with its request
    await db.close()


async def test_a_failed_commit_answers_every_caller_and_stores_nothing(tmp_path):
    """A deferred constraint fails the final COMMIT itself: no request of the group
    can be kept, and every caller hears so instead of waiting forever."""
    db = await Database.open(tmp_path / "db.sqlite", FK_SCHEMA)
    await db.conn.execute("PRAGMA foreign_keys=ON")
    await db.insert_many("INSERT INTO parent (id) VALUES (?)", [(1,)])
    results = await asyncio.wait_for(
        asyncio.gather(
            db.insert_many(CHILD, [(1, 1)]),
            db.insert_many(CHILD, [(2, 999)]),  # no such parent: COMMIT fails
            db.insert_many(CHILD, [(3, 1)]),
            return_exceptions=True,
        ),
        10,
    )
    assert all(isinstance(r, sqlite3.IntegrityError) for r in results), results
    assert await db.fetch_all("SELECT id FROM child") == []
    await db.insert_many(CHILD, [(4, 1)])  # the connection is usable afterwards
    assert await db.fetch_all("SELECT id FROM child") == [(4,)]
    await db.close()


async def test_readers_never_see_a_group_that_is_rolled_back(tmp_path):
    """A read while a group is inside its transaction sees only committed rows, and
    does not wait for the writer; the group then fails, and nothing ever showed."""
    import threading

    db = await Database.open(tmp_path / "db.sqlite", FK_SCHEMA)
    await db.conn.execute("PRAGMA foreign_keys=ON")
    inside, go = threading.Event(), threading.Event()

    def pause() -> int:
        inside.set()
        go.wait(10)
        return 0

    await db.conn.create_function("pause", 0, pause)
    await db.conn.execute("CREATE TRIGGER hold AFTER INSERT ON child BEGIN SELECT pause(); END")
    await db.conn.commit()
    writing = asyncio.ensure_future(db.insert_many(CHILD, [(1, 999)]))
    assert await asyncio.to_thread(inside.wait, 10)
    try:
        # The writer's thread is parked inside the transaction, after the insert.
        seen = await asyncio.wait_for(db.fetch_all("SELECT id FROM child"), 5)
        assert seen == []
        assert await asyncio.wait_for(db.fetch_one("SELECT count(*) FROM child"), 5) == (0,)
    finally:
        go.set()
    with pytest.raises(sqlite3.IntegrityError):
        await asyncio.wait_for(writing, 10)
    assert await db.fetch_all("SELECT id FROM child") == []
    await db.close()


async def test_the_group_commit_runs_as_a_tracked_task(tmp_path):
    """The app hands its `create_task`, so shutdown can wait for a commit in flight."""
    spawned: list[asyncio.Task[None]] = []

    def spawn(coro):
        task = asyncio.ensure_future(coro)
        spawned.append(task)
        return task

    db = await Database.open(tmp_path / "db.sqlite", SCHEMA, spawn=spawn)
    await asyncio.gather(*(db.insert_many(INSERT, [(n, "x")]) for n in range(5)))
    assert spawned and all(task.done() for task in spawned)
    await db.close()


async def test_a_committed_row_is_seen_by_the_next_read_while_other_reads_run(tmp_path):
    """A read whose cursor stayed open across hops to the reader's thread pinned
    SQLite's snapshot for every read meanwhile: a row just committed was "not found"
    (seen as a new tus upload answering 404 to its first PATCH beside parallel ones)."""
    db = await Database.open(tmp_path / "db.sqlite", SCHEMA)
    stop = False

    async def other_reads() -> None:
        while not stop:
            await db.fetch_one("SELECT count(*) FROM t")
            await db.fetch_all("SELECT id FROM t WHERE id < 3")

    readers = [asyncio.create_task(other_reads()) for _ in range(4)]
    unseen = []
    try:
        for n in range(300):
            async with db.transaction() as conn:
                await conn.execute(INSERT, (n, f"v{n}"))
            if await db.fetch_one("SELECT id FROM t WHERE id = ?", (n,)) is None:
                unseen.append(n)
            if not await db.fetch_all("SELECT id FROM t WHERE id = ?", (n,)):
                unseen.append(n)
    finally:
        stop = True
        await asyncio.gather(*readers)
        await db.close()
    assert unseen == []


async def test_a_clean_group_is_written_without_savepoints(tmp_path):
    """Savepoints cost two statements per request; they are only for a group in which
    some request fails (then the group is written again with them)."""
    db = await Database.open(tmp_path / "db.sqlite", SCHEMA)
    statements: list[str] = []
    await db.conn.set_trace_callback(statements.append)
    await asyncio.gather(*(db.insert_many(INSERT, [(n, "ok")]) for n in range(1, 9)))
    assert statements and not any("SAVEPOINT" in s for s in statements)
    statements.clear()
    results = await asyncio.gather(
        db.insert_many(INSERT, [(20, "ok")]),
        db.insert_many(INSERT, [(1, "duplicate")]),
        return_exceptions=True,
    )
    assert results[0] is None and isinstance(results[1], sqlite3.IntegrityError)
    assert any("SAVEPOINT" in s for s in statements)
    rows = await db.fetch_all("SELECT id FROM t ORDER BY id")
    assert [r[0] for r in rows] == [*range(1, 9), 20]
    await db.close()
