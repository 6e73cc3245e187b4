"""The archives' memory budget against the real `stowage serve` process: archives of
10,000 files (rows put straight into its SQLite catalog, with empty blobs) are asked
for again and again, and the server's peak RSS stays under its resting size plus the
budget (each archive held 6.1 MiB until it expired before the budget)."""

import hashlib
import sqlite3
import time
from pathlib import Path

import pytest
from tests.support.fixtures import RunningServer

from app.storage.ids import new_blob_id

pytestmark = pytest.mark.slow

FILES = 10_000
# Enough archives that, held whole as before, they would take nearly three times the budget.
ARCHIVES = 30
BUDGET_KIB = 64 * 1024  # the default --archive-memory-bytes
EMPTY_SHA256 = hashlib.sha256(b"").hexdigest()


def seed_files(server: RunningServer, count: int) -> list[str]:
    """`count` empty files of the account "owner", straight into the catalog and the
    blob store (uploading 10,000 files would take most of a minute)."""
    ids = [new_blob_id() for _ in range(count)]
    for file_id in ids:
        blob = server.data_dir / "uploads" / file_id[:2] / file_id
        blob.parent.mkdir(parents=True, exist_ok=True)
        blob.touch()
    with sqlite3.connect(server.data_dir / "stowage.db") as catalog:
        (owner,) = catalog.execute("SELECT id FROM users WHERE name = 'owner'").fetchone()
        catalog.executemany(
            "INSERT INTO files (id, name, size, sha256, mime, created_at, owner)"
            " VALUES (?, ?, 0, ?, 'image/jpeg', ?, ?)",
            [
                (file_id, f"IMG_{index:08d} from the summer holiday.jpg", EMPTY_SHA256,
                 f"2026-07-{index % 28 + 1:02d}T12:00:00Z", owner)
                for index, file_id in enumerate(ids)
            ],
        )  # fmt: skip
    return ids


def test_archives_of_10000_files_stay_within_the_budget(
    server: RunningServer, tmp_path: Path
) -> None:
    ids = seed_files(server, FILES)
    with server.http(timeout=60) as http:
        # One archive first: what making one costs (the catalog's pages, the thread
        # pool) is the server's resting size, not the archives'.
        first = http.post("/api/archives", json={"ids": ids})
        assert first.status_code == 201, first.text
        resting = server.rss_kib()
        server.reset_peak_rss()
        started = time.monotonic()
        urls = [first.json()["url"]]
        for index in range(1, ARCHIVES):
            made = http.post("/api/archives", json={"ids": ids[index:] + ids[:index]})
            assert made.status_code == 201, made.text
            urls.append(made.json()["url"])
        peak = server.peak_rss_kib()
        print(
            f"\n{ARCHIVES} archives of {FILES} files in {time.monotonic() - started:.1f} s:"
            f" server RSS {resting} KiB resting, peak {peak} KiB"
            f" (+{(peak - resting) / 1024:.1f} MiB; budget {BUDGET_KIB // 1024} MiB)"
        )
        assert peak < resting + BUDGET_KIB, f"RSS {resting} -> {peak} KiB"
        # The newest archive answers, and so does the oldest, whose layout gave way: it
        # is laid out again from the rows, within the budget.
        for url in (urls[-1], urls[0]):
            part = http.get(url, headers={"range": "bytes=0-99"})
            assert part.status_code == 206 and part.content[:4] == b"PK\x03\x04"
        assert server.peak_rss_kib() < resting + BUDGET_KIB
