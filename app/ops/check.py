"""What a data dir holds, compared with what its catalog says: the engine of
`stowage check` and of the server's own sweep.

A blob is `uploads/<id[:2]>/<id>`, a temp file `uploads/.incoming/<id>.part`, a row a
line of the `files` table. An unfinished resumable upload's bytes are
`uploads/.resumable/<upload id>` beside its row in `resumable_uploads`; a file there
without such a row (a failed tus concatenation's output, a crash) holds space no one
can use, and is a problem. A thumbnail (app/previews) is a derived blob,
`uploads/.thumbs/<id[:2]>/<id>.webp` (or `.none`), counted apart: never an orphan blob,
and one whose file's row is gone is stale, reclaimed like an orphan but no problem
(it can always be made again, and a delete removes it a moment after the row).

The survey may run beside a live server, whose writes race with it: an upload renames
its blob into place *before* its row commits, and a delete removes the row *before*
the blob. So every difference the first pass finds is looked at again afterwards (is
the row there now? the blob?), and a blob without a row only counts as an orphan once
it is older than a grace period, as no upload takes that long between rename and
commit.
"""

from __future__ import annotations

import os
import sqlite3
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from app.storage.ids import is_blob_id
from app.storage.local.partials import RESUMABLE
from app.storage.local.writer import INCOMING
from app.storage.store import DERIVED_SUFFIXES, THUMBNAILS

CATALOG_NAME = "stowage.db"
UPLOADS_NAME = "uploads"


class NotADataDir(Exception):
    """The directory holds no Stowage catalog; the message names it."""


@dataclass(frozen=True, slots=True)
class Blob:
    id: str
    path: Path
    size: int
    age: float  # seconds since its last write


@dataclass(frozen=True, slots=True)
class MissingBlob:
    id: str
    name: str
    owner: str | None
    size: int


@dataclass(slots=True)
class Survey:
    rows: int = 0
    row_bytes: int = 0
    blobs: int = 0
    blob_bytes: int = 0
    orphans: list[Blob] = field(default_factory=list)  # no row, older than the grace
    unclaimed: list[Blob] = field(default_factory=list)  # no row yet, younger: in flight
    missing: list[MissingBlob] = field(default_factory=list)  # a row, no blob
    wrong_size: list[Blob] = field(default_factory=list)  # the blob's size is not its row's
    temp_files: list[Blob] = field(default_factory=list)
    thumbnails: int = 0
    thumbnail_bytes: int = 0
    # Thumbnails whose file has no row, older than the grace: removed by a sweep.
    stale_thumbnails: list[Blob] = field(default_factory=list)
    # Files under uploads/.resumable: unfinished resumable uploads' bytes.
    resumable: int = 0
    resumable_bytes: int = 0
    # Of those, files without an unfinished upload's row, older than the grace.
    stray_resumable: list[Blob] = field(default_factory=list)
    # Folders, and those whose counters (what is directly in them) differ from their
    # files' rows; files and folders whose folder is gone (app/folders/).
    folders: int = 0
    folder_drift: list[FolderDrift] = field(default_factory=list)
    lost: int = 0

    @property
    def problems(self) -> int:
        return (
            len(self.orphans)
            + len(self.missing)
            + len(self.wrong_size)
            + len(self.stray_resumable)
            + len(self.folder_drift)
            + self.lost
        )


@dataclass(frozen=True, slots=True)
class FolderDrift:
    id: str
    owner: str
    size: int  # what its counters say
    files: int
    real_size: int  # what its files' rows sum to
    real_files: int


# Each folder's counters beside what its files' rows sum to.
FOLDER_COUNTS = (
    "SELECT f.id, f.owner, f.size, f.files, coalesce(sum(x.size), 0), count(x.id)"
    " FROM folders f LEFT JOIN files x ON x.folder_id = f.id"
    " GROUP BY f.id, f.owner, f.size, f.files"
)
# Files and folders placed in a folder that is not there (or is another account's).
LOST = (
    "SELECT (SELECT count(*) FROM files x WHERE x.folder_id != '' AND NOT EXISTS"
    " (SELECT 1 FROM folders f WHERE f.id = x.folder_id AND f.owner = x.owner))"
    " + (SELECT count(*) FROM folders c WHERE c.parent != '' AND NOT EXISTS"
    " (SELECT 1 FROM folders f WHERE f.id = c.parent AND f.owner = c.owner))"
)


def recount_folders(db_path: Path, database: str | None, drift: list[FolderDrift]) -> int:
    """Set each drifted folder's counters to what its files' rows sum to (the server
    stopped, or beside it: the counters are only ever added to, so a recount in one
    statement per folder is exact either way). Returns how many were set."""
    if not drift:
        return 0
    if database is None:
        conn = sqlite3.connect(db_path, isolation_level=None)
        try:
            conn.execute("PRAGMA busy_timeout=5000")
            conn.execute("BEGIN IMMEDIATE")
            for folder in drift:
                conn.execute(RECOUNT, (folder.id,))
            conn.execute("COMMIT")
        finally:
            conn.close()
    else:
        from app.catalog.postgres import PostgresReader

        writer = PostgresReader(database)
        try:
            for folder in drift:
                writer.execute(RECOUNT, (folder.id,))
        finally:
            writer.close()
    return len(drift)


def survey_folders(conn: Any, found: Survey) -> None:
    """Fill `found`'s folder figures from the catalog."""
    drift = []
    count = 0
    for folder_id, owner, size, files, real_size, real_files in conn.execute(FOLDER_COUNTS):
        count += 1
        if (int(size), int(files)) != (int(real_size), int(real_files)):
            drift.append(
                FolderDrift(
                    folder_id, owner, int(size), int(files), int(real_size), int(real_files)
                )
            )
    found.folders, found.folder_drift = count, drift
    found.lost = int(conn.execute(LOST).fetchone()[0])


# What `stowage check --repair` sets a drifted folder's counters to.
RECOUNT = (
    "UPDATE folders SET size = (SELECT coalesce(sum(size), 0) FROM files"
    " WHERE files.folder_id = folders.id), files = (SELECT count(*) FROM files"
    " WHERE files.folder_id = folders.id) WHERE id = ?"
)


def connect_read_only(db_path: Path) -> sqlite3.Connection:
    """A read-only connection: safe beside a running server (WAL lets it read a
    committed snapshot while the server writes)."""
    if not db_path.is_file():
        raise NotADataDir(f"{db_path.parent} holds no Stowage catalog ({db_path.name})")
    conn = sqlite3.connect(f"{db_path.resolve().as_uri()}?mode=ro", uri=True)
    conn.execute("PRAGMA busy_timeout=5000")
    return conn


@contextmanager
def read_only(db_path: Path, database: str | None = None) -> Iterator[Any]:
    """The SQLite file at `db_path`, or the PostgreSQL catalog `database` names."""
    conn: Any
    if database is None:
        conn = connect_read_only(db_path)
    else:
        # Imported only here: psycopg and libpq add ~10 MB to a SQLite server's RSS.
        from app.catalog.postgres import PostgresReader

        conn = PostgresReader(database)
    try:
        yield conn
    finally:
        conn.close()


def _walk(root: Path, *, now: float) -> Iterator[Blob]:
    """Every committed blob under `root`: a 22-character id in its two-letter shard."""
    try:
        shards = list(os.scandir(root))
    except FileNotFoundError:
        return
    for shard in shards:
        if shard.name in (INCOMING, THUMBNAILS) or not shard.is_dir(follow_symlinks=False):
            continue
        try:
            entries = list(os.scandir(shard.path))
        except FileNotFoundError:
            continue
        for entry in entries:
            if not (is_blob_id(entry.name) and entry.name[:2] == shard.name):
                continue
            try:
                info = entry.stat(follow_symlinks=False)
            except FileNotFoundError:
                continue  # removed meanwhile (a delete)
            yield Blob(entry.name, Path(entry.path), info.st_size, now - info.st_mtime)


def derived_files(uploads: Path, *, now: float) -> Iterator[Blob]:
    """Every thumbnail (or no-thumbnail marker) under `uploads/.thumbs`."""
    try:
        shards = list(os.scandir(uploads / THUMBNAILS))
    except FileNotFoundError:
        return
    for shard in shards:
        if not shard.is_dir(follow_symlinks=False):
            continue
        try:
            entries = list(os.scandir(shard.path))
        except FileNotFoundError:
            continue
        for entry in entries:
            stem, dot, suffix = entry.name.partition(".")
            if not (is_blob_id(stem) and f"{dot}{suffix}" in DERIVED_SUFFIXES):
                continue
            try:
                info = entry.stat(follow_symlinks=False)
            except FileNotFoundError:
                continue
            yield Blob(stem, Path(entry.path), info.st_size, now - info.st_mtime)


def temp_files(uploads: Path, *, now: float | None = None) -> list[Blob]:
    now = time.time() if now is None else now
    found = []
    try:
        entries = list(os.scandir(uploads / INCOMING))
    except FileNotFoundError:
        return []
    for entry in entries:
        if not entry.name.endswith(".part"):
            continue
        try:
            info = entry.stat(follow_symlinks=False)
        except FileNotFoundError:
            continue
        found.append(Blob(entry.name[:-5], Path(entry.path), info.st_size, now - info.st_mtime))
    return found


def resumable_files(uploads: Path, *, now: float) -> list[Blob]:
    """Every file under `uploads/.resumable` (named by upload id, or not)."""
    found = []
    try:
        entries = list(os.scandir(uploads / RESUMABLE))
    except FileNotFoundError:
        return []
    for entry in entries:
        try:
            if not entry.is_file(follow_symlinks=False):
                continue
            info = entry.stat(follow_symlinks=False)
        except FileNotFoundError:
            continue
        found.append(Blob(entry.name, Path(entry.path), info.st_size, now - info.st_mtime))
    return found


def _row_exists(conn: Any, blob_id: str) -> bool:
    return conn.execute("SELECT 1 FROM files WHERE id = ?", (blob_id,)).fetchone() is not None


def _unfinished_upload_exists(conn: Any, upload_id: str) -> bool:
    return (
        conn.execute(
            "SELECT 1 FROM resumable_uploads WHERE id = ? AND file_id IS NULL", (upload_id,)
        ).fetchone()
        is not None
    )


def survey(
    data_dir: Path,
    *,
    grace_seconds: float,
    database: str | None = None,
    local_blobs: bool = True,
) -> Survey:
    """Compare the blobs on disk with the catalog's rows (see the module doc).

    `local_blobs=False` (S3 storage, app/ops/check_s3.py compares the bucket): only
    what stays local is looked at, temp files and thumbnails."""
    uploads = data_dir / UPLOADS_NAME
    now = time.time()
    with read_only(data_dir / CATALOG_NAME, database) as conn:
        rows: dict[str, tuple[int, str, str | None]] = {
            blob_id: (size, name, owner)
            for blob_id, size, name, owner in conn.execute(
                "SELECT id, size, name, owner FROM files"
            )
        }
        blobs = {blob.id: blob for blob in _walk(uploads, now=now)} if local_blobs else {}
        found = Survey(
            rows=len(rows),
            row_bytes=sum(size for size, _, _ in rows.values()),
            blobs=len(blobs),
            blob_bytes=sum(blob.size for blob in blobs.values()),
            temp_files=temp_files(uploads, now=now),
        )
        # A fresh read per candidate: a row committed (or deleted) since the first
        # read is seen now.
        for blob_id, blob in blobs.items():
            if blob_id in rows:
                if blob.size != rows[blob_id][0]:
                    found.wrong_size.append(blob)
            elif not _row_exists(conn, blob_id):
                (found.orphans if blob.age >= grace_seconds else found.unclaimed).append(blob)
        for derived in derived_files(uploads, now=now):
            found.thumbnails += 1
            found.thumbnail_bytes += derived.size
            if (
                derived.id not in rows
                and derived.age >= grace_seconds
                and not _row_exists(conn, derived.id)
            ):
                found.stale_thumbnails.append(derived)
        held = resumable_files(uploads, now=now)
        found.resumable, found.resumable_bytes = len(held), sum(f.size for f in held)
        for item in held:
            # A new upload's file (a tus final's output too) is made before its row,
            # and a cancelled one's row goes just before its file: only files older
            # than the grace count, each looked at again now.
            if (
                item.age >= grace_seconds
                and not _unfinished_upload_exists(conn, item.id)
                and item.path.exists()
            ):
                found.stray_resumable.append(item)
        for blob_id, (size, name, owner) in rows.items():
            if blob_id in blobs or not local_blobs:
                continue
            path = uploads / blob_id[:2] / blob_id
            if not path.exists() and _row_exists(conn, blob_id):
                found.missing.append(MissingBlob(blob_id, name, owner, size))
        survey_folders(conn, found)
    return found
