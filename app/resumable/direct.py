"""Direct upload sessions: on S3 storage, a client sends a file's bytes straight to the
bucket, as parts of one multipart upload, through URLs this node signs; the node
checks what arrived and records the file (docs/direct-transfers.md, "The protocol,
for scripts").

A session IS a resumable upload (app/resumable/uploads.py): a `resumable_uploads`
row of kind 'direct' with its `resumable_s3` row (the blob id and the multipart
upload id), made by `ResumableUploads.create`. So it has every rule an upload has
without a line here: `--max-file-bytes`, the quota reserved at opening (`reserved`
= the size), a file request's limits (`to.unfinished`), expiry (`--upload-expiry`
after the client last asked; `expire()` aborts the multipart upload and frees the
reservation), ending with a closed request, and `stowage check` knowing its
multipart upload. The session's own facts (its part size, the sha256 the client
declared) are the row's `metadata`, as JSON.

What the node trusts, and why:
- a part URL names the key, the multipart upload and the part number and signs the
  part's exact length (and, for a file of one part whose sha256 was declared, its
  `x-amz-checksum-sha256`): the bucket refuses any other body;
- at completion, the parts the bucket holds must be exactly 1..N with the expected
  sizes and the etags the client was given; the object's size is checked after;
- the sha256 is the declared one when the store verified it on the part PUT
  (`checksum: "store"`), else the object is read back once here (`"read-back"`:
  S3 has no whole-object SHA-256 of a multipart object);
- the type is sniffed from the object's first bytes, as for any upload.

No HTTP here: app/features/direct/ is the JSON API over this.
"""

from __future__ import annotations

import base64
import json
import time
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from app.accounts.quotas import QuotaExceeded
from app.catalog.protocol import Database
from app.files.store import FileRow, get_file
from app.ingest.intake import Destination
from app.ingest.names import BadPath, display_name, relative_path
from app.ingest.pipeline import IngestedFile, IngestError, over_quota, storage_errors
from app.ingest.sniff import SNIFF_BYTES, sniff
from app.resumable.store import UploadState, forget_uploads, load_upload, push_expiry
from app.resumable.uploads import ResumableUploads
from app.storage.direct import PartsRefused

if TYPE_CHECKING:
    from app.resumable.partials.s3 import S3Partials
    from app.storage.s3.direct import DirectBucket, HeldPart

MiB = 1024 * 1024
# The part size of a session: 8 MiB, larger (whole MiB) when a file would need more
# than S3's 10,000 parts. Every part but the last is exactly this long.
PART_BYTES = 8 * MiB
MAX_PARTS = 10_000
# Part URLs in one answer; `more` says when the client asks again (`?from=N`).
PARTS_PER_ANSWER = 100
# How long a node completing a session holds it against the other nodes (a read-back
# of a large file takes about a second per GiB here).
COMPLETING_SECONDS = 15 * 60.0
SHA256_HEX = frozenset("0123456789abcdef")
# S3's largest object (its parts then are 525 MiB, under S3's 5 GiB a part).
MAX_OBJECT_BYTES = 5 * 1024**4


# S3's bounds on a part (the last may be smaller than the least).
MIN_PART_BYTES = 5 * MiB
MAX_PART_BYTES = 5 * 1024 * MiB


def part_size_for(size: int) -> int:
    """8 MiB, or the least whole number of MiB that keeps `size` within 10,000 parts."""
    if size <= PART_BYTES * MAX_PARTS:
        return PART_BYTES
    return -(-size // (MAX_PARTS * MiB)) * MiB


def part_sizes(size: int, part_size: int) -> list[int]:
    """The size of each part, part 1 first."""
    full, rest = divmod(size, part_size)
    return [part_size] * full + ([rest] if rest else [])


def is_sha256_hex(text: str) -> bool:
    return len(text) == 64 and set(text) <= SHA256_HEX


def iso_utc(moment: float) -> str:
    """2026-12-07T18:32:40Z"""
    return datetime.fromtimestamp(moment, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _same_etag(a: str, b: str) -> bool:
    return a.strip().strip('"') == b.strip().strip('"')


@dataclass(frozen=True, slots=True)
class PartToSend:
    number: int
    size: int
    url: str
    # Headers the PUT must carry (a signed checksum), else the bucket refuses it.
    headers: dict[str, str]


@dataclass(frozen=True, slots=True)
class Session:
    """What a client is told of its session: the parts still to send (at most
    PARTS_PER_ANSWER, from `from_number` on; `more`: there are others after them),
    with fresh URLs, and the parts the bucket holds already."""

    state: UploadState
    part_size: int
    parts: list[PartToSend]
    more: bool
    held: list[HeldPart]
    # "store": the bucket checks the declared sha256 as the part arrives;
    # "read-back": the node reads the object once at completion for it.
    checksum: str

    @property
    def expires_at(self) -> str:
        return iso_utc(self.state.expires_at)


@dataclass(frozen=True, slots=True)
class Facts:
    """The session's own facts, kept in the row's `metadata` as JSON."""

    part_size: int
    sha256: str | None
    # Whether the bucket was found at start to refuse a body whose SHA-256 is not the
    # signed one (app/storage/s3/bucket_setup.py); decided when the session opens, so
    # every node that completes it trusts the same thing.
    store_verifies: bool = False

    def dumps(self, size: int) -> str:
        # `part_checksum`: the session's multipart upload declares SHA-256 part checksums
        # (app/resumable/partials/s3.py), as AWS requires of a part that carries one.
        return json.dumps({
            "direct": 1, "part_size": self.part_size, "sha256": self.sha256,
            "store_verifies": self.store_verifies,
            "part_checksum": self.sha256 is not None and size <= self.part_size,
        })  # fmt: skip

    @classmethod
    def of(cls, state: UploadState) -> Facts:
        data = json.loads(state.metadata or "{}")
        return cls(
            int(data["part_size"]), data.get("sha256"), bool(data.get("store_verifies", False))
        )

    def signs_checksum(self, state: UploadState) -> bool:
        """Whether the one part's URL signs the declared sha256 (a file of one part)."""
        return self.sha256 is not None and (state.length or 0) <= self.part_size

    def store_checks(self, state: UploadState) -> bool:
        """Whether the declared sha256 is the store's own check: signed, and the store
        refuses a body that does not match it. Otherwise the object is read back."""
        return self.store_verifies and self.signs_checksum(state)


class DirectUploads:
    """Direct upload sessions over the resumable engine, the S3 partials (the
    session's multipart upload) and the bucket's signing side."""

    def __init__(
        self, resumable: ResumableUploads, partials: S3Partials, bucket: DirectBucket
    ) -> None:
        self.resumable = resumable
        self.partials = partials
        self.bucket = bucket
        # Names this node in the cross-node hold of a completion.
        self.node = partials.lease.node

    @classmethod
    def over(cls, resumable: ResumableUploads, bucket: DirectBucket) -> DirectUploads:
        """Over an S3 node's resumable engine (its partials are S3's)."""
        from app.resumable.partials.s3 import S3Partials

        assert isinstance(resumable.partials, S3Partials)
        return cls(resumable, resumable.partials, bucket)

    @property
    def db(self) -> Database:
        return self.resumable.db

    # ---- opening ---------------------------------------------------------------

    async def open(
        self,
        to: Destination,
        *,
        name: str,
        size: int,
        content_type: str | None = None,
        relative_path_text: str | None = None,
        sha256: str | None = None,
        part_size: int | None = None,
    ) -> Session | FileRow:
        """A new session for a file of `size` bytes named `name` into `to` (its folder
        and replace flag already chosen), or, for an empty file, the file at once."""
        if not name.strip():
            raise IngestError(400, "name is empty: name the file")
        if size < 0:
            raise IngestError(400, "size is a whole number of bytes, 0 or more")
        if sha256 is not None:
            sha256 = sha256.strip().lower()
            if not is_sha256_hex(sha256):
                raise IngestError(400, "sha256 is the file's SHA-256 as 64 hex digits")
        directory: tuple[str, ...] = ()
        if relative_path_text is not None and relative_path_text.strip():
            try:
                directory, _ = relative_path(relative_path_text)
            except BadPath as exc:
                raise IngestError(400, f"relative_path: {exc}") from None
        if size == 0:
            # Nothing to send: an empty file is recorded now (a resumable upload of
            # length 0 completes as it is created).
            state = await self.resumable.create(
                to, length=0, name=name, declared_mime=content_type, directory=directory
            )
            assert state.file_id is not None
            row = await get_file(self.db, state.file_id)
            if row is None:
                raise IngestError(404, "the empty file was removed at once")
            return row
        if size > to.max_file_bytes:
            # Also checked by `create`; first here, so no part size is worked out for it.
            raise IngestError(
                413, f"{display_name(name)} is larger than the limit ({to.max_file_bytes} bytes)"
            )
        if size > MAX_OBJECT_BYTES:
            raise IngestError(
                413, f"{display_name(name)} is larger than an S3 object can be (5 TiB)"
            )
        facts = Facts(
            self._part_size(name, size, part_size), sha256, self.bucket.verifies_checksums
        )
        state = await self.resumable.create(
            to,
            length=size,
            name=name,
            declared_mime=content_type,
            metadata=facts.dumps(size),
            directory=directory,
            direct=True,
        )
        return await self._session(state, facts, {}, 1)

    @staticmethod
    def _part_size(name: str, size: int, asked: int | None) -> int:
        """The least part size that fits `size` in S3's 10,000 parts, or the client's
        choice between that and S3's 5 GiB a part (a client that hashed the whole file
        may send a file of up to 5 GiB as one part, whose sha256 the store checks)."""
        least = part_size_for(size)
        if asked is None:
            return least
        if not MIN_PART_BYTES <= asked <= MAX_PART_BYTES:
            raise IngestError(
                400, f"part_size is between {MIN_PART_BYTES} (5 MiB) and {MAX_PART_BYTES}"
                " (5 GiB) bytes, S3's bounds for a part",
            )  # fmt: skip
        if asked < least:
            raise IngestError(
                400, f"part_size {asked} would need more than {MAX_PARTS} parts for"
                f" {display_name(name)}: use {least} or more",
            )  # fmt: skip
        return asked

    # ---- asking ----------------------------------------------------------------

    async def find(self, upload_id: str, to: Destination) -> UploadState:
        """`to`'s session, or 404 (unknown, expired, abandoned, another's: one answer)."""
        state = await self.resumable.find(upload_id, to, direct=True)
        if state is None:
            raise IngestError(404, "no such upload session (it expired, was abandoned, or"
                              " never existed)")  # fmt: skip
        return state

    async def status(self, upload_id: str, to: Destination, from_number: int = 1) -> Session:
        """The session with fresh URLs for the parts the bucket does not hold yet, from
        part `from_number` on; the session lives `--upload-expiry` from now."""
        state = await self.find(upload_id, to)
        if state.finished:
            raise IngestError(409, "this upload is complete: POST .../complete again for its"
                              " file")  # fmt: skip
        held = await self._held(state)
        expires_at = self.resumable.clock() + self.resumable.expiry
        await push_expiry(self.db, state.id, expires_at)
        state = replace(state, expires_at=expires_at)
        return await self._session(state, Facts.of(state), held, from_number)

    async def _held(self, state: UploadState) -> dict[int, HeldPart]:
        """The parts the bucket holds; a session whose multipart upload is gone (aborted
        by `stowage check --repair`, or by the store) is gone too: 404."""
        where = await self.partials.multipart_of(state.id)
        held = None
        if where is not None:
            with storage_errors():
                held = await self.bucket.held_parts(*where)
        if held is None:
            key = self.bucket.store.key_of(state.blob_id)
            with storage_errors():
                joined = await self.bucket.store.object_size(key) == state.length
            if joined:
                # Completed (or being completed) by another request meanwhile: the
                # session and its file are that request's to record, never ended here.
                raise IngestError(409, "this upload is complete: POST .../complete again for"
                                  " its file")  # fmt: skip
            await self.resumable.terminate(state)
            raise IngestError(404, "no such upload session (its parts are gone from the"
                              " bucket)")  # fmt: skip
        return held

    async def _session(
        self, state: UploadState, facts: Facts, held: dict[int, HeldPart], from_number: int
    ) -> Session:
        assert state.length is not None
        where = await self.partials.multipart_of(state.id)
        if where is None:
            raise IngestError(404, "no such upload session")
        blob_id, multipart_id = where
        sizes = part_sizes(state.length, facts.part_size)
        missing = [
            (number, size)
            for number, size in enumerate(sizes, start=1)
            if number >= from_number and (number not in held or held[number].size != size)
        ]
        checksum = None
        headers: dict[str, str] = {}
        if facts.signs_checksum(state):
            assert facts.sha256 is not None
            checksum = base64.b64encode(bytes.fromhex(facts.sha256)).decode()
            headers = {"x-amz-checksum-sha256": checksum}
        parts = [
            PartToSend(
                number,
                size,
                await self.bucket.part_url(
                    blob_id, multipart_id, number, size, sha256_base64=checksum
                ),
                headers,
            )
            for number, size in missing[:PARTS_PER_ANSWER]
        ]
        return Session(
            state=state,
            part_size=facts.part_size,
            parts=parts,
            more=len(missing) > PARTS_PER_ANSWER,
            held=[held[n] for n in sorted(held)],
            checksum="store" if facts.store_checks(state) else "read-back",
        )

    # ---- completing ------------------------------------------------------------

    async def complete(
        self, upload_id: str, to: Destination, parts: list[tuple[int, str]]
    ) -> FileRow:
        """The file the session's parts make, recorded as any upload is; `parts`: the
        client's (number, etag) of every part. A session completed already answers
        its file again. Refused in words, with nothing recorded: parts missing, extra,
        of the wrong size or etag (the session stays open: send them and ask again),
        a file request that takes no more files or a quota that shrank (the session
        ends)."""
        state = await self.find(upload_id, to)
        if state.finished:
            return await self._file_of(state)
        async with self.resumable._hold(state.id):
            fresh = await load_upload(self.db, state.id)
            if fresh is None or fresh.kind != "direct":
                raise IngestError(404, "no such upload session")
            if fresh.finished:
                return await self._file_of(fresh)
            if not await self._claim(fresh):
                raise IngestError(409, "this upload is being completed by another request;"
                                  " ask again in a moment")  # fmt: skip
            try:
                return await self._complete(fresh, to, parts)
            finally:
                await self._release(fresh)

    async def _file_of(self, state: UploadState) -> FileRow:
        assert state.file_id is not None
        row = await get_file(self.db, state.file_id)
        if row is None:
            raise IngestError(404, "this upload's file has been removed since it completed")
        return row

    async def _claim(self, state: UploadState) -> bool:
        """The session to this node while it completes, across nodes (the lease
        columns of its multipart upload's row, which a tus append would use), and its
        expiry pushed past the completion. False: another node is completing it."""
        now = time.time()
        async with self.db.transaction() as conn:
            cursor = await conn.execute(
                "UPDATE resumable_s3 SET appending_node = ?, appending_until = ?"
                " WHERE upload_id = ? AND (appending_node IS NULL OR appending_until < ?)",
                (self.node, now + COMPLETING_SECONDS, state.id, now),
            )
            claimed = int(cursor.rowcount) == 1
            if claimed:
                await conn.execute(
                    "UPDATE resumable_uploads SET expires_at = ? WHERE id = ?",
                    (self.resumable.clock() + max(self.resumable.expiry, COMPLETING_SECONDS),
                     state.id),
                )  # fmt: skip
        return claimed

    async def _release(self, state: UploadState) -> None:
        async with self.db.transaction() as conn:
            await conn.execute(
                "UPDATE resumable_s3 SET appending_node = NULL, appending_until = NULL"
                " WHERE upload_id = ? AND appending_node = ?",
                (state.id, self.node),
            )

    async def _complete(
        self, state: UploadState, to: Destination, parts: list[tuple[int, str]]
    ) -> FileRow:
        assert state.length is not None
        facts = Facts.of(state)
        where = await self.partials.multipart_of(state.id)
        if where is None:
            raise IngestError(404, "no such upload session")
        blob_id, multipart_id = where
        key = self.bucket.store.key_of(blob_id)
        with storage_errors():
            held = await self.bucket.held_parts(blob_id, multipart_id)
            if held is None:
                # The multipart upload is gone: completed by an earlier try whose
                # answer was lost (its object is there, whole), or aborted.
                if await self.bucket.store.object_size(key) != state.length:
                    await self.resumable.cancel(state)
                    raise IngestError(404, "no such upload session (its parts are gone"
                                      " from the bucket)")  # fmt: skip
            else:
                joined = self._check_parts(state, facts, held, parts)
                try:
                    self._check_still_taken(state, to)
                except IngestError:
                    await self.resumable.cancel(state)
                    raise
                signed = (
                    base64.b64encode(bytes.fromhex(facts.sha256)).decode()
                    if facts.sha256 is not None and facts.signs_checksum(state)
                    else None
                )
                try:
                    await self.bucket.complete(blob_id, multipart_id, joined, sha256_base64=signed)
                except PartsRefused as exc:
                    raise IngestError(
                        409, f"the bucket would not join the parts ({exc.code}): a part was"
                        " sent again while the upload was being finished; ask for the"
                        " session (GET), send what it lists, and finish again",
                    ) from None  # fmt: skip
            stored = await self.bucket.store.object_size(key)
            if stored != state.length:
                await self.bucket.store.remove([blob_id])
                await self.resumable.cancel(state)
                raise IngestError(400, f"the bucket holds {stored} bytes, not the {state.length}"
                                  " declared: nothing was kept")  # fmt: skip
            if facts.store_checks(state):
                sha256 = facts.sha256
            else:
                sha256 = await self.bucket.sha256(blob_id, state.length)
                if facts.sha256 is not None and sha256 != facts.sha256:
                    # The parts are joined: the object cannot be sent again in part.
                    await self.bucket.store.remove([blob_id])
                    await self.resumable.cancel(state)
                    raise IngestError(
                        400, f"the bytes in the bucket have sha256 {sha256}, not the"
                        f" {facts.sha256} declared: nothing was kept; upload the file again",
                    )  # fmt: skip
            head = await self.bucket.read_head(blob_id, SNIFF_BYTES)
        assert sha256 is not None
        ingested = IngestedFile(
            id=blob_id,
            name=state.name,
            size=state.length,
            sha256=sha256,
            mime=sniff(head),
            declared_mime=state.declared_mime,
            directory=state.folders_below,
        )
        try:
            rows = await self.resumable._keep(ingested, state)
        except BaseException:
            # `keep` removed the object: the session is gone with it.
            await forget_uploads(self.db, [state.id])
            await self.partials.finished(state)
            raise
        await self.resumable._mark_finished(state, rows[0].id)
        self.resumable._drop_slot(state.id)
        return rows[0]

    @staticmethod
    def _check_parts(
        state: UploadState, facts: Facts, held: dict[int, HeldPart], parts: list[tuple[int, str]]
    ) -> list[HeldPart]:
        """The bucket's parts to join: exactly 1..N, each of its size, with the etags
        the client names. A refusal leaves the session open (the client can fix it)."""
        assert state.length is not None
        sizes = part_sizes(state.length, facts.part_size)
        count = len(sizes)
        named: dict[int, str] = {}
        for number, etag in parts:
            if number in named:
                raise IngestError(400, f"part {number} is named twice")
            if not 1 <= number <= count:
                raise IngestError(
                    400, f"there is no part {number}: this upload has parts 1 to {count}"
                )
            named[number] = etag
        missing = [n for n in range(1, count + 1) if n not in named]
        if missing:
            raise IngestError(400, f"{_numbers(missing)} missing from the list: this upload"
                              f" has parts 1 to {count}")  # fmt: skip
        joined: list[HeldPart] = []
        for number, size in enumerate(sizes, start=1):
            part = held.get(number)
            if part is None:
                raise IngestError(400, f"the bucket does not hold part {number} yet: send it"
                                  " (GET the session for its URL), then complete")  # fmt: skip
            if part.size != size:
                raise IngestError(400, f"part {number} holds {part.size} bytes, not {size}:"
                                  " send it again")  # fmt: skip
            if not _same_etag(part.etag, named[number]):
                raise IngestError(400, f"part {number}'s ETag is not the one the bucket holds:"
                                  " send the ETag its PUT answered")  # fmt: skip
            joined.append(part)
        return joined

    def _check_still_taken(self, state: UploadState, to: Destination) -> None:
        """Before the parts are joined: the file request still takes this file, and
        the quota (which may have shrunk since the session opened) still has room.
        Either refusal ends the session: nothing could make it fit."""
        if to.unfinished is not None:
            to.unfinished.finish(state.id)
        if not to.unlimited:
            quotas = self.resumable.uploads.quotas
            used, quota = quotas.usage(to.owner)
            held = quotas.held_by_resumable(to.owner)
            if quota is not None and used + held > quota:
                assert state.length is not None
                raise over_quota(
                    state.name,
                    QuotaExceeded(used + held - state.length, quota, state.length, to.whose),
                )

    # ---- abandoning ------------------------------------------------------------

    async def abandon(self, upload_id: str, to: Destination) -> None:
        """The session ends: its multipart upload is aborted and its reservation freed
        (a completed one's file stays; only the session goes)."""
        state = await self.find(upload_id, to)
        await self.resumable.terminate(state)


def _numbers(numbers: list[int]) -> str:
    shown = ", ".join(str(n) for n in numbers[:10])
    more = f" and {len(numbers) - 10} more" if len(numbers) > 10 else ""
    return f"part {shown}{more} is" if len(numbers) == 1 else f"parts {shown}{more} are"
