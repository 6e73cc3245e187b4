"""Blobs on the local filesystem, named by opaque ids, written durably off the event loop.

Layout under the root: `.incoming/<id>.part` while a blob is being written,
`<id[:2]>/<id>` once committed. Client filenames never reach the filesystem.
Blobs derived from a file (its thumbnail, app/previews) live under `.thumbs/<id[:2]>/`
as `<id>.webp` (or an empty `<id>.none`: no thumbnail can be made); they go with it.
"""

from __future__ import annotations

import asyncio
import ctypes
import ctypes.util
import os
import sys
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor, wait
from pathlib import Path
from typing import Any

from app.storage.errors import LowOnSpace, translate_os_error
from app.storage.ids import is_blob_id, new_blob_id
from app.storage.space import free_bytes
from app.storage.store import THUMBNAILS, Digest, derived_paths

# Each write call stays at 512 KiB: on these machines page-cache writes of 1 MiB
# or more ran several times slower than 256-512 KiB ones.
WRITE_PIECE_BYTES = 512 * 1024
# Bytes gathered before one hop to the writer thread: a hop per 256 KiB chunk
# halved upload throughput, so several chunks travel together.
HOP_BYTES = 4 * 1024 * 1024
# Start write-back every so often while bytes still arrive, so the fsync at the
# end has little left to do.
WRITEBACK_EVERY_BYTES = 32 * 1024 * 1024
STALE_INCOMING_SECONDS = 3600
# The writer threads' free-space check before a batch reuses a statvfs figure this
# young while what was admitted since still leaves FAR_ABOVE_FLOOR_BYTES above the
# floor: with small uploads a statvfs per blob was 2.5% of the writer threads' time,
# and that far above the floor it could not have refused anything. Nearer the floor
# every batch is checked against a fresh figure, as before.
FREE_FIGURE_SECONDS = 1.0
FAR_ABOVE_FLOOR_BYTES = 256 * 1024 * 1024

INCOMING = ".incoming"


def _libc_function(name: str) -> Any:
    """A libc function by name (errno kept for ctypes.get_errno), or None where this
    libc has none (not Linux, or too old)."""
    libc_name = ctypes.util.find_library("c")
    if libc_name is None or not sys.platform.startswith("linux"):
        return None
    try:
        return getattr(ctypes.CDLL(libc_name, use_errno=True), name)
    except (OSError, AttributeError):
        return None


def _load_sync_file_range() -> Callable[[int, int, int], None] | None:
    call = _libc_function("sync_file_range")
    if call is None:
        return None
    call.argtypes = (ctypes.c_int, ctypes.c_int64, ctypes.c_int64, ctypes.c_uint)
    sync_file_range_write = 2

    def start_writeback(fd: int, offset: int, length: int) -> None:
        call(fd, offset, length, sync_file_range_write)

    return start_writeback


_start_writeback = _load_sync_file_range()


def _load_syncfs() -> Callable[[int], None] | None:
    """syncfs(2): write back every dirty page and inode of one filesystem and flush
    it, in one call. Its errors are reliable from Linux 5.8 on (it reports a
    write-back error of the filesystem since the descriptor was opened)."""
    call = _libc_function("syncfs")
    if call is None:
        return None
    call.argtypes = (ctypes.c_int,)

    def syncfs(fd: int) -> None:
        if call(fd) != 0:
            err = ctypes.get_errno()
            raise OSError(err, os.strerror(err))

    return syncfs


_syncfs = _load_syncfs()


def fsync_dir(path: Path) -> None:
    """Make a directory's entries (a rename, a new file) durable."""
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _feed_digest(digest: Digest, batch: list[bytes | memoryview]) -> None:
    for chunk in batch:
        digest.update(chunk)


def _write_all(fd: int, pieces: list[bytes | memoryview], total: int) -> None:
    """One writev of `pieces`; a short write (rare on files) finishes piece by piece."""
    done = os.writev(fd, pieces) if len(pieces) > 1 else os.write(fd, pieces[0])
    if done == total:
        return
    for piece in pieces:
        view = memoryview(piece)
        if done >= len(view):
            done -= len(view)
            continue
        view, done = view[done:], 0
        while view:
            view = view[os.write(fd, view) :]


def _write_batch_to(fd: int, batch: list[bytes | memoryview]) -> None:
    """No join: the chunks go out as they came, gathered by writev into calls of at
    most WRITE_PIECE_BYTES (a chunk larger than that is sliced)."""
    pieces: list[bytes | memoryview] = []
    gathered = 0
    for chunk in batch:
        view = memoryview(chunk)
        while view:
            take = view[: WRITE_PIECE_BYTES - gathered]
            pieces.append(take)
            gathered += len(take)
            view = view[len(take) :]
            if gathered == WRITE_PIECE_BYTES:
                _write_all(fd, pieces, gathered)
                pieces, gathered = [], 0
    if pieces:
        _write_all(fd, pieces, gathered)


def never_preempt_the_loop() -> None:
    """Run on a helper thread: it no longer preempts the event loop when it wakes.

    Each upload hands its blob to a writer thread; on 2 cores the woken thread often
    took the CPU from the event loop right there, while the loop still held the GIL, so
    neither ran until the scheduler switched back (py-spy: the loop held the GIL inside
    `ThreadPoolExecutor.submit` in 12% of its samples). SCHED_BATCH keeps the thread's
    share of the CPU but drops its wake-up preemption (Linux: "batch tasks do not
    preempt on wakeup"); the thread starts on a free core, or when the loop sleeps or
    its time slice ends. Any thread may lower its own policy so, without privileges."""
    try:
        os.sched_setscheduler(0, os.SCHED_BATCH, os.sched_param(0))
    except (AttributeError, OSError):
        pass  # not Linux, or refused: the default policy, as before


type RoundEntry = tuple[BlobWriter, list[bytes | memoryview], Path]
type Written = list[tuple[BlobWriter, int, Path]]


def _write_blobs(entries: list[RoundEntry]) -> tuple[list[OSError | None], Written]:
    """Part of a round, on one of its threads: each blob's digest fed and its bytes
    written under its final name, not yet durable. One outcome per blob and the
    blobs written, still open; on anything but an OSError those are closed here,
    since the caller never sees them."""
    outcomes: list[OSError | None] = []
    written: Written = []
    try:
        for blob, tail, final in entries:
            try:
                if blob._digest is not None and tail:
                    _feed_digest(blob._digest, tail)
                written.append((blob, blob._write_in_place(tail, final), final))
                outcomes.append(None)
            except OSError as exc:
                outcomes.append(exc)
    except BaseException:
        for blob, _, _ in written:
            blob._close()
        raise
    return outcomes, written


class SmallBlobRounds:
    """Small blobs (every byte in hand at their first disk work) go to disk in rounds,
    the way GroupCommit (app/catalog/) commits catalog rows: blobs that arrive while a
    round is on disk go together in the next. A round is one hop to a writer thread
    and back: each blob written under its final name, then all made durable at once
    by syncfs(2) of the store's filesystem, where each used to cost two fsyncs (the
    file and its shard directory) and a hop of its own. Under 16 concurrent 64 KiB
    uploads that cut the server's CPU per upload by about 40% and raised throughput
    by a quarter to a third (bench/small.py, docs/benchmarks.md).

    A round of one blob is fsynced alone, as before, so a lone upload never waits
    for the rest of the filesystem; the price of syncfs is that under concurrent
    small uploads a round also writes back whatever else is dirty on that filesystem
    (large uploads start their write-back every WRITEBACK_EVERY_BYTES, so little of
    ours). One round at a time: with two or three rounds in flight, or a thread per
    blob, the threads' GIL hand-offs with the event loop cost more than the overlap
    won (measured 12-18% slower). Within a round, two threads write: the round's
    own and a helper with the other half of the blobs, because much of a small
    write's time is the kernel filling page-cache pages (on the VM measured, 12 us
    for each page never touched before), which two cores do at once (measured about
    10% more uploads per second, bench/JOURNAL.md). The two threads are the rounds'
    own, so a round never queues behind a large upload's batches."""

    def __init__(self, store: BlobStore) -> None:
        self._store = store
        self._threads = ThreadPoolExecutor(
            max_workers=2, thread_name_prefix="small-blobs", initializer=never_preempt_the_loop
        )
        self._waiting: list[tuple[RoundEntry, asyncio.Future[None]]] = []
        self._on_disk: Future[list[OSError | None]] | None = None
        self._filesystem_fd: int | None = None

    async def keep(self, blob: BlobWriter, tail: list[bytes | memoryview], final: Path) -> None:
        """Write `tail` as the whole of `blob` under `final`, durably; raises OSError
        when this blob or its round failed (the caller discards the blob)."""
        kept = asyncio.get_running_loop().create_future()
        self._waiting.append(((blob, tail, final), kept))
        if self._on_disk is None:
            self._start()
        await kept

    def close(self) -> None:
        self._threads.shutdown(wait=True)
        if self._filesystem_fd is not None:
            os.close(self._filesystem_fd)
            self._filesystem_fd = None

    def _start(self) -> None:
        # A blob whose upload was cancelled while it queued is never written.
        waiting = [(entry, kept) for entry, kept in self._waiting if not kept.done()]
        self._waiting = []
        if not waiting:
            return
        loop = asyncio.get_running_loop()
        work = self._threads.submit(self._write_round, [entry for entry, _ in waiting])
        self._on_disk = work
        for (blob, _, _), _ in waiting:
            blob._round = work  # discard() waits for it before removing the file

        # The callback takes the round from its argument: closing over `work` would
        # make a cycle (the future holds its callbacks) that keeps every body of the
        # round in memory until the garbage collector's next full pass.
        def on_disk(done: Future[list[OSError | None]]) -> None:
            try:
                loop.call_soon_threadsafe(self._finish, waiting, done)
            except RuntimeError:
                pass  # the loop is closed: nobody is left to answer

        work.add_done_callback(on_disk)

    def _finish(
        self,
        waiting: list[tuple[RoundEntry, asyncio.Future[None]]],
        work: Future[list[OSError | None]],
    ) -> None:
        self._on_disk = None
        try:
            outcomes: list[OSError | None] | list[BaseException] = work.result()
        except BaseException as exc:  # the round itself broke: nobody's blob is kept
            outcomes = [exc] * len(waiting)
        for (_, kept), outcome in zip(waiting, outcomes, strict=True):
            if kept.done():
                continue
            if outcome is None:
                kept.set_result(None)
            else:
                kept.set_exception(outcome)
        if self._waiting:
            self._start()

    def _write_round(self, entries: list[RoundEntry]) -> list[OSError | None]:
        """Round thread: every blob written (half of them by the helper thread), then
        the written ones made durable; one outcome per blob, in order. A blob that
        failed is left for its caller to discard."""
        half = len(entries) // 2
        helping = self._threads.submit(_write_blobs, entries[half:]) if half else None
        parts: list[tuple[list[OSError | None], Written]] = []
        try:
            parts.append(_write_blobs(entries[:half] if half else entries))
            if helping is not None:
                parts.append(helping.result())
                helping = None
            outcomes = [outcome for part, _ in parts for outcome in part]
            written = [one for _, part in parts for one in part]
            if written:
                try:
                    self._make_durable([(fd, final) for _, fd, final in written])
                except OSError as exc:
                    return [exc if outcome is None else outcome for outcome in outcomes]
            return outcomes
        finally:
            if helping is not None:  # our half broke: what the helper wrote is closed too
                wait([helping])
                if helping.exception() is None:
                    parts.append(helping.result())
            for _, part in parts:
                for blob, _, _ in part:
                    blob._close()

    def _make_durable(self, files: list[tuple[int, Path]]) -> None:
        if len(files) == 1 or _syncfs is None:
            for fd, _ in files:
                os.fsync(fd)
            for shard in {final.parent for _, final in files}:
                fsync_dir(shard)
            return
        if self._filesystem_fd is None:
            self._filesystem_fd = os.open(self._store.root, os.O_RDONLY | os.O_DIRECTORY)
        _syncfs(self._filesystem_fd)
        # syncfs writes every dirty page, inode and directory block and waits for
        # them, but on ext4 without a journal the last metadata written may still sit
        # in the disk's volatile cache: an fsync always ends with a cache flush.
        os.fsync(self._filesystem_fd)


class BlobStore:
    """Blobs under `root`. Disk work runs on the store's own threads, so a clean-up
    that waits for a write still in progress can never starve behind it."""

    def __init__(self, root: Path, *, threads: int = 8, min_free_bytes: int = 0) -> None:
        self.root = root
        self.incoming = root / INCOMING
        self.executor = ThreadPoolExecutor(
            max_workers=threads, thread_name_prefix="blobs", initializer=never_preempt_the_loop
        )
        self.min_free_bytes = min_free_bytes
        self._free_seen: tuple[float, int] = (-1e9, 0)
        # Bytes the checks let through since `_free_seen` was measured (the writer
        # threads add to it together, hence the lock).
        self._admitted = 0
        self._admitted_lock = threading.Lock()
        # Removals so far: a figure measured across one is not kept.
        self._freed = 0
        # Shard directories known to exist: a blob moved into one of them needs no
        # stat or mkdir first (nothing in the app removes a shard).
        self._shards: set[str] = set()
        self.small_rounds = SmallBlobRounds(self)

    def check_room(self, incoming: int, *, reuse_for: float = 0.0) -> None:
        """Raise LowOnSpace unless `incoming` more bytes leave the floor free. One
        statvfs (microseconds): called before a body is read, and from the writer
        thread before each batch (every HOP_BYTES at most), never per chunk. Uploads
        in flight at once may each pass the check, so the floor can be undercut by up
        to a batch per upload; the catalog's reserve (space.py) covers that.

        `reuse_for`: seconds a figure may be reused, for the check on the event loop
        (a syscall there waits for the GIL behind the writer threads: under 16 small
        uploads at once, a statvfs per request cost more than the check is worth). The
        writer thread's check before each batch reuses a figure only while it is under
        FREE_FIGURE_SECONDS old and far above the floor, counting every byte admitted
        since it was measured."""
        floor = self.min_free_bytes
        if floor <= 0:
            return
        now = time.monotonic()
        with self._admitted_lock:
            checked_at, free = self._free_seen
            age = now - checked_at
            far_above = free - self._admitted - incoming >= floor + FAR_ABOVE_FLOOR_BYTES
            if age <= reuse_for or (age <= FREE_FIGURE_SECONDS and far_above):
                self._admitted += incoming
                if free - incoming >= floor:
                    return
                raise LowOnSpace(free, floor)
            freed_before = self._freed
        free = free_bytes(self.root)
        with self._admitted_lock:
            # Not a figure that a removal meanwhile may have made stale.
            if self._freed == freed_before:
                self._free_seen = (now, free)
                self._admitted = incoming
        if free - incoming < floor:
            raise LowOnSpace(free, floor)

    def prepare(self) -> int:
        """Create the layout and remove temp files a crash left behind; returns how many."""
        self.incoming.mkdir(parents=True, exist_ok=True)
        removed = 0
        cutoff = time.time() - STALE_INCOMING_SECONDS
        for leftover in self.incoming.glob("*.part"):
            try:
                if leftover.stat().st_mtime < cutoff:
                    leftover.unlink()
                    removed += 1
            except FileNotFoundError:
                pass
        return removed

    def close(self) -> None:
        self.executor.shutdown(wait=True)
        self.small_rounds.close()

    def path_of(self, blob_id: str) -> Path:
        if not is_blob_id(blob_id):
            raise ValueError("not a blob id")
        return self.root / blob_id[:2] / blob_id

    def thumbnail_path_of(self, blob_id: str) -> Path:
        if not is_blob_id(blob_id):
            raise ValueError("not a blob id")
        return self.root / THUMBNAILS / blob_id[:2] / f"{blob_id}.webp"

    def no_thumbnail_path_of(self, blob_id: str) -> Path:
        return self.thumbnail_path_of(blob_id).with_suffix(".none")

    def _unlink_derived(self, blob_id: str) -> None:
        for path in derived_paths(self.thumbnail_path_of(blob_id), blob_id):
            path.unlink(missing_ok=True)

    def _move_into_shard(self, temp_path: Path, final: Path) -> None:
        """Rename a sealed temp file to its final name, durably: the shard directory
        fsynced (and the root when the shard is new), then the directory it left. On a
        filesystem without a journal a rename is two separate changes, and a temp entry
        that survived a crash would be unlinked at start while the blob's name still
        needs its data. Writer threads only."""
        shard = final.parent
        shard_is_new = False
        try:
            if shard.name not in self._shards:
                raise FileNotFoundError
            os.rename(temp_path, final)
        except FileNotFoundError:
            self._shards.discard(shard.name)  # unknown, or removed behind our back
            shard_is_new = not shard.exists()
            shard.mkdir(exist_ok=True)
            os.rename(temp_path, final)
            self._shards.add(shard.name)
        fsync_dir(shard)
        if shard_is_new:
            fsync_dir(self.root)
        fsync_dir(temp_path.parent)

    def _shard_for(self, final: Path) -> Path:
        """The shard directory `final` goes into, made (and the root fsynced) if it is
        new. Writer threads only."""
        shard = final.parent
        if shard.name not in self._shards:
            shard_is_new = not shard.exists()
            shard.mkdir(exist_ok=True)
            if shard_is_new:
                fsync_dir(self.root)
            self._shards.add(shard.name)
        return shard

    def incoming_files(self) -> list[Path]:
        return sorted(self.incoming.glob("*.part"))

    def create(self, digest: Digest | None = None) -> BlobWriter:
        """A new blob; its temp file is opened by the first disk work, off the loop."""
        blob_id = new_blob_id()
        return BlobWriter(self, blob_id, self.incoming / f"{blob_id}.part", digest)

    async def remove(self, blob_ids: list[str]) -> None:
        """The blobs and what was derived from them (thumbnails)."""

        def unlink_all() -> None:
            try:
                for blob_id in blob_ids:
                    self.path_of(blob_id).unlink(missing_ok=True)
                    self._unlink_derived(blob_id)
            finally:
                self.forget_free_figure()

        await asyncio.get_running_loop().run_in_executor(self.executor, unlink_all)

    def forget_free_figure(self) -> None:
        """Space was freed: the next `check_room` measures again instead of refusing
        an upload, on a disk that was full, by a figure from before the delete."""
        with self._admitted_lock:
            self._free_seen = (-1e9, 0)
            self._admitted = 0
            self._freed += 1

    async def remove_derived(self, blob_ids: list[str]) -> None:
        def unlink_all() -> None:
            for blob_id in blob_ids:
                self._unlink_derived(blob_id)

        await asyncio.get_running_loop().run_in_executor(self.executor, unlink_all)


class BlobWriter:
    """One blob being written. `write` buffers; the store's threads do the disk I/O.

    At most one batch is on its way to disk while the next one gathers, so the
    network and the disk work at the same time and memory stays near 2 x HOP_BYTES.
    The digest, when given, is fed on a second thread while the same batch is
    written (sha256 costs about as much CPU as the write), batch by batch in byte
    order. A small blob goes to disk with the others waiting then, in one round
    (SmallBlobRounds).
    """

    def __init__(self, store: BlobStore, blob_id: str, temp_path: Path, digest: Digest | None):
        self.store = store
        self.id = blob_id
        self.temp_path = temp_path
        self.size = 0
        self._fd: int | None = None
        self._closed = False
        self._digest = digest
        self._batch: list[bytes | memoryview] = []
        self._batch_bytes = 0
        # Thread work not yet seen to finish; kept even if our awaiting task is
        # cancelled, so discard() can wait for it before closing the descriptor.
        self._work: list[Future[Any]] = []
        # The round (SmallBlobRounds) this small blob went to disk in: shared with the
        # other blobs of the round, so discard() waits for it but never cancels it.
        self._round: Future[Any] | None = None
        self._written = 0
        self._writeback_from = 0

    async def write(self, chunk: bytes | memoryview) -> None:
        if not chunk:
            return
        self._batch.append(chunk)
        self._batch_bytes += len(chunk)
        self.size += len(chunk)
        if self._batch_bytes >= HOP_BYTES:
            await self._hand_over()

    async def _hand_over(self) -> None:
        await self._settle()
        if not self._batch:
            return
        batch, self._batch, self._batch_bytes = self._batch, [], 0
        self._work = [self.store.executor.submit(self._write_batch, batch)]
        if self._digest is not None:
            self._work.append(self.store.executor.submit(_feed_digest, self._digest, batch))

    async def _settle(self) -> None:
        if not self._work:
            return
        outcomes = await asyncio.gather(
            *(asyncio.wrap_future(work) for work in self._work), return_exceptions=True
        )
        self._work = []
        for outcome in outcomes:
            if isinstance(outcome, OSError):
                raise translate_os_error(outcome) from outcome
            if isinstance(outcome, BaseException):
                raise outcome

    def _open(self) -> int:
        if self._fd is None:
            flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC
            self._fd = os.open(self.temp_path, flags, 0o600)
        return self._fd

    def _write_batch(self, batch: list[bytes | memoryview]) -> None:
        self.store.check_room(sum(len(chunk) for chunk in batch))
        fd = self._open()
        _write_batch_to(fd, batch)
        self._written += sum(len(chunk) for chunk in batch)
        if (
            _start_writeback is not None
            and self._written - self._writeback_from >= WRITEBACK_EVERY_BYTES
        ):
            _start_writeback(fd, self._writeback_from, self._written - self._writeback_from)
            self._writeback_from = self._written

    def _write_in_place(self, batch: list[bytes | memoryview], final: Path) -> int:
        """A blob whose every byte is in hand at its first disk work (a small upload):
        written straight under its final name, not yet durable; returns the open
        descriptor for its round (SmallBlobRounds) to make it so. No temp file and no
        rename: until its catalog row commits (only after the round) a blob is not a
        file whatever its name, and a blob without a row is an orphan that the
        start-up reclaim and the sweep remove (app/ops/sweep.py), so the rename's
        guarantee (never a partial file under a final name) adds nothing here.
        Writer threads only."""
        self.store.check_room(sum(len(chunk) for chunk in batch))
        shard = self.store._shard_for(final)
        # From here on discard() removes the file under its final name.
        self.temp_path = final
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC
        try:
            self._fd = os.open(final, flags, 0o600)
        except FileNotFoundError:  # the shard was removed behind our back
            self.store._shards.discard(shard.name)
            shard = self.store._shard_for(final)
            self._fd = os.open(final, flags, 0o600)
        _write_batch_to(self._fd, batch)
        self._written = self.size
        return self._fd

    def _close(self) -> None:
        if self._fd is not None and not self._closed:
            self._closed = True
            os.close(self._fd)

    async def commit(self) -> Path:
        """Make the blob durable under its final name; only then does it exist."""
        await self._settle()
        tail, self._batch, self._batch_bytes = self._batch, [], 0
        final = self.store.path_of(self.id)
        if self._fd is None:  # every byte in hand: a small blob, kept in a round
            try:
                await self.store.small_rounds.keep(self, tail, final)
            except OSError as exc:
                await self.discard()
                raise translate_os_error(exc) from exc
            self._round = None
            return final

        def seal() -> None:
            if self._digest is not None and tail:
                _feed_digest(self._digest, tail)
            self._write_batch(tail)
            fd = self._open()
            os.fsync(fd)
            self._closed = True
            os.close(fd)
            self.store._move_into_shard(self.temp_path, final)

        sealing = self.store.executor.submit(seal)
        self._work = [sealing]
        try:
            await asyncio.wrap_future(sealing)
        except OSError as exc:
            await self.discard()
            raise translate_os_error(exc) from exc
        self._work = []
        return final

    async def discard(self) -> None:
        """Forget the blob: wait out any disk work still running, close and remove the
        temp file. Safe to call twice, and runs to the end even if we are cancelled."""
        self._batch = []
        work, self._work = self._work, []
        shared, self._round = self._round, None

        def drop() -> None:
            for pending in work:
                pending.cancel()
            wait([*work, *([shared] if shared is not None else [])])
            self._close()
            self.temp_path.unlink(missing_ok=True)
            self.store.forget_free_figure()  # its bytes are free again

        # On the loop's default threads, not the store's: drop() waits for store work.
        await asyncio.shield(asyncio.to_thread(drop))
