"""The download log's writer: rows queue without waiting, are written in batches with
the address hashed (never in clear), and wait out a catalog that is briefly down."""

import asyncio
import hashlib
import hmac
from contextlib import asynccontextmanager

from app.catalog.protocol import CatalogUnavailable
from app.shares.downloads import (
    Download,
    DownloadLog,
    client_hash,
    short_user_agent,
)

KEY = "ab" * 32


class Catalog:
    """Just what DownloadLog uses: the settings row and insert_many."""

    def __init__(self, fail_first: int = 0) -> None:
        self.batches: list[list[tuple]] = []
        self.fail_first = fail_first

    async def fetch_one(self, sql, params=()):
        return (KEY,)

    @asynccontextmanager
    async def transaction(self):
        yield self

    async def insert_many(self, sql, rows):
        if self.fail_first:
            self.fail_first -= 1
            raise CatalogUnavailable("down for a moment")
        self.batches.append(list(rows))


def download(n: int, address: str = "203.0.113.7") -> Download:
    return Download(
        f"share{n}", "owner", "f", "a.txt", "file", 1.0, address, "curl", 10, True, False
    )


async def test_rows_are_batched_and_the_address_hashed():
    db = Catalog()
    told: list[set[str]] = []
    log = DownloadLog(db, asyncio.create_task, told.append)  # type: ignore[arg-type]
    for n in range(3):
        log.add(download(n))
    await asyncio.sleep(0.05)
    assert [len(b) for b in db.batches] == [3]
    expected = hmac.new(bytes.fromhex(KEY), b"203.0.113.7", hashlib.sha256).hexdigest()[:16]
    assert {row[7] for row in db.batches[0]} == {expected}
    assert all("203.0.113.7" not in str(value) for row in db.batches[0] for value in row)
    assert told == [{"owner"}]
    assert client_hash(bytes.fromhex(KEY), "203.0.113.8") != expected


async def test_a_catalog_down_for_a_moment_loses_nothing():
    db = Catalog(fail_first=2)
    log = DownloadLog(db, asyncio.create_task, lambda owners: None)  # type: ignore[arg-type]
    log.add(download(1))
    await asyncio.sleep(1.0)
    assert [len(b) for b in db.batches] == [1]


def test_user_agents_are_printable_and_short():
    assert short_user_agent("a\r\nb\tc\x00d") == "a b c d"
    assert len(short_user_agent("x" * 1000)) == 160
    assert short_user_agent(None) == ""
