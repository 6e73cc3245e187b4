import asyncio
from collections.abc import AsyncGenerator
from contextlib import aclosing
from dataclasses import dataclass, replace
from urllib.parse import parse_qs

from stario import App, Context, JsonValue, Relay, Writer
from stario.cookies import set_cookie
from stario.datastar import SSE
from stario.exceptions import ClientDisconnected, RequestBodyError
from stario.markup.render import render as render_markup
from stario.relay import RelaySubscription

from app.access.gate import Gate, principal
from app.accounts.quotas import QuotaLedger
from app.accounts.store import list_tokens
from app.common.http import BadTarget, NotJson, local_target, parse_json, whole_number
from app.common.shell import PageAssets, content_security_policy, new_nonce
from app.config import Config
from app.db import Database
from app.features.archives.handlers import MAX_ARCHIVE_FILES
from app.features.files.data import FileRow, count_files, files_changed, list_file_ids, list_files
from app.features.files.query import EVERY_FILE, FileQuery, QueryError, parse_file_query
from app.features.home.urls import HOME, HOME_LIVE, SELECT_MATCHING, VIEW
from app.features.home.views import (
    PAGE_SIZE,
    VIEW_COOKIE,
    VIEWS,
    Listing,
    PaintedList,
    Usage,
    paint_list,
    preview,
    progress_part,
    render,
)
from app.features.requests.data import open_requests, requests_changed
from app.features.requests.views import requests_part
from app.features.shares.data import shares_changed
from app.features.shares.views import shares_part
from app.features.tokens.data import tokens_changed
from app.features.tokens.views import tokens_part
from app.ingest.progress import Progress, progress_changed
from app.previews.thumbnails import Thumbnails, thumbnails_ready
from app.shares.store import list_shares

MAX_PAGE = 10**9
# Proxies drop a response that stays silent too long (nginx's proxy_read_timeout is
# 60 s by default); the idle stream says something well inside that.
KEEPALIVE_SECONDS = 15.0


def _page_number(text: str | None) -> int:
    """The page asked for. This is a person's address bar, not an API: nonsense (not
    ASCII digits, or too many) shows the first page, as a page past the end shows
    the last, rather than an error page."""
    return max(1, whole_number(text, 1, MAX_PAGE) or 1)


def page_query(q: object, type_: object, sort: object, order: object = None) -> FileQuery:
    """The list's search from the address bar or the page's signals: as the API's
    parameters, and `sort` may also carry its order (`name-asc`, the page's sort
    control). Like the page number, what cannot be used is left out, not an error."""

    def text(value: object) -> str | None:
        return value if isinstance(value, str) and value else None

    sort_text, order_text = text(sort), text(order)
    if sort_text and "-" in sort_text:
        sort_text, _, order_text = sort_text.partition("-")
    for attempt in (
        (text(q), text(type_), sort_text, order_text),
        (text(q), text(type_), None, None),
        (text(q), None, None, None),
    ):
        try:
            return parse_file_query(*attempt)
        except QueryError:
            continue
    return EVERY_FILE


@dataclass(frozen=True, slots=True)
class ListView:
    """What one tab's list shows: its search and its page."""

    query: FileQuery = EVERY_FILE
    page: int = 1


def address_view(c: Context) -> ListView:
    get = c.req.query.get
    return ListView(
        page_query(get("q"), get("type"), get("sort"), get("order")), _page_number(get("page"))
    )


def live_view(c: Context) -> tuple[ListView, str | None]:
    """The tab's list as the page's search controls say (the `list*` signals, which
    Datastar sends with the stream's GET as `?datastar=`), else as the address bar
    (`?q=&type=&sort=&order=&page=`); and the version the tab shows (`?seen=`)."""
    raw = c.req.query.get("datastar")
    signals: object = None
    if raw:
        try:
            signals = parse_json(raw)
        except NotJson:
            signals = None
    if isinstance(signals, dict) and "listQ" in signals:
        page = signals.get("listPage")
        view = ListView(
            page_query(signals.get("listQ"), signals.get("listType"), signals.get("listSort")),
            _page_number(str(page) if isinstance(page, int) else None),
        )
        seen = signals.get("listSeen")
        return view, seen if isinstance(seen, str) and seen else None
    return address_view(c), c.req.query.get("seen")


async def load_listing(db: Database, owner: str, view: ListView = ListView()) -> Listing:
    """The page asked for, or the last one when the list has become shorter.

    A first page that is not full is the whole list: no count. That spares the
    searches that cost most, rare words, whose page walks the whole index anyway
    (`python -m bench search`: the page's p99 at 100,000 rows went from ~45 to ~31 ms)."""
    rows = await list_files(db, owner, PAGE_SIZE, (view.page - 1) * PAGE_SIZE, view.query)
    if view.page == 1 and len(rows) < PAGE_SIZE:
        return Listing(rows, len(rows), 1, 1, view.query)
    total = await count_files(db, owner, view.query)
    pages = max(1, -(-total // PAGE_SIZE))
    page = min(view.page, pages)
    if page != view.page:
        rows = await list_files(db, owner, PAGE_SIZE, (page - 1) * PAGE_SIZE, view.query)
    return Listing(rows, total, page, pages, view.query)


async def load_page_listing(
    db: Database, thumbnails: Thumbnails, owner: str, view: ListView = ListView()
) -> Listing:
    """`load_listing`, and which of its rows have a thumbnail to show."""
    listing = await load_listing(db, owner, view)
    return replace(listing, previews=await thumbnails.previews(listing.rows))


def chosen_view(c: Context) -> str:
    """ "list" or "grid", as this browser last chose (the cookie); "list" at first."""
    view = c.req.cookies.get(VIEW_COOKIE)
    return view if view in VIEWS else "list"


def load_usage(quotas: QuotaLedger, owner: str) -> Usage:
    used, quota = quotas.usage(owner)
    return Usage(used, quota)


def show_home(
    config: Config,
    gate: Gate,
    db: Database,
    assets: PageAssets,
    progress: Progress,
    quotas: QuotaLedger,
    thumbnails: Thumbnails,
):
    async def handler(c: Context, w: Writer) -> None:
        who = principal(c)
        owner = who.account_id
        listing = await load_page_listing(db, thumbnails, owner, address_view(c))
        nonce = new_nonce()
        w.headers.set("content-security-policy", content_security_policy(nonce))
        w.html(
            render(
                config,
                assets,
                who.account,
                listing,
                progress.list_transfers(owner),
                load_usage(quotas, owner),
                await list_tokens(db, owner),
                await list_shares(db, owner),
                await open_requests(db, owner),
                now=gate.clock(),
                nonce=nonce,
                paused=progress.list_paused(owner),
                view=chosen_view(c),
            )
        )

    return handler


def home_live(
    gate: Gate,
    db: Database,
    relay: Relay[str],
    progress: Progress,
    quotas: QuotaLedger,
    thumbnails: Thumbnails,
):
    """Paints the account's parts at once, then again on every change of its own:
    the list and usage on `files.changed.<account>`, the progress bars on
    `uploads.progress.<account>` (at most 4 a second), the tokens on
    `tokens.changed.<account>`, the shared links (and their download counts) on
    `shares.changed.<account>` and on file changes (a deleted file ends its links),
    the file requests (and their file counts) on `requests.changed.<account>`, and
    a row's thumbnail in place of its type icon on `thumbnails.ready.<account>`.
    No other account's event ever reaches this stream.

    The list is sent only when it differs from what the browser shows (see
    `PaintedList`), so a reconnect after an idle drop repaints nothing. While
    nothing happens, a comment goes out every `KEEPALIVE_SECONDS`. On every event
    and keep-alive the request's credentials are checked again: a stream whose
    session was ended (sign-out, password change) or whose token was revoked ends,
    and the page, reconnecting, is sent to sign in."""

    async def handler(c: Context, w: Writer) -> None:
        owner = principal(c).account_id
        view, seen = live_view(c)
        shown = c.req.headers.get("last-event-id") or seen
        files_subject, tokens_subject = files_changed(owner), tokens_changed(owner)
        shares_subject, requests_subject = shares_changed(owner), requests_changed(owner)

        thumbnails_subject = thumbnails_ready(owner)
        # The rows on this tab's page whose thumbnail is being made.
        coming: dict[str, FileRow] = {}

        async def paint() -> PaintedList:
            listing = await load_page_listing(db, thumbnails, owner, view)
            coming.clear()
            coming.update(
                (row.id, row) for row in listing.rows if row.id in listing.previews.coming
            )
            return paint_list(listing, load_usage(quotas, owner))

        async def show_thumbnails() -> None:
            # The event's id is not used: `latest` keeps one event of a burst, so the
            # rows still waiting are looked at instead. Only the preview is patched;
            # the list's version is left as it was, so the next repaint or reconnect
            # sends the whole list again.
            for file_id in await thumbnails.ready_among(frozenset(coming)):
                sse.patch_elements(
                    render_markup(preview(coming.pop(file_id), True)),
                    selector=f"#file-{file_id} .preview",
                    mode="outer",
                )

        def send(painted: PaintedList) -> None:
            sse.patch_elements(painted.files)
            sse.patch_elements(painted.usage, event_id=painted.version)

        async with relay.subscribe(
            files_subject,
            progress_changed(owner),
            tokens_subject,
            shares_subject,
            requests_subject,
            thumbnails_subject,
            latest=True,
        ) as events:
            sse = SSE(w)
            painted = await paint()
            # The id is sent even when nothing else is, so the next reconnect says
            # what this browser shows.
            sse.patch_signals({"_offline": False}, event_id=painted.version)
            sse.patch_elements(
                progress_part(progress.list_transfers(owner), progress.list_paused(owner))
            )
            if painted.version != shown:
                send(painted)
            shown = painted.version
            sse.patch_elements(shares_part(await list_shares(db, owner), gate.clock()))
            sse.patch_elements(requests_part(await open_requests(db, owner), gate.clock()))
            async with c.alive():
                await w.drain()
                async with aclosing(_subjects_or_keepalive(events, sse)) as subjects:
                    async for subject in subjects:
                        if not await gate.still_signed_in(c):
                            return
                        if subject is None:
                            pass  # the keep-alive comment is already written
                        elif subject == files_subject:
                            painted = await paint()
                            if painted.version != shown:
                                send(painted)
                                shown = painted.version
                            shares = await list_shares(db, owner)
                            sse.patch_elements(shares_part(shares, gate.clock()))
                        elif subject == shares_subject:
                            shares = await list_shares(db, owner)
                            sse.patch_elements(shares_part(shares, gate.clock()))
                        elif subject == requests_subject:
                            found = await open_requests(db, owner)
                            sse.patch_elements(requests_part(found, gate.clock()))
                        elif subject == thumbnails_subject:
                            await show_thumbnails()
                        elif subject == tokens_subject:
                            sse.patch_elements(tokens_part(await list_tokens(db, owner)))
                        else:
                            sse.patch_elements(
                                progress_part(
                                    progress.list_transfers(owner), progress.list_paused(owner)
                                )
                            )
                        await w.drain()

    return handler


async def _subjects_or_keepalive(
    events: RelaySubscription[str], sse: SSE
) -> AsyncGenerator[str | None]:
    """Each event's subject as it comes; None after writing a keep-alive comment when
    `KEEPALIVE_SECONDS` pass without one. One `receive()` stays pending across
    keep-alives, so no event is lost to a timeout."""
    pending: asyncio.Task[tuple[str, str]] | None = None
    try:
        while True:
            if pending is None:
                pending = asyncio.ensure_future(events.receive())
            done, _ = await asyncio.wait({pending}, timeout=KEEPALIVE_SECONDS)
            if not done:
                sse.ping("keep-alive")
                yield None
                continue
            subject, _ = pending.result()
            pending = None
            yield subject
    finally:
        if pending is not None:
            pending.cancel()


# The view form's body: `view=grid&next=/?q=...`.
MAX_VIEW_BODY_BYTES = 4096
VIEW_COOKIE_SECONDS = 365 * 24 * 3600


def select_matching(db: Database):
    """Every id of the tab's list (its search, the `list*` signals), up to what one
    bulk action takes, as the `_matching` signal."""

    async def handler(c: Context, w: Writer) -> None:
        owner = principal(c).account_id
        view, _ = live_view(c)
        ids = await list_file_ids(db, owner, MAX_ARCHIVE_FILES + 1, view.query)
        notice = ""
        if len(ids) > MAX_ARCHIVE_FILES:
            ids = ids[:MAX_ARCHIVE_FILES]
            notice = (
                f"Selected the first {MAX_ARCHIVE_FILES:,} files of the list:"
                " the most one action takes."
            )
        matching: list[JsonValue] = list(ids)
        SSE(w).patch_signals({"_matching": matching, "_notice": notice})
        w.end()

    return handler


def set_view(config: Config):
    """The list or grid view from the page's form when scripts are off: the same
    cookie the page sets with them, then back (303) to where the form was."""

    async def handler(c: Context, w: Writer) -> None:
        try:
            body = await c.req.body(max_size=MAX_VIEW_BODY_BYTES)
        except (RequestBodyError, ClientDisconnected):
            body = b""
        fields = parse_qs(body.decode("utf-8", "replace"))
        view = (fields.get("view") or [""])[0]
        if view not in VIEWS:
            w.text(f"400 Bad Request: view must be one of {', '.join(VIEWS)}\n", 400)
            return
        try:
            back = local_target((fields.get("next") or [""])[0], HOME.href())
        except BadTarget as exc:
            w.text(f"400 Bad Request: {exc}\n", 400)
            return
        # Not HttpOnly: the page's script sets the same cookie when a view is chosen.
        set_cookie(
            w,
            VIEW_COOKIE,
            view,
            max_age=VIEW_COOKIE_SECONDS,
            path="/",
            secure=config.secure_cookies,
            httponly=False,
            samesite="lax",
        )
        w.redirect(back, 303)

    return handler


def register_home(
    app: App,
    gate: Gate,
    config: Config,
    db: Database,
    assets: PageAssets,
    relay: Relay[str],
    progress: Progress,
    quotas: QuotaLedger,
    thumbnails: Thumbnails,
) -> None:
    gate.pages(HOME)
    app.add(HOME, show_home(config, gate, db, assets, progress, quotas, thumbnails))
    app.add(HOME_LIVE, home_live(gate, db, relay, progress, quotas, thumbnails))
    app.add(SELECT_MATCHING, select_matching(db))
    app.add(VIEW, set_view(config))
