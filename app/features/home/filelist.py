"""`#files`: the list the stream repaints (its summary, rows and pager), and the
pieces and patches a repaint sends when only a few rows changed."""

import hashlib
from dataclasses import dataclass
from typing import Literal

from stario import h
from stario.datastar import data
from stario.markup import HtmlElement
from stario.markup.render import render as render_markup

from app.features.home.listing import PAGE_SIZE, Listing, Usage
from app.features.home.rows import folder_head, listed_row, plural, usage_part
from app.features.home.tools import SELECT_MATCHING_ALL
from app.features.home.urls import HOME, SELECT_MATCHING
from app.folders.store import ROOT


@dataclass(frozen=True, slots=True)
class ListPieces:
    """`#files` of a list that has rows, as the pieces a repaint may send alone: its
    summary, each row by file id, in order, and its pager ("" when it has none)."""

    summary: str
    rows: tuple[tuple[str, str], ...]
    pager: str
    # The breadcrumb and the folders (`folder_head`).
    head: str = ""

    def html(self) -> str:
        # What `render_markup(files_part(listing))` gives (a test holds them equal).
        rows = "".join(html for _, html in self.rows)
        return (
            f'<div id="files">{self.head}{self.summary}<ul class="file-list">{rows}</ul>'
            f"{self.pager}</div>"
        )


def list_pieces(listing: Listing) -> ListPieces | None:
    """The pieces of `files_part(listing)`; None for the lists without rows."""
    if not listing.rows or not listing.total:
        return None
    return ListPieces(
        render_markup(_summary(listing)),
        tuple((row.id, render_markup(listed_row(listing, row))) for row in listing.rows),
        render_markup(_pager(listing)) if listing.pages > 1 else "",
        render_markup(folder_head(listing)),
    )


# A patch of part of `#files`: HTML, the selector it goes to, and how (None: remove
# what the selector matches).
type ListChange = tuple[str, str, Literal["outer", "prepend", "after"] | None]


def list_changes(old: ListPieces, new: ListPieces) -> list[ListChange] | None:
    """What turns `old` into `new` in a page that shows `old`, as patches, or None when
    the whole list is simpler: the rows both have must keep their order, and the pager
    its presence.

    An upload, a delete or a rename changes a row or two of fifty: a repaint that sends
    those instead of the whole list is ~2 kB a page instead of ~47 kB (`python -m bench
    live`)."""
    old_rows, new_rows = dict(old.rows), dict(new.rows)
    if bool(old.pager) != bool(new.pager):
        return None
    kept_old = [file_id for file_id, _ in old.rows if file_id in new_rows]
    kept_new = [file_id for file_id, _ in new.rows if file_id in old_rows]
    if kept_old != kept_new:
        return None
    changes: list[ListChange] = []
    if old.head != new.head:
        changes.append((new.head, "#files > .folder-head", "outer"))
    if old.summary != new.summary:
        changes.append((new.summary, "#files > .summary", "outer"))
    for file_id, _ in old.rows:
        if file_id not in new_rows:
            changes.append(("", f"#file-{file_id}", None))
    previous: str | None = None
    for file_id, html in new.rows:
        if file_id not in old_rows:
            if previous is None:
                changes.append((html, "#files > .file-list", "prepend"))
            else:
                changes.append((html, f"#file-{previous}", "after"))
        elif old_rows[file_id] != html:
            changes.append((html, f"#file-{file_id}", "outer"))
        previous = file_id
    if old.pager != new.pager:
        changes.append((new.pager, "#files > .pager", "outer"))
    # Most rows changed (a new sort, page or search): the whole list says it as well.
    if sum(len(html) for html, _, _ in changes) * 2 > len(new.html()):
        return None
    return changes


@dataclass(frozen=True, slots=True)
class PaintedList:
    """`#files` and `#usage` as HTML, and a digest of both (`version`).

    The page hands the version to `/live` (`?seen=`) and every repaint carries it as
    its SSE id, which Datastar sends back as `Last-Event-ID` when it reconnects: an
    equal version means the browser already shows exactly this, so the stream skips
    the repaint."""

    files: str
    usage: str
    version: str
    # The list's pieces (None: no rows), for a later repaint to send only what changed.
    pieces: ListPieces | None = None


def paint_list(listing: Listing, usage: Usage) -> PaintedList:
    pieces = list_pieces(listing)
    files = pieces.html() if pieces else render_markup(files_part(listing))
    used = render_markup(usage_part(usage))
    version = hashlib.blake2b((files + used).encode(), digest_size=12).hexdigest()
    return PaintedList(files, used, version, pieces)


def files_part(listing: Listing) -> HtmlElement:
    """`#files`: the breadcrumb and folders, then the page of rows, its count and its
    page links."""
    searching = listing.query.q or listing.query.type
    if listing.gone:
        return h.Div(
            {"id": "files"},
            h.P(
                {"class": "empty", "role": "alert"},
                "This folder does not exist (any more): it was deleted, or never was"
                " one of yours. ",
                h.A({"href": HOME.href()}, "Back to your files"),
            ),
        )
    if not listing.total and searching:
        return h.Div(
            {"id": "files"}, folder_head(listing), h.P({"class": "empty"}, "No files match.")
        )
    if not listing.total:
        return h.Div(
            {"id": "files"},
            folder_head(listing),
            h.P(
                {"class": "empty"},
                "No files in this folder yet. Files you upload here appear, in every"
                " open tab, as soon as they are stored."
                if listing.folder != ROOT or listing.folders
                else "No files yet. Files you upload appear here, in every open tab, "
                "as soon as they are stored.",
            ),
        )
    return h.Div(
        {"id": "files"},
        folder_head(listing),
        _summary(listing),
        h.Ul({"class": "file-list"}, *[listed_row(listing, row) for row in listing.rows]),
        _pager(listing) if listing.pages > 1 else None,
    )


def _summary(listing: Listing) -> HtmlElement:
    searching = listing.query.q or listing.query.type
    first = (listing.page - 1) * PAGE_SIZE + 1
    last = first + len(listing.rows) - 1
    summary = plural(listing.total, "file") + (" match" if searching else "")
    if listing.pages > 1:
        summary += f", showing {first:,}–{last:,}"
    return h.P(
        {"class": "summary"},
        summary,
        _select_matching(listing.total) if listing.pages > 1 else None,
    )


def _select_matching(total: int) -> HtmlElement:
    """Offered once the whole page is picked: every file of the list, on every page."""
    return h.Button(
        {"type": "button", "class": "link-button", "data-url": SELECT_MATCHING.href()},
        data.show("$_pageAll && !$_matching.length"),
        data.on("click", SELECT_MATCHING_ALL),
        f"Select all {total:,} matching",
    )


def _pager(listing: Listing) -> HtmlElement:
    def link(label: str, number: int, rel: str) -> HtmlElement:
        if number < 1 or number > listing.pages or number == listing.page:
            return h.Span({"class": "button", "aria-disabled": "true"}, label)
        wanted: dict[str, str | int] = {**listing.query.params(), "page": number}
        if listing.folder != ROOT:
            wanted["folder"] = listing.folder
        return h.A({"class": "button", "href": HOME.href(query=wanted), "rel": rel}, label)

    return h.Nav(
        {"class": "pager", "aria-label": "Pages"},
        link("Newest", 1, "first"),
        link("‹ Newer", listing.page - 1, "prev"),
        h.Span({"class": "page-of"}, f"Page {listing.page:,} of {listing.pages:,}"),
        link("Older ›", listing.page + 1, "next"),
    )
