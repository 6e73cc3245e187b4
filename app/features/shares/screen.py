"""The Shared screen (`/shared`): the account's links and collections with their
download logs, live; Revoke as a plain form; each link's whole log as pages, CSV and
JSON (the owner's only: another account's link is answered as an unknown one)."""

from __future__ import annotations

import csv
import io

from stario import App, Context, JsonValue, Relay, Writer, h
from stario.datastar import SSE, at, data

from app.access.gate import Gate, opens_a_page, principal
from app.catalog.protocol import Database
from app.common.http import (
    content_disposition,
    is_datastar,
    json_error,
    never_compressed,
    path_param,
)
from app.common.livescreen import ScreenFeeds, screen_feeds, serve_screen
from app.common.shell import PageAssets, content_security_policy, new_nonce
from app.config import Config
from app.features.nav.panel import screen_page
from app.features.shares.data import shares_changed
from app.features.shares.handlers import Shares, revoke_link
from app.features.shares.screen_views import (
    DONE,
    LATEST,
    LOG_PAGE_ROWS,
    download_what,
    links_panel,
    log_page_main,
    shares_part,
    status_part,
)
from app.features.shares.urls import (
    API_SHARE_DOWNLOADS,
    SHARED,
    SHARED_LIVE,
    SHARED_LOG,
    SHARED_LOG_CSV,
    SHARED_REVOKE,
)
from app.files.store import files_changed
from app.shares.downloads import (
    ZIP,
    Download,
    count_downloads,
    latest_downloads,
    share_downloads,
)
from app.shares.store import SHARE_ID_PATTERN, Share, iso, list_shares, share_by_id

MAIN_ID = "shared"
# Cells a spreadsheet would run as a formula start with one of these (CSV injection):
# such a cell gets a leading quote.
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
# The JSON log's page: `?limit=` (at most MAX_API_ROWS) and `?offset=`, newest first.
API_ROWS = 1000
MAX_API_ROWS = 10_000
CSV_COLUMNS = ("time", "client", "user_agent", "bot", "what", "bytes_sent", "completed")


def _subjects(owner: str) -> tuple[str, ...]:
    # A deleted file ends its links.
    return shares_changed(owner), files_changed(owner)


def _owned(db: Database, c: Context) -> Share | None:
    """The link of the path's `{share_id}` if it is the caller's (revoked ones too)."""
    share_id = path_param(c, "share_id")
    if SHARE_ID_PATTERN.fullmatch(share_id) is None:
        return None
    share = share_by_id(db, share_id)
    return share if share is not None and share.owner == principal(c).account_id else None


def csv_cell(value: str) -> str:
    return "'" + value if value.startswith(FORMULA_STARTS) else value


def downloads_csv(downloads: list[Download]) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(CSV_COLUMNS)
    for d in downloads:
        row = (
            iso(d.at) or "", d.client, d.user_agent, "yes" if d.bot else "no",
            download_what(d), str(d.bytes_sent), "yes" if d.completed else "no",
        )  # fmt: skip
        writer.writerow([csv_cell(cell) for cell in row])
    return out.getvalue()


def download_json(d: Download) -> dict[str, JsonValue]:
    return {
        "at": iso(d.at),
        "what": d.what,
        "file_id": None if d.what == ZIP else d.file_id,
        "name": d.name,
        "client": d.client,
        "user_agent": d.user_agent,
        "bytes_sent": d.bytes_sent,
        "completed": d.completed,
        "bot": d.bot,
    }


def _number(text: str | None, default: int) -> int:
    """A query's whole number (at most nine digits), else `default`."""
    return int(text) if text is not None and text.isdigit() and len(text) <= 9 else default


def _page_number(text: str | None) -> int:
    return max(1, _number(text, 1))


def register_shared_screen(
    app: App,
    gate: Gate,
    config: Config,
    db: Database,
    assets: PageAssets,
    relay: Relay[str],
    shares: Shares,
) -> None:
    async def paint(owner: str, changed: frozenset[str] | None):
        listings = await list_shares(db, owner)
        logs = await latest_downloads(db, owner, LATEST)
        return [shares_part(listings, gate.clock(), logs)]

    feeds: ScreenFeeds = screen_feeds(
        relay, _subjects, paint, cap=config.max_live_pages_per_account
    )

    async def render(
        c: Context, w: Writer, *, done: str | None = None, error: str | None = None, status=200
    ) -> None:
        who = principal(c)
        nonce = new_nonce()
        w.headers.set("content-security-policy", content_security_policy(nonce))
        listings = await list_shares(db, who.account_id)
        logs = await latest_downloads(db, who.account_id, LATEST)
        main = h.Main(
            {"id": MAIN_ID},
            data.signals({"_offline": False, "_ended": False}, if_missing=True),
            data.init(at.get(SHARED_LIVE.href(), retry="always")),
            links_panel(listings, gate.clock(), logs, done=done, error=error),
        )
        page = screen_page(assets, "Shared", who.account, "shared", main, nonce=nonce)
        w.html(page, status)

    async def show(c: Context, w: Writer) -> None:
        done = c.req.query.get("done")
        await render(c, w, done=done if done in DONE else None)

    async def live(c: Context, w: Writer) -> None:
        await serve_screen(
            c, w, owner=principal(c).account_id, feeds=feeds, paint=paint,
            still_signed_in=gate.still_signed_in, here=SHARED.href(), main_id=MAIN_ID,
        )  # fmt: skip

    async def revoke(c: Context, w: Writer) -> None:
        """POST /shared/{share_id}/revoke: a plain form (303 back to the screen, which
        says so) or the same form posted by Datastar (the status patched; the list
        repaints through the stream)."""
        owner = principal(c).account_id
        revoked = await revoke_link(shares, path_param(c, "share_id"), owner)
        datastar = is_datastar(c)
        message = "That link is not one of yours, or it was already revoked."
        if datastar:
            sse = SSE(w)
            sse.patch_elements(
                status_part(done="revoked") if revoked else status_part(error=message)
            )
            if revoked:
                sse.patch_elements(shares_part(
                    await list_shares(db, owner), gate.clock(),
                    await latest_downloads(db, owner, LATEST),
                ))  # fmt: skip
            w.end()
            return
        if not revoked:
            await render(c, w, error=message, status=404)
            return
        w.redirect(SHARED.href(query={"done": "revoked"}), 303)

    def no_log(c: Context, w: Writer) -> None:
        """The 404 page of a log that is not one of this account's links."""
        nonce = new_nonce()
        w.headers.set("content-security-policy", content_security_policy(nonce))
        main = h.Main(
            {"id": "shared-log"},
            h.H1("No such link"),
            h.P(
                "None of your links has this log. ",
                h.A({"href": SHARED.href()}, "Back to Shared links"),
            ),
        )
        account = principal(c).account
        w.html(screen_page(assets, "No such link", account, "shared", main, nonce=nonce), 404)

    async def log_page(c: Context, w: Writer) -> None:
        share = _owned(db, c)
        who = principal(c)
        if share is None:
            no_log(c, w)
            return
        nonce = new_nonce()
        w.headers.set("content-security-policy", content_security_policy(nonce))
        page = _page_number(c.req.query.get("page"))
        total = await count_downloads(db, share.id, share.owner)
        rows = await share_downloads(
            db, share.id, share.owner, limit=LOG_PAGE_ROWS, offset=(page - 1) * LOG_PAGE_ROWS
        )
        names = {x.share.id: x.file_name for x in await list_shares(db, who.account_id)}
        name = names.get(share.id, "a revoked link")
        log = log_page_main(share, name, rows, total=total, page=page)
        w.html(screen_page(assets, "Download log", who.account, "shared", log, nonce=nonce))

    async def log_csv(c: Context, w: Writer) -> None:
        share = _owned(db, c)
        if share is None:
            if opens_a_page(c):
                no_log(c, w)
            else:
                json_error(w, 404, "no such link")
            return
        body = downloads_csv(await share_downloads(db, share.id, share.owner)).encode()
        never_compressed(w)  # its own Content-Length
        w.headers.set("content-type", "text/csv; charset=utf-8")
        w.headers.set(
            "content-disposition", content_disposition("attachment", f"downloads-{share.id}.csv")
        )
        w.headers.set("x-content-type-options", "nosniff")
        w.headers.set("content-length", str(len(body)))
        w.write_headers(200)
        w.end(body)

    async def log_json(c: Context, w: Writer) -> None:
        share = _owned(db, c)
        if share is None:
            json_error(w, 404, "no such link")
            return
        limit = min(_number(c.req.query.get("limit"), API_ROWS), MAX_API_ROWS)
        offset = _number(c.req.query.get("offset"), 0)
        total = await count_downloads(db, share.id, share.owner)
        rows = await share_downloads(db, share.id, share.owner, limit=limit, offset=offset)
        w.json(
            {
                "share_id": share.id,
                "total": total,
                "downloads": [download_json(d) for d in rows],
            }
        )

    gate.pages(SHARED, SHARED_LOG, SHARED_LOG_CSV)
    app.add(SHARED, show)
    app.add(SHARED_LIVE, live)
    app.add(SHARED_REVOKE, revoke)
    app.add(SHARED_LOG, log_page)
    app.add(SHARED_LOG_CSV, log_csv)
    app.add(API_SHARE_DOWNLOADS, log_json)
