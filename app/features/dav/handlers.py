"""The WebDAV methods at /dav/ (RFC 4918 class 1 and 2). Each handler resolves the
path in the signed-in account's tree (app/webdav/tree.py), checks the `If` header and
the locks a change must present tokens for (`guard`), acts through the same engines
as the rest of the app (the ingest pipeline for PUT and COPY, the folders and files
tables for MKCOL, MOVE and DELETE), publishes what the files screen listens to, and
answers. Every handler ends in `request_ended`, so the next slashed target on the
connection reaches its route (app/server/peers.py)."""

from __future__ import annotations

import asyncio
import dataclasses
import unicodedata
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine, Sequence
from dataclasses import dataclass
from pathlib import Path
from secrets import token_hex
from typing import Any
from urllib.parse import unquote, urlsplit

from stario import App, Context, Writer
from stario.exceptions import ClientDisconnected, RequestBodyError

from app.access.gate import principal
from app.accounts.quotas import Reservation
from app.accounts.store import account_by_id
from app.catalog.protocol import Database, is_disk_full
from app.common.http import response_date
from app.downloads.serve import header_list, serve_file
from app.downloads.validators import (
    Precondition,
    evaluate_preconditions,
    modified_at,
    sent_modified,
    strong_etag,
)
from app.features.dav.bodies import (
    MOST_BODY_BYTES,
    BadBody,
    lockinfo_of,
    parse_xml,
    propfind_of,
    proppatch_of,
)
from app.features.dav.urls import DAV_PATH_ROUTES, DAV_PREFIX, DAV_ROOT_ROUTES
from app.features.dav.views import (
    LIVE_PROPERTIES,
    QUOTA_PROPERTIES,
    XML_TYPE,
    DateCache,
    empty_element,
    error_body,
    folder_listing,
    href_in,
    href_of,
    live_properties,
    lock_answer,
    multistatus,
    response,
    xml_text,
)
from app.files.store import FileRow, files_changed, remove_files, rename_file
from app.folders.store import (
    ROOT,
    FolderError,
    clean_folder_name,
    create_folder,
    delete_folders,
    move,
    rename_folder,
)
from app.ingest.intake import Destination, OnProgress, Uploads
from app.ingest.names import display_name
from app.ingest.pipeline import Ingest, IngestedFile, IngestError, OverQuota, ingest_stream
from app.server.body import declared_length, read_body
from app.server.peers import BODY_READ, SLASHED_DAV_TARGET, request_ended
from app.webdav.conditions import (
    BadIf,
    ResourceState,
    holds,
    parse_if,
    resources_named,
    state_tokens,
)
from app.webdav.locks import DavLocks, Lock, LockConflict, TooManyLocks, timeout_seconds
from app.webdav.methods import DAV_METHODS
from app.webdav.properties import (
    Change,
    TooManyProperties,
    change,
    copy_properties,
    properties_of,
    properties_of_many,
)
from app.webdav.tree import (
    FolderTooBig,
    Resource,
    children,
    descendants,
    folder_at,
    path_key,
    resolve,
)

type Spawn = Callable[[Coroutine[Any, Any, None]], object]
type ClosedRequests = Callable[[str, Sequence[str]], Awaitable[None]]

# Bytes read from a stored file at a time when COPY makes its new blob.
COPY_CHUNK_BYTES = 512 * 1024
TEXT_TYPE = b"text/plain; charset=utf-8"


class DavError(Exception):
    """A refusal: its status, its words, and the DAV:error precondition (XML) if any."""

    def __init__(self, status: int, message: str, condition: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.condition = condition


def _answer_error(w: Writer, error: DavError) -> None:
    if w.started:
        return
    if error.status == 503:
        w.headers.set("retry-after", "5")
    if error.condition is not None:
        w.respond(error_body(error.condition), XML_TYPE, error.status)
    else:
        w.respond(f"{error.message}\n".encode(), TEXT_TYPE, error.status)


def _folder_error(exc: FolderError) -> DavError:
    return DavError(exc.status, exc.message)


def _ingest_error(exc: IngestError) -> DavError:
    # WebDAV's word for a full account is 507 (RFC 4918 §11.5); a file over the
    # per-file limit stays 413.
    status = 507 if isinstance(exc, OverQuota) else exc.status
    return DavError(status, exc.message)


def parts_of(path: str) -> tuple[str, ...]:
    """The names of a /dav/ path (decoded), from the account's root."""
    # A `#fragment` names no other resource (litmus sends one; Stario keeps it).
    rest = path[len(DAV_PREFIX) :].partition("#")[0]
    parts = tuple(part for part in rest.split("/") if part)
    if any(part in (".", "..") for part in parts):
        raise DavError(400, "a WebDAV path cannot hold . or ..")
    return parts


@dataclass(frozen=True, slots=True)
class Dav:
    uploads: Uploads
    locks: DavLocks
    # Starts background work (blobs of deleted rows); the app's `create_task`.
    spawn: Spawn
    # Told of the file requests a folder's deletion closed (their uploads end).
    closed_requests: ClosedRequests

    @property
    def db(self) -> Database:
        return self.uploads.db

    # Helpers ------------------------------------------------------------------------------

    async def read_xml(self, c: Context, w: Writer) -> Any:
        length = declared_length(c)
        if length is not None and length > MOST_BODY_BYTES:
            raise DavError(413, f"a WebDAV request body is at most {MOST_BODY_BYTES} bytes")
        body = bytearray()
        try:
            async for chunk in read_body(c, self.uploads.config):
                body += chunk
                if len(body) > MOST_BODY_BYTES:
                    raise DavError(413, f"a WebDAV request body is at most {MOST_BODY_BYTES} bytes")
        except (RequestBodyError, ClientDisconnected) as exc:
            raise DavError(400, f"the request body could not be read: {exc}") from None
        except IngestError as exc:
            raise DavError(exc.status, exc.message) from None
        request_ended(c, w)
        try:
            return parse_xml(bytes(body))
        except BadBody as exc:
            raise DavError(exc.status, str(exc)) from None

    def destination_parts(self, c: Context) -> tuple[str, ...]:
        value = c.req.headers.get("destination")
        if not value:
            raise DavError(400, "COPY and MOVE need a Destination header")
        return self.url_parts(c, value, other_server=502)

    def url_parts(self, c: Context, url: str, *, other_server: int) -> tuple[str, ...]:
        """The names of a URL under this server's /dav/ (absolute or a path)."""
        split = urlsplit(url.strip())
        # This server as the client reached it, or as its public URL names it (behind
        # a proxy that rewrites Host).
        ours = {
            (c.req.headers.get("host") or "").lower(),
            urlsplit(self.uploads.config.public_url).netloc.lower(),
        }
        if split.netloc and split.netloc.lower() not in ours:
            raise DavError(other_server, f"{url} is on another server")
        path = unquote(split.path)
        if path != DAV_PREFIX and not path.startswith(DAV_PREFIX + "/"):
            raise DavError(other_server, f"{url} is not under this server's {DAV_PREFIX}/")
        return parts_of(path)

    async def guard(self, c: Context, owner: str, changes: Sequence[tuple[str, bool]]) -> None:
        """The `If` header holds (else 412), and every lock on what this request changes
        (`changes`: paths, and whether the change reaches below them) has its token
        in the header (else 423)."""
        value = c.req.headers.get("if")
        submitted: set[str] = set()
        if value:
            try:
                lists = parse_if(value)
            except BadIf as exc:
                raise DavError(400, str(exc)) from None
            states: dict[str | None, ResourceState] = {}
            for named in resources_named(lists):
                state = await self.state_of(c, owner, named)
                if state is not None:
                    states[named] = state
            if not holds(lists, states):
                raise DavError(412, "the If header's conditions do not hold")
            submitted = state_tokens(lists)
        for key, deep in changes:
            # Locks taken on one path together (shared ones) let a holder of any of
            # them write (as Apache's mod_dav): each such group needs one token.
            by_root: dict[str, list[Lock]] = {}
            for lock in await self.locks.affecting(owner, key, depth_infinity=deep):
                by_root.setdefault(lock.path_key, []).append(lock)
            for group in by_root.values():
                if not any(x.token in submitted for x in group):
                    lock = group[0]
                    raise DavError(
                        423,
                        f"{lock.path} is locked: send its lock token in an If header",
                        "<D:lock-token-submitted><D:href>"
                        f"{xml_text(lock.path)}</D:href></D:lock-token-submitted>",
                    )

    async def found_at(self, c: Context, owner: str, parts: tuple[str, ...]) -> Resource | None:
        """What the request's own path names. A file is never at a path written with a
        trailing slash (RFC 3986: `/dav/a/` and `/dav/a` are two resources; Apache's
        mod_dav answers 404 too), so `DELETE /dav/file.txt/` deletes nothing."""
        found = await resolve(self.db, owner, parts)
        if found is not None and found.file is not None and _slashed(c):
            return None
        return found

    def check_preconditions(self, c: Context, found: Resource | None) -> None:
        """RFC 9110 §13.1 on what this request changes (its target, for COPY and MOVE
        their source): If-Match, If-None-Match and If-Unmodified-Since, judged by the
        ETag and Last-Modified a GET of the file answers; 412 when one is false. A
        folder has no ETag and its GET no Last-Modified: `*` in If-Match or
        If-None-Match sees that it exists, an entity-tag never matches it, and
        If-Unmodified-Since is ignored (§13.1.4); where nothing is, If-Match never holds."""
        if_match = header_list(c, "if-match")
        if_none_match = header_list(c, "if-none-match")
        if found is not None and found.file is not None:
            row = found.file
            outcome = evaluate_preconditions(
                strong_etag(row.sha256),
                sent_modified(modified_at(row.created_at), response_date(c)),
                if_match=if_match,
                if_none_match=if_none_match,
                if_unmodified_since=c.req.headers.get("if-unmodified-since"),
            )
            # Not a GET: a false If-None-Match is 412 too, never 304 (§13.1.2).
            met = outcome is Precondition.PROCEED
        else:
            exists = found is not None
            met = (if_match is None or (exists and _is_any(if_match))) and not (
                exists and if_none_match is not None and _is_any(if_none_match)
            )
        if not met:
            raise DavError(
                412,
                "If-Match, If-None-Match or If-Unmodified-Since does not hold"
                " for what is at this path now: nothing was changed",
            )

    async def state_of(self, c: Context, owner: str, url: str | None) -> ResourceState | None:
        try:
            parts = parts_of(c.req.path) if url is None else self.url_parts(c, url, other_server=0)
        except DavError:
            return None  # a resource not ours: its lists cannot hold
        found = await resolve(self.db, owner, parts)
        etag = strong_etag(found.file.sha256) if found is not None and found.file else None
        tokens = frozenset(x.token for x in await self.locks.covering(owner, path_key(parts)))
        return ResourceState(etag, tokens)

    def changed(self, owner: str, what: str) -> None:
        self.uploads.relay.publish(files_changed(owner), what)

    async def remove(self, c: Context, owner: str, resource: Resource) -> None:
        """Delete a file, or a folder with all it holds; rows first, then blobs."""
        if resource.file is not None:
            blobs = await remove_files(self.db, [resource.file.id], owner)
            closed: list[str] = []
        else:
            closed = []
            blobs = await delete_folders(self.db, owner, [resource.id], closed_requests=closed)
        await self.locks.release_at_and_below(owner, path_key(resource.parts))
        await self.closed_requests(owner, closed)
        if blobs:
            self.spawn(_remove_blobs(self.uploads, blobs))

    async def store_file(
        self,
        owner_destination: Destination,
        name: str,
        declared: int | None,
        chunks: Callable[[], AsyncIterator[bytes]],
        declared_mime: str | None,
        cut_off: Callable[[], bool] | None = None,
    ) -> FileRow:
        """One file through the ingest pipeline into `owner_destination` (its folder,
        replacing a same-named file): the account's limits, quota, sniffing, sha256,
        and the recording that repaints live pages (`Uploads.keep`)."""
        uploads = self.uploads
        to = owner_destination

        async def files(quota: Reservation, on_progress: OnProgress) -> list[IngestedFile]:
            ingest = Ingest(
                uploads.store,
                name=name,
                declared_mime=declared_mime,
                max_bytes=to.max_file_bytes,
                expected_bytes=declared,
                on_progress=on_progress,
                quota=quota,
            )
            return [await ingest_stream(ingest, chunks(), cut_off=cut_off)]

        try:
            rows = await uploads.receive(to, display_name(name), declared, files)
        except IngestError as exc:
            raise _ingest_error(exc) from None
        return rows[0]

    def destination(self, c: Context, folder: str) -> Destination:
        to = Destination.of_account(self.uploads, principal(c).account)
        return dataclasses.replace(to, folder=folder, replace=True)

    async def copy_file(self, c: Context, row: FileRow, folder: str, name: str) -> FileRow:
        """A new blob with the bytes of `row`, read back through the store."""
        store = self.uploads.store

        async def chunks() -> AsyncIterator[bytes]:
            async with store.local_copy(row.id) as path:
                if path is None:
                    raise DavError(404, "the source file's contents are missing")
                async for chunk in _read_file(path):
                    yield chunk

        return await self.store_file(
            self.destination(c, folder), name, row.size, chunks, row.declared_mime
        )

    # The methods --------------------------------------------------------------------------

    async def options(self, c: Context, w: Writer) -> None:
        w.headers.set("dav", "1, 2")
        w.headers.set("ms-author-via", "DAV")
        w.headers.set("allow", ", ".join(DAV_METHODS))
        w.headers.set("content-length", "0")
        w.write_headers(200).end()

    async def propfind(self, c: Context, w: Writer) -> None:
        owner = principal(c).account_id
        depth = (c.req.headers.get("depth") or "infinity").strip().lower()
        if depth not in ("0", "1"):
            if depth == "infinity":
                raise DavError(
                    403,
                    "PROPFIND with Depth: infinity is not served: ask for Depth 0 or 1",
                    "<D:propfind-finite-depth/>",
                )
            raise DavError(400, "Depth is 0, 1 or infinity")
        root = await self.read_xml(c, w)
        try:
            asked = propfind_of(root)
        except BadBody as exc:
            raise DavError(400, str(exc)) from None
        parts = parts_of(c.req.path)
        found = await self.found_at(c, owner, parts)
        if found is None:
            raise DavError(404, "nothing is at this path")
        resources = [found]
        if depth == "1" and found.folder is not None:
            listing = await children(self.db, owner, found.folder.id)
            resources += [Resource((*found.parts, f.name), folder=f) for f in listing.folders]
            resources += [Resource((*found.parts, f.name), file=f) for f in listing.files]
        key = path_key(found.parts)
        locks = await self.locks.covering(owner, key)
        if depth == "1":
            locks += await self.locks.below(owner, key)
        dead = await properties_of_many(self.db, owner, [r.id for r in resources])
        account = account_by_id(self.db, owner)
        used = account.used_bytes if account is not None else 0
        limit = account.quota(self.uploads.config.default_quota) if account is not None else None
        quota = (used, None if limit is None else max(0, limit - used))
        now = self.locks.clock()
        answers: list[str] = []
        dates: DateCache = {}
        top = href_of(found.parts, folder=found.is_folder)
        for resource in resources:
            covering = [x for x in locks if x.covers(path_key(resource.parts))] if locks else []
            href = (
                top
                if resource is found
                else href_in(top, resource.parts[-1], folder=resource.is_folder)
            )
            live = live_properties(resource, covering, now, quota, dates)
            own = dead.get(resource.id, {})
            if asked.kind == "propname":
                names = [n for n in live if n not in QUOTA_PROPERTIES] + list(own)
                answers.append(response(href, [(200, [empty_element(n) for n in names])]))
            elif asked.kind == "allprop":
                props = [v for n, v in live.items() if n not in QUOTA_PROPERTIES]
                answers.append(response(href, [(200, props + list(own.values()))]))
            else:
                good: list[str] = []
                missing: list[str] = []
                for name in asked.names:
                    value = live.get(name) or own.get(name)
                    if value is not None:
                        good.append(value)
                    else:
                        missing.append(empty_element(name))
                answers.append(response(href, [(200, good), (404, missing)]))
        w.respond(multistatus(answers), XML_TYPE, 207)

    async def proppatch(self, c: Context, w: Writer) -> None:
        owner = principal(c).account_id
        root = await self.read_xml(c, w)
        try:
            changes = proppatch_of(root)
        except BadBody as exc:
            raise DavError(400, str(exc)) from None
        parts = parts_of(c.req.path)
        found = await self.found_at(c, owner, parts)
        if found is None:
            raise DavError(404, "nothing is at this path")
        self.check_preconditions(c, found)
        await self.guard(c, owner, [(path_key(found.parts), False)])
        href = href_of(found.parts, folder=found.is_folder)
        protected = [x for x in changes if x.name in LIVE_PROPERTIES]
        if protected:
            # All or nothing: the live ones are refused, the rest fail with them.
            refused = [empty_element(x.name) for x in protected]
            failed = [empty_element(x.name) for x in changes if x.name not in LIVE_PROPERTIES]
            answer = response(href, [(403, refused), (424, failed)])
            w.respond(multistatus([answer]), XML_TYPE, 207)
            return
        try:
            await change(self.db, owner, found.id, changes)
        except TooManyProperties as exc:
            # RFC 4918 §9.2.1: 507 for what could not be stored, 424 for the rest
            # (all or nothing); the words say which limit.
            broke = set(exc.names) or {x.name for x in changes}
            answer = response(
                href,
                [
                    (507, [empty_element(x.name) for x in _once(changes) if x.name in broke]),
                    (424, [empty_element(x.name) for x in _once(changes) if x.name not in broke]),
                ],
                exc.message,
            )
            w.respond(multistatus([answer]), XML_TYPE, 207)
            return
        answer = response(href, [(200, [empty_element(x.name) for x in _once(changes)])])
        w.respond(multistatus([answer]), XML_TYPE, 207)

    async def get(self, c: Context, w: Writer) -> None:
        owner = principal(c).account_id
        found = await self.found_at(c, owner, parts_of(c.req.path))
        if found is None:
            raise DavError(404, "nothing is at this path")
        if found.file is not None:
            # Through the node, never a redirect to the bucket: WebDAV clients send
            # their credentials with every request and follow no 302 to another host.
            await serve_file(c, w, self.uploads.store, found.file, direct=False)
            return
        assert found.folder is not None
        listing = await children(self.db, owner, found.folder.id)
        text = folder_listing(
            found.parts[-1] if found.parts else "",
            [f.name for f in listing.folders],
            [f.name for f in listing.files],
        )
        w.respond(text.encode(), TEXT_TYPE, 200)

    async def put(self, c: Context, w: Writer) -> None:
        owner = principal(c).account_id
        if c.req.headers.get("content-range") is not None:
            raise DavError(400, "PUT with Content-Range is not a partial upload here: use tus")
        parts = parts_of(c.req.path)
        if not parts:
            raise DavError(405, "a folder cannot be written with PUT: use MKCOL")
        name = _file_name(parts[-1])
        parent = await folder_at(self.db, owner, parts[:-1])
        if parent is None:
            raise DavError(409, "the folder to put this file in does not exist: MKCOL it first")
        found = await self.found_at(c, owner, parts)
        if found is not None and found.folder is not None:
            raise DavError(405, "a folder is at this path")
        if _slashed(c):
            raise DavError(409, "a path ending in / names a folder: PUT a file without the /")
        self.check_preconditions(c, found)
        key = path_key(parts)
        await self.guard(c, owner, [(key, False), (path_key(parts[:-1]), False)])
        config = self.uploads.config
        # A replaced file is a new blob with a new id: its dead properties carry over.
        kept = await properties_of(self.db, owner, found.id) if found is not None else {}
        row = await self.store_file(
            self.destination(c, parent.id),
            found.file.name if found is not None and found.file else name,
            declared_length(c),
            lambda: _then_ended(c, w, read_body(c, config)),
            c.req.headers.get("content-type"),
            cut_off=lambda: c.disconnected,
        )
        if kept:
            await change(self.db, owner, row.id, [Change(n, v) for n, v in kept.items()])
        w.headers.set("etag", strong_etag(row.sha256))
        w.empty(204 if found is not None else 201)

    async def mkcol(self, c: Context, w: Writer) -> None:
        owner = principal(c).account_id
        if declared_length(c) or c.req.headers.get("transfer-encoding"):
            raise DavError(415, "MKCOL takes no body here")
        parts = parts_of(c.req.path)
        if not parts or await resolve(self.db, owner, parts) is not None:
            raise DavError(405, "something is already at this path")
        parent = await folder_at(self.db, owner, parts[:-1])
        if parent is None:
            raise DavError(409, "the folder to make this one in does not exist")
        self.check_preconditions(c, None)
        await self.guard(c, owner, [(path_key(parts), False), (path_key(parts[:-1]), False)])
        try:
            await create_folder(self.db, owner, parent.id, _folder_name(parts[-1]))
        except FolderError as exc:
            raise _folder_error(exc) from None
        self.changed(owner, "folder")
        w.empty(201)

    async def delete(self, c: Context, w: Writer) -> None:
        owner = principal(c).account_id
        parts = parts_of(c.req.path)
        if not parts:
            raise DavError(403, "the root of your files cannot be deleted")
        found = await self.found_at(c, owner, parts)
        if found is None:
            raise DavError(404, "nothing is at this path")
        self.check_preconditions(c, found)
        await self.guard(
            c, owner, [(path_key(parts), found.is_folder), (path_key(parts[:-1]), False)]
        )
        await self._catalog(self.remove(c, owner, found))
        self.changed(owner, "removed")
        w.empty(204)

    async def copy_or_move(self, c: Context, w: Writer, *, moving: bool) -> None:
        owner = principal(c).account_id
        parts = parts_of(c.req.path)
        to_parts = self.destination_parts(c)
        overwrite = (c.req.headers.get("overwrite") or "T").strip().upper()
        if overwrite not in ("T", "F"):
            raise DavError(400, "Overwrite is T or F")
        depth = (c.req.headers.get("depth") or "infinity").strip().lower()
        if depth not in ("0", "infinity"):
            raise DavError(400, "Depth is 0 or infinity")
        source = await self.found_at(c, owner, parts)
        if source is None:
            raise DavError(404, "nothing is at this path")
        if moving and source.is_folder and depth != "infinity":
            # RFC 4918 §9.9.2: a folder moves whole; a file may say Depth: 0.
            raise DavError(400, "a folder is moved with Depth: infinity (or no Depth)")
        if not parts:
            raise DavError(403, "the root of your files cannot be copied or moved")
        if not to_parts:
            raise DavError(403, "the destination is the root of your files")
        source_key, to_key = path_key(source.parts), path_key(to_parts)
        if to_key == source_key and source.parts[-1] == to_parts[-1]:
            raise DavError(403, "the source and the destination are the same")
        if source.is_folder and to_key.startswith(source_key + "/"):
            raise DavError(403, "a folder cannot go inside itself")
        if source_key.startswith(to_key + "/"):
            # Overwriting it would remove the source with it (Apache's mod_dav: 403).
            raise DavError(403, "the destination holds the source: it cannot be replaced by it")
        self.check_preconditions(c, source)
        parent = await folder_at(self.db, owner, to_parts[:-1])
        if parent is None:
            raise DavError(409, "the destination's folder does not exist")
        name = _folder_name(to_parts[-1]) if source.is_folder else _file_name(to_parts[-1])
        target = await resolve(self.db, owner, to_parts)
        if target is not None and target.id == source.id:
            target = None  # a new spelling of the same name (a.txt -> A.txt)
        if target is not None and overwrite == "F":
            raise DavError(412, "the destination exists and Overwrite is F")
        changes = [(to_key, True), (path_key(to_parts[:-1]), False)]
        if moving:
            changes += [(source_key, True), (path_key(parts[:-1]), False)]
        await self.guard(c, owner, changes)
        # A file copied over a file replaces it when the new blob is kept, as PUT does.
        # Anything else that may fail partway (a folder's copy on quota, a move over a
        # target) is made under a name of its own first; the target goes, and the new
        # thing takes its name, only once that worked: a refusal loses nothing stored.
        in_place = source.file is not None and not moving and (target is None or target.file)
        staged = name if in_place else f"stowage-{'moving' if moving else 'copying'}-{token_hex(6)}"
        try:
            if moving:
                await self._catalog(self._move(owner, source, parent.id, staged))
                await self.locks.release_at_and_below(owner, source_key)
            elif source.file is not None:
                copy = await self.copy_file(c, source.file, parent.id, staged)
                await copy_properties(self.db, owner, [(source.id, copy.id)])
            else:
                await self._catalog(self._copy_folder(c, owner, source, parent.id, staged, depth))
        except BaseException:
            if not in_place and not moving:
                partial = await resolve(self.db, owner, [*to_parts[:-1], staged])
                if partial is not None:
                    await self.remove(c, owner, partial)
            raise
        if not in_place:
            if target is not None:
                await self._catalog(self.remove(c, owner, target))
            placed = await resolve(self.db, owner, [*to_parts[:-1], staged])
            if placed is None:
                raise DavError(409, "what was copied or moved went away before it was named")
            await self._catalog(self._rename(owner, placed, name))
        self.changed(owner, "moved" if moving else "added")
        w.empty(204 if target is not None else 201)

    async def _rename(self, owner: str, resource: Resource, name: str) -> None:
        if resource.file is not None:
            if await rename_file(self.db, resource.id, owner, name) is None:
                raise DavError(404, "the file went away while it was named")
        else:
            await rename_folder(self.db, owner, resource.id, name)

    async def _move(self, owner: str, source: Resource, to: str, name: str) -> None:
        if source.parent != to:
            files = [source.id] if source.file is not None else []
            folders = [source.id] if source.folder is not None else []
            await move(self.db, owner, files, folders, to)
        await self._rename(owner, source, name)

    async def _copy_folder(
        self, c: Context, owner: str, source: Resource, to: str, name: str, depth: str
    ) -> None:
        made = await create_folder(self.db, owner, to, name)
        pairs = [(source.id, made.id)]
        if depth == "infinity":
            new_ids = {source.id: made.id}
            for item in await descendants(self.db, owner, source):
                if item.folder is not None:
                    parent_id = new_ids[item.folder.parent or ROOT]
                    sub = await create_folder(self.db, owner, parent_id, item.folder.name)
                    new_ids[item.folder.id] = sub.id
                    pairs.append((item.folder.id, sub.id))
                elif item.file is not None:
                    copy = await self.copy_file(
                        c, item.file, new_ids[item.file.folder_id], item.file.name
                    )
                    pairs.append((item.file.id, copy.id))
        await copy_properties(self.db, owner, pairs)

    async def _catalog(self, work: Awaitable[None]) -> None:
        """Catalog refusals in WebDAV's words."""
        try:
            await work
        except FolderError as exc:
            raise _folder_error(exc) from None
        except Exception as exc:
            if is_disk_full(exc):
                raise DavError(507, "the server is out of space for its catalog") from None
            raise

    async def lock(self, c: Context, w: Writer) -> None:
        owner = principal(c).account_id
        parts = parts_of(c.req.path)
        key = path_key(parts)
        root = await self.read_xml(c, w)
        seconds = timeout_seconds(c.req.headers.get("timeout"))
        now = self.locks.clock()
        found = await self.found_at(c, owner, parts)
        self.check_preconditions(c, found)
        if root is None:
            await self._refresh(c, w, owner, key, seconds, now)
            return
        try:
            info = lockinfo_of(root)
        except BadBody as exc:
            raise DavError(400, str(exc)) from None
        depth_header = (c.req.headers.get("depth") or "infinity").strip().lower()
        if depth_header not in ("0", "infinity"):
            raise DavError(400, "a lock's Depth is 0 or infinity")
        depth: Any = depth_header
        parent = await folder_at(self.db, owner, parts[:-1]) if parts else None
        if found is None and parent is None:
            raise DavError(409, "the folder this lock's path is in does not exist")
        if found is None and _slashed(c):
            raise DavError(409, "a path ending in / names a folder: MKCOL it first")
        await self.guard(c, owner, [])
        try:
            lock = await self.locks.take(
                owner,
                key,
                href_of(found.parts if found else parts, folder=bool(found and found.is_folder)),
                depth=depth,
                scope=info.scope,
                lock_owner=info.owner,
                seconds=seconds,
            )
        except LockConflict:
            raise DavError(
                423, "something here is locked already", "<D:no-conflicting-lock/>"
            ) from None
        except TooManyLocks as exc:
            # RFC 4918 §11.5: the server cannot store what the request needs.
            raise DavError(507, str(exc)) from None
        status = 200
        if found is None and parent is not None:
            # A lock on an unmapped URL makes an empty file there (RFC 4918 §7.3).
            async def nothing() -> AsyncIterator[bytes]:
                return
                yield b""

            try:
                await self.store_file(
                    self.destination(c, parent.id), _file_name(parts[-1]), 0, nothing, None
                )
            except DavError:
                await self.locks.release(owner, lock.token)
                raise
            status = 201
        w.headers.set("lock-token", f"<{lock.token}>")
        w.respond(lock_answer(lock, now), XML_TYPE, status)

    async def _refresh(
        self, c: Context, w: Writer, owner: str, key: str, seconds: int, now: float
    ) -> None:
        value = c.req.headers.get("if")
        if not value:
            raise DavError(400, "a LOCK without a body refreshes a lock named in an If header")
        try:
            tokens = state_tokens(parse_if(value))
        except BadIf as exc:
            raise DavError(400, str(exc)) from None
        held = {x.token: x for x in await self.locks.covering(owner, key)}
        for token in tokens:
            if token in held:
                lock: Lock | None = await self.locks.refresh(owner, token, seconds)
                if lock is not None:
                    w.respond(lock_answer(lock, now), XML_TYPE, 200)
                    return
        raise DavError(
            412,
            "no lock named in the If header covers this path",
            "<D:lock-token-matches-request-uri/>",
        )

    async def unlock(self, c: Context, w: Writer) -> None:
        owner = principal(c).account_id
        token = (c.req.headers.get("lock-token") or "").strip().removeprefix("<").removesuffix(">")
        if not token:
            raise DavError(400, "UNLOCK needs a Lock-Token header")
        key = path_key(parts_of(c.req.path))
        lock = await self.locks.get(owner, token)
        if lock is None or not lock.covers(key):
            raise DavError(
                409,
                "that lock token names no lock on this path",
                "<D:lock-token-matches-request-uri/>",
            )
        await self.locks.release(owner, token)
        w.empty(204)


def _once(changes: Sequence[Change]) -> list[Change]:
    seen: dict[tuple[str, str], Change] = {}
    for one in changes:
        seen.setdefault(one.name, one)
    return list(seen.values())


def _slashed(c: Context) -> bool:
    """Whether the request's target ended in / (app/server/peers.py took it off)."""
    return bool(c.state.get(SLASHED_DAV_TARGET))


def _is_any(value: str) -> bool:
    """An If-Match or If-None-Match of `*`: any current representation."""
    return value.strip(" \t") == "*"


def _file_name(raw: str) -> str:
    """A file name from a path, kept exactly as given or refused: the tree answers
    with stored names, and a client must find again the name it wrote."""
    given = unicodedata.normalize("NFC", raw)
    if display_name(given) != given:
        raise DavError(
            400,
            f"{raw!r} cannot be a file's name here (control characters,"
            " a leading or trailing space, a trailing dot, or over 255 characters)",
        )
    return given


def _folder_name(raw: str) -> str:
    try:
        name = clean_folder_name(raw)
    except FolderError as exc:
        raise DavError(400, exc.message) from None
    if name != raw:
        raise DavError(400, f"{raw!r} cannot be a folder's name here (extra spaces)")
    return name


async def _read_file(path: Path) -> AsyncIterator[bytes]:
    handle = await asyncio.to_thread(path.open, "rb")
    try:
        while chunk := await asyncio.to_thread(handle.read, COPY_CHUNK_BYTES):
            yield chunk
    finally:
        await asyncio.to_thread(handle.close)


async def _then_ended(c: Context, w: Writer, chunks: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
    """`chunks`, then the connection told that the request was read to its end."""
    async for chunk in chunks:
        yield chunk
    request_ended(c, w)


async def _remove_blobs(uploads: Uploads, blob_ids: list[str]) -> None:
    """Blobs of removed rows; what fails is left to the periodic sweep (app/ops/sweep.py)."""
    for at in range(0, len(blob_ids), 500):
        try:
            await uploads.store.remove(blob_ids[at : at + 500])
        except OSError:
            pass


def _handler(dav: Dav, method: str) -> Callable[[Context, Writer], Awaitable[None]]:
    act: Callable[[Context, Writer], Awaitable[None]] = {
        "OPTIONS": dav.options,
        "PROPFIND": dav.propfind,
        "PROPPATCH": dav.proppatch,
        "GET": dav.get,
        "HEAD": dav.get,
        "PUT": dav.put,
        "DELETE": dav.delete,
        "MKCOL": dav.mkcol,
        "COPY": lambda c, w: dav.copy_or_move(c, w, moving=False),
        "MOVE": lambda c, w: dav.copy_or_move(c, w, moving=True),
        "LOCK": dav.lock,
        "UNLOCK": dav.unlock,
    }[method]

    async def handler(c: Context, w: Writer) -> None:
        task = asyncio.current_task()
        in_flight = dav.uploads.in_flight
        if task is not None:
            in_flight.add(task)
        # Said as soon as the request is read (here, for one without a body; after
        # its body otherwise), not only as the handler ends: a client that gets its
        # answer sends the next request at once, maybe before this handler has
        # finished (serve_file still closing the blob), and a slashed target read
        # before then would meet Stario's 308 (app/server/peers.py).
        request_ended(c, w)
        try:
            try:
                await act(c, w)
            except FolderTooBig as exc:
                raise DavError(507, str(exc)) from None
        except DavError as error:
            unread = not c.state.get(BODY_READ) and (
                bool(declared_length(c)) or "transfer-encoding" in c.req.headers
            )
            if unread or error.status in (413, 507) or error.status >= 500:
                # A body left unread: closing stops the client sending it, and its
                # next request starts a fresh connection, where a slashed WebDAV
                # target reaches its route (app/server/peers.py).
                w.headers.set("connection", "close")
            _answer_error(w, error)
        finally:
            if task is not None:
                in_flight.discard(task)
        request_ended(c, w)

    return handler


def register_dav(app: App, dav: Dav) -> None:
    for method in DAV_METHODS:
        app.add(DAV_ROOT_ROUTES[method], _handler(dav, method))
        app.add(DAV_PATH_ROUTES[method], _handler(dav, method))
