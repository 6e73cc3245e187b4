"""`stowage check` on S3 storage: the bucket's objects (under the prefix) compared with
the catalog's rows, and multipart uploads left unfinished (what a store that was down
when an upload failed could not abort). The same `Survey` as a local check: objects
without a row are orphans, rows without an object are missing, unfinished multipart
uploads are the temp files. Thumbnails stay local and are surveyed as before."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from app.ops.check import CATALOG_NAME, Blob, MissingBlob, Survey, read_only, survey
from app.storage.s3.store import S3Store

# An unfinished multipart upload younger than this may be a long upload running now
# (64 GiB at 10 MB/s takes almost two hours): only older ones are taken for leftovers
# while a server runs or other nodes may.
UNFINISHED_UPLOAD_GRACE_SECONDS = 24 * 3600.0


async def survey_s3(
    data_dir: Path,
    store: S3Store,
    *,
    grace_seconds: float,
    database: str | None = None,
    upload_grace_seconds: float = 0.0,
) -> Survey:
    """Objects without a row count as orphans once `grace_seconds` old, unfinished
    multipart uploads once `upload_grace_seconds` old: younger ones may belong to an
    upload running now, on this node or (a shared catalog) on another."""
    # Listed before the rows are read: an upload that completes in between has its
    # row by then, so it is never taken for an orphan.
    objects = await store.objects()
    unfinished = await store.unfinished_uploads()
    found = survey(data_dir, grace_seconds=grace_seconds, database=database, local_blobs=False)
    with read_only(data_dir / CATALOG_NAME, database) as conn:
        rows = {
            blob_id: (size, name, owner)
            for blob_id, size, name, owner in conn.execute(
                "SELECT id, size, name, owner FROM files"
            )
        }
        held = _held_by_resumable(conn)
        waiting = _objects_of_unfinished(conn)
    found.blobs = len(objects)
    found.blob_bytes = sum(size for size, _ in objects.values())
    for blob_id, (size, age) in objects.items():
        blob = Blob(blob_id, Path(store.key_of(blob_id)), size, age)
        if blob_id in rows:
            if size != rows[blob_id][0]:
                found.wrong_size.append(blob)
        elif blob_id not in waiting:
            (found.orphans if age >= grace_seconds else found.unclaimed).append(blob)
    for blob_id, (size, name, owner) in rows.items():
        if blob_id not in objects:
            found.missing.append(MissingBlob(blob_id, name, owner, size))
    found.temp_files = [
        Blob(upload_id, Path(key), 0, age)
        for key, upload_id, age in unfinished
        if age >= upload_grace_seconds and upload_id not in held
    ]
    return found


def _objects_of_unfinished(conn: Any) -> set[str]:
    """Objects at unfinished resumable uploads' blob keys: a tus partial's own object,
    completed for a final that failed midway, waits there for the next final (it is
    removed with the partial, and an orphan once the partial's row is gone)."""
    rows = conn.execute("SELECT blob_id FROM resumable_uploads WHERE file_id IS NULL").fetchall()
    return {str(row[0]) for row in rows}


def _held_by_resumable(conn: Any) -> set[str]:
    """The multipart uploads that unexpired resumable uploads keep their parts in
    (app/resumable/partials/s3.py): not leftovers, however old."""
    try:
        rows = conn.execute(
            "SELECT s.multipart_id FROM resumable_s3 s JOIN resumable_uploads u"
            " ON u.id = s.upload_id WHERE u.expires_at > ?",
            (time.time(),),
        ).fetchall()
    except Exception as exc:  # sqlite3 or psycopg: a catalog made before the table
        if "resumable_s3" not in str(exc):
            raise
        return set()
    return {str(row[0]) for row in rows}


async def repair_s3(store: S3Store, found: Survey) -> tuple[int, int, int]:
    """Remove orphan objects and abort unfinished multipart uploads (server stopped).
    Returns (uploads aborted, orphans removed, their bytes)."""
    for temp in found.temp_files:
        await store.abort_upload(str(temp.path), temp.id)
    await store.remove([blob.id for blob in found.orphans])
    return len(found.temp_files), len(found.orphans), sum(b.size for b in found.orphans)
