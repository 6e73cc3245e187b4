"""`stowage backup DEST`: a consistent copy of a data dir, taken while the server runs.

The catalog is copied with SQLite's online backup API in one step, which reads one
committed snapshot (WAL lets the server keep writing meanwhile). The blobs that
snapshot's rows name are then hard-linked into DEST when it is on the same filesystem
(a blob is never changed after its rename, only unlinked, so a link is a copy that
costs nothing), else copied and fsynced. A file deleted between the snapshot and its
link has its row dropped from the copy too, so the copy stays whole. Accounts, tokens
and sessions live in the same catalog, so they come along.
"""

from __future__ import annotations

import errno
import hashlib
import os
import sqlite3
import time
from dataclasses import dataclass
from pathlib import Path

from app.ops.check import CATALOG_NAME, UPLOADS_NAME, connect_read_only
from app.storage.local.writer import INCOMING, fsync_dir

COPY_PIECE_BYTES = 1024 * 1024


class BackupRefused(Exception):
    """DEST cannot take a backup; the message says why."""


@dataclass(frozen=True, slots=True)
class BackupDone:
    files: int
    file_bytes: int
    catalog_bytes: int
    linked: int
    copied: int
    dropped: int  # rows whose file was deleted while the backup ran
    missing: list[str]  # rows whose blob was already missing in the source
    seconds: float


def check_destination(source: Path, dest: Path) -> None:
    if dest.exists() and not dest.is_dir():
        raise BackupRefused(f"{dest} exists and is not a directory")
    if dest.is_dir() and any(dest.iterdir()):
        raise BackupRefused(f"{dest} is not empty: back up into a new or empty directory")
    src, dst = source.resolve(), dest.resolve()
    if dst == src or dst.is_relative_to(src / UPLOADS_NAME):
        raise BackupRefused(f"{dest} is inside the data dir's own files")


def _copy_blob(source: Path, dest: Path, sha256: str) -> None:
    """Copy, fsync, and check the bytes against the row's sha256 on the way."""
    digest = hashlib.sha256()
    with source.open("rb") as src, dest.open("xb") as dst:
        while piece := src.read(COPY_PIECE_BYTES):
            digest.update(piece)
            dst.write(piece)
        dst.flush()
        os.fsync(dst.fileno())
    if digest.hexdigest() != sha256:
        dest.unlink()
        raise OSError(f"the blob {source} does not match its sha256: the source is damaged")


def _link_or_copy(source: Path, dest: Path, sha256: str, *, link: bool) -> bool:
    """True when linked. Falls back to a copy across filesystems."""
    if link:
        try:
            os.link(source, dest)
            return True
        except OSError as exc:
            if exc.errno not in (errno.EXDEV, errno.EPERM, errno.EMLINK, errno.ENOTSUP):
                raise
    _copy_blob(source, dest, sha256)
    return False


def back_up(source: Path, dest: Path, *, link: bool = True) -> BackupDone:
    started = time.monotonic()
    check_destination(source, dest)
    src_conn = connect_read_only(source / CATALOG_NAME)
    dest.mkdir(parents=True, exist_ok=True)
    (dest / UPLOADS_NAME / INCOMING).mkdir(parents=True, exist_ok=True)
    dest_db = dest / CATALOG_NAME
    dst_conn = sqlite3.connect(dest_db, isolation_level=None)
    try:
        # pages=-1: the whole catalog in one step, so it is one snapshot.
        src_conn.backup(dst_conn, pages=-1)
        dst_conn.execute("PRAGMA journal_mode=WAL")
        rows = dst_conn.execute("SELECT id, sha256, size FROM files").fetchall()
        linked = copied = file_bytes = 0
        dropped: list[str] = []
        missing: list[str] = []
        shards: set[str] = set()
        for blob_id, sha256, size in rows:
            from_path = source / UPLOADS_NAME / blob_id[:2] / blob_id
            to_dir = dest / UPLOADS_NAME / blob_id[:2]
            if blob_id[:2] not in shards:
                to_dir.mkdir(exist_ok=True)
                shards.add(blob_id[:2])
            try:
                if _link_or_copy(from_path, to_dir / blob_id, sha256, link=link):
                    linked += 1
                else:
                    copied += 1
                file_bytes += size
            except FileNotFoundError:
                still_there = src_conn.execute(
                    "SELECT 1 FROM files WHERE id = ?", (blob_id,)
                ).fetchone()
                (missing if still_there else dropped).append(blob_id)
        if dropped:
            # Deleted while we copied: the copy forgets them too (the usage triggers
            # keep each account's totals right).
            dst_conn.execute("BEGIN")
            dst_conn.executemany("DELETE FROM files WHERE id = ?", [(i,) for i in dropped])
            dst_conn.execute("COMMIT")
        dst_conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    finally:
        dst_conn.close()
        src_conn.close()
    for shard in shards:
        fsync_dir(dest / UPLOADS_NAME / shard)
    fsync_dir(dest / UPLOADS_NAME)
    fsync_dir(dest)
    return BackupDone(
        files=linked + copied,
        file_bytes=file_bytes,
        catalog_bytes=dest_db.stat().st_size,
        linked=linked,
        copied=copied,
        dropped=len(dropped),
        missing=missing,
        seconds=time.monotonic() - started,
    )
