"""Folders suite: listing, searching, moving and deleting at 100,000 files in 2,000 folders.

Goals (issue 24): listing a folder page and a search across folders p99 < 50 ms; moving
a folder that holds 10,000 files one catalog transaction, p99 < 100 ms whatever it
holds; deleting it answered in < 1 s with the account's quota freed at once.

A SQLite catalog made with the app's own schema (its indexes and triggers) gets one
account of 100,000 files in 2,000 folders (40 at the top, 49 in each; one of them,
"Big", holds 10,000 files directly) and 10 other accounts of the same shape, rows
written by SQL with `name_key` and `folder_id` (no blobs: nothing here reads one).
Then the app's own code runs on the real `Database`, in process as the server runs
it (no HTTP in the figures): the folder page (`GET /api/folders/ID`: the folder, its
path and totals, its folders with theirs, a page of 50 files and their count), a
search across all folders with each hit's folder path (`GET /api/files?q=`), `move`
of Big between two parents, and `delete_folders` of Big. `--quick`: 10,000 files in
200 folders and 2 other accounts (Big holds 1,000). Then the same rows and the same
measurements on PostgreSQL (a throwaway cluster, fsync on, as tests/support/postgres.py
starts it), the app's own PostgreSQL catalog code against it.
"""

from __future__ import annotations

import asyncio
import random
import sqlite3
import time
from pathlib import Path

from bench.harness import RESULTS, WORK, Settings, SuiteResult, Target, fresh_dir, log
from bench.loadgen import percentile
from bench.search import TYPES, WORDS

PAGE = 50
SEARCHES = ("holiday", "IMG_2024", "zzqx", "0815", "beach-final", "a")


class Shape:
    def __init__(self, quick: bool) -> None:
        self.files = 10_000 if quick else 100_000
        self.tops = 10 if quick else 40
        self.per_top = 19 if quick else 49  # folders in each top folder
        self.big = 1_000 if quick else 10_000
        self.others = 2 if quick else 10

    @property
    def folders(self) -> int:
        return self.tops * (1 + self.per_top)


def _name(rng: random.Random, i: int) -> tuple[str, str]:
    extension, mime = rng.choice(TYPES)
    if rng.random() < 0.5:
        day = 20240101 + rng.randrange(365)
        return f"IMG_{day}_{i:06d}.{extension}", mime
    return f"{rng.choice(WORDS)}-{rng.choice(WORDS)} {i}.{extension}", mime


USERS = "INSERT INTO users (id, name, name_key, password_hash, created_at) VALUES (?, ?, ?, '', '')"
FOLDERS = (
    "INSERT INTO folders (id, owner, parent, name, name_key, created_at)"
    " VALUES (?, ?, ?, ?, ?, '2026-01-01T00:00:00Z')"
)
FILES = (
    "INSERT INTO files (id, name, size, sha256, mime, created_at, owner,"
    " folder_id, name_key) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)"
)


def _fill(path: Path, shape: Shape) -> None:
    conn = sqlite3.connect(path)
    for sql, rows in _rows(shape):
        with conn:
            conn.executemany(sql, rows)
    conn.execute("ANALYZE")
    conn.close()


def _fill_postgres(url: str, shape: Shape) -> None:
    import psycopg

    with psycopg.connect(url) as conn:
        # The rows go in without their triggers (plpgsql per row made a million rows
        # take over ten minutes); the counters the triggers keep are then set from the
        # rows, as `stowage check --repair` would.
        conn.execute("SET session_replication_role = replica")
        for sql, rows in _rows(shape):
            # COPY: a million rows by executemany would take minutes.
            table, columns = sql.split(" (", 1)[0].split()[-1], sql.split("(", 1)[1].split(")")[0]
            names = [c.strip() for c in columns.split(",")]
            with (
                conn.cursor() as cursor,
                cursor.copy(f"COPY {table} ({', '.join(names)}) FROM STDIN") as copy,
            ):
                for row in rows:
                    copy.write_row(_full_row(sql, row))
            conn.commit()
        conn.execute("SET session_replication_role = DEFAULT")
        conn.execute(
            "UPDATE folders SET size = t.size, files = t.files FROM (SELECT folder_id,"
            " sum(size) AS size, count(*) AS files FROM files GROUP BY folder_id) t"
            " WHERE folders.id = t.folder_id"
        )
        conn.execute(
            "UPDATE users SET used_bytes = t.size, file_count = t.files FROM (SELECT owner,"
            " sum(size) AS size, count(*) AS files FROM files GROUP BY owner) t"
            " WHERE users.id = t.owner"
        )
        conn.commit()
        # As autovacuum leaves a catalog that grew over time: statistics, and the
        # visibility map that lets a search walk an index without the table.
        conn.autocommit = True
        conn.execute("VACUUM ANALYZE")


def _full_row(sql: str, row: tuple[object, ...]) -> tuple[object, ...]:
    """A row with the constants its statement writes in SQL (users' '' hash and time,
    folders' time) filled in, as COPY takes every named column from the row."""
    if sql is USERS:
        return (*row, "", "")
    if sql is FOLDERS:
        return (*row, "2026-01-01T00:00:00Z")
    return row


def _rows(shape: Shape):  # noqa: ANN202
    """(statement, rows) to run in order: the accounts, then each one's folders and files."""
    from app.catalog.names import name_key

    rng = random.Random(24)
    owners = ["bench", *(f"other{n}" for n in range(shape.others))]
    yield USERS, [(owner, owner, owner) for owner in owners]
    for owner in owners:
        folders: list[tuple[str, str, str, str, str]] = []
        for t in range(shape.tops):
            top = f"{owner}-t{t}"
            name = "Big" if t == 0 else f"Folder {t}"
            folders.append((top, owner, "", name, name_key(name)))
            for c in range(shape.per_top):
                name = f"Sub {c}"
                folders.append((f"{top}-c{c}", owner, top, name, name_key(name)))
        # Big (the first top folder) holds `big` files; the rest share the others.
        others = [f[0] for f in folders[1:]]
        rows = []
        for i in range(shape.files):
            folder = folders[0][0] if i < shape.big else others[i % len(others)]
            name, mime = _name(rng, i)
            created = f"2026-01-01T00:00:00.{i:06d}Z"
            rows.append((f"{owner}-{i:016d}", name, rng.randrange(1, 10**8), "0" * 64, mime,
                         created, owner, folder, name_key(name)))  # fmt: skip
        yield FOLDERS, folders
        yield FILES, rows


async def _measure(
    path: Path, shape: Shape, rounds: int, url: str | None = None
) -> dict[str, list[float]]:
    from app.catalog.postgres import PostgresDatabase
    from app.catalog.protocol import Database
    from app.catalog.sqlite import SQLiteDatabase
    from app.features.folders.handlers import folder_answer
    from app.files.query import EVERY_FILE, parse_file_query
    from app.files.store import count_files, list_files
    from app.folders.store import (
        delete_folders,
        deletion_summary,
        folder_paths,
        list_children,
        move,
        totals,
    )

    db: Database = (
        await SQLiteDatabase.open(path) if url is None else await PostgresDatabase.open(url)
    )
    owner = "bench"
    timings: dict[str, list[float]] = {}

    def timed(label: str, began: float) -> None:
        timings.setdefault(label, []).append((time.perf_counter() - began) * 1000)

    async def folder_page(folder: str) -> None:
        answer = await folder_answer(db, owner, folder)
        assert answer is not None
        children = await list_children(db, owner, folder)
        await totals(db, owner, [f.id for f in children])
        await list_files(db, owner, PAGE, 0, EVERY_FILE, folder=folder)
        await count_files(db, owner, EVERY_FILE, folder=folder)

    try:
        pages = ["", f"{owner}-t0", f"{owner}-t1", f"{owner}-t{shape.tops - 1}-c3"]
        for _ in range(rounds):
            for folder in pages:
                began = time.perf_counter()
                await folder_page(folder)
                timed("list", began)
            for word in SEARCHES:
                began = time.perf_counter()
                hits = await list_files(
                    db, owner, PAGE, 0, parse_file_query(word, None, None, None)
                )
                await folder_paths(db, owner, {r.folder_id for r in hits})
                timed("search", began)
        big, parents = f"{owner}-t0", [f"{owner}-t1", ""]
        for n in range(rounds * 4):
            began = time.perf_counter()
            moved = await move(db, owner, [], [big], parents[n % 2])
            timed("move", began)
            assert moved.folders == 1
        used = await db.fetch_one("SELECT used_bytes FROM users WHERE id = ?", (owner,))
        began = time.perf_counter()
        doomed = await deletion_summary(db, owner, [big])
        removed = await delete_folders(db, owner, [big])
        timed("delete", began)
        after = await db.fetch_one("SELECT used_bytes FROM users WHERE id = ?", (owner,))
        assert used is not None and after is not None
        assert len(removed) == doomed.files >= shape.big
        freed = int(used[0]) - int(after[0])  # type: ignore[call-overload]
        assert freed == doomed.size, (freed, doomed.size)
        timings["freed"] = [float(freed)]
        timings["deleted files"] = [float(doomed.files)]
    finally:
        await db.close()
    return timings


def run_folders(settings: Settings) -> None:
    from app.catalog.migrate import migrate_postgres, migrate_sqlite

    shape = Shape(settings.quick)
    work = fresh_dir(WORK / "folders")
    path = work / "catalog.sqlite3"
    rounds = 5 if settings.quick else 25
    began = time.monotonic()
    migrate_sqlite(path)
    _fill(path, shape)
    log(f"   catalog: {shape.files:,} files in {shape.folders:,} folders per account,"
        f" {1 + shape.others} accounts ({time.monotonic() - began:.0f} s to build)")  # fmt: skip
    targets = _report("SQLite", shape, rounds, asyncio.run(_measure(path, shape, rounds)))
    notes = ["in process, the app's catalog code; no HTTP in the figures"]
    try:
        from tests.support.postgres import Cluster, PostgresMissing
    except ImportError:  # pragma: no cover - the dev group brings the tests' support
        Cluster = None  # noqa: N806
    cluster = None
    try:
        cluster = Cluster(fsync=True) if Cluster is not None else None
    except PostgresMissing as exc:
        log(f"folders: PostgreSQL skipped: {exc}")
    if cluster is not None:
        try:
            url = cluster.new_database()
            began = time.monotonic()
            migrate_postgres(url, where="bench")
            _fill_postgres(url, shape)
            log(f"   PostgreSQL catalog built in {time.monotonic() - began:.0f} s")
            measured = asyncio.run(_measure(path, shape, rounds, url))
            targets += _report("PostgreSQL", shape, rounds, measured)
        finally:
            cluster.close()
    else:
        notes.append("PostgreSQL not measured (no cluster)")
    RESULTS.append(
        SuiteResult(
            "folders",
            f"folders at {shape.files:,} files in {shape.folders:,} folders",
            "ms",
            rounds,
            0,
            targets,
            [],
            notes,
        )
    )


def _report(
    catalog: str, shape: Shape, rounds: int, timings: dict[str, list[float]]
) -> list[Target]:
    log()
    log(f"== folders at {shape.files:,} files in {shape.folders:,} folders ({catalog})")
    goals = {"list": 50.0, "search": 50.0, "move": 100.0}
    targets: list[Target] = []
    for label, what in (("list", "folder page"), ("search", "search across"),
                        ("move", f"move Big ({shape.big:,}+)")):  # fmt: skip
        values = timings[label]
        p50, p99 = percentile(values, 0.5), percentile(values, 0.99)
        met = "met" if p99 < goals[label] else "MISSED"
        log(f"   {what:22} p50 {p50:6.1f} ms   p99 {p99:6.1f} ms   (goal: p99 < "
            f"{goals[label]:.0f} ms: {met})")  # fmt: skip
        targets.append(Target(f"{catalog} {label} p50", lambda: 0.0, values=[p50]))
        targets.append(Target(f"{catalog} {label} p99", lambda: 0.0, values=[p99]))
    deleted = timings["delete"][0]
    gone = int(timings["deleted files"][0])
    log(f"   delete Big ({gone:,} files)  {deleted:6.1f} ms   (goal: < 1000 ms:"
        f" {'met' if deleted < 1000 else 'MISSED'}); quota freed at once:"
        f" {timings['freed'][0] / 2**30:.1f} GiB")  # fmt: skip
    targets.append(Target(f"{catalog} delete", lambda: 0.0, values=[deleted]))
    return targets
