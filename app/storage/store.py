"""The one blob-store interface: the ingest pipeline, downloads, shares, deletes and
thumbnails talk to a `Store` and never ask which backend is behind it.

Two backends: `LocalStore` (app/storage/local/: files in the data dir, the default)
and `S3Store` (app/storage/s3/: objects in an S3 bucket, `--storage s3://...`).
What is inherently local stays behind the interface: a local store sends a file with
`pread`, an S3 store streams the object; thumbnails are made from a path, which for
S3 is a temp copy (`local_copy`).
"""

from __future__ import annotations

from contextlib import AbstractAsyncContextManager
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from stario import Writer

if TYPE_CHECKING:
    from app.storage.direct import Direct

# Blobs derived from a file (its thumbnail, app/previews) are a local cache in the
# data dir whatever the backend: `.thumbs/<id[:2]>/<id>.webp`, or an empty
# `<id>.none` (no thumbnail can be made); a full-size preview's rendition
# `<id>.view.jpg`, or its markers `<id>.view.same` (the original shows as it is) and
# `<id>.view.none` (app/previews/renditions.py). They go with the blob.
THUMBNAILS = ".thumbs"
DERIVED_SUFFIXES = (".webp", ".none", ".view.jpg", ".view.same", ".view.none")


def derived_paths(thumbnail: Path, blob_id: str) -> list[Path]:
    """Every derived file of `blob_id`, given where its thumbnail goes."""
    return [thumbnail.with_name(blob_id + suffix) for suffix in DERIVED_SUFFIXES]


class Digest(Protocol):
    def update(self, data: bytes | memoryview, /) -> None: ...


class NewBlob(Protocol):
    """A blob being written: `write` chunks, then `commit` (only then does it exist),
    or `discard` (nothing of it is left, also safe after a failed commit)."""

    id: str
    size: int

    async def write(self, chunk: bytes | memoryview) -> None: ...

    async def commit(self) -> object: ...

    async def discard(self) -> None: ...


class OpenBlob(Protocol):
    """A committed blob opened for reading; `close` always follows."""

    size: int

    async def send(self, w: Writer, start: int, length: int) -> bool:
        """`length` bytes from `start` to the client at its pace; True when every byte
        went out to a client still there, False if it left or the blob came up short
        (then the response is aborted: never padded)."""
        ...

    async def close(self) -> None: ...


class Store(Protocol):
    # "local" or "s3": for start-up messages and the few inherently local features.
    kind: str

    def check_room(self, incoming: int, *, reuse_for: float = 0.0) -> None:
        """Raise LowOnSpace when `incoming` more bytes would not fit (local disk only)."""
        ...

    def prepare(self) -> int:
        """Create what the store needs locally; returns how many leftovers it removed."""
        ...

    def create(self, digest: Digest | None = None) -> NewBlob: ...

    async def open(self, blob_id: str) -> OpenBlob | None:
        """The blob for reading, or None when it is gone."""
        ...

    def use_direct(self, direct: Direct) -> None:
        """What start-up decided about direct transfers (`open_direct`): a store whose
        bucket signs GET URLs hands them out from `download_url` when `direct.downloads`."""
        ...

    async def download_url(
        self, blob_id: str, *, content_type: str, content_disposition: str, cache_control: str
    ) -> str | None:
        """A short-lived URL from which the client reads the blob straight from the
        store, presented with these headers; None when this store's downloads go
        through the node (local storage, or direct downloads off)."""
        ...

    def local_copy(self, blob_id: str) -> AbstractAsyncContextManager[Path | None]:
        """A local file with the blob's bytes for the life of the context (the blob
        itself on a local store, a temp copy from S3), or None when it is gone."""
        ...

    def local_path(self, blob_id: str) -> Path | None:
        """The blob's own file when blobs are local files, else None: for what only a
        local file can do (archives lay out members by path, resumable partials are
        renamed into place)."""
        ...

    async def remove(self, blob_ids: list[str]) -> None:
        """The blobs and what was derived from them (thumbnails)."""
        ...

    async def remove_derived(self, blob_ids: list[str]) -> None: ...

    def thumbnail_path_of(self, blob_id: str) -> Path: ...

    def no_thumbnail_path_of(self, blob_id: str) -> Path: ...

    async def blob_sizes(self) -> dict[str, int]:
        """Every committed blob's id and size, for reconciling with the catalog."""
        ...

    async def aclose(self) -> None: ...
