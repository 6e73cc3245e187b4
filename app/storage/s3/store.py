"""The S3 backend of the `Store` interface (`--storage s3://BUCKET[/PREFIX]`), through
aiobotocore (chosen by `python -m bench.s3_clients`; see docs/scaling-out.md).

Object keys are the opaque blob ids under the prefix; client filenames never reach
the store. An upload streams as one multipart upload of PART_BYTES parts, at most one
part on the wire while the next gathers. Parts gather in temp files (unlinked from
birth, app/storage/s3/parts.py), so an upload holds about SPOOL_BYTES of memory;
sha256 is fed in byte order on a worker thread as the bytes reach the file. A blob
smaller than one part goes up as a single PUT (from memory when it is no larger than
SPOOL_BYTES). Any failure aborts the multipart upload, so no parts are left behind,
and the object exists only once it is complete.

Thumbnails (derived blobs) stay a local cache in the data dir; they are made from a
temp copy of the object (`local_copy`).
"""

from __future__ import annotations

import asyncio
import os
import tempfile
import time
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from aiobotocore.config import AioConfig
from aiobotocore.session import get_session
from botocore.exceptions import BotoCoreError, ClientError
from stario import Writer

from app.config import S3Credentials, StorageTarget
from app.storage.errors import StoreUnavailable, translate_os_error
from app.storage.ids import is_blob_id, new_blob_id
from app.storage.s3.parts import PARTS, PartFile, PartFiles
from app.storage.store import THUMBNAILS, Digest, derived_paths

if TYPE_CHECKING:
    from app.storage.direct import Direct
    from app.storage.s3.direct import DirectBucket

MiB = 1024 * 1024
# S3 parts are 5 MiB at least (but the last); 8 MiB keeps an upload's memory small
# (two parts) while a 64 GiB file still fits in S3's 10,000 parts... at 80 GB.
PART_BYTES = 8 * MiB
# An upload holds this much in memory before it goes to its part's temp file; a blob
# no larger never touches the disk. Parts gather in files, as tusd's s3store does, so
# memory does not grow with the part size times the uploads running (two 8 MiB part
# buffers per upload took a node's peak RSS past 100 MB).
SPOOL_BYTES = 1 * MiB
READ_BYTES = 1024 * 1024
# Failures the store, not the client, is to blame for: unreachable, timed out,
# refused, or answering 5xx.
TRANSPORT_ERRORS: tuple[type[BaseException], ...] = (
    BotoCoreError,
    ClientError,
    OSError,
    asyncio.TimeoutError,
)


def _unavailable(exc: BaseException, doing: str) -> StoreUnavailable:
    if isinstance(exc, ClientError):
        code = exc.response.get("Error", {}).get("Code", "error")
        return StoreUnavailable(f"the object store refused to {doing} ({code})")
    return StoreUnavailable(f"the object store could not be reached to {doing}")


def _missing(exc: ClientError) -> bool:
    status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
    code = exc.response.get("Error", {}).get("Code")
    return status == 404 or code in ("NoSuchKey", "404", "NotFound")


def no_such_upload(exc: ClientError) -> bool:
    """The multipart upload is gone (completed or aborted), or its key is."""
    return exc.response.get("Error", {}).get("Code") in ("NoSuchUpload", "404") or _missing(exc)


class S3Store:
    kind = "s3"

    def __init__(
        self,
        target: StorageTarget,
        credentials: S3Credentials,
        *,
        endpoint_url: str | None,
        local_root: Path,
        part_bytes: int = PART_BYTES,
    ) -> None:
        self.bucket = target.bucket
        self.prefix = target.prefix
        self.credentials = credentials
        self.endpoint_url = endpoint_url
        # Thumbnails and temp copies: local files beside the catalog.
        self.root = local_root
        self.part_bytes = part_bytes
        self._exit = AsyncExitStack()
        self._client: Any = None
        # Set at start (`use_direct`) when downloads are pre-signed GETs (--s3-direct all).
        self._signs_downloads: DirectBucket | None = None

    async def start(self) -> None:
        self._client = await self._new_client(self.endpoint_url)

    async def signing_client(self, endpoint_url: str) -> Any:
        """A second client, of the same settings, for `endpoint_url`: it only signs
        URLs (app/storage/s3/direct.py; signing makes no request), closed with the
        store."""
        return await self._new_client(endpoint_url)

    async def _new_client(self, endpoint_url: str | None) -> Any:
        config = AioConfig(
            connect_timeout=5,
            read_timeout=60,
            # A store that is down fails fast; the uploader is told to try again.
            retries={"max_attempts": 2, "mode": "standard"},
            s3={"addressing_style": "path"},
            # Pre-signed URLs (app/storage/s3/direct.py) need SigV4: only it signs the
            # part's Content-Length and checksum, which the store then enforces.
            signature_version="s3v4",
            # The sha256 of every part is already in its signature: no extra CRC pass.
            request_checksum_calculation="when_required",
            response_checksum_validation="when_required",
            max_pool_connections=64,
        )
        return await self._exit.enter_async_context(
            get_session().create_client(
                "s3",
                endpoint_url=endpoint_url,
                region_name=self.credentials.region,
                aws_access_key_id=self.credentials.access_key_id,
                aws_secret_access_key=self.credentials.secret_access_key,
                config=config,
            )
        )

    @property
    def client(self) -> Any:
        if self._client is None:
            raise RuntimeError("S3Store.start() was not awaited")
        return self._client

    async def aclose(self) -> None:
        await self._exit.aclose()
        self._client = None

    def key_of(self, blob_id: str) -> str:
        if not is_blob_id(blob_id):
            raise ValueError("not a blob id")
        return self.prefix + blob_id

    def check_room(self, incoming: int, *, reuse_for: float = 0.0) -> None:
        """An object store has no free-space floor to keep."""

    @property
    def parts_dir(self) -> Path:
        return self.root / PARTS

    def prepare(self) -> int:
        (self.root / THUMBNAILS).mkdir(parents=True, exist_ok=True)
        self.parts_dir.mkdir(parents=True, exist_ok=True)
        # Named part files exist only where O_TMPFILE is missing, and only when a
        # process died between creating and unlinking one.
        leftovers = list(self.parts_dir.glob("part-*"))
        for leftover in leftovers:
            leftover.unlink(missing_ok=True)
        return len(leftovers)

    def create(self, digest: Digest | None = None) -> S3NewBlob:
        return S3NewBlob(self, new_blob_id(), digest)

    def use_direct(self, direct: Direct) -> None:
        self._signs_downloads = direct.bucket if direct.downloads else None

    async def download_url(
        self, blob_id: str, *, content_type: str, content_disposition: str, cache_control: str
    ) -> str | None:
        """Signing is local (no request to the store): a pre-signed GET URL."""
        if self._signs_downloads is None:
            return None
        return await self._signs_downloads.get_url(
            blob_id,
            content_type=content_type,
            content_disposition=content_disposition,
            cache_control=cache_control,
        )

    async def open(self, blob_id: str) -> S3Blob | None:
        key = self.key_of(blob_id)
        size = await self.object_size(key)
        return None if size is None else S3Blob(self, key, size)

    async def object_size(self, key: str) -> int | None:
        """The object's size, or None when there is no such object."""
        try:
            head = await self.client.head_object(Bucket=self.bucket, Key=key)
        except ClientError as exc:
            if _missing(exc):
                return None
            raise _unavailable(exc, "read a file") from exc
        except TRANSPORT_ERRORS as exc:
            raise _unavailable(exc, "read a file") from exc
        return int(head["ContentLength"])

    @asynccontextmanager
    async def local_copy(self, blob_id: str) -> AsyncIterator[Path | None]:
        blob = await self.open(blob_id)
        if blob is None:
            yield None
            return
        # A job cancelled at shutdown (thumbnails, renditions) must never leave its copy
        # in the temp dir. The empty file is made without an await (a cancelled thread
        # hop would lose its name); close and unlink go in ONE thread hop, which runs to
        # its end even when the await on it is cancelled (two hops lost the unlink), and
        # keeps a big file's unlink off the event loop.
        fd, name = tempfile.mkstemp(prefix="stowage-s3-")
        try:
            await blob.copy_to(fd)
            yield Path(name)
        finally:
            await asyncio.to_thread(_close_and_remove, fd, Path(name))

    def local_path(self, blob_id: str) -> None:
        return None

    def thumbnail_path_of(self, blob_id: str) -> Path:
        if not is_blob_id(blob_id):
            raise ValueError("not a blob id")
        return self.root / THUMBNAILS / blob_id[:2] / f"{blob_id}.webp"

    def no_thumbnail_path_of(self, blob_id: str) -> Path:
        return self.thumbnail_path_of(blob_id).with_suffix(".none")

    async def remove_derived(self, blob_ids: list[str]) -> None:
        def unlink_all() -> None:
            for blob_id in blob_ids:
                for path in derived_paths(self.thumbnail_path_of(blob_id), blob_id):
                    path.unlink(missing_ok=True)

        await asyncio.to_thread(unlink_all)

    async def remove(self, blob_ids: list[str]) -> None:
        keys = [self.key_of(blob_id) for blob_id in blob_ids]
        try:
            for start in range(0, len(keys), 1000):  # DeleteObjects takes 1000 at most
                batch = keys[start : start + 1000]
                answer = await self.client.delete_objects(
                    Bucket=self.bucket,
                    Delete={"Objects": [{"Key": key} for key in batch], "Quiet": True},
                )
                if answer.get("Errors"):
                    raise StoreUnavailable(
                        f"the object store did not delete {len(answer['Errors'])} object(s)"
                    )
        except TRANSPORT_ERRORS as exc:
            if isinstance(exc, StoreUnavailable):
                raise
            raise _unavailable(exc, "delete files") from exc
        finally:
            await self.remove_derived(blob_ids)

    async def blob_sizes(self) -> dict[str, int]:
        return {blob_id: size for blob_id, (size, _) in (await self.objects()).items()}

    async def objects(self) -> dict[str, tuple[int, float]]:
        """Every blob under the prefix: id -> (size, seconds since it was stored)."""
        found: dict[str, tuple[int, float]] = {}
        now = time.time()
        try:
            pages = self.client.get_paginator("list_objects_v2").paginate(
                Bucket=self.bucket, Prefix=self.prefix
            )
            async for page in pages:
                for item in page.get("Contents", []):
                    blob_id = item["Key"][len(self.prefix) :]
                    if is_blob_id(blob_id):
                        age = now - item["LastModified"].timestamp()
                        found[blob_id] = (int(item["Size"]), age)
        except TRANSPORT_ERRORS as exc:
            raise _unavailable(exc, "list files") from exc
        return found

    async def unfinished_uploads(self) -> list[tuple[str, str, float]]:
        """(key, upload id, seconds since it began) of every multipart upload under the
        prefix neither completed nor aborted."""
        found: list[tuple[str, str, float]] = []
        now = time.time()
        try:
            pages = self.client.get_paginator("list_multipart_uploads").paginate(
                Bucket=self.bucket, Prefix=self.prefix
            )
            async for page in pages:
                for upload in page.get("Uploads", []):
                    age = now - upload["Initiated"].timestamp()
                    found.append((upload["Key"], upload["UploadId"], age))
        except TRANSPORT_ERRORS as exc:
            raise _unavailable(exc, "list unfinished uploads") from exc
        return found

    async def abort_upload(self, key: str, upload_id: str) -> None:
        """Abort a multipart upload (and its parts); one already gone is no error."""
        try:
            await self.client.abort_multipart_upload(
                Bucket=self.bucket, Key=key, UploadId=upload_id
            )
        except ClientError as exc:
            if not no_such_upload(exc):
                raise _unavailable(exc, "abort an unfinished upload") from exc
        except TRANSPORT_ERRORS as exc:
            raise _unavailable(exc, "abort an unfinished upload") from exc


def _close_and_remove(fd: int, path: Path) -> None:
    os.close(fd)
    path.unlink(missing_ok=True)


class S3Blob:
    """A committed object opened for reading (its size known from HEAD)."""

    def __init__(self, store: S3Store, key: str, size: int) -> None:
        self.store = store
        self.key = key
        self.size = size

    async def _get(self, start: int, length: int) -> Any:
        answer = await self.store.client.get_object(
            Bucket=self.store.bucket, Key=self.key, Range=f"bytes={start}-{start + length - 1}"
        )
        return answer["Body"]

    async def send(self, w: Writer, start: int, length: int) -> bool:
        """The range straight from S3 (Range passed through). The next read from S3
        runs while the client takes the last one (drain), and no further: at most two
        reads are held, so S3 waits for a slow reader."""
        sent = 0
        try:
            body = await self._get(start, length)
            async with body:
                reading = asyncio.ensure_future(body.read(min(READ_BYTES, length)))
                try:
                    while sent < length:
                        data = await reading
                        if not data:
                            break
                        sent += len(data)
                        w.write(data)
                        if sent < length:
                            more = min(READ_BYTES, length - sent)
                            reading = asyncio.ensure_future(body.read(more))
                        await w.drain()
                        if w.closing:
                            return False
                finally:
                    if not reading.done():  # the client left, or the store failed
                        reading.cancel()
                        await asyncio.gather(reading, return_exceptions=True)
        except TRANSPORT_ERRORS:
            # Headers are out: all that is honest now is to cut the response short.
            w.abort()
            return False
        if sent < length:
            w.abort()  # the object is shorter than its row says: never pad
            return False
        return True

    async def copy_to(self, fd: int) -> None:
        body = await self._get(0, self.size) if self.size else None
        if body is None:
            return
        try:
            async with body:
                while data := await body.read(READ_BYTES):
                    await asyncio.to_thread(os.write, fd, data)
        except TRANSPORT_ERRORS as exc:
            raise _unavailable(exc, "read a file") from exc

    async def close(self) -> None:
        """Nothing held between requests: each `send` opens and closes its own GET."""


class S3NewBlob:
    """One object being written as a multipart upload (see the module's docstring).

    Arriving chunks are held until SPOOL_BYTES have gathered; then, on a thread, they
    are appended to the part's temp file and fed to the digest. A full part goes to
    S3 from its file while the next part gathers in a second one; a sent part's file
    is reused for the part after next. So an upload holds about SPOOL_BYTES of memory
    whatever the part size, and at most two part files. A blob that never grows past
    SPOOL_BYTES never touches the disk: it goes up from memory in one PUT."""

    def __init__(self, store: S3Store, blob_id: str, digest: Digest | None) -> None:
        self.store = store
        self.id = blob_id
        self.key = store.key_of(blob_id)
        self.size = 0
        self._digest = digest
        self._held: list[bytes] = []
        self._held_bytes = 0
        # Bytes of the part now gathering, held and in its file together.
        self._fill = 0
        self._file: PartFile | None = None
        self._part_files = PartFiles(store.parts_dir)
        self._upload_id: str | None = None
        self._parts: list[dict[str, Any]] = []
        self._in_flight: asyncio.Task[None] | None = None
        self._done = False

    async def write(self, chunk: bytes | memoryview) -> None:
        view = memoryview(chunk).cast("B")
        self.size += len(view)
        part = self.store.part_bytes
        while view:
            piece = view[: part - self._fill]
            if isinstance(chunk, bytes) and len(piece) == len(chunk):
                self._held.append(chunk)  # immutable: kept as it is
            else:
                # A slice, or a view of a buffer its owner may reuse: copied.
                self._held.append(bytes(piece))
            self._held_bytes += len(piece)
            self._fill += len(piece)
            view = view[len(piece) :]
            if self._fill == part:
                await self._send_part()
            elif self._held_bytes >= SPOOL_BYTES:
                await self._spool()

    async def _spool(self) -> None:
        """What is held goes to the end of the part's file (and the digest)."""
        if self._file is None:
            self._file = await self._part_files.take()
        held, self._held, self._held_bytes = self._held, [], 0
        file = self._file
        try:
            await asyncio.to_thread(file.append, held, self._digest)
        except OSError as exc:
            raise translate_os_error(exc) from exc

    async def _settle(self) -> None:
        if self._in_flight is not None:
            in_flight, self._in_flight = self._in_flight, None
            await in_flight

    async def _send_part(self) -> None:
        await self._spool()
        await self._settle()
        file, length = self._file, self._fill
        assert file is not None
        self._file, self._fill = None, 0
        client, bucket = self.store.client, self.store.bucket
        try:
            if self._upload_id is None:
                started = await client.create_multipart_upload(Bucket=bucket, Key=self.key)
                self._upload_id = started["UploadId"]
        except TRANSPORT_ERRORS as exc:
            raise _unavailable(exc, "start storing an upload") from exc
        number = len(self._parts) + 1
        self._parts.append({"PartNumber": number})
        part = self._parts[-1]

        async def upload() -> None:
            try:
                answer = await client.upload_part(
                    Bucket=bucket,
                    Key=self.key,
                    UploadId=self._upload_id,
                    PartNumber=number,
                    Body=file.reader(length),
                    ContentLength=length,
                )
            except TRANSPORT_ERRORS as exc:
                raise _unavailable(exc, "store part of an upload") from exc
            part["ETag"] = answer["ETag"]
            self._part_files.release(file)

        self._in_flight = asyncio.create_task(upload())

    async def commit(self) -> str:
        """Finish the object; only then does it exist under its key."""
        client, bucket = self.store.client, self.store.bucket
        try:
            if self._upload_id is None and self._file is None:
                # Never spooled: one PUT from memory, nothing to abort if it fails.
                body = b"".join(self._held)
                self._held, self._held_bytes = [], 0
                if self._digest is not None:
                    # hashlib lets go of the GIL for big inputs: the loop runs meanwhile.
                    await asyncio.to_thread(self._digest.update, body)
                try:
                    await client.put_object(
                        Bucket=bucket, Key=self.key, Body=body, ContentLength=len(body)
                    )
                except TRANSPORT_ERRORS as exc:
                    raise _unavailable(exc, "store an upload") from exc
            elif self._upload_id is None:
                # Smaller than a part: one PUT from its file.
                await self._spool()
                assert self._file is not None
                try:
                    await client.put_object(
                        Bucket=bucket,
                        Key=self.key,
                        Body=self._file.reader(self._fill),
                        ContentLength=self._fill,
                    )
                except TRANSPORT_ERRORS as exc:
                    raise _unavailable(exc, "store an upload") from exc
            else:
                if self._fill:
                    await self._send_part()
                await self._settle()
                try:
                    await client.complete_multipart_upload(
                        Bucket=bucket,
                        Key=self.key,
                        UploadId=self._upload_id,
                        MultipartUpload={"Parts": self._parts},
                    )
                except TRANSPORT_ERRORS as exc:
                    raise _unavailable(exc, "finish storing an upload") from exc
        except BaseException:
            await self.discard()
            raise
        self._done = True
        self._close_files()
        return self.key

    def _close_files(self) -> None:
        self._file = None
        self._part_files.close()

    async def discard(self) -> None:
        """Abort the multipart upload (its parts go with it). Safe to call twice, and
        runs to the end even if we are cancelled."""
        if self._done:
            return
        self._done = True
        self._held, self._held_bytes = [], 0
        in_flight, self._in_flight = self._in_flight, None
        upload_id, self._upload_id = self._upload_id, None

        async def abort() -> None:
            if in_flight is not None:
                in_flight.cancel()
                await asyncio.gather(in_flight, return_exceptions=True)
            # Only now: a part still on the wire reads from its file.
            self._close_files()
            if upload_id is not None:
                try:
                    await self.store.client.abort_multipart_upload(
                        Bucket=self.store.bucket, Key=self.key, UploadId=upload_id
                    )
                except TRANSPORT_ERRORS:
                    # The store is down: `stowage check --repair` aborts what is left.
                    pass

        await asyncio.shield(asyncio.create_task(abort()))
