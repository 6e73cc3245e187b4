"""What an upload's reply paints into the upload form: the stored files, or the
refusal in words."""

from stario import h
from stario.markup import HtmlElement

from app.common.shell import PageAssets, page
from app.common.units import human_bytes
from app.features.files.urls import FILE
from app.files.store import FileRow

RESULTS_ID = "upload-results"


def render_results(rows: list[FileRow], *, links: bool = True) -> HtmlElement:
    """What the uploader sees once every file of the request is stored: one line each.
    Without `links` (an upload through a file request), names only: the uploader may
    not open what it sent."""
    return h.Div(
        {"id": RESULTS_ID, "class": "upload-results", "aria-live": "polite"},
        h.P({"class": "ok"}, f"Stored {len(rows)} file{'s' if len(rows) != 1 else ''}."),
        h.Ul(
            {"class": "result-list"},
            *[
                h.Li(
                    {"class": "result"},
                    h.A({"href": FILE.href(row.id), "target": "_blank"}, row.name)
                    if links
                    else h.Span({"class": "result-name"}, row.name),
                    h.Span({"class": "result-meta"}, f"{human_bytes(row.size)} · {row.mime}"),
                )
                for row in rows
            ],
        ),
    )


def render_refusal(status: int, message: str) -> HtmlElement:
    """A refused upload, in words; nothing of the request was kept."""
    return h.Div(
        {"id": RESULTS_ID, "class": "upload-results", "aria-live": "polite"},
        h.P(
            {"class": "error", "role": "alert"},
            f"Upload refused ({status}): {message}. Nothing from it was stored.",
        ),
    )


def _result_list(rows: list[FileRow], *, links: bool) -> HtmlElement:
    return h.Ul(
        {"class": "result-list"},
        *[
            h.Li(
                {"class": "result"},
                h.A({"href": FILE.href(row.id)}, row.name)
                if links
                else h.Span({"class": "result-name"}, row.name),
                h.Span({"class": "result-meta"}, f"{human_bytes(row.size)} · {row.mime}"),
            )
            for row in rows
        ],
    )


def _back(href: str, *, public: bool) -> HtmlElement:
    words = "Back to the upload page" if public else "Back to your files"
    return h.P(h.A({"class": "button primary", "href": href}, words))


def stored_page(
    assets: PageAssets, rows: list[FileRow], back: str, *, public: bool, nonce: str
) -> HtmlElement:
    """What a browser without scripts shows once its form's files are stored: each
    file in words, and the way back to the page it came from (`back`). Through a
    file request (`public`) names only: the uploader may not open what it sent."""
    count = f"{len(rows)} file{'s' if len(rows) != 1 else ''}"
    return page(
        assets,
        "Upload stored · Stowage",
        h.Main(
            {"id": "upload-result", "class": "auth"},
            h.H1("Upload stored"),
            h.P({"class": "ok", "role": "status"}, f"Stored {count}."),
            _result_list(rows, links=not public),
            _back(back, public=public),
        ),
        nonce,
    )


def refused_page(
    assets: PageAssets, status: int, message: str, back: str, *, public: bool, nonce: str
) -> HtmlElement:
    """What a browser without scripts shows when its form's upload is refused: why, in
    words, that nothing of it was kept, and the way back to try again."""
    return page(
        assets,
        "Upload refused · Stowage",
        h.Main(
            {"id": "upload-result", "class": "auth"},
            h.H1("Upload refused"),
            h.P(
                {"class": "error", "role": "alert"},
                f"Not stored: {message} (HTTP {status}). Nothing from this upload was kept.",
            ),
            _back(back, public=public),
        ),
        nonce,
    )
