"""Resumable uploads: one upload state, many requests, whatever the protocol.

The protocol adapters (tus 1.0 in app/features/resumable/tus.py, the IETF draft in
.../ietf.py, `Upload-Complete: ?0` on /uploads) parse their headers and call this
module; it owns the rules every append obeys, as the ingest pipeline does for a
single request:

- Limits while bytes arrive: the declared length, `--max-file-bytes`, the account's
  quota (reserved at creation from the length; counted as bytes arrive while the
  length is deferred), the free-space floor, the minimum upload rate.
- Durability: an append's bytes are stored (fsynced locally; on S3, sent as parts
  with the short rest in the catalog, app/resumable/partials/s3.py) before its new
  offset is recorded, and the recorded offset is the only one ever reported. An
  append cut off midway keeps what arrived; one refused (over a limit, a checksum
  mismatch) keeps nothing.
- One request at a time per upload, and the newest wins: a HEAD or PATCH that finds
  an append still reading (a client that lost its network while we still hold its
  socket) ends that append at once, keeps its durable bytes, and goes on. Across
  nodes (S3 storage), a lease in the catalog names the node appending, which is
  asked over the cluster channel to do the same; offsets are recorded by
  compare-and-set, so a node that was not asked in time records nothing. Both are
  the locker's (app/resumable/locker.py).
- sha256 of the whole file, kept running across appends in memory; after a restart
  (or a checksum rollback, or appends on another node) it is computed again from
  the stored blob at completion.
- A finished upload becomes a file row through `Uploads.keep` (app/ingest/intake.py),
  like any upload, and only then appears in lists.

It never sees a request: an append gets the body's chunks, its declared length and
whether its client went away (`Incoming`, made by app/server/body.py).
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import hashlib
import secrets
import sys
import time
from collections.abc import AsyncIterator, Callable
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass, replace

from stario.exceptions import ClientDisconnected, RequestBodyError

from app.accounts.quotas import QuotaExceeded
from app.catalog.protocol import Database
from app.files.store import FileRow
from app.ingest.intake import Destination, Incoming, Uploads, cover
from app.ingest.names import display_name
from app.ingest.pipeline import (
    IngestedFile,
    IngestError,
    body_error,
    declared_type,
    over_quota,
    storage_errors,
    too_large,
)
from app.ingest.sniff import OCTET_STREAM, SNIFF_BYTES, sniff
from app.requests.events import requests_changed
from app.resumable.locker import Hold, Locker
from app.resumable.partials import Appender, Partials
from app.resumable.store import (
    Superseded,
    UploadState,
    all_unfinished,
    expired_uploads,
    forget_uploads,
    insert_columns,
    insert_upload,
    load_upload,
    row_of,
    unfinished_of_ended_requests,
    unfinished_of_request,
)
from app.storage.ids import UPLOAD_ID, new_blob_id

# tus names these; the IETF draft's digest fields map onto the same ones.
CHECKSUM_ALGORITHMS = ("sha1", "sha256", "sha512", "md5")
# A long append records a durable offset this often, so a crash (or kill -9) in the
# middle of one loses at most this much; not when the append carries a checksum,
# whose bytes count only once all of them are checked.
CHECKPOINT_BYTES = 64 * 1024 * 1024
# How often expired uploads are looked for while the server runs.
EXPIRE_EVERY_SECONDS = 60.0


def new_upload_id() -> str:
    """192 random bits, URL-safe, 32 characters."""
    return secrets.token_urlsafe(24)


def is_upload_id(text: str) -> bool:
    return UPLOAD_ID.fullmatch(text) is not None


class OffsetMismatch(IngestError):
    """The client's offset is not the server's: it must ask (HEAD) and go on from there."""

    def __init__(self, expected: int, provided: int) -> None:
        super().__init__(
            409, f"the upload is at offset {expected}, not {provided}: ask for the offset"
            " (HEAD) and send from there",
        )  # fmt: skip
        self.expected = expected
        self.provided = provided


class ChecksumMismatch(IngestError):
    def __init__(self, algorithm: str) -> None:
        super().__init__(460, f"the {algorithm} checksum of this append does not match; its"
                         " bytes were discarded: send them again")  # fmt: skip


class TakenOver(IngestError):
    def __init__(self, kept: bool = True) -> None:
        super().__init__(
            409, "a newer request took this upload over; its bytes so far are kept" if kept
            else "another request moved this upload on meanwhile; this one's bytes were not"
            " kept: ask for the offset (HEAD) and send from there",
        )  # fmt: skip


@dataclass(frozen=True, slots=True)
class Checksum:
    algorithm: str
    digest: bytes

    @classmethod
    def parse(cls, value: str) -> Checksum:
        """`<algorithm> <base64>` (tus Upload-Checksum); IngestError 400 when malformed."""
        algorithm, _, encoded = value.strip().partition(" ")
        algorithm = algorithm.lower()
        if algorithm not in CHECKSUM_ALGORITHMS:
            raise IngestError(
                400, f"unsupported checksum algorithm {algorithm!r}: use one of"
                f" {', '.join(CHECKSUM_ALGORITHMS)}",
            )  # fmt: skip
        try:
            digest = base64.b64decode(encoded.strip(), validate=True)
        except (binascii.Error, ValueError):
            raise IngestError(400, "the checksum is not base64") from None
        if len(digest) != hashlib.new(algorithm).digest_size:
            raise IngestError(400, f"the checksum is not a {algorithm} digest")
        return cls(algorithm, digest)


class _Both:
    """Feeds the running sha256 and this append's own checksum from one pass."""

    def __init__(self, *digests: hashlib._Hash | None) -> None:
        self._digests = [d for d in digests if d is not None]

    def update(self, data: bytes | memoryview, /) -> None:
        for digest in self._digests:
            digest.update(data)


@dataclass(slots=True)
class _Slot:
    """In memory, per upload: the running sha256, and the locker's hold on the
    upload while a request has it."""

    digest: hashlib._Hash | None = None
    digest_at: int = -1
    hold: Hold | None = None


@dataclass(frozen=True, slots=True)
class Appended:
    """What an append did: the upload's state after it, the file when it finished the
    upload, and why it stopped early (the bytes before that are kept) if it did."""

    state: UploadState
    file: FileRow | None = None
    stopped: IngestError | None = None


class ResumableUploads:
    def __init__(
        self,
        uploads: Uploads,
        partials: Partials,
        locker: Locker,
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.uploads = uploads
        self.partials = partials
        self.locker = locker
        self.clock = clock
        self._slots: dict[str, _Slot] = {}

    @property
    def db(self) -> Database:
        return self.uploads.db

    @property
    def expiry(self) -> float:
        return self.uploads.config.upload_expiry

    # ---- creation ------------------------------------------------------------

    async def create(
        self,
        to: Destination,
        *,
        length: int | None,
        name: str,
        declared_mime: str | None,
        metadata: str | None = None,
        partial: bool = False,
        directory: tuple[str, ...] = (),
        direct: bool = False,
    ) -> UploadState:
        """A new, empty upload of `length` bytes (None: told later) into `to`: its
        folder (`to.folder`), made at completion; `directory`, the folders under it
        its file goes into (from a relative path). `direct`: a direct upload session
        (app/resumable/direct.py), whose bytes go from the client to the bucket: its
        row's kind is 'direct', and tus and the IETF draft never see it."""
        shown = display_name(name)
        if length is not None and length > to.max_file_bytes:
            raise too_large(shown, to.max_file_bytes)
        most = self.partials.max_length
        if not direct and length is not None and most is not None and length > most:
            raise IngestError(
                413, f"{shown} is larger than a resumable upload on this storage can be"
                f" ({most} bytes): upload it in one request",
            )  # fmt: skip
        self.uploads.check_room(length)
        recorded = None
        if to.unfinished is not None:
            # Through a file request: a place among its few unfinished uploads, and
            # (a whole file) one of its files, held from now on by the row.
            recorded = to.unfinished.start(not partial)
        try:
            kind = "partial" if partial else "direct" if direct else "whole"
            state = await self._insert(to, length, shown, declared_mime, metadata, kind, directory)
        finally:
            if recorded is not None:
                recorded()
        if to.unfinished is not None:
            try:
                to.unfinished.confirm()
            except IngestError:
                await self.cancel(state)
                raise
        if state.request_id is not None:
            self._request_changed(state)
        if not partial and not direct and length != 0:
            # (A direct upload's bytes never pass this node: it has no progress to show.)
            self.uploads.progress.pause(state.id, state.name, 0, length, to.owner)
        if length == 0 and not partial:
            # Nothing will ever be appended: an empty file is complete at once.
            async with self._hold(state.id) as slot:
                row = await self._finish(state, to, slot)
            return replace(state, file_id=row.id)
        return state

    async def _insert(
        self,
        to: Destination,
        length: int | None,
        shown: str,
        declared_mime: str | None,
        metadata: str | None,
        kind: str,
        directory: tuple[str, ...],
    ) -> UploadState:
        now = self.clock()
        state = UploadState(
            id=new_upload_id(),
            owner=to.owner,
            request_id=to.request_id,
            name=shown,
            declared_mime=declared_type(declared_mime),
            metadata=metadata,
            length=length,
            offset=0,
            reserved=length or 0,
            kind=kind,
            created_at=now,
            expires_at=now + self.expiry,
            blob_id=new_blob_id(),
            file_id=None,
            folder_id=to.folder,
            directory="/".join(directory),
            replace_existing=int(to.replace),
        )
        with self.uploads.reserve(to) as quota:
            if length:
                cover(quota, shown, length)
            with storage_errors():
                await self.partials.create(state)
            try:
                await insert_upload(self.db, state)
            except BaseException:
                await self.partials.remove([state.id])
                raise
        return state

    def _request_changed(self, state: UploadState) -> None:
        """The owner's "File requests" list shows this upload through a request."""
        self.uploads.relay.publish(requests_changed(state.owner), "upload")

    # ---- lookup --------------------------------------------------------------

    async def find(
        self, upload_id: str, to: Destination, *, direct: bool = False
    ) -> UploadState | None:
        """The upload, if it is `to`'s and has not expired; else None (answer 404,
        as for an id that never existed). `direct`: a direct upload session's
        (app/resumable/direct.py); without it, only tus and IETF uploads are found,
        so neither protocol can append to a session nor the direct API see theirs."""
        if not is_upload_id(upload_id):
            return None
        state = await load_upload(self.db, upload_id)
        if state is None or state.owner != to.owner or state.request_id != to.request_id:
            return None
        if (state.kind == "direct") != direct:
            return None
        if state.expires_at <= self.clock() and not self.locker.busy(upload_id):
            return None
        return state

    @asynccontextmanager
    async def _hold(self, upload_id: str) -> AsyncIterator[_Slot]:
        """This upload to ourselves (the locker ends an append still reading first),
        with what is kept in memory of it."""
        async with self.locker.hold(upload_id) as hold:
            slot = self._slots.setdefault(upload_id, _Slot())
            slot.hold = hold
            try:
                yield slot
            finally:
                slot.hold = None

    async def current(self, state: UploadState) -> UploadState | None:
        """The upload's durable state now, after ending an append still reading (a
        HEAD takes over like a PATCH)."""
        with storage_errors():
            await self.locker.settle_elsewhere(state.id)
        async with self._hold(state.id):
            return await load_upload(self.db, state.id)

    # ---- appends -------------------------------------------------------------

    async def append(
        self,
        body: Incoming,
        state: UploadState,
        to: Destination,
        *,
        offset: int,
        checksum: Checksum | None = None,
        length: int | None = None,
        last: bool = False,
    ) -> Appended:
        """`body`'s bytes at `offset`. `length`: the total, when the client
        tells it now (deferred length); `last`: this append ends the upload (the IETF
        draft's `Upload-Complete: ?1`), so its length is where the bytes stop."""
        with storage_errors():
            await self.locker.settle_elsewhere(state.id)
        async with self._hold(state.id) as slot:
            fresh = await load_upload(self.db, state.id)
            if fresh is None:
                raise IngestError(404, "no such upload (it expired or was cancelled)")
            state = fresh
            if offset != state.offset:
                raise OffsetMismatch(state.offset, offset)
            if state.finished or (state.partial and state.complete):
                if body.carries_bytes:
                    raise IngestError(400, "the upload is complete: it takes no more bytes")
                return Appended(state)
            state = self._take_length(state, length)
            return await self._append(body, state, to, slot, checksum, last)

    def _take_length(self, state: UploadState, length: int | None) -> UploadState:
        if length is None:
            return state
        if state.length is not None:
            if length != state.length:
                raise IngestError(
                    400, f"the upload's length is {state.length} bytes; it cannot change"
                )
            return state
        if length < state.offset:
            raise IngestError(400, f"{length} bytes is less than the {state.offset} already sent")
        return replace(state, length=length)

    async def _append(
        self,
        body: Incoming,
        state: UploadState,
        to: Destination,
        slot: _Slot,
        checksum: Checksum | None,
        last: bool,
    ) -> Appended:
        offset = state.offset
        limit = state.length if state.length is not None else to.max_file_bytes
        declared = body.declared_bytes
        if declared is not None and offset + declared > limit:
            raise self._beyond(state, to)
        if state.length is not None and state.length > state.reserved:
            # The length arrived only now (deferred): hold it against the quota.
            self._reserve_more(state, to, state.length - state.reserved)
        self.uploads.check_room(declared)
        running = slot.digest if slot.digest_at == offset else None
        if running is None and offset == 0 and not state.partial:
            # The first bytes: the whole file's digest starts. (A partial's is never
            # needed: the concatenated file is hashed as it is joined.)
            running = hashlib.sha256()
        slot.digest, slot.digest_at = None, -1
        kept = running.copy() if running is not None and checksum is not None else None
        own = hashlib.new(checksum.algorithm) if checksum is not None else None
        with storage_errors():
            writer = await self.partials.appender(state, _Both(running, own))
        try:
            # `checkpointed`: bytes of this append recorded by checkpoints so far;
            # `checked_at`: how many had arrived at the last checkpoint.
            received = checkpointed = checked_at = 0
            stopped: IngestError | None = None
            refused = False
            me = asyncio.current_task()
            progress = self.uploads.progress
            quota = self.uploads.reserve(to)
            progress.resume(state.id)
            with quota, progress.track(state.name, state.length, to.owner) as transfer:
                transfer.received = transfer.resumed_from = offset
                hold = slot.hold
                assert hold is not None  # `_append` runs inside `_hold`
                hold.reading = True
                try:
                    async for chunk in body.chunks:
                        received += len(chunk)
                        if offset + received > limit:
                            raise self._beyond(state, to)
                        if state.length is None:
                            cover(quota, state.name, len(chunk))
                        with storage_errors():
                            await writer.write(chunk)
                            if checksum is None and received - checked_at >= CHECKPOINT_BYTES:
                                durable = await writer.checkpoint()
                                await self._record(writer, offset + durable, state.length)
                                checkpointed, checked_at = durable, received
                        transfer.add(state.name, len(chunk))
                    if body.cut_off() or (declared is not None and received != declared):
                        stopped = IngestError(
                            400, f"{state.name} was cut off: the client went away"
                        )
                except asyncio.CancelledError:
                    if me is None or not hold.taken_over(me):
                        raise
                    me.uncancel()
                    stopped = TakenOver()
                except (RequestBodyError, ClientDisconnected) as exc:
                    stopped = body_error(exc)
                except IngestError as exc:
                    stopped, refused = exc, True
                finally:
                    hold.reading = False
                try:
                    with storage_errors():
                        written = await writer.flush()
                except IngestError as exc:
                    stopped, refused, written = exc, True, checkpointed
                if checksum is not None and own is not None and not refused:
                    if stopped is not None:
                        # A checksum covers the whole append: a part of one cannot be trusted.
                        refused = True
                    elif own.digest() != checksum.digest:
                        stopped, refused = ChecksumMismatch(checksum.algorithm), True
                if refused:
                    # Nothing of a refused append is kept but what a checkpoint already
                    # recorded (valid bytes, and the catalog says so).
                    await writer.discard(checkpointed)
                    written = checkpointed
                    running = kept
                new_offset = offset + written
                length = state.length
                if last and stopped is None:
                    if length is not None and new_offset != length:
                        # Kept, but not complete: a file shorter than announced is no file.
                        stopped = IngestError(
                            400, f"the upload ended at {new_offset} bytes, not its {length}"
                        )
                    else:
                        length = new_offset
                await self._record(writer, new_offset, length)
                state = replace(
                    state, offset=new_offset, length=length, reserved=length or new_offset
                )
                if running is not None:
                    slot.digest, slot.digest_at = running, new_offset
            if not state.complete or state.partial:
                progress.pause(state.id, state.name, state.offset, state.length, to.owner)
                if state.request_id is not None:
                    self._request_changed(state)
            if stopped is not None and refused:
                raise stopped
            if state.complete and not state.partial:
                row = await self._finish(state, to, slot)
                return Appended(replace(state, file_id=row.id, reserved=0), row, stopped)
            return Appended(state, None, stopped)
        finally:
            await writer.close()

    async def _record(self, writer: Appender, offset: int, length: int | None) -> None:
        try:
            await writer.record(offset=offset, length=length, expires_at=self.clock() + self.expiry)
        except Superseded:
            # Another node went on with this upload meanwhile (this request's client
            # had given up on it): what this one sent is not the upload's.
            raise TakenOver(kept=False) from None

    @staticmethod
    def _beyond(state: UploadState, to: Destination) -> IngestError:
        if state.length is None:
            return too_large(state.name, to.max_file_bytes)
        return IngestError(
            413, f"more bytes than the upload's length ({state.length} bytes); nothing of"
            " this append was kept",
        )  # fmt: skip

    def _reserve_more(self, state: UploadState, to: Destination, more: int) -> None:
        with self.uploads.reserve(to) as quota:
            cover(quota, state.name, more)

    # ---- completion ----------------------------------------------------------

    async def _finish(self, state: UploadState, to: Destination, slot: _Slot) -> FileRow:
        """Turn a complete upload into a stored file, as a single-request upload
        would be: its bytes become the blob, then sha256 and the sniffed type, then
        the row through `Uploads.keep`."""
        assert state.length is not None
        running = slot.digest if slot.digest_at == state.length else None
        self._drop_slot(state.id)
        if to.unfinished is not None:
            # Through a file request: it must still be open and take this file (a tus
            # final claimed its place before its copy; this checks a close meanwhile).
            try:
                to.unfinished.finish(state.id)
            except IngestError:
                await self.cancel(state)
                raise
        if not to.unlimited:
            used, quota = self.uploads.quotas.usage(to.owner)
            held = self.uploads.quotas.held_by_resumable(to.owner)
            if quota is not None and used + held > quota:
                # The quota shrank since the upload was reserved.
                await self.cancel(state)
                raise over_quota(
                    state.name, QuotaExceeded(used + held - state.length, quota, state.length,
                                              to.whose),
                )  # fmt: skip
        with storage_errors():
            await self.partials.adopt(state)
            if running is not None:
                sha256 = running.hexdigest()
            else:
                # No node saw every byte here (a restart, another node's appends, a
                # checksum rollback): read once more (about 1 s per GiB locally).
                sha256 = (await self.partials.sha256(state)).hexdigest()
            head = await self.partials.read_head(state, SNIFF_BYTES) if state.length else b""
        ingested = IngestedFile(
            id=state.blob_id,
            name=state.name,
            size=state.length,
            sha256=sha256,
            mime=sniff(head) if state.length else OCTET_STREAM,
            declared_mime=state.declared_mime,
            directory=state.folders_below,
        )
        try:
            rows = await self._keep(ingested, state)
        except BaseException:
            # `keep` removed the blob: the upload is gone with it.
            await forget_uploads(self.db, [state.id])
            await self.partials.finished(state)
            raise
        await self._mark_finished(state, rows[0].id)
        return rows[0]

    async def _keep(self, ingested: IngestedFile, state: UploadState) -> list[FileRow]:
        """The file's row, in the folder the upload was created for."""
        return await self.uploads.keep(
            [ingested],
            state.owner,
            state.request_id,
            folder=state.folder_id,
            replace=bool(state.replace_existing),
        )

    async def _mark_finished(self, state: UploadState, file_id: str) -> None:
        async with self.db.transaction() as conn:
            await conn.execute(
                "UPDATE resumable_uploads SET file_id = ?, reserved = 0, offset = length"
                " WHERE id = ?",
                (file_id, state.id),
            )
        await self.partials.finished(state)

    async def concatenate(
        self,
        to: Destination,
        parts: list[UploadState],
        *,
        name: str,
        declared_mime: str | None,
        metadata: str | None,
        directory: tuple[str, ...] = (),
    ) -> tuple[UploadState, FileRow]:
        """tus `Upload-Concat: final`: the parts' bytes, in order, as one new file. The
        parts (complete, `to`'s own, each named once) are consumed. The final's own
        folder, `directory` and replace flag decide where the file goes.

        Every limit is checked before a byte is copied: a part named twice would let a
        client store its bytes over and over (1 MiB named 1,500 times was 1.5 GB), so
        the total is held to `--max-file-bytes`, the file request's, the quota and the
        free-space floor first. A refused final leaves its parts as they were; a failed
        one leaves no output behind."""
        shown = display_name(name)
        self._check_parts(to, parts)
        length = sum(part.length or 0 for part in parts)
        if length > to.max_file_bytes:
            raise too_large(shown, to.max_file_bytes)
        async with AsyncExitStack() as held:
            # The parts to ourselves (in one order, so two finals never wait on each
            # other), then as they are now: a final that ran meanwhile consumed them.
            for part_id in sorted({part.id for part in parts}):
                await held.enter_async_context(self._hold(part_id))
            fresh = [await load_upload(self.db, part.id) for part in parts]
            if any(part is None for part in fresh):
                raise IngestError(404, "a partial upload is gone (consumed, cancelled or expired)")
            parts = [part for part in fresh if part is not None]
            self._check_parts(to, parts)
            if to.claim_files is not None:
                to.claim_files(1)
            self._check_final_quota(to, parts, shown, length)
            # The copy writes every byte anew while the parts still hold theirs.
            self.uploads.check_room(length, reuse_for=0.0)
            state = self._final_state(to, shown, declared_mime, metadata, length, directory)
            try:
                with storage_errors():
                    joined = await self.partials.concatenate(state, parts)
                async with self.db.transaction() as conn:
                    # The parts' reservations become the final upload's, in one step;
                    # a part another node's final took meanwhile is not joined twice.
                    for part in parts:
                        gone = await conn.execute(
                            "DELETE FROM resumable_uploads WHERE id = ? AND file_id IS NULL",
                            (part.id,),
                        )
                        if int(gone.rowcount) != 1:
                            raise IngestError(404, "a partial upload is gone (consumed,"
                                              " cancelled or expired)")  # fmt: skip
                    await conn.execute(
                        f"INSERT INTO resumable_uploads {insert_columns()}", row_of(state)
                    )
            except BaseException:
                # Whatever was joined goes (a disk left full by it refuses everyone).
                await asyncio.shield(self.partials.discard_joined(state))
                raise
            await self.partials.consumed(parts)
        for part in parts:
            self._drop_slot(part.id)
        async with self._hold(state.id) as slot:
            slot.digest, slot.digest_at = joined, length
            row = await self._finish(state, to, slot)
        return replace(state, file_id=row.id, reserved=0), row

    @staticmethod
    def _check_parts(to: Destination, parts: list[UploadState]) -> None:
        seen: set[str] = set()
        for part in parts:
            if part.id in seen:
                raise IngestError(
                    400, "Upload-Concat: final names a partial upload more than once; each"
                    " partial upload is joined once",
                )  # fmt: skip
            seen.add(part.id)
            if part.owner != to.owner or part.request_id != to.request_id:
                # Answered as an unknown upload: another destination's are not seen here.
                raise IngestError(404, "no such partial upload here")
            if not part.partial:
                raise IngestError(400, "only partial uploads (Upload-Concat: partial) concatenate")
            if not part.complete:
                raise IngestError(400, "a partial upload is not complete yet")

    def _check_final_quota(
        self, to: Destination, parts: list[UploadState], shown: str, length: int
    ) -> None:
        """The final takes over its parts' reservations; beyond them (the quota may
        have shrunk since they were made) it must fit like any upload."""
        if to.unlimited:
            return
        quotas = self.uploads.quotas
        used, quota = quotas.usage(to.owner)
        if quota is None:
            return
        held = quotas.held_by_resumable(to.owner) + quotas.in_flight(to.owner)
        taken_over = sum(part.reserved for part in parts)
        before = used + held - taken_over
        if before + length > quota:
            unfinished = quotas.held_by_resumable(to.owner) - taken_over
            raise over_quota(shown, QuotaExceeded(before, quota, length, to.whose, unfinished))

    def _final_state(
        self,
        to: Destination,
        shown: str,
        declared_mime: str | None,
        metadata: str | None,
        length: int,
        directory: tuple[str, ...],
    ) -> UploadState:
        now = self.clock()
        return UploadState(
            id=new_upload_id(), owner=to.owner, request_id=to.request_id, name=shown,
            declared_mime=declared_type(declared_mime), metadata=metadata, length=length,
            offset=length, reserved=length, kind="whole", created_at=now,
            expires_at=now + self.expiry, blob_id=new_blob_id(), file_id=None,
            folder_id=to.folder, directory="/".join(directory),
            replace_existing=int(to.replace),
        )  # fmt: skip

    # ---- the end of an upload ------------------------------------------------

    async def cancel(self, state: UploadState) -> None:
        """Termination: the upload and its bytes go (a finished upload's file stays;
        only the record that it was uploaded goes)."""
        await forget_uploads(self.db, [state.id])
        await self.partials.remove([state.id])
        self._drop_slot(state.id)
        if state.request_id is not None:
            self._request_changed(state)

    async def terminate(self, state: UploadState) -> None:
        async with self._hold(state.id):
            await self.cancel(state)

    async def end_request(self, request_id: str) -> int:
        """A file request was closed: its unfinished uploads end now (an append still
        reading is ended first), their bytes and reservations go. Returns how many."""
        ended = 0
        for state in await unfinished_of_request(self.db, request_id):
            await self.terminate(state)
            ended += 1
        return ended

    def _drop_slot(self, upload_id: str) -> None:
        """The upload is finished or gone: nothing of it stays in memory."""
        self.uploads.progress.resume(upload_id)
        slot = self._slots.get(upload_id)
        if slot is not None:
            slot.digest, slot.digest_at = None, -1
            if not self.locker.busy(upload_id):
                del self._slots[upload_id]

    async def expire(self) -> int:
        """Remove uploads past their expiry (not one being appended to right now);
        their space and quota go back. Returns how many."""
        now = self.clock()
        expired = await expired_uploads(self.db, now)
        # And those of file requests that take no more files (closed, expired): left
        # only by a close that did not end them (a crash), they would hold space for
        # nothing until they expired.
        known = {s.id for s in expired}
        expired += [
            s for s in await unfinished_of_ended_requests(self.db, now) if s.id not in known
        ]
        gone = [s for s in expired if not self.locker.busy(s.id)]
        if gone:
            await forget_uploads(self.db, [s.id for s in gone])
            await self.partials.remove([s.id for s in gone if not s.finished])
            for state in gone:
                self._drop_slot(state.id)
                if state.request_id is not None:
                    self._request_changed(state)
        return len(gone)

    async def expire_periodically(self, every: float = EXPIRE_EVERY_SECONDS) -> None:
        while True:
            await asyncio.sleep(every)
            try:
                await self.expire()
            except Exception as exc:  # a bad sweep must not end the loop
                print(f"stowage: expiring resumable uploads failed: {exc!r}", file=sys.stderr)

    async def recover(self) -> int:
        """At start, before blobs without rows are reclaimed: an upload whose bytes
        had already become its blob when the process stopped is finished now; bytes
        of uploads that have no row (a crash right after creating them) go. Returns
        how many uploads were finished."""
        self.partials.prepare()
        unfinished = await all_unfinished(self.db)
        await self.partials.remove_strays({state.id for state in unfinished})
        if not self.db.shared:
            # This process owns the catalog: no append can be running elsewhere.
            await self.locker.forget_claims()
        finished = 0
        for state in unfinished:
            if await self.partials.holds(state):
                if not state.partial:
                    self.uploads.progress.pause(
                        state.id, state.name, state.offset, state.length, state.owner
                    )
                continue
            if state.complete and await self._blob_exists(state):
                if self.db.shared and state.expires_at - self.expiry > self.clock() - 600:
                    # Another node may be finishing it right now; the next start will.
                    continue
                row = await self.db.fetch_one("SELECT id FROM files WHERE id = ?", (state.blob_id,))
                if row is None:
                    await self._adopted(state)
                await self._mark_finished(state, state.blob_id)
                finished += 1
            else:
                await forget_uploads(self.db, [state.id])
        return finished

    async def _blob_exists(self, state: UploadState) -> bool:
        blob = await self.uploads.store.open(state.blob_id)
        if blob is None:
            return False
        await blob.close()
        return True

    async def _adopted(self, state: UploadState) -> None:
        """Record the file of an upload that became a blob before a crash."""
        assert state.length is not None
        sha256 = (await self.partials.sha256(state)).hexdigest()
        head = await self.partials.read_head(state, SNIFF_BYTES) if state.length else b""
        ingested = IngestedFile(
            state.blob_id, state.name, state.length, sha256,
            sniff(head) if state.length else OCTET_STREAM, state.declared_mime,
            state.folders_below,
        )  # fmt: skip
        await self._keep(ingested, state)
