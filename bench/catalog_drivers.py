"""psycopg 3 against asyncpg for the catalog's access pattern on PostgreSQL.

Why the PostgreSQL catalog uses psycopg (docs/scaling-out.md, "PostgreSQL catalog"). asyncpg is
not a dependency of the app: bring it in for this run only:

    uv run --with asyncpg==0.32.0 python -m bench.catalog_drivers [--rounds 3]

It starts a throwaway PostgreSQL 15 cluster (tests/support/postgres.py) with fsync ON, so
commits cost what they cost on a real server's disk, and times on 127.0.0.1:

- point read: one row by primary key (what `Database.read_one` does on every
  request: who is this token, this session), 2,000 times per round;
- insert + commit: one row in its own transaction, 300 times;
- group of 16: one transaction, 16 inserts each in its own savepoint (the group
  commit's shape), 100 times;
- app: the same through Stowage's own `PostgresDatabase` (`read_one`, and 16
  concurrent `insert_many` calls, which the group commit gathers).

Printed: the median and p99 of each, per round. Nothing is asserted.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
from collections.abc import Awaitable, Callable
from typing import Any

import psycopg
from tests.support.postgres import Cluster

from app.catalog.postgres import PostgresDatabase

SCHEMA = "CREATE TABLE IF NOT EXISTS t (id TEXT PRIMARY KEY, owner TEXT, size BIGINT)"
APP_SCHEMA = "CREATE TABLE IF NOT EXISTS t (id TEXT PRIMARY KEY, owner TEXT, size INTEGER);"
READ = "SELECT id, owner, size FROM t WHERE id = %s"


def report(name: str, seconds: list[float]) -> None:
    ordered = sorted(seconds)
    p99 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]
    print(f"  {name:44s} median {statistics.median(ordered) * 1e6:8.0f} us"
          f"   p99 {p99 * 1e6:8.0f} us")  # fmt: skip


async def timed(times: int, step: Callable[[int], Awaitable[object]]) -> list[float]:
    seconds = []
    for i in range(times):
        started = time.perf_counter()
        await step(i)
        seconds.append(time.perf_counter() - started)
    return seconds


async def one_round(url: str, round_no: int) -> None:
    try:
        import asyncpg  # type: ignore[import-not-found]
    except ImportError:
        asyncpg = None
        print("  (asyncpg not installed: uv run --with asyncpg==0.32.0 ...)")
    tag = f"r{round_no}"
    sync = psycopg.connect(url, autocommit=True)
    sync.execute(SCHEMA)
    sync.execute("INSERT INTO t VALUES ('k', 'o', 1) ON CONFLICT DO NOTHING")
    aconn = await psycopg.AsyncConnection.connect(url, autocommit=True)

    async def sync_read(_: int) -> object:
        return sync.execute(READ, ("k",)).fetchone()

    async def async_read(_: int) -> object:
        return await (await aconn.execute(READ, ("k",))).fetchone()

    async def psycopg_insert(i: int) -> None:
        async with aconn.transaction():
            await aconn.execute("INSERT INTO t VALUES (%s, 'o', 1)", (f"{tag}a{i}",))

    async def psycopg_group(g: int) -> None:
        async with aconn.transaction():
            for j in range(16):
                async with aconn.transaction():
                    await aconn.execute("INSERT INTO t VALUES (%s, 'o', 1)", (f"{tag}g{g}_{j}",))

    report("psycopg sync point read", await timed(2000, sync_read))
    report("psycopg async point read", await timed(2000, async_read))
    pg: Any = None
    if asyncpg is not None:
        pg = await asyncpg.connect(url)

        async def asyncpg_read(_: int) -> object:
            return await pg.fetchrow("SELECT id, owner, size FROM t WHERE id = $1", "k")

        report("asyncpg point read", await timed(2000, asyncpg_read))
    report("psycopg async insert + commit", await timed(300, psycopg_insert))
    if pg is not None:

        async def asyncpg_insert(i: int) -> None:
            async with pg.transaction():
                await pg.execute("INSERT INTO t VALUES ($1, 'o', 1)", f"{tag}p{i}")

        report("asyncpg insert + commit", await timed(300, asyncpg_insert))
    report("psycopg async group of 16 (savepoints)", await timed(100, psycopg_group))
    if pg is not None:

        async def asyncpg_group(g: int) -> None:
            async with pg.transaction():
                for j in range(16):
                    async with pg.transaction():
                        await pg.execute("INSERT INTO t VALUES ($1, 'o', 1)", f"{tag}q{g}_{j}")

        report("asyncpg group of 16 (savepoints)", await timed(100, asyncpg_group))
        await pg.close()
    await aconn.close()
    sync.close()

    db = await PostgresDatabase.open(url, APP_SCHEMA)
    try:
        insert = "INSERT INTO t (id, owner, size) VALUES (?, ?, ?)"

        async def app_read(_: int) -> object:
            return db.read_one("SELECT id, owner, size FROM t WHERE id = ?", ("k",))

        async def app_group(g: int) -> None:
            await asyncio.gather(
                *(db.insert_many(insert, [(f"{tag}s{g}_{j}", "o", 1)]) for j in range(16))
            )

        report("app: read_one", await timed(2000, app_read))
        report("app: 16 concurrent insert_many", await timed(100, app_group))
    finally:
        await db.close()


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.catalog_drivers")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    cluster = Cluster(fsync=True)
    try:
        url = cluster.new_database()
        for round_no in range(1, args.rounds + 1):
            print(f"round {round_no} (PostgreSQL 15 on 127.0.0.1, fsync on)")
            asyncio.run(one_round(url, round_no))
    finally:
        cluster.close()


if __name__ == "__main__":
    main()
