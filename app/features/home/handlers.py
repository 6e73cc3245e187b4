from collections.abc import Sequence
from dataclasses import dataclass, replace
from functools import partial
from urllib.parse import parse_qs

from stario import App, Context, JsonValue, Relay, Writer
from stario.cookies import set_cookie
from stario.datastar import SSE
from stario.exceptions import ClientDisconnected, RequestBodyError
from stario.markup import HtmlElement

from app.access.gate import Gate, principal
from app.accounts.quotas import QuotaLedger
from app.catalog.protocol import Database
from app.common.http import BadTarget, NotJson, local_target, parse_json, whole_number
from app.common.livefeeds import Framed, LiveFeeds, ViewGroup, framed
from app.common.livescreen import ended_notice, follow
from app.common.shell import PageAssets, content_security_policy, new_nonce
from app.config import Config
from app.features.archives.data import MAX_ARCHIVE_FILES
from app.features.home.filelist import PaintedList, list_changes, paint_list
from app.features.home.listing import PAGE_SIZE, Listing, Usage
from app.features.home.rows import preview
from app.features.home.tools import VIEW_COOKIE, VIEWS, move_targets, progress_part
from app.features.home.urls import HOME, HOME_LIVE, SELECT_MATCHING, VIEW
from app.features.home.views import render
from app.features.previews.data import Previewer, owner_preview, preview_params
from app.files.query import EVERY_FILE, FileQuery, QueryError, parse_file_query
from app.files.store import FileRow, count_files, files_changed, list_file_ids, list_files
from app.folders.store import (
    ROOT,
    ancestors,
    catalog_id,
    folder_choices,
    folder_paths,
    get_folder,
    list_children,
    totals,
)
from app.ingest.progress import Progress, progress_changed
from app.previews.thumbnails import Thumbnails, thumbnails_ready

MAX_PAGE = 10**9


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
    """What one tab's list shows: its folder ('' the root), its search and its page."""

    query: FileQuery = EVERY_FILE
    page: int = 1
    folder: str = ROOT


def _folder_param(value: object) -> str:
    """The folder of the address bar or signals ("root", "" or none: the root)."""
    return catalog_id(value) if isinstance(value, str) and len(value) <= 64 else ROOT


def address_view(c: Context) -> ListView:
    get = c.req.query.get
    return ListView(
        page_query(get("q"), get("type"), get("sort"), get("order")),
        _page_number(get("page")),
        _folder_param(get("folder")),
    )


def live_view(c: Context) -> tuple[ListView, str | None, bool]:
    """The tab's list as the page's search controls say (the `list*` signals, which
    Datastar sends with the stream's GET as `?datastar=`), else as the address bar
    (`?q=&type=&sort=&order=&page=`); the version the tab shows (`?seen=`); and
    whether the server ended this tab's stream before (`listEnded`, see `home_live`)."""
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
            _folder_param(signals.get("listFolder")),
        )
        seen = signals.get("listSeen")
        ended = signals.get("listEnded") is True
        return view, seen if isinstance(seen, str) and seen else None, ended
    return address_view(c), c.req.query.get("seen"), False


async def load_listing(db: Database, owner: str, view: ListView = ListView()) -> Listing:
    """The page asked for, or the last one when the list has become shorter.

    A first page that is not full is the whole list: no count. That spares the
    searches that cost most, rare words, whose page walks the whole index anyway
    (`python -m bench search`: the page's p99 at 100,000 rows went from ~45 to ~31 ms).

    The files are those directly in the view's folder, after its folders; a search by
    name looks in every folder instead, and says where each file is."""
    folder = view.folder
    if folder != ROOT and await get_folder(db, owner, folder) is None:
        return Listing([], 0, 1, 1, view.query, folder=folder, gone=True)
    trail = tuple(await ancestors(db, owner, folder))
    across = bool(view.query.q)
    children = [] if across else await list_children(db, owner, folder)
    sums = await totals(db, owner, [f.id for f in children]) if children else {}
    shown = Listing(
        [], 0, 1, 1, view.query, folder=folder, trail=trail,
        folders=tuple((f, sums[f.id]) for f in children),
    )  # fmt: skip
    only = None if across else folder

    async def with_paths(rows: list[FileRow]) -> dict[str, str] | None:
        if not across:
            return None
        return await folder_paths(db, owner, {row.folder_id for row in rows})

    rows = await list_files(
        db, owner, PAGE_SIZE, (view.page - 1) * PAGE_SIZE, view.query, folder=only
    )
    if view.page == 1 and len(rows) < PAGE_SIZE:
        return replace(shown, rows=rows, total=len(rows), paths=await with_paths(rows))
    total = await count_files(db, owner, view.query, folder=only)
    pages = max(1, -(-total // PAGE_SIZE))
    page = min(view.page, pages)
    if page != view.page:
        rows = await list_files(
            db, owner, PAGE_SIZE, (page - 1) * PAGE_SIZE, view.query, folder=only
        )
    return replace(
        shown, rows=rows, total=total, page=page, pages=pages, paths=await with_paths(rows)
    )


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
    previewer: Previewer | None = None,
    bucket_origin: str = "",
):
    """`bucket_origin`: where the page sends file bytes when direct uploads are on
    (its CSP allows it), "" when they are off."""

    async def handler(c: Context, w: Writer) -> None:
        who = principal(c)
        owner = who.account_id
        listing = await load_page_listing(db, thumbnails, owner, address_view(c))
        # `?preview=ID`: the page opens with that file's preview (how a reload, a
        # bookmark and a browser without scripts see one).
        shown = c.req.query.get("preview")
        dialog = None
        if shown and previewer is not None:
            dialog = await owner_preview(previewer, owner, shown, preview_params(c))
        nonce = new_nonce()
        w.headers.set(
            "content-security-policy", content_security_policy(nonce, connect=bucket_origin)
        )
        w.html(
            render(
                config,
                assets,
                who.account,
                listing,
                progress.list_transfers(owner),
                load_usage(quotas, owner),
                nonce=nonce,
                paused=progress.list_paused(owner),
                view=chosen_view(c),
                places=await folder_choices(db, owner),
                preview=dialog,
                direct_uploads=bool(bucket_origin),
            ),
            # A folder that is not (or no longer) the account's, or a preview of a
            # file that is not: the page says so.
            404 if listing.gone or (shown and dialog is None) else 200,
        )

    return handler


type HomeFeeds = LiveFeeds[ListView, Framed]
type HomeGroup = ViewGroup[ListView, Framed]


def _show_preview(row: FileRow, sse: SSE) -> None:
    """A row's thumbnail in place of its type icon, and nothing else of the row."""
    sse.patch_elements(preview(row, True), selector=f"#file-{row.id} .preview", mode="outer")


def framed_list(painted: PaintedList, before: PaintedList | None = None) -> Framed:
    """`#files` and `#usage`, the usage carrying the list's version as its SSE id; and,
    for the pages that show `before`, only the rows and pieces that changed since."""

    def emit(sse: SSE) -> None:
        sse.patch_elements(painted.files)
        sse.patch_elements(painted.usage, event_id=painted.version)

    whole = framed(emit, painted.version)
    if before is None or before.pieces is None or painted.pieces is None:
        return whole
    changes = list_changes(before.pieces, painted.pieces)
    if changes is None:
        return whole

    def emit_changes(sse: SSE) -> None:
        for html, selector, mode in changes:
            if mode is None:
                sse.remove(selector)
            else:
                sse.patch_elements(html, selector=selector, mode=mode)
        sse.patch_elements(painted.usage, event_id=painted.version)

    return replace(whole, base=before.version, diff=framed(emit_changes).data)


def home_subjects(owner: str) -> tuple[str, ...]:
    return (
        files_changed(owner),
        progress_changed(owner),
        thumbnails_ready(owner),
    )


def _remember_coming(group: HomeGroup, listing: Listing) -> None:
    """The rows of the view's page whose thumbnail is being made (the group's memo)."""
    coming = group.memo.setdefault("coming", {})
    assert isinstance(coming, dict)
    coming.update((row.id, row) for row in listing.rows if row.id in listing.previews.coming)


def home_painter(
    gate: Gate, db: Database, progress: Progress, quotas: QuotaLedger, thumbnails: Thumbnails
):
    """Repaints what changed for every open page of an account: the list once per view
    (search, type, sort and page: what differs between tabs), every other part once
    for the account."""

    async def repaint(owner: str, changed: frozenset[str], groups: Sequence[HomeGroup]) -> None:
        def send_all(part: str, element: HtmlElement) -> None:
            patch = framed(lambda sse: sse.patch_elements(element))
            for group in groups:
                group.send(part, patch)

        files_subject = files_changed(owner)
        if files_subject in changed:
            usage = load_usage(quotas, owner)
            for group in groups:
                listing = await load_page_listing(db, thumbnails, owner, group.view)
                group.memo["coming"] = {}
                _remember_coming(group, listing)
                painted, before = paint_list(listing, usage), group.memo.get("painted")
                group.memo["painted"] = painted
                group.send(
                    "list",
                    framed_list(painted, before if isinstance(before, PaintedList) else None),
                )
        if files_subject in changed:
            places = await folder_choices(db, owner)
            send_all("folders", move_targets(places))
        if progress_changed(owner) in changed:
            transfers, paused = progress.list_transfers(owner), progress.list_paused(owner)
            send_all("progress", progress_part(transfers, paused))
        if thumbnails_ready(owner) in changed:
            # The event's id is not used: a burst is one repaint, so the rows still
            # waiting are looked at instead. Only the preview is patched; the list's
            # version is left as it was, so the next repaint or reconnect sends the
            # whole list again.
            for group in groups:
                coming = group.memo.get("coming")
                if not isinstance(coming, dict) or not coming:
                    continue
                for file_id in await thumbnails.ready_among(frozenset(coming)):
                    row = coming.pop(file_id)
                    group.send(f"preview-{file_id}", framed(partial(_show_preview, row)))

    return repaint


def home_live(gate: Gate, db: Database, progress: Progress, quotas: QuotaLedger,
              thumbnails: Thumbnails, feeds: HomeFeeds):  # fmt: skip
    """Paints the account's parts at once, then again on every change of its own:
    the list and usage on `files.changed.<account>`, the progress bars on
    `uploads.progress.<account>` (at most 4 a second), the tokens on
    `tokens.changed.<account>`, the shared links (and their download counts) on
    `shares.changed.<account>` and on file changes (a deleted file ends its links),
    the file requests (and their file counts) on `requests.changed.<account>`, and
    a row's thumbnail in place of its type icon on `thumbnails.ready.<account>`.
    No other account's event ever reaches this stream.

    The repaints are shared (`app/common/livefeeds.py`): one subscription per account,
    changes within `COALESCE_SECONDS` make one repaint, rendered once per view (the
    list) or once per account (the rest), whatever the number of open pages; a page
    that shows the last repaint gets only the rows that changed (`framed_list`). An
    account keeps at most `--max-live-pages-per-account` streams: one more opens, and
    the oldest is told why (`ended_notice`, a Reload button) and ends; its page,
    reconnecting with `listEnded`, gets 204, which stops Datastar's retries.

    The list is sent only when it differs from what the browser shows (see
    `PaintedList`), so a reconnect after an idle drop repaints nothing. While
    nothing happens, a comment goes out every `KEEPALIVE_SECONDS` (common/livescreen.py).
    On every event
    and keep-alive the request's credentials are checked again: a stream whose
    session was ended (sign-out, password change) or whose token was revoked ends,
    and the page, reconnecting, is sent to sign in."""

    async def handler(c: Context, w: Writer) -> None:
        owner = principal(c).account_id
        view, seen, ended = live_view(c)
        if ended:
            w.empty(204)
            return
        shown = c.req.headers.get("last-event-id") or seen
        sse = SSE(w)

        def send(painted: PaintedList) -> None:
            sse.patch_elements(painted.files)
            sse.patch_elements(painted.usage, event_id=painted.version)

        async with feeds.join(owner, view) as (stream, group):
            listing = await load_page_listing(db, thumbnails, owner, view)
            _remember_coming(group, listing)
            painted = paint_list(listing, load_usage(quotas, owner))
            # The id is sent even when nothing else is, so the next reconnect says
            # what this browser shows.
            sse.patch_signals({"_offline": False}, event_id=painted.version)
            sse.patch_elements(
                progress_part(progress.list_transfers(owner), progress.list_paused(owner))
            )
            if painted.version != shown:
                send(painted)
            shown = painted.version

            def end_with_notice(why: str) -> None:
                sse.patch_signals({"listEnded": True})
                sse.patch_elements(ended_notice(why, HOME.href()), selector="#home", mode="prepend")

            await follow(c, w, stream, gate.still_signed_in, end_with_notice, shown)

    return handler


# The view form's body: `view=grid&next=/?q=...`.
MAX_VIEW_BODY_BYTES = 4096
VIEW_COOKIE_SECONDS = 365 * 24 * 3600


def select_matching(db: Database):
    """Every id of the tab's list (its search, the `list*` signals), up to what one
    bulk action takes, as the `_matching` signal."""

    async def handler(c: Context, w: Writer) -> None:
        owner = principal(c).account_id
        view, _, _ = live_view(c)
        folder = None if view.query.q else view.folder
        ids = await list_file_ids(db, owner, MAX_ARCHIVE_FILES + 1, view.query, folder=folder)
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
    previewer: Previewer | None = None,
    bucket_origin: str = "",
) -> None:
    gate.pages(HOME)
    app.add(
        HOME,
        show_home(config, gate, db, assets, progress, quotas, thumbnails, previewer, bucket_origin),
    )
    feeds: HomeFeeds = LiveFeeds(
        relay,
        home_subjects,
        home_painter(gate, db, progress, quotas, thumbnails),
        cap=config.max_live_pages_per_account,
    )
    app.add(HOME_LIVE, home_live(gate, db, progress, quotas, thumbnails, feeds))
    app.add(SELECT_MATCHING, select_matching(db))
    app.add(VIEW, set_view(config))
