"""What an upload's reply paints into the upload form: the stored files, or the
refusal in words."""

from stario import h
from stario.markup import HtmlElement

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
