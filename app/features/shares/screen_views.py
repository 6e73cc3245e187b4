"""What the Shared screen shows: the account's links and collections, each with its
download count, its latest downloads (a `<details>` that stays open across live
repaints), the CSV of its whole log and a Revoke form that works without scripts;
and the page of one link's whole log, page by page."""

from __future__ import annotations

from datetime import UTC, datetime

from stario import h
from stario.datastar import data
from stario.markup import HtmlElement

from app.common.units import human_bytes
from app.features.shares.urls import SHARED, SHARED_LOG, SHARED_LOG_CSV, SHARED_REVOKE
from app.shares.downloads import ZIP, Download, LogSummary
from app.shares.store import FILES, FOLDER, Share, ShareListing

SHARES_ID = "shares"
STATUS_ID = "shared-status"
# Rows each link shows on the screen; the rest are on its log's pages.
LATEST = 5
LOG_PAGE_ROWS = 100
# What a `?done=` after a form's redirect says (fixed words: nothing free in a URL).
DONE = {"revoked": "The link was revoked: it no longer works."}
# The Datastar form of Revoke: asks first, then posts the same form (SSE answer).
REVOKE = (
    "confirm('Revoke the link to ' + el.dataset.name + '? It stops working at once.')"
    " && @post(el.getAttribute('action'), {contentType: 'form', retryMaxCount: 0})"
)


def when(moment: float | None) -> str:
    if moment is None:
        return "never"
    return datetime.fromtimestamp(moment, UTC).strftime("%Y-%m-%d %H:%M UTC")


def _downloads(share: Share) -> str:
    if share.max_downloads is None:
        return f"{share.downloads} download{'' if share.downloads == 1 else 's'}"
    return f"{share.downloads} of {share.max_downloads} downloads"


def _what(listing: ShareListing) -> HtmlElement | None:
    """What a collection gives, beside its name: a folder (its path, and whether it
    takes uploads) or a set of files (the name says how many)."""
    share = listing.share
    if share.kind == FOLDER:
        uploads = listing.uploads
        taken = None
        if uploads is not None:
            of = "" if uploads.max_files is None else f" of {uploads.max_files:,}"
            taken = h.Span(
                {"class": "share-uploads"}, f"takes uploads: {uploads.received:,}{of} received"
            )
        return h.Span(
            {"class": "share-kind"},
            h.Span(f"folder {listing.folder_path or '/'}"),
            taken,
        )
    if share.kind == FILES:
        return h.Span({"class": "share-kind"}, "set of files")
    return None


def download_what(download: Download) -> str:
    """What a row sent, in words: the file's name, or the collection's ZIP."""
    if download.what == ZIP:
        return f"{download.name} (everything, as a ZIP)"
    return download.name


def download_entry(download: Download) -> HtmlElement:
    """One download, on one line that wraps on a phone."""
    sent = human_bytes(download.bytes_sent)
    return h.Li(
        {"class": "download" + (" bot" if download.bot else "")},
        h.Time(
            {"datetime": datetime.fromtimestamp(download.at, UTC).isoformat(timespec="seconds")},
            when(download.at),
        ),
        h.Span({"class": "download-what"}, download_what(download)),
        h.Span(sent if download.completed else f"cut off after {sent}"),
        h.Span({"class": "badge"}, "link-preview bot") if download.bot else None,
        h.Span({"class": "download-client"}, "client ", h.Code(download.client)),
        h.Span({"class": "download-agent"}, download.user_agent or "no user-agent"),
    )


def _log(share: Share, name: str, summary: LogSummary | None) -> HtmlElement:
    total = 0 if summary is None else summary.total
    label = f"Download log ({total:,} request{'' if total == 1 else 's'})"
    body: list[HtmlElement | None]
    if summary is None or not summary.latest:
        body = [h.P({"class": "empty"}, "Nobody has downloaded through this link yet.")]
    else:
        body = [
            h.Ol({"class": "download-log"}, *[download_entry(d) for d in summary.latest]),
            h.P(
                {"class": "log-links"},
                h.A(
                    {"href": SHARED_LOG.href(share.id), "aria-label": f"Every download of {name}"},
                    f"Show all {total:,}" if total > LATEST else "Open the log",
                ),
                h.A(
                    {
                        "href": SHARED_LOG_CSV.href(share.id),
                        "download": "",
                        "aria-label": f"Download log of {name} as CSV",
                    },
                    "CSV",
                ),
            ),
        ]
    return h.Details(
        # The person opened it: a live repaint must not close it.
        {"class": "share-log", "id": f"log-{share.id}", "data-preserve-attr": "open"},
        h.Summary(label),
        *body,
    )


def revoke_form(share: Share, name: str) -> HtmlElement:
    return h.Form(
        {
            "method": "post",
            "action": SHARED_REVOKE.href(share.id),
            "class": "revoke-form",
            "data-name": name,
        },
        data.on("submit", REVOKE, prevent=True),
        h.Button(
            {
                "type": "submit",
                "class": "button danger",
                "aria-label": f"Revoke the link to {name}",
            },
            "Revoke",
        ),
    )


def shares_part(
    listings: list[ShareListing], now: float, logs: dict[str, LogSummary]
) -> HtmlElement:
    if not listings:
        return h.Div({"id": SHARES_ID}, h.P({"class": "empty"}, "No shared links."))
    items = []
    for listing in listings:
        share = listing.share
        gone = share.gone(now)
        name = listing.file_name
        items.append(
            h.Li(
                {"class": "token share", "id": f"share-{share.id}"},
                h.Div(
                    {"class": "file-main"},
                    h.Span({"class": "file-name"}, name),
                    h.Span(
                        {"class": "file-meta"},
                        _what(listing),
                        h.Span({"class": "share-downloads"}, _downloads(share)),
                        h.Span(f"expires {when(share.expires_at)}"),
                        h.Span("password") if share.has_password else None,
                        h.Strong(f"over: {gone.value}") if gone else None,
                    ),
                    _log(share, name, logs.get(share.id)),
                ),
                revoke_form(share, name),
            )
        )
    return h.Div({"id": SHARES_ID}, h.Ul({"class": "token-list"}, *items))


def status_part(done: str | None = None, error: str | None = None) -> HtmlElement:
    """What the last form did, or why it could not: where the list starts."""
    if error is not None:
        return h.P({"id": STATUS_ID, "class": "notice error", "role": "alert"}, error)
    return h.P(
        {"id": STATUS_ID, "class": "notice" if done else "", "role": "status"},
        DONE.get(done or "", ""),
    )


def links_panel(
    listings: list[ShareListing],
    now: float,
    logs: dict[str, LogSummary],
    *,
    done: str | None = None,
    error: str | None = None,
) -> HtmlElement:
    """The Shared screen's list of links and collections the stream repaints."""
    return h.Section(
        {"id": "shared-links", "aria-labelledby": "shares-title"},
        h.H1({"id": "shares-title"}, "Shared links"),
        h.P(
            {"class": "note"},
            "Anyone with a link can open what it gives (a file, a folder or a set of files),"
            " without an account; a folder link may also take uploads. "
            "Links are shown only when made; revoke one the moment it may have leaked."
            " Share a file or folder from its row on the Files screen.",
        ),
        h.P(
            {"class": "note"},
            "Each link logs its downloads: when, the client (a code made from its address,"
            " which is not kept), its user-agent, what and how much it took. Chat apps"
            " that draw a card for a pasted link are marked as link-preview bots.",
        ),
        status_part(done, error),
        shares_part(listings, now, logs),
    )


def log_page_main(
    share: Share, name: str, downloads: list[Download], *, total: int, page: int
) -> HtmlElement:
    """One page of a link's whole log, newest first."""
    pages = max(1, -(-total // LOG_PAGE_ROWS))
    nav = []
    if page > 1:
        nav.append(h.A({"href": SHARED_LOG.href(share.id, query={"page": page - 1})}, "Newer"))
    if page < pages:
        nav.append(h.A({"href": SHARED_LOG.href(share.id, query={"page": page + 1})}, "Older"))
    return h.Main(
        {"id": "shared-log"},
        h.P(h.A({"href": SHARED.href()}, "Back to Shared links")),
        h.H1(f"Downloads of {name}"),
        h.P(
            {"class": "note"},
            f"{total:,} request{'' if total == 1 else 's'}, newest first"
            + (f"; page {page} of {pages}" if pages > 1 else "")
            + ". ",
            h.A(
                {"href": SHARED_LOG_CSV.href(share.id), "download": ""},
                "Download the whole log as CSV",
            ),
        ),
        h.Ol({"class": "download-log"}, *[download_entry(d) for d in downloads])
        if downloads
        else h.P({"class": "empty"}, "Nobody has downloaded through this link yet."),
        h.Nav({"class": "log-pages", "aria-label": "Log pages"}, *nav) if nav else None,
    )
