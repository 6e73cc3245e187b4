"""`stowage check [--repair]` and `stowage backup DEST`: keeping a data dir whole from
the command line (the engine is app/ops/).

`check` only reads, so it may run beside a server; `--repair` changes the dir and so
needs it to itself (the running server's own sweep repairs meanwhile). Exit status: 0
consistent / done, 1 a problem found (or left), 2 bad input or a dir in use.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path

from app.catalog.open import (
    CatalogMismatch,
    CatalogTooNew,
    check_catalog_matches,
    check_schema_version,
)
from app.catalog.protocol import CatalogUnavailable
from app.cli.storage import add_storage_flags
from app.common.units import human_bytes
from app.config import Config
from app.ops.backup import BackupRefused, back_up
from app.ops.check import CATALOG_NAME, NotADataDir, Survey, recount_folders, survey
from app.ops.lock import DataDirBusy, DataDirLock
from app.ops.sweep import ORPHAN_GRACE_SECONDS, reclaim
from app.storage.backends import describe, open_store
from app.storage.errors import StoreUnavailable

# Ids listed per kind of problem; the counts are always whole.
LISTED = 20


def add_ops_commands(
    commands: argparse._SubParsersAction[argparse.ArgumentParser], data_dir_help: str
) -> None:
    check = commands.add_parser(
        "check",
        help="compare the blobs on disk with the catalog; exit 1 on a problem",
        description="Count rows, blobs, blobs without a row (orphans), rows without a "
        "blob (missing), temp files and bytes. Read-only, so it may run beside a server. "
        "Exit status 0 when consistent, 1 when a problem was found.",
    )
    check.add_argument("--data-dir", dest="data_dir", metavar="DIR", help=data_dir_help)
    add_storage_flags(check)
    check.add_argument(
        "--repair",
        action="store_true",
        help="remove orphan blobs and temp files (the server must be stopped); "
        "rows without a blob are listed, never deleted",
    )
    backup = commands.add_parser(
        "backup",
        help="copy the data dir consistently, even while the server runs",
        description="Copy the catalog (SQLite online backup) and the blobs its rows name "
        "into DEST, a new or empty directory: hard links when DEST is on the same "
        "filesystem, else copies checked against each file's sha256. Accounts, tokens "
        "and sessions come along. DEST can be served with `stowage serve --data-dir DEST`.",
    )
    backup.add_argument("dest", metavar="DEST", help="a new or empty directory")
    backup.add_argument("--data-dir", dest="data_dir", metavar="DIR", help=data_dir_help)
    add_storage_flags(backup)
    backup.add_argument(
        "--copy",
        action="store_true",
        help="copy every blob even on the same filesystem (a hard link shares the disk "
        "with the original, so it does not survive losing that disk)",
    )


def _count(n: int, size: int | None = None) -> str:
    return f"{n:>8}" + (f"  ({human_bytes(size)})" if size is not None else "")


def print_survey(found: Survey, *, server_running: bool) -> None:
    lines = [
        ("rows", _count(found.rows, found.row_bytes)),
        ("blobs", _count(found.blobs, found.blob_bytes)),
        ("orphans", _count(len(found.orphans), sum(b.size for b in found.orphans))
         + "  blobs without a row"),
        ("missing", _count(len(found.missing), sum(m.size for m in found.missing))
         + "  rows without a blob"),
        ("wrong size", _count(len(found.wrong_size)) + "  blobs whose size is not their row's"),
        ("thumbnails", _count(found.thumbnails, found.thumbnail_bytes)
         + f"  derived; {len(found.stale_thumbnails)} of them without a row (not a problem)"),
        ("temp files", _count(len(found.temp_files), sum(t.size for t in found.temp_files))
         + ("  uploads in flight" if server_running else "  left by a crash")),
        ("resumable", _count(found.resumable, found.resumable_bytes)
         + f"  unfinished uploads' bytes; {len(found.stray_resumable)} of them without"
         + (" an upload (a problem)" if found.stray_resumable else " an upload")),
        ("folders", _count(found.folders)
         + f"  {len(found.folder_drift)} whose counts differ from their files'"
         + f"; {found.lost} files or folders in a folder that is gone"),
    ]  # fmt: skip
    if found.unclaimed:
        lines.append(
            ("committing", _count(len(found.unclaimed)) + "  new blobs whose row is on its way")
        )
    for label, text in lines:
        print(f"{label:<11}{text}")
    for blob in found.orphans[:LISTED]:
        print(f"orphan     {blob.id}  {human_bytes(blob.size)}")
    for row in found.missing[:LISTED]:
        print(f"missing    {row.id}  {row.name!r}  owner {row.owner}")
    for stray in found.stray_resumable[:LISTED]:
        print(f"stray      {stray.path}  {human_bytes(stray.size)}  no resumable upload")
    for blob in found.wrong_size[:LISTED]:
        print(f"wrong size {blob.id}  {human_bytes(blob.size)} on disk")
    for folder in found.folder_drift[:LISTED]:
        print(
            f"counts     folder {folder.id}: {folder.files} files, {human_bytes(folder.size)};"
            f" its files: {folder.real_files}, {human_bytes(folder.real_size)}"
        )


def _check(config: Config, repair: bool) -> int:
    data_dir = config.data_dir
    if config.database is None and not (data_dir / CATALOG_NAME).is_file():
        raise NotADataDir(f"{data_dir} holds no Stowage catalog ({CATALOG_NAME})")
    running = DataDirLock.is_held_elsewhere(data_dir)
    if config.storage.kind == "s3":
        try:
            return asyncio.run(_check_s3(config, repair, running))
        except StoreUnavailable as exc:
            print(f"stowage check: error: {exc}", file=sys.stderr)
            return 2
    if repair:
        try:
            lock = DataDirLock.acquire(data_dir)
        except DataDirBusy as exc:
            print(
                f"stowage check: error: {exc}: stop the server to repair; while it runs, "
                "its own sweep reclaims orphan blobs",
                file=sys.stderr,
            )
            return 2
        with lock:
            done = reclaim(data_dir, grace_seconds=0.0, temp=True, database=config.database)
            print(
                f"repaired: removed {done.temp_files} temp file(s) "
                f"({human_bytes(done.temp_bytes)}) and {done.orphans} orphan blob(s) "
                f"({human_bytes(done.orphan_bytes)})"
            )
            if done.stray_resumable:
                print(
                    f"repaired: removed {done.stray_resumable} resumable-upload file(s) "
                    f"without an upload ({human_bytes(done.stray_resumable_bytes)})"
                )
            found = survey(data_dir, grace_seconds=0.0, database=config.database)
            if found.folder_drift:
                fixed = recount_folders(
                    data_dir / CATALOG_NAME, config.database, found.folder_drift
                )
                print(f"repaired: counted the files of {fixed} folder(s) again")
                found = survey(data_dir, grace_seconds=0.0, database=config.database)
    else:
        # Beside a running server, a blob without a row may be an upload about to
        # commit: only one older than the grace counts. With no server, any does.
        found = survey(
            data_dir,
            grace_seconds=ORPHAN_GRACE_SECONDS if running else 0.0,
            database=config.database,
        )
    print(
        f"data dir   {data_dir.resolve()}"
        + ("  (a server is running: read-only)" if running and not repair else "")
    )
    print_survey(found, server_running=running)
    leftovers = 0 if running else len(found.temp_files)
    if found.problems or leftovers:
        hint = "" if repair else "; `stowage check --repair` (server stopped) reclaims orphans"
        if found.missing:
            hint += (
                "; rows without a blob are never deleted by Stowage: restore the blob, or "
                "delete the file in the app (DELETE /files/{id})"
            )
        print(f"PROBLEM: not consistent{hint}")
        return 1
    print("consistent")
    return 0


async def _check_s3(config: Config, repair: bool, running: bool) -> int:
    """The same check with the bucket in place of uploads/ (app/ops/check_s3.py)."""
    from app.ops.check_s3 import UNFINISHED_UPLOAD_GRACE_SECONDS, repair_s3, survey_s3
    from app.storage.s3.store import S3Store

    store = await open_store(config)
    assert isinstance(store, S3Store)
    # On a shared catalog other nodes may be uploading into the bucket whatever this
    # data dir's lock says: only what is old enough to be nobody's upload is touched.
    shared = config.database is not None
    careful = running or shared

    async def survey_bucket() -> Survey:
        return await survey_s3(
            config.data_dir,
            store,
            grace_seconds=ORPHAN_GRACE_SECONDS if careful else 0.0,
            upload_grace_seconds=UNFINISHED_UPLOAD_GRACE_SECONDS if careful else 0.0,
            database=config.database,
        )

    try:
        if repair:
            try:
                lock = DataDirLock.acquire(config.data_dir)
            except DataDirBusy as exc:
                print(f"stowage check: error: {exc}: stop the server to repair", file=sys.stderr)
                return 2
            with lock:
                found = await survey_bucket()
                aborted, orphans, orphan_bytes = await repair_s3(store, found)
                if found.folder_drift:
                    fixed = recount_folders(
                        config.data_dir / CATALOG_NAME, config.database, found.folder_drift
                    )
                    print(f"repaired: counted the files of {fixed} folder(s) again")
                await asyncio.to_thread(
                    reclaim,
                    config.data_dir,
                    grace_seconds=0.0,
                    temp=True,
                    database=config.database,
                    local_blobs=False,
                )
                print(
                    f"repaired: aborted {aborted} unfinished multipart upload(s) and removed"
                    f" {orphans} orphan object(s) ({human_bytes(orphan_bytes)})"
                )
                found = await survey_bucket()
        else:
            found = await survey_bucket()
    finally:
        await store.aclose()
    print(
        f"data dir   {config.data_dir.resolve()}"
        + ("  (a server is running: read-only)" if running and not repair else "")
    )
    print(f"storage    {describe(config)}  (temp files: unfinished multipart uploads)")
    print_survey(found, server_running=running)
    # Multipart uploads no unexpired upload (resumable or direct session) holds.
    for upload in found.temp_files[:LISTED]:
        print(f"unfinished {upload.path}  upload {upload.id}  started {_ago(upload.age)} ago")
    leftovers = 0 if running else len(found.temp_files)
    if found.problems or leftovers:
        hint = "" if repair else "; `stowage check --repair` (server stopped) reclaims them"
        print(f"PROBLEM: not consistent{hint}")
        return 1
    print("consistent")
    return 0


def _ago(seconds: float) -> str:
    for unit, size in (("d", 86400), ("h", 3600), ("min", 60)):
        if seconds >= 2 * size:
            return f"{seconds // size:.0f} {unit}"
    return f"{seconds:.0f} s"


def _backup(config: Config, dest: str, copy: bool) -> int:
    if config.storage.kind != "local":
        print(
            "stowage backup: error: backup copies blobs from the data dir; with S3 storage"
            " back up the catalog and use the object store's own replication",
            file=sys.stderr,
        )
        return 2
    try:
        done = back_up(config.data_dir, Path(dest), link=not copy)
    except BackupRefused as exc:
        print(f"stowage backup: error: {exc}", file=sys.stderr)
        return 2
    how = f"{done.linked} hard-linked, {done.copied} copied"
    print(
        f"backed up {done.files} file(s) ({human_bytes(done.file_bytes)}; {how}) and the "
        f"catalog ({human_bytes(done.catalog_bytes)}) to {dest} in {done.seconds:.2f} s"
    )
    if done.dropped:
        print(f"{done.dropped} file(s) deleted during the backup are not in it")
    if done.missing:
        print(
            f"PROBLEM: {len(done.missing)} row(s) had no blob in the source already "
            f"(first: {', '.join(done.missing[:5])}); `stowage check` on the source lists them"
        )
        return 1
    return 0


# What `check` and `backup` say for a PostgreSQL catalog, which they do not read.
NOT_FOR_POSTGRES = {
    "backup": "copies a SQLite catalog; back up a PostgreSQL catalog with pg_dump"
    " (e.g. `pg_dump -Fc -f stowage.dump DBNAME`) and the data dir's uploads/ with any"
    " file copy",
}


def run_ops_command(command: str, args: dict, config: Config) -> int:
    try:
        check_catalog_matches(config)
        check_schema_version(config)
    except (CatalogMismatch, CatalogTooNew) as exc:
        print(f"stowage {command}: error: {exc}", file=sys.stderr)
        return 2
    except CatalogUnavailable:
        pass  # the command itself says so, as before
    if command == "backup" and config.database is not None:
        print(f"stowage {command}: error: {command} {NOT_FOR_POSTGRES[command]}", file=sys.stderr)
        return 2
    try:
        if command == "check":
            return _check(config, args["repair"])
        return _backup(config, args["dest"], args["copy"])
    except NotADataDir as exc:
        print(f"stowage {command}: error: {exc}", file=sys.stderr)
        return 2
