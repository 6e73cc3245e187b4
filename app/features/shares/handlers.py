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
from dataclasses import dataclass
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
)
from app.common.shell import PageAssets, content_security_policy, new_nonce
from app.config import Config
from app.downloads.counting import Counting
from app.downloads.serve import serve_file
from app.features.shares.data import share_json, shares_changed
from app.features.shares.panel import new_share_error, new_share_part
from app.features.shares.urls import (
    API_SHARE_CREATE,
    API_SHARE_REVOKE,
    API_SHARES,
    SHARE_FILE,
    SHARE_FILE_HEAD,
    SHARE_PAGE,
    SHARE_UNLOCK,
)
from app.features.shares.views import (
    can_preview,
    gone_page,
    landing_page,
    password_page,
    unknown_page,
)
from app.files.store import get_file
from app.shares.store import (
    DEFAULT_EXPIRES_IN,
    HOLD_SECONDS,
    SHARE_ID_PATTERN,
    Share,
    ShareError,
    byte_budget,
    check_expires_in,
    check_max_downloads,
    check_password,
    create_share,
    list_shares,
    live_holds,
    renew_holds,
    reserve_bytes,
    revoke_share,
    settle_bytes,
    share_by_id,
    share_meter,
)
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
                SSE(w).patch_elements(new_share_error(message[:1].upper() + message[1:] + "."))
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
            sse.patch_signals({"sharePassword": "", "shareLimit": ""})
            w.end()
            return
        w.headers.set("location", url)
        w.json({"share": share_json(share, url)}, 201)

    return handler


def show_shares(shares: Shares):
    async def handler(c: Context, w: Writer) -> None:
        listings = await list_shares(shares.db, principal(c).account_id)
        w.json({"shares": [share_json(listing.share, None) for listing in listings]})

    return handler


def revoke(shares: Shares):
    async def handler(c: Context, w: Writer) -> None:
        owner = principal(c).account_id
        share_id = path_param(c, "share_id")
        known = SHARE_ID_PATTERN.fullmatch(share_id) is not None
        if not known or not await revoke_share(shares.db, share_id, owner, shares.now()):
            json_error(w, 404, "no such link")
            return
        w.empty()
        shares.relay.publish(shares_changed(owner), "revoked")

    return handler


# The link ------------------------------------------------------------------------------


def _page(w: Writer, element: HtmlElement, status: int = 200) -> None:
    w.headers.set("content-security-policy", content_security_policy(new_nonce()))
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
        row = await get_file(shares.db, access.file_id) if access is not None else None
        if access is None or row is None or not may_read_file(access, row.id, row.owner):
            _page(w, unknown_page(shares.assets), 404)
            return
        share, left = access.share, None
        meter = share_meter(shares.db, share.id) if share.max_downloads is not None else None
        if meter is not None and share.max_downloads is not None:
            left = max(0, byte_budget(share.max_downloads, row.size) - meter.sent_bytes)
        _page(w, landing_page(shares.assets, token, share, row, shares.now(), bytes_left=left))

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


def _counting(shares: Shares, share: Share, size: int) -> Counting:
    limited = share.max_downloads is not None
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

    return Counting(reserve=reserve, settle=settle, refusal=refusal)


def download_link(shares: Shares):
    """GET and HEAD /s/{token}/file: the link's one file, through the same serving code
    as the owner's own downloads (`serve_file`). `?preview=1` is the landing page's
    image preview: only where the page shows one (`can_preview`), and never counted."""

    async def handler(c: Context, w: Writer) -> None:
        access = share_access(c)
        token = _token(c)
        if access is None:
            _text(w, 404, "No such link.")
            return
        if isinstance(access, ShareGone):
            _text(w, 410, f"This link no longer works: {access.reason.value}.")
            return
        if isinstance(access, ShareLocked):
            if access.retry_after is not None:
                w.headers.set("retry-after", str(access.retry_after))
                _text(w, 429, "Too many wrong passwords for this link; wait and try again.")
                return
            if c.req.headers.get("sec-fetch-mode") == "navigate" and c.req.method == "GET":
                w.redirect(SHARE_PAGE.href(token), 303)  # a person: the password form
                return
            w.headers.set("www-authenticate", 'Basic realm="stowage share", charset="UTF-8"')
            if access.wrong:
                _text(w, 401, "Wrong password for this link.")
            else:
                _text(w, 401, "This link needs its password (HTTP Basic: curl -u :PASSWORD).")
            return
        row = await get_file(shares.db, access.file_id)
        if row is None or not may_read_file(access, row.id, row.owner):
            _text(w, 404, "No such link.")
            return
        if c.req.query.get("preview") is not None:
            if not can_preview(row, access.share):
                _text(w, 404, "This link has no preview.")
                return
            await serve_file(c, w, shares.store, row)
            return
        await serve_file(c, w, shares.store, row, _counting(shares, access.share, row.size))

    return handler


def register_shares(app: App, shares: Shares) -> None:
    shares.gate.shares(SHARE_PAGE, SHARE_UNLOCK, SHARE_FILE, SHARE_FILE_HEAD)
    app.add(API_SHARE_CREATE, create(shares))
    app.add(API_SHARES, show_shares(shares))
    app.add(API_SHARE_REVOKE, revoke(shares))
    app.add(SHARE_PAGE, show_link(shares))
    app.add(SHARE_UNLOCK, unlock_link(shares))
    download = download_link(shares)
    app.add(SHARE_FILE, download)
    app.add(SHARE_FILE_HEAD, download)
