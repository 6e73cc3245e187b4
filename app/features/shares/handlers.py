"""Share links: the owner's API (make, list, revoke) and the public link itself.

Who a link's request is, and whether it may read its file, is decided by the gate
(`gate.shares`, `share_access`, `may_read_file`); these handlers only answer.

Counting: a link counts what leaves (app/shares/store.py, "Metering"). Every GET of
its file adds the bytes it wrote to the link's count in the catalog, and a download
is each whole copy's worth: a full GET counts once, so do ranges that make up the
file, and a client that takes a few bytes does not. HEAD, 304, 412, 416, the
landing page and its image preview send no bytes of the file. On a link with a
download limit, each GET holds its length of the link's byte budget in the catalog
before its first byte (refused with 409 while others hold the rest, 410 once it is
spent), so no mix of ranges, connections, clients or nodes sends more than the
limit's worth of the file plus a spare (`byte_budget`).
"""

from __future__ import annotations

import asyncio
import hashlib
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from math import ceil

from stario import App, Context, Relay, Writer
from stario.datastar import SSE
from stario.markup import HtmlElement

from app.access.gate import (
    Gate,
    ShareGone,
    ShareLocked,
    may_read_file,
    may_touch_file,
    opens_a_page,
    principal,
    share_access,
)
from app.access.principal import SharePrincipal
from app.accounts.passwords import Passwords
from app.catalog.protocol import CatalogUnavailable, Database
from app.common.forms import FormError, read_form
from app.common.http import (
    BodyError,
    is_datastar,
    json_error,
    only_fields,
    path_param,
    read_json_object,
    wanted_ids,
)
from app.common.shell import PageAssets, content_security_policy, new_nonce
from app.config import Config
from app.downloads.counting import Counting
from app.downloads.serve import serve_file
from app.downloads.validators import modified_at
from app.downloads.zip_layout import ChangedOnDisk, Layout, zip_length
from app.downloads.zip_serve import lay_out, serve_zip
from app.features.archives.data import MAX_ARCHIVE_FILES
from app.features.previews.data import (
    Previewer,
    serve_preview_image,
    shared_body,
    shared_preview,
)
from app.features.shares.data import share_json, shares_changed
from app.features.shares.panel import new_share_part, share_refusal
from app.features.shares.urls import (
    API_COLLECTION_CREATE,
    API_FOLDER_SHARE_CREATE,
    API_SHARE_CREATE,
    API_SHARE_REVOKE,
    API_SHARES,
    SHARE_FILE,
    SHARE_FILE_HEAD,
    SHARE_MEMBER,
    SHARE_MEMBER_HEAD,
    SHARE_MEMBER_THUMBNAIL,
    SHARE_PAGE,
    SHARE_UNLOCK,
    SHARE_ZIP,
    SHARE_ZIP_HEAD,
)
from app.features.shares.views import (
    FolderItem,
    UploadsHere,
    can_preview,
    collection_page,
    gone_page,
    landing_page,
    member_preview_href,
    password_page,
    unknown_page,
)
from app.files.store import FileRow, get_file, list_files
from app.folders.contents import Entry, folder_holds, selection_entries, unique_segments
from app.folders.store import (
    ROOT,
    FolderError,
    ancestors,
    api_id,
    catalog_id,
    get_folder,
    list_children,
    totals,
)
from app.previews.renditions import preview_kind
from app.previews.thumbnails import Thumbnails
from app.requests.store import (
    RequestError,
    check_max_file_bytes,
    check_max_files,
    request_by_id,
)
from app.shares.downloads import FILE, ZIP, Download, DownloadLog, Spawn, is_bot, short_user_agent
from app.shares.store import (
    DEFAULT_EXPIRES_IN,
    FOLDER,
    HOLD_SECONDS,
    SHARE_ID_PATTERN,
    Share,
    ShareError,
    UploadLimits,
    byte_budget,
    check_expires_in,
    check_max_downloads,
    check_password,
    create_collection,
    create_share,
    in_selection,
    iso,
    list_shares,
    live_holds,
    renew_holds,
    reserve_bytes,
    revoke_share,
    selection_rows,
    settle_bytes,
    share_by_id,
    share_meter,
)
from app.storage.errors import StoreUnavailable
from app.storage.ids import is_blob_id
from app.storage.store import Store

MAX_BODY_BYTES = 16 * 1024
FIELDS = ("expires_in", "password", "max_downloads")


@dataclass
class Shares:
    config: Config
    db: Database
    store: Store
    gate: Gate
    passwords: Passwords
    relay: Relay[str]
    assets: PageAssets
    thumbnails: Thumbnails | None = None
    # Previews on the link's pages (None: no previews beyond the landing page's image).
    previewer: Previewer | None = None
    zips: CollectionZips = field(default_factory=lambda: CollectionZips())
    laying_out: asyncio.Semaphore = field(default_factory=lambda: asyncio.Semaphore(2))
    # Ends the unfinished resumable uploads made through a file request (by its id),
    # giving their space back: a revoked folder link's uploads end with it.
    end_uploads: Callable[[str], Awaitable[object]] | None = None
    # Starts the task that writes download logs (the app's `create_task`, so a
    # shutdown waits for the last rows).
    spawn: Spawn = asyncio.create_task
    download_log: DownloadLog = field(init=False)

    def __post_init__(self) -> None:
        self.download_log = DownloadLog(self.db, self.spawn, self._logs_written)

    def _logs_written(self, owners: set[str]) -> None:
        for owner in owners:
            self.relay.publish(shares_changed(owner), "downloaded")

    def now(self) -> float:
        return self.gate.clock()


# The owner's API -------------------------------------------------------------------------


async def _read_request(c: Context, *, signals: bool) -> dict[str, object]:
    """The JSON object of `POST /api/files/{id}/shares` (an empty body is `{}`); with
    `signals`, the page's Datastar signals (which carry other fields too)."""
    try:
        parsed = await read_json_object(c, MAX_BODY_BYTES)
        if parsed is None:
            return {}
        return _from_signals(parsed) if signals else only_fields(parsed, FIELDS)
    except BodyError as exc:
        raise ShareError(str(exc)) from None


def _from_signals(signals: dict[str, object]) -> dict[str, object]:
    """The page's form (Datastar signals, all text) as the API's fields."""
    expiry = str(signals.get("shareExpiry", "") or "")
    limit = str(signals.get("shareLimit", "") or "").strip()
    password = str(signals.get("sharePassword", "") or "")
    fields: dict[str, object] = {}
    if expiry == "never":
        fields["expires_in"] = None
    elif expiry:
        fields["expires_in"] = int(expiry) if expiry.isdigit() else expiry
    fields["password"] = password or None
    fields["max_downloads"] = (int(limit) if limit.isdigit() else limit) if limit else None
    return fields


def create(shares: Shares):
    async def handler(c: Context, w: Writer) -> None:
        owner = principal(c).account_id
        datastar = is_datastar(c)

        def refuse(status: int, message: str) -> None:
            if datastar:
                share_refusal(SSE(w), message)
                w.end()
            else:
                json_error(w, status, message)

        file_id = path_param(c, "file_id")
        row = await get_file(shares.db, file_id) if is_blob_id(file_id) else None
        if row is None or not may_touch_file(principal(c), row.owner):
            refuse(404, "no such file")
            return
        try:
            fields = await _read_request(c, signals=datastar)
            expires_in = check_expires_in(fields.get("expires_in", DEFAULT_EXPIRES_IN))
            password = check_password(fields.get("password"))
            max_downloads = check_max_downloads(fields.get("max_downloads"))
            password_hash = None if password is None else await shares.passwords.hash(password)
            share, token = await create_share(
                shares.db,
                file_id=file_id,
                owner=owner,
                now=shares.now(),
                expires_in=expires_in,
                password_hash=password_hash,
                max_downloads=max_downloads,
            )
        except ShareError as exc:
            refuse(404 if str(exc) == "no such file" else 400, str(exc))
            return
        shares.relay.publish(shares_changed(owner), "created")
        url = SHARE_PAGE.href(token)
        if datastar:
            sse = SSE(w)
            sse.patch_elements(new_share_part(row.name, shares.config.public_url + url))
            sse.patch_signals({"sharePassword": "", "shareLimit": "", "_shareErrorFor": ""})
            w.end()
            return
        w.headers.set("location", url)
        w.json({"share": share_json(share, url)}, 201)

    return handler


def show_shares(shares: Shares):
    async def handler(c: Context, w: Writer) -> None:
        listings = await list_shares(shares.db, principal(c).account_id)
        w.json({"shares": [share_json(listing.share, None, listing) for listing in listings]})

    return handler


async def revoke_link(shares: Shares, share_id: str, owner: str) -> bool:
    """Revoke one of `owner`'s live links (its unfinished uploads end with it); False
    for an unknown id, another account's link, or one already revoked."""
    known = SHARE_ID_PATTERN.fullmatch(share_id) is not None
    if not known or not await revoke_share(shares.db, share_id, owner, shares.now()):
        return False
    revoked = share_by_id(shares.db, share_id)
    if revoked is not None and revoked.request_id and shares.end_uploads is not None:
        await shares.end_uploads(revoked.request_id)
    shares.relay.publish(shares_changed(owner), "revoked")
    return True


def revoke(shares: Shares):
    async def handler(c: Context, w: Writer) -> None:
        if not await revoke_link(shares, path_param(c, "share_id"), principal(c).account_id):
            json_error(w, 404, "no such link")
            return
        w.empty()

    return handler


# The link ------------------------------------------------------------------------------


def _page(w: Writer, element: HtmlElement, status: int = 200, nonce: str | None = None) -> None:
    """`nonce`: the one the page was made with, when it runs Datastar expressions."""
    w.headers.set("content-security-policy", content_security_policy(nonce or new_nonce()))
    w.html(element, status)


def _wait_words(seconds: int) -> str:
    minutes = max(1, ceil(seconds / 60))
    return f"{minutes} minute{'s' if minutes != 1 else ''}"


def _token(c: Context) -> str:
    return path_param(c, "token")


def show_link(shares: Shares):
    """GET /s/{token}: what the link gives, or why not. Never counts as a download:
    link-preview bots and mail scanners fetch exactly this."""

    async def handler(c: Context, w: Writer) -> None:
        access = share_access(c)
        token = _token(c)
        if isinstance(access, ShareGone):
            _page(w, gone_page(shares.assets, access.reason.value), 410)
            return
        if isinstance(access, ShareLocked):
            _page(w, password_page(shares.assets, token))
            return
        if access is not None and access.share.is_collection:
            await show_collection(shares, c, w, access.share, token)
            return
        row = await get_file(shares.db, access.file_id) if access is not None else None
        if access is None or row is None or not may_read_file(access, row.id, row.owner):
            _page(w, unknown_page(shares.assets), 404)
            return
        share, left = access.share, None
        meter = share_meter(shares.db, share.id) if share.max_downloads is not None else None
        if meter is not None and share.max_downloads is not None:
            left = max(0, byte_budget(share.max_downloads, row.size) - meter.sent_bytes)
        preview = None
        if shares.previewer is not None and can_preview(row, share):
            preview = await shared_body(
                shares.previewer,
                row,
                inline=SHARE_FILE.href(token, query={"preview": "1"}),
                download=SHARE_FILE.href(token, query={"download": "1"}),
            )
        _page(
            w,
            landing_page(
                shares.assets, token, share, row, shares.now(), bytes_left=left, preview=preview
            ),
        )

    return handler


def unlock_link(shares: Shares):
    """POST /s/{token}: the landing page's password form (urlencoded, no JavaScript)."""

    async def handler(c: Context, w: Writer) -> None:
        access = share_access(c)
        token = _token(c)
        if access is None:
            _page(w, unknown_page(shares.assets), 404)
            return
        if isinstance(access, ShareGone):
            _page(w, gone_page(shares.assets, access.reason.value), 410)
            return
        if isinstance(access, SharePrincipal):  # no password, or already unlocked
            w.redirect(SHARE_PAGE.href(token), 303)
            return
        try:
            password = (await read_form(c)).get("password", "")
        except FormError as exc:
            _page(w, password_page(shares.assets, token, error=f"{exc}."), 400)
            return
        outcome = await shares.gate.check_share_password(c, access.share, password)
        if outcome == 0:
            shares.gate.remember_unlocked(w, access.share, SHARE_PAGE.href(token))
            w.redirect(SHARE_PAGE.href(token), 303)
            return
        if outcome is None:
            _page(w, password_page(shares.assets, token, error="Wrong password."), 401)
            return
        w.headers.set("retry-after", str(outcome))
        message = f"Too many wrong passwords. Wait {_wait_words(outcome)} and try again."
        _page(w, password_page(shares.assets, token, error=message), 429)

    return handler


def _text(w: Writer, status: int, message: str) -> None:
    w.text(message + "\n", status)


@dataclass(frozen=True, slots=True)
class Served:
    """What a metered response sends, for its row in the link's download log."""

    what: str  # FILE or ZIP
    file_id: str
    name: str


def _counting(shares: Shares, share: Share, size: int, c: Context, served: Served) -> Counting:
    limited = share.max_downloads is not None
    started = shares.now()
    user_agent = c.req.headers.get("user-agent") or ""
    # Now: once the connection is gone its address is not known any more.
    address = shares.gate.addresses.of(c)
    renewing: list[asyncio.Task[None]] = []

    async def renew() -> None:
        while True:
            await asyncio.sleep(HOLD_SECONDS / 3)
            try:
                await renew_holds(shares.db, share.id, shares.now())
            except CatalogUnavailable:
                continue  # the next renewal may reach it; the hold lasts HOLD_SECONDS

    async def reserve(length: int) -> bool:
        if not limited:
            return True
        if not await reserve_bytes(shares.db, share, size, length, shares.now()):
            return False
        renewing.append(asyncio.create_task(renew()))
        return True

    async def settle(length: int, sent: int) -> None:
        for task in renewing:
            task.cancel()
        shares.download_log.add(
            Download(
                share.id,
                share.owner,
                served.file_id,
                served.name,
                served.what,
                started,
                address,
                short_user_agent(user_agent),
                sent,
                sent == length,
                is_bot(user_agent),
            )  # fmt: skip
        )
        reserved = length if limited else 0
        if size > 0 and sent == 0 and reserved == 0:
            return  # nothing left and nothing held: no write
        if await settle_bytes(shares.db, share.id, size, reserved, sent):
            shares.relay.publish(shares_changed(share.owner), "downloaded")

    def refusal(w: Writer, length: int) -> None:
        current = share_by_id(shares.db, share.id)
        meter = share_meter(shares.db, share.id)
        if current is None or meter is None or current.max_downloads is None:
            _text(w, 404, "No such link.")
            return
        if current.downloads >= current.max_downloads:
            _text(w, 410, "This link no longer works: " + "it has been downloaded as many"
                  " times as its owner allowed.")  # fmt: skip
            return
        left = max(0, byte_budget(current.max_downloads, size) - meter.sent_bytes)
        if live_holds(meter, shares.now()) > 0 and length <= left:
            # It fits once the downloads under way end, if they fail.
            w.headers.set("retry-after", "10")
            _text(
                w,
                409,
                "The last download this link allows is under way. If it does not finish,"
                " try again.",
            )
            return
        _text(
            w,
            410,
            f"This link has {left:,} bytes left of what its owner allowed, and this download"
            f" asks for {length:,}: ask for less with a Range header (curl -C - resumes a"
            " partial download).",
        )

    return Counting(reserve=reserve, settle=settle, refusal=refusal, limited=limited)


def _no_link(shares: Shares, c: Context, w: Writer, message: str = "No such link.") -> None:
    """An unknown or revoked link, or its file gone: the page for a person's browser
    (where a landing page's Download button ends once the link is revoked)."""
    if opens_a_page(c):
        _page(w, unknown_page(shares.assets), 404)
    else:
        _text(w, 404, message)


def _link(shares: Shares, c: Context, w: Writer) -> SharePrincipal | None:
    """The live, unlocked link a sub-URL of /s/{token} is asked through; None once the
    refusal is written (unknown 404, gone 410, locked 401/429 or, for a person, the
    password form)."""
    access = share_access(c)
    token = _token(c)
    if access is None:
        _no_link(shares, c, w)
        return None
    if isinstance(access, ShareGone):
        if opens_a_page(c):
            _page(w, gone_page(shares.assets, access.reason.value), 410)
        else:
            _text(w, 410, f"This link no longer works: {access.reason.value}.")
        return None
    if isinstance(access, ShareLocked):
        if access.retry_after is not None:
            w.headers.set("retry-after", str(access.retry_after))
            _text(w, 429, "Too many wrong passwords for this link; wait and try again.")
            return None
        if c.req.headers.get("sec-fetch-mode") == "navigate" and c.req.method == "GET":
            w.redirect(SHARE_PAGE.href(token), 303)  # a person: the password form
            return None
        w.headers.set("www-authenticate", 'Basic realm="stowage share", charset="UTF-8"')
        if access.wrong:
            _text(w, 401, "Wrong password for this link.")
        else:
            _text(w, 401, "This link needs its password (HTTP Basic: curl -u :PASSWORD).")
        return None
    return access


async def _serve_preview(shares: Shares, c: Context, w: Writer, row: FileRow) -> None:
    """`?preview=1`: the file as its preview shows it (an image at full size, through
    its rendition when it needs one), never counted as a download."""
    kind = preview_kind(row)
    if shares.previewer is not None and kind == "image":
        await serve_preview_image(c, w, shares.previewer, row)
        return
    if kind == "pdf":
        # The page's frame shows it (sandboxed by its CSP, as every stored file is).
        w.headers.set("x-frame-options", "SAMEORIGIN")
    # A preview is shown inside our pages, which load from our origin only.
    await serve_file(c, w, shares.store, row, direct=False)


def download_link(shares: Shares):
    """GET and HEAD /s/{token}/file: the link's one file, through the same serving code
    as the owner's own downloads (`serve_file`). `?preview=1` is the landing page's
    image preview: only where the page shows one (`can_preview`), and never counted."""

    async def handler(c: Context, w: Writer) -> None:
        access = _link(shares, c, w)
        if access is None:
            return
        row = await get_file(shares.db, access.file_id)
        if row is None or not may_read_file(access, row.id, row.owner):
            _no_link(shares, c, w)
            return
        if c.req.query.get("preview") is not None:
            if not can_preview(row, access.share):
                _text(w, 404, "This link has no preview.")
                return
            await _serve_preview(shares, c, w, row)
            return
        served = Served(FILE, row.id, row.name)
        counting = _counting(shares, access.share, row.size, c, served)
        await serve_file(c, w, shares.store, row, counting)

    return handler


# Collections ---------------------------------------------------------------------------
#
# A collection link gives a folder with everything under it (as it is when asked: a
# file moved in joins, one moved out leaves) or a set of files. Every sub-URL asks the
# catalog, at request time, whether the file is in it; nothing else is reachable.
#
# Counting: a collection's "copy" is its ZIP (its files and the ZIP's structure,
# `zip_length`, as the collection is now). A limit of N lets N copies' worth of bytes
# leave, plus the spare a file link has: every whole-collection ZIP and every single
# file download counts the bytes it sent against it, exactly as a file link meters.

MAX_COLLECTION_BODY = 1024 * 1024  # 10,000 ids, as an archive
# Files a folder's page lists at once; the ZIP holds every one.
PAGE_FILES = 1000
# Collections with more than this many entries can still be browsed and downloaded
# file by file; their ZIP is refused (as an archive of as many would be).
MAX_LISTED = 1_000_000
# The laid-out ZIPs of collections kept for their next range (a resumed download),
# least recently used dropped first.
ZIP_CACHE_BYTES = 32 * 1024 * 1024


class CollectionZips:
    """share id -> (what it held, its layout): a resumed ZIP download reads no file
    again while the collection is unchanged; a changed one is laid out anew."""

    def __init__(self, budget: int = ZIP_CACHE_BYTES) -> None:
        self.budget = budget
        self._kept: OrderedDict[str, tuple[str, Layout]] = OrderedDict()

    def get(self, share_id: str, key: str) -> Layout | None:
        found = self._kept.get(share_id)
        if found is None or found[0] != key:
            return None
        self._kept.move_to_end(share_id)
        return found[1]

    def keep(self, share_id: str, key: str, layout: Layout) -> None:
        if layout.nbytes > self.budget:
            return
        self._kept[share_id] = (key, layout)
        self._kept.move_to_end(share_id)
        while sum(kept.nbytes for _, kept in self._kept.values()) > self.budget:
            self._kept.popitem(last=False)


def _entries_key(entries: list[Entry]) -> str:
    digest = hashlib.sha256()
    for entry in entries:
        row = entry.row
        part = entry.path if row is None else f"{entry.path}\0{row.id}\0{row.size}"
        digest.update(part.encode() + b"\n")
    return digest.hexdigest()


async def collection_entries(shares: Shares, share: Share, *, most: int) -> list[Entry]:
    """What the link holds now, as the paths of its ZIP (FolderError 413 past `most`)."""
    if share.kind == FOLDER:
        top = share.folder_id or ROOT
        return await selection_entries(shares.db, share.owner, [], [top], most=most, inside=top)
    rows = await selection_rows(shares.db, share.id)
    names = unique_segments([row.name for row in rows])
    return [Entry(name, row) for name, row in zip(names, rows, strict=True)]


async def collection_holds(shares: Shares, share: Share, row: FileRow) -> bool:
    """Whether the file is in the collection now."""
    if row.owner != share.owner:
        return False
    if share.kind == FOLDER:
        return await folder_holds(shares.db, share.owner, share.folder_id or ROOT, row.folder_id)
    return await in_selection(shares.db, share.id, row.id)


async def _collection_size(shares: Shares, share: Share) -> int:
    """A whole copy of the collection: its ZIP's length now (see the section's doc)."""
    entries = await collection_entries(shares, share, most=MAX_LISTED)
    return zip_length((e.path, e.row.size if e.row else 0) for e in entries)


def _zip_name(title: str) -> str:
    """The ZIP's file name: the link's title (its ASCII form for old agents is
    `content_disposition`'s job)."""
    return f"{title.strip() or 'stowage-collection'}.zip"


async def _title(shares: Shares, share: Share, files: int | None = None) -> str:
    if share.kind == FOLDER:
        if not share.folder_id:
            return "Shared files"
        folder = await get_folder(shares.db, share.owner, share.folder_id)
        return folder.name if folder is not None else "Shared folder"
    count = files if files is not None else len(await selection_rows(shares.db, share.id))
    return f"{count:,} shared file{'' if count == 1 else 's'}"


# What a folder link also takes: uploads into the folder, with a file request's limits.
UPLOAD_FIELDS = ("uploads", "max_files", "max_file_bytes")


MIB = 1024 * 1024


def _whole(text: str) -> object:
    """A form's number as an int when it is one (the checks word the rest)."""
    return int(text) if text.isdigit() else text


def _collection_from_signals(
    signals: dict[str, object], *, with_ids: bool
) -> tuple[dict[str, object], list[str]]:
    """The page's share form for a folder (with "take uploads" and its limits, the
    largest file in MiB) or for a selection of files (`shareIds`), as the API's fields."""
    fields = _from_signals(signals)
    if not with_ids:
        if signals.get("shareUploads") is True:
            fields["uploads"] = True
            max_files = str(signals.get("shareMaxFiles", "") or "").strip()
            max_mib = str(signals.get("shareMaxMib", "") or "").strip()
            fields["max_files"] = _whole(max_files) if max_files else None
            if max_mib:
                mib = _whole(max_mib)
                fields["max_file_bytes"] = mib * MIB if isinstance(mib, int) else mib
        return fields, []
    ids = wanted_ids({"ids": signals.get("shareIds")}, most=MAX_ARCHIVE_FILES)
    return fields, ids


async def _read_collection_request(
    c: Context, *, with_ids: bool, signals: bool = False
) -> tuple[dict[str, object], list[str]]:
    try:
        parsed = await read_json_object(c, MAX_COLLECTION_BODY)
        if signals:
            return _collection_from_signals(parsed or {}, with_ids=with_ids)
        if not with_ids:
            return only_fields(parsed or {}, (*FIELDS, *UPLOAD_FIELDS)), []
        if parsed is None:
            raise BodyError('send a JSON object such as {"ids": ["FILE_ID", ...]}')
        fields = only_fields(parsed, (*FIELDS, "ids"))
        ids = wanted_ids({"ids": fields.pop("ids", None)}, most=MAX_ARCHIVE_FILES)
        return fields, ids
    except BodyError as exc:
        raise ShareError(str(exc)) from None


def create_collection_link(shares: Shares, *, of_folder: bool):
    """POST /api/folders/{folder_id}/shares (a folder, "root" included, with everything
    under it) and POST /api/shares {"ids": [...]} (a set of files): the options and the
    answer of a file link's."""

    async def handler(c: Context, w: Writer) -> None:
        owner = principal(c).account_id
        # The page's share form (Datastar): its signals in, the new link (or the
        # reason there is none) patched into the form's slot.
        datastar = is_datastar(c)

        def refuse(status: int, message: str) -> None:
            if datastar:
                share_refusal(SSE(w), message)
                w.end()
            else:
                json_error(w, status, message)

        folder = catalog_id(path_param(c, "folder_id")) if of_folder else None
        if (
            folder is not None
            and folder != ROOT
            and await get_folder(shares.db, owner, folder) is None
        ):
            refuse(404, "no such folder")
            return
        try:
            fields, ids = await _read_collection_request(
                c, with_ids=not of_folder, signals=datastar
            )
            expires_in = check_expires_in(fields.get("expires_in", DEFAULT_EXPIRES_IN))
            password = check_password(fields.get("password"))
            max_downloads = check_max_downloads(fields.get("max_downloads"))
            uploads = _upload_limits(shares.config, fields)
            if any(not is_blob_id(i) for i in ids):
                raise ShareError("no such file")
            password_hash = None if password is None else await shares.passwords.hash(password)
            label = "Uploads to " + await _title(shares, _folder_share(owner, folder))
            share, token = await create_collection(
                shares.db,
                owner=owner,
                folder_id=folder,
                file_ids=ids if not of_folder else None,
                now=shares.now(),
                expires_in=expires_in,
                password_hash=password_hash,
                max_downloads=max_downloads,
                uploads=uploads,
                label=label,
            )
        except (ShareError, RequestError) as exc:
            refuse(404 if str(exc).startswith("no such") else 400, str(exc))
            return
        shares.relay.publish(shares_changed(owner), "created")
        url = SHARE_PAGE.href(token)
        files = len(ids) if not of_folder else None
        if datastar:
            sse = SSE(w)
            named = await _title(shares, share, files)
            sse.patch_elements(new_share_part(named, shares.config.public_url + url))
            sse.patch_signals({"sharePassword": "", "shareLimit": "", "_shareErrorFor": ""})
            w.end()
            return
        w.headers.set("location", url)
        w.json({"share": share_json(share, url, files=files, uploads=uploads)}, 201)

    return handler


def _folder_share(owner: str, folder: str | None) -> Share:
    """A stand-in link to `folder`, to name it (`_title`) before the link exists."""
    return Share("", "", owner, None, None, None, 0, None, 0.0, FOLDER, folder)


def _upload_limits(config: Config, fields: dict[str, object]) -> UploadLimits | None:
    """`"uploads": true` and its limits (as a file request's), or None for a link
    that only gives; limits without uploads are refused, not ignored."""
    wanted = fields.get("uploads", False)
    if not isinstance(wanted, bool):
        raise ShareError("uploads must be true or false")
    if not wanted:
        if fields.get("max_files") is not None or fields.get("max_file_bytes") is not None:
            raise ShareError('max_files and max_file_bytes limit uploads: send "uploads": true')
        return None
    return UploadLimits(
        check_max_files(fields.get("max_files")),
        check_max_file_bytes(fields.get("max_file_bytes"), config.max_file_bytes),
    )


async def show_collection(shares: Shares, c: Context, w: Writer, share: Share, token: str) -> None:
    """GET /s/{token} of a collection (`?folder=ID` inside a folder link): never counted."""
    owner = share.owner
    asked = c.req.query.get("folder")
    top = share.folder_id or ROOT
    folders: list[FolderItem] = []
    crumbs: list[tuple[str, str]] = []
    more = 0
    if share.kind == FOLDER:
        here = top if asked in (None, "") else catalog_id(asked)
        if here != top and not await folder_holds(shares.db, owner, top, here):
            _page(w, unknown_page(shares.assets), 404)
            return
        title = await _title(shares, share)
        crumbs.append((api_id(top) or "root", title))
        if here != top:
            chain = await ancestors(shares.db, owner, here)
            ids = [f.id for f in chain]
            below = chain[ids.index(top) + 1 :] if top in ids else chain
            crumbs.extend((f.id, f.name) for f in below)
        children = await list_children(shares.db, owner, here)
        sums = await totals(shares.db, owner, [f.id for f in children])
        folders = [FolderItem(f.id, f.name, sums[f.id].size, sums[f.id].files) for f in children]
        files = await list_files(shares.db, owner, limit=PAGE_FILES + 1, folder=here)
        more = max(0, len(files) - PAGE_FILES)
        files = sorted(files[:PAGE_FILES], key=lambda r: (r.name.casefold(), r.id))
    else:
        files = await selection_rows(shares.db, share.id)
        title = await _title(shares, share, len(files))
        crumbs.append(("", title))
        more = max(0, len(files) - PAGE_FILES)
        files = files[:PAGE_FILES]
    ready: frozenset[str] = frozenset()
    if shares.thumbnails is not None:
        ready = (await shares.thumbnails.previews(files)).ready
    size = await _collection_size(shares, share)
    left = None
    if share.max_downloads is not None:
        meter = share_meter(shares.db, share.id)
        if meter is not None:
            left = max(0, byte_budget(share.max_downloads, size) - meter.sent_bytes)
    preview = await _collection_preview(shares, c, token, share, crumbs, files)
    nonce = new_nonce()
    uploads = None
    request = request_by_id(shares.db, share.request_id) if share.request_id else None
    if request is not None and request.gone(shares.now()) is None:
        uploads = UploadsHere(shares.config, request, len(crumbs) == 1, nonce)
    _page(
        w,
        collection_page(
            shares.assets,
            token,
            share,
            title=title,
            crumbs=crumbs,
            folders=folders,
            files=files,
            thumbnails=ready,
            total_size=size,
            more=more,
            bytes_left=left,
            uploads=uploads,
            preview=preview,
        ),
        nonce=nonce,
    )


async def _collection_preview(
    shares: Shares,
    c: Context,
    token: str,
    share: Share,
    crumbs: list[tuple[str, str]],
    files: list[FileRow],
) -> HtmlElement | None:
    """`?preview=ID`: that file's preview over the page, Previous and Next among the
    files the page lists (in its order). A file not listed here shows none."""
    wanted = c.req.query.get("preview")
    if not wanted or shares.previewer is None:
        return None
    shown = [row for row in files if can_preview(row, share)]
    ids = [row.id for row in shown]
    if wanted not in ids:
        return None
    at = ids.index(wanted)
    row = shown[at]
    before = ids[at - 1] if at > 0 else None
    after = ids[at + 1] if at + 1 < len(ids) else None
    return await shared_preview(
        shares.previewer,
        row,
        inline=SHARE_MEMBER.href(token, row.id, query={"preview": "1"}),
        download=SHARE_MEMBER.href(token, row.id, query={"download": "1"}),
        close=member_preview_href(token, crumbs, None),
        previous=None if before is None else member_preview_href(token, crumbs, before),
        next=None if after is None else member_preview_href(token, crumbs, after),
        position=f"{at + 1:,} of {len(ids):,}",
    )


async def _member(shares: Shares, c: Context, w: Writer) -> tuple[Share, FileRow] | None:
    """The live collection link and the file of the path, if it is in it now."""
    access = _link(shares, c, w)
    if access is None:
        return None
    share = access.share
    file_id = path_param(c, "file_id")
    row = await get_file(shares.db, file_id) if is_blob_id(file_id) else None
    if not share.is_collection or row is None or not await collection_holds(shares, share, row):
        _no_link(shares, c, w, "No such file in this link.")
        return None
    return share, row


def download_member(shares: Shares):
    """GET and HEAD /s/{token}/files/{file_id}: one file of a collection, counted
    against the collection's limit (`?preview=1` as a file link's, never counted)."""

    async def handler(c: Context, w: Writer) -> None:
        found = await _member(shares, c, w)
        if found is None:
            return
        share, row = found
        if c.req.query.get("preview") is not None:
            if not can_preview(row, share):
                _text(w, 404, "This link has no preview.")
                return
            await _serve_preview(shares, c, w, row)
            return
        size = await _collection_size(shares, share)
        counting = _counting(shares, share, size, c, Served(FILE, row.id, row.name))
        await serve_file(c, w, shares.store, row, counting)

    return handler


def member_thumbnail(shares: Shares):
    """GET /s/{token}/files/{file_id}/thumbnail: the small WebP the landing page shows
    (a thumbnail is not the file: never counted)."""

    async def handler(c: Context, w: Writer) -> None:
        found = await _member(shares, c, w)
        if found is None:
            return
        _, row = found
        made = await shares.thumbnails.read(row.id) if shares.thumbnails is not None else None
        if made is None:
            _text(w, 404, "No thumbnail.")
            return
        body, digest = made
        w.headers.set("etag", f'"{digest}"')
        w.headers.set("cache-control", "private, max-age=3600")
        w.headers.set("x-content-type-options", "nosniff")
        w.headers.set("content-length", str(len(body)))
        w.headers.set("content-type", "image/webp")
        w.write_headers(200)
        w.end(body)

    return handler


def download_collection_zip(shares: Shares):
    """GET and HEAD /s/{token}/zip: the whole collection as one ZIP, the same
    deterministic, resumable ZIP64 as an archive (a folder link's paths start inside
    its folder). Metered by the bytes that leave."""

    async def handler(c: Context, w: Writer) -> None:
        access = _link(shares, c, w)
        if access is None:
            return
        share = access.share
        if not share.is_collection:
            _text(w, 404, "This link has one file: /file downloads it.")
            return
        try:
            entries = await collection_entries(shares, share, most=MAX_ARCHIVE_FILES)
        except FolderError as exc:
            _text(w, exc.status, f"This link holds too much for one ZIP: {exc.message}.")
            return
        key = _entries_key(entries)
        layout = shares.zips.get(share.id, key)
        if layout is None:
            try:
                async with shares.laying_out:
                    layout = await lay_out(shares.store, entries)
            except ChangedOnDisk:
                _text(w, 500, "The contents of a file in this link are missing or damaged.")
                return
            except StoreUnavailable as exc:
                w.headers.set("retry-after", "5")
                _text(w, 503, f"{exc}; try again in a moment.")
                return
            shares.zips.keep(share.id, key, layout)
        times = [e.modified for e in entries if e.modified] or [iso(share.created_at) or ""]
        name = _zip_name(await _title(shares, share))
        counting = _counting(shares, share, layout.size, c, Served(ZIP, "", name))
        await serve_zip(c, w, shares.store, layout, modified_at(max(times)), name, counting)

    return handler


def register_shares(app: App, shares: Shares) -> None:
    shares.gate.shares(
        SHARE_PAGE,
        SHARE_UNLOCK,
        SHARE_FILE,
        SHARE_FILE_HEAD,
        SHARE_MEMBER,
        SHARE_MEMBER_HEAD,
        SHARE_MEMBER_THUMBNAIL,
        SHARE_ZIP,
        SHARE_ZIP_HEAD,
    )
    app.add(API_SHARE_CREATE, create(shares))
    app.add(API_FOLDER_SHARE_CREATE, create_collection_link(shares, of_folder=True))
    app.add(API_COLLECTION_CREATE, create_collection_link(shares, of_folder=False))
    member = download_member(shares)
    app.add(SHARE_MEMBER, member)
    app.add(SHARE_MEMBER_HEAD, member)
    app.add(SHARE_MEMBER_THUMBNAIL, member_thumbnail(shares))
    whole = download_collection_zip(shares)
    app.add(SHARE_ZIP, whole)
    app.add(SHARE_ZIP_HEAD, whole)
    app.add(API_SHARES, show_shares(shares))
    app.add(API_SHARE_REVOKE, revoke(shares))
    app.add(SHARE_PAGE, show_link(shares))
    app.add(SHARE_UNLOCK, unlock_link(shares))
    download = download_link(shares)
    app.add(SHARE_FILE, download)
    app.add(SHARE_FILE_HEAD, download)
