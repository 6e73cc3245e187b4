"""Reclaiming what a crash or a failed removal left behind.

At start (the process owns the data dir, so nothing is in flight) every temp file goes
and every blob without a row is reclaimed. While the server runs, a periodic sweep
reclaims blobs without a row once they are older than ORPHAN_GRACE_SECONDS: an upload
renames its blob into place a moment before its row commits, and that moment must
never look like an orphan. Rows whose blob is missing are reported, never deleted:
the blob may be on a disk that is not mounted, and the row is all that names the file.
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path

from stario.telemetry.core import Span

from app.ops.check import UPLOADS_NAME, Blob, MissingBlob, survey, temp_files

# How old a blob without a row must be before the running server reclaims it.
ORPHAN_GRACE_SECONDS = 300.0
# How often the running server sweeps.
SWEEP_EVERY_SECONDS = 120.0


@dataclass(slots=True)
class Reclaimed:
    temp_files: int = 0
    temp_bytes: int = 0
    orphans: int = 0
    orphan_bytes: int = 0
    stray_resumable: int = 0
    stray_resumable_bytes: int = 0
    stale_thumbnails: int = 0
    missing: list[MissingBlob] = field(default_factory=list)

    def attrs(self, prefix: str) -> dict[str, object]:
        return {
            f"{prefix}.temp_files_removed": self.temp_files,
            f"{prefix}.orphan_blobs_reclaimed": self.orphans,
            f"{prefix}.orphan_bytes_reclaimed": self.orphan_bytes,
            f"{prefix}.stale_thumbnails_removed": self.stale_thumbnails,
            f"{prefix}.stray_resumable_files_removed": self.stray_resumable,
            f"{prefix}.rows_without_blob": len(self.missing),
        }


def _remove(found: list[Blob]) -> tuple[int, int]:
    count = size = 0
    for item in found:
        try:
            item.path.unlink()
        except FileNotFoundError:
            continue
        count += 1
        size += item.size
    return count, size


def reclaim(
    data_dir: Path,
    *,
    grace_seconds: float,
    temp: bool,
    database: str | None = None,
    local_blobs: bool = True,
) -> Reclaimed:
    """Remove blobs without a row older than `grace_seconds`, and with `temp` every
    temp file and every file under uploads/.resumable without an unfinished upload's
    row. `temp` is only for a process that owns the dir: a temp file is an upload in
    flight while a server runs (and a resumable upload's file is made before its row)."""
    done = Reclaimed()
    if temp:
        # Temp files first: a crash between their rename and the row leaves a blob,
        # which the survey below then sees.
        done.temp_files, done.temp_bytes = _remove(temp_files(data_dir / UPLOADS_NAME))
    found = survey(
        data_dir, grace_seconds=grace_seconds, database=database, local_blobs=local_blobs
    )
    done.orphans, done.orphan_bytes = _remove(found.orphans)
    done.stale_thumbnails, _ = _remove(found.stale_thumbnails)
    if temp:
        done.stray_resumable, done.stray_resumable_bytes = _remove(found.stray_resumable)
    done.missing = found.missing
    return done


def report_missing(missing: list[MissingBlob], *, when: str) -> None:
    """Rows without a blob are for a person to look at: one line on stderr, naming some."""
    if not missing:
        return
    named = ", ".join(f"{m.id} ({m.name!r})" for m in missing[:5])
    more = f" and {len(missing) - 5} more" if len(missing) > 5 else ""
    print(
        f"stowage: warning ({when}): {len(missing)} file row(s) have no blob on disk: "
        f"{named}{more}; `stowage check` lists them",
        file=sys.stderr,
        flush=True,
    )


async def reclaim_at_start(
    data_dir: Path, span: Span, database: str | None = None, *, local_blobs: bool = True
) -> Reclaimed:
    """`local_blobs=False` on S3 storage: the bucket is for `stowage check`."""
    done = await asyncio.to_thread(
        reclaim,
        data_dir,
        grace_seconds=0.0,
        temp=True,
        database=database,
        local_blobs=local_blobs,
    )
    span.attrs(done.attrs("stowage.startup"))
    if done.temp_files or done.orphans:
        print(
            f"stowage: removed {done.temp_files} temp file(s) and reclaimed "
            f"{done.orphans} blob(s) without a row ({done.orphan_bytes} bytes) "
            "left by an earlier run",
            file=sys.stderr,
            flush=True,
        )
    report_missing(done.missing, when="start-up")
    return done


async def sweep_periodically(
    data_dir: Path,
    new_span: Callable[[str], Span],
    stopped: Callable[[], Awaitable[object]],
    *,
    every: float = SWEEP_EVERY_SECONDS,
    grace_seconds: float = ORPHAN_GRACE_SECONDS,
    database: str | None = None,
    local_blobs: bool = True,
) -> None:
    """Sweep every `every` seconds until `stopped()` completes. A pass that found
    something is logged as a `stowage.sweep` span; rows without a blob also go to
    stderr (once per distinct set, not every pass)."""
    reported: set[str] = set()
    while True:
        try:
            await asyncio.wait_for(stopped(), timeout=every)
            return
        except TimeoutError:
            pass
        try:
            done = await asyncio.to_thread(
                reclaim,
                data_dir,
                grace_seconds=grace_seconds,
                temp=False,
                database=database,
                local_blobs=local_blobs,
            )
        except Exception as exc:  # a sweep that fails must not end the server
            with new_span("stowage.sweep") as span:
                span.exception(exc)
                span.fail(f"sweep failed: {exc}")
            continue
        if done.orphans or done.missing or done.stale_thumbnails:
            with new_span("stowage.sweep") as span:
                span.attrs(done.attrs("stowage.sweep"))
        missing_ids = {m.id for m in done.missing}
        if missing_ids - reported:
            report_missing(done.missing, when="sweep")
        reported = missing_ids
