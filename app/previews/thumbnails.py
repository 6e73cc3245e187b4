"""Thumbnails of stored images: when they are made, where they live, who hears of it.

A thumbnail is a derived blob: `uploads/.thumbs/<id[:2]>/<id>.webp` beside the
original (the layout is the blob store's, app/storage/local/writer.py, which removes it with
the file). An image that gave no thumbnail leaves an empty `<id>.none` there instead,
so a hostile file is tried once, not on every request for its thumbnail.

Made right after an upload's row commits (`Uploads.stored`), and on demand for files
stored before (`ensure`). When one is ready, `thumbnails.ready.<owner>` carries the
file's id on the Relay.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import shutil
import sqlite3
from dataclasses import dataclass, field

from stario import Relay

from app.catalog.protocol import CatalogUnavailable, Database
from app.files.store import FileRow, get_file
from app.previews.pool import WorkerPool
from app.storage.store import Store

# What Pillow (with pillow-heif) is asked to thumbnail, by the type sniffed at upload.
THUMBNAIL_TYPES = frozenset(
    {"image/jpeg", "image/png", "image/gif", "image/webp", "image/heic", "image/heif"}
)
# Files waiting for a worker at most; past it a file is skipped for now (a later
# request for its thumbnail asks again), so a burst of uploads cannot grow memory.
MAX_WAITING = 10_000
# One account's share of those: its own backlog cannot leave other accounts' images
# without a place in the queue.
MAX_WAITING_PER_ACCOUNT = 2_500
THUMBNAILS_READY = "thumbnails.ready"
# Videos get a poster (a frame) when ffmpeg is installed (`ffmpeg_found`, at start).
POSTER_TYPES = frozenset(
    {"video/mp4", "video/webm", "video/quicktime", "video/3gpp", "video/x-msvideo"}
)


def ffmpeg_found() -> bool:
    return shutil.which("ffmpeg") is not None


def thumbnails_ready(owner: str) -> str:
    return f"{THUMBNAILS_READY}.{owner}"


def may_have_thumbnail(row: FileRow, *, posters: bool = False) -> bool:
    return row.mime in THUMBNAIL_TYPES or (posters and row.mime in POSTER_TYPES)


@dataclass(frozen=True, slots=True)
class Previews:
    """Of a page of rows: those whose thumbnail is ready, and those whose thumbnail is
    being made (the live page swaps their type icon for it when it is ready)."""

    ready: frozenset[str] = frozenset()
    coming: frozenset[str] = frozenset()


NO_PREVIEWS = Previews()


@dataclass(slots=True)
class Thumbnails:
    db: Database
    store: Store
    relay: Relay[str]
    pool: WorkerPool
    # ffmpeg was found at start: videos get posters.
    posters: bool = False
    waiting: dict[str, asyncio.Task[None]] = field(default_factory=dict)
    # How many of `waiting` each account has.
    waiting_by_owner: dict[str, int] = field(default_factory=dict)
    made: int = 0
    refused: int = 0
    failed: int = 0

    def stored(self, rows: list[FileRow]) -> None:
        """After an upload's rows committed: queue a thumbnail for every image."""
        for row in rows:
            self.ensure(row)

    def may_have(self, row: FileRow) -> bool:
        return may_have_thumbnail(row, posters=self.posters)

    def ensure(self, row: FileRow) -> bool:
        """Queue `row`'s thumbnail unless it is queued already or the queue is full;
        True if it is (now) on its way."""
        if not self.may_have(row) or row.owner is None:
            return False
        if row.id in self.waiting:
            return True
        owner = row.owner
        held = self.waiting_by_owner.get(owner, 0)
        if len(self.waiting) >= MAX_WAITING or held >= MAX_WAITING_PER_ACCOUNT:
            return False
        task = asyncio.get_running_loop().create_task(
            self._make(row), name=f"stowage.thumbnail.{row.id}"
        )
        self.waiting[row.id] = task
        self.waiting_by_owner[owner] = held + 1

        def done(_: asyncio.Task[None]) -> None:
            self.waiting.pop(row.id, None)
            left = self.waiting_by_owner.get(owner, 1) - 1
            if left > 0:
                self.waiting_by_owner[owner] = left
            else:
                self.waiting_by_owner.pop(owner, None)

        task.add_done_callback(done)
        return True

    async def _make(self, row: FileRow) -> None:
        try:
            await self._make_one(row)
        except (OSError, sqlite3.Error, CatalogUnavailable):
            # A full disk or a catalog error: this file simply has no thumbnail yet,
            # and its next request asks again.
            self.failed += 1

    async def _make_one(self, row: FileRow) -> None:
        target = self.store.thumbnail_path_of(row.id)
        kind = "image" if row.mime in THUMBNAIL_TYPES else "video"
        # The blob itself on a local store; a temp copy of the object on S3.
        async with self.store.local_copy(row.id) as source:
            if source is None:
                return  # deleted meanwhile, or its contents are missing
            # Queued under its owner: accounts take turns (see app/previews/pool.py).
            made = await self.pool.run(str(source), str(target), kind, account=row.owner or "")
        if not made:
            self.refused += 1
            await asyncio.to_thread(_mark_none, self.store, row.id)
        # Deleted while it was being made: the delete removed nothing yet to remove.
        if await get_file(self.db, row.id) is None:
            await self.store.remove_derived([row.id])
            return
        if made:
            self.made += 1
            assert row.owner is not None
            self.relay.publish(thumbnails_ready(row.owner), row.id)

    async def previews(self, rows: list[FileRow]) -> Previews:
        """Which of `rows` have a thumbnail, and which will: a file stored before
        thumbnails were made (or skipped while the queue was full) is queued now."""
        candidates = [row for row in rows if self.may_have(row)]
        if not candidates:
            return NO_PREVIEWS
        states = await asyncio.to_thread(_states, self.store, [row.id for row in candidates])
        ready = frozenset(i for i, state in states.items() if state == "ready")
        coming = frozenset(
            row.id for row in candidates if states[row.id] == "missing" and self.ensure(row)
        )
        return Previews(ready, coming)

    async def ready_among(self, file_ids: frozenset[str]) -> frozenset[str]:
        states = await asyncio.to_thread(_states, self.store, list(file_ids))
        return frozenset(i for i, state in states.items() if state == "ready")

    async def read(self, file_id: str) -> tuple[bytes, str] | None:
        """The thumbnail's bytes and their sha256 (hex), or None."""
        return await asyncio.to_thread(_read, self.store, file_id)

    async def refused_before(self, file_id: str) -> bool:
        return await asyncio.to_thread(self.store.no_thumbnail_path_of(file_id).exists)

    async def close(self) -> None:
        for task in list(self.waiting.values()):
            task.cancel()
        await asyncio.gather(*self.waiting.values(), return_exceptions=True)
        await asyncio.to_thread(self.pool.close)


def _read(store: Store, file_id: str) -> tuple[bytes, str] | None:
    try:
        with open(store.thumbnail_path_of(file_id), "rb") as f:
            body = f.read()
    except FileNotFoundError:
        return None
    # Tens of microseconds for a thumbnail's ~10-40 KB: an ETag that is exactly these
    # bytes, even if a thumbnail is ever made again by another Pillow.
    return body, hashlib.sha256(body).hexdigest()


def _states(store: Store, file_ids: list[str]) -> dict[str, str]:
    """Each id's thumbnail: "ready", "refused" (the image gave none) or "missing"."""
    states = {}
    for file_id in file_ids:
        if store.thumbnail_path_of(file_id).exists():
            states[file_id] = "ready"
        elif store.no_thumbnail_path_of(file_id).exists():
            states[file_id] = "refused"
        else:
            states[file_id] = "missing"
    return states


def _mark_none(store: Store, file_id: str) -> None:
    marker = store.no_thumbnail_path_of(file_id)
    marker.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(marker, os.O_WRONLY | os.O_CREAT | os.O_CLOEXEC, 0o600)
    os.close(fd)
