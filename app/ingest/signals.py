"""Datastar file signals: `{"files": [{"name", "contents" (base64), "mime"}], ...}`.

What Datastar v1 sends for `<input type="file" multiple data-bind:files>` with
`@post('/uploads')`. Each file's base64 is decoded in slices and fed to the pipeline,
so beside the parsed signals only one slice is held at a time.

A file may carry its relative path ("a/b/c.txt", a dropped folder's file): as a
`path` in its entry, or in a `paths` signal beside `files`, one per file in the same
order (what a page can bind next to the input's `files`; null or "" for a file with
none). The folders it names are made under the upload's folder.
"""

from base64 import b64decode
from dataclasses import dataclass

from app.accounts.quotas import QuotaExceeded, Reservation
from app.common.http import NotJson, parse_json
from app.ingest.multipart import MAX_PARTS
from app.ingest.names import BadPath, Placed, relative_path
from app.ingest.pipeline import Ingest, IngestedFile, IngestError, over_quota, too_large
from app.storage.store import Store

SIGNAL = "files"
PATHS_SIGNAL = "paths"
# Like a multipart form's parts: one request, at most this many files.
MAX_FILES = MAX_PARTS
# A multiple of 4, so every slice but the last is whole base64 quanta: 768 KiB decoded.
BASE64_SLICE_CHARS = 1024 * 1024


@dataclass(frozen=True, slots=True)
class FileSignal:
    name: str
    contents: str
    mime: str | None
    # Its relative path, when the page sent one ("a/b/c.txt").
    path: str | None = None

    def placed(self) -> Placed:
        """The folders it goes into under the upload's folder, and its name."""
        if self.path is None:
            return (), self.name
        try:
            return relative_path(self.path)
        except BadPath as exc:
            raise IngestError(400, str(exc)) from None


def parse_file_signals(body: str | bytes) -> list[FileSignal]:
    """The `files` signal, checked for shape; any other signal is ignored."""
    try:
        signals = parse_json(body)
    except NotJson as exc:
        raise IngestError(400, str(exc)) from None
    if not isinstance(signals, dict):
        raise IngestError(400, "the body is not a JSON object of Datastar signals")
    entries = signals.get(SIGNAL)
    if not isinstance(entries, list):
        raise IngestError(
            400, 'no "files" signal: expected an array of {"name", "contents", "mime"}'
        )
    if not entries:
        raise IngestError(400, 'the "files" signal is empty: pick a file first')
    if len(entries) > MAX_FILES:
        raise IngestError(
            413, f'the "files" signal has {len(entries)} files; at most {MAX_FILES} per request'
        )
    paths = signals.get(PATHS_SIGNAL)
    if paths is not None and (
        not isinstance(paths, list)
        or len(paths) != len(entries)
        or not all(p is None or isinstance(p, str) for p in paths)
    ):
        raise IngestError(
            400, 'the "paths" signal must list one relative path (or null) per file in "files"'
        )
    files = []
    for number, entry in enumerate(entries, 1):
        if not isinstance(entry, dict):
            raise IngestError(400, f"file {number} is not an object")
        name, contents, mime = entry.get("name"), entry.get("contents"), entry.get("mime")
        if not isinstance(name, str) or not name.strip():
            raise IngestError(400, f"file {number} has no name")
        if not isinstance(contents, str):
            raise IngestError(400, f"{name}: contents are missing")
        if contents.startswith("data:"):
            header, marker, contents = contents.partition(",")
            if not marker or not header.endswith(";base64"):
                raise IngestError(400, f"{name}: contents are a data URL that is not base64")
        if mime is not None and not isinstance(mime, str):
            raise IngestError(400, f"{name}: mime must be a string")
        path = entry.get("path", paths[number - 1] if paths is not None else None)
        if path is not None and not isinstance(path, str):
            raise IngestError(400, f"{name}: path must be a string")
        signal = FileSignal(name, contents, mime or None, path or None)
        signal.placed()  # a bad path is refused before any file is stored
        files.append(signal)
    return files


def _decoded_size(contents: str) -> int:
    return len(contents) * 3 // 4 - contents[-2:].count("=")


async def ingest_file_signals(
    store: Store,
    files: list[FileSignal],
    *,
    max_file_bytes: int,
    quota: Reservation | None = None,
) -> list[IngestedFile]:
    """Every file through the pipeline, all or none; committed blobs, not yet recorded.
    The sizes are known before anything is written, so the whole batch's quota is
    held (or refused) first."""
    for signal in files:
        if _decoded_size(signal.contents) > max_file_bytes:
            raise too_large(signal.name, max_file_bytes)
    if quota is not None:
        try:
            quota.cover(sum(_decoded_size(signal.contents) for signal in files))
        except QuotaExceeded as exc:
            if len(files) == 1:
                raise over_quota(files[0].name, exc) from None
            raise over_quota(f"these {len(files)} files", exc, several=True) from None
    stored: list[IngestedFile] = []
    try:
        for signal in files:
            directory, name = signal.placed()
            ingest = Ingest(
                store,
                name=name,
                declared_mime=signal.mime,
                max_bytes=max_file_bytes,
                directory=directory,
            )
            try:
                for start in range(0, len(signal.contents), BASE64_SLICE_CHARS):
                    piece = signal.contents[start : start + BASE64_SLICE_CHARS]
                    try:
                        await ingest.feed(b64decode(piece, validate=True))
                    except ValueError:  # binascii.Error, or non-ASCII text
                        raise IngestError(
                            400, f"{ingest.name}: contents are not valid base64"
                        ) from None
                stored.append(await ingest.finish())
            except BaseException:
                await ingest.abort()
                raise
    except BaseException:
        await store.remove([f.id for f in stored])
        raise
    return stored
