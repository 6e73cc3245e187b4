"""What the account page shows of file requests: the "File requests" panel, its
form and the list (each request's unfinished uploads included) the stream repaints.
"""

from collections.abc import Sequence
from datetime import UTC, datetime

from stario import h
from stario.datastar import data
from stario.markup import HtmlElement

from app.common.shell import shown_once, slot_error
from app.common.units import human_bytes
from app.features.requests.data import OpenRequest
from app.features.requests.urls import API_REQUEST_CLOSE, API_REQUEST_UPLOAD_CANCEL
from app.requests.store import FileRequest
from app.resumable.store import UploadState

REQUESTS_ID = "requests"
NEW_REQUEST_ID = "new-request"
# The page's signals for the request form (Datastar posts those matching `^request`).
SIGNALS = {
    "requestLabel": "",
    "requestExpiry": "604800",
    "requestMaxFiles": "",
    "requestMaxMib": "",
    "requestFolder": "root",
}
EXPIRY_CHOICES = (
    ("3600", "1 hour"),
    ("86400", "1 day"),
    ("604800", "7 days"),
    ("2592000", "30 days"),
    ("never", "never"),
)


def _when(moment: float | None) -> str:
    if moment is None:
        return "never"
    return datetime.fromtimestamp(moment, UTC).strftime("%Y-%m-%d %H:%M UTC")


def _plural(count: int, word: str) -> str:
    return f"{count:,} {word}" + ("" if count == 1 else "s")


CREATE = "@post('/api/requests', {filterSignals: {include: '^request'}, retryMaxCount: 0})"
CLOSE_ONE = (
    "confirm('Close the request ' + el.dataset.name + '? Its link stops taking files at once.')"
    " && @delete(el.dataset.url, {filterSignals: {include: '^$'}, retryMaxCount: 0})"
)
CANCEL_UPLOAD = (
    "confirm('Cancel the unfinished upload ' + el.dataset.name + '? What it sent so far is"
    " discarded.') && @delete(el.dataset.url, {filterSignals: {include: '^$'},"
    " retryMaxCount: 0})"
)


def request_folder_select(places: Sequence[tuple[str, str]]) -> HtmlElement:
    """`#request-folder`: where a new request's files land, every folder of the account
    by its path (`places`: api id and path). The home stream repaints it when folders
    change, as it does the Move-to select."""
    return h.Select(
        {"id": "request-folder", "name": "request-folder"},
        data.bind("requestFolder"),
        h.Option({"value": "root"}, "/ (Files)"),
        *[h.Option({"value": folder_id}, path) for folder_id, path in places],
    )


def request_form(places: Sequence[tuple[str, str]] = ()) -> HtmlElement:
    """`places`: the account's folders (api id, path) a request's files may land in."""
    return h.Form(
        {"id": "request-form", "class": "token-form request-form"},
        data.on("submit", CREATE, prevent=True),
        h.Label(
            {"class": "field"},
            h.Span("What to ask for"),
            h.Input(
                {
                    "type": "text",
                    "name": "request-label",
                    "required": True,
                    "maxlength": 200,
                    "placeholder": "Photos from the trip",
                },
                data.bind("requestLabel"),
            ),
        ),
        h.Label(
            {"class": "field"},
            h.Span("Open for"),
            h.Select(
                {"name": "request-expiry"},
                data.bind("requestExpiry"),
                *[h.Option({"value": value}, label) for value, label in EXPIRY_CHOICES],
            ),
        ),
        h.Label(
            {"class": "field"},
            h.Span("Most files (optional)"),
            h.Input(
                {"type": "number", "min": 1, "name": "request-max-files", "inputmode": "numeric"},
                data.bind("requestMaxFiles"),
            ),
        ),
        h.Label(
            {"class": "field"},
            h.Span("Largest file, MiB (optional)"),
            h.Input(
                {"type": "number", "min": 1, "name": "request-max-mib", "inputmode": "numeric"},
                data.bind("requestMaxMib"),
            ),
        ),
        h.Label(
            {"class": "field"},
            h.Span("Files land in"),
            request_folder_select(places),
        ),
        h.Button({"type": "submit", "class": "button primary"}, "Create request"),
    )


def new_request_part(label: str, link: str) -> HtmlElement:
    return shown_once(
        NEW_REQUEST_ID,
        "New request ",
        label,
        ". Copy its link now: it is shown only this once.",
        link,
        value_id="new-request-url",
    )


def new_request_error(message: str) -> HtmlElement:
    return slot_error(NEW_REQUEST_ID, message)


def _received(request: FileRequest) -> str:
    if request.max_files is None:
        return f"{_plural(request.files, 'file')} received"
    return f"{request.files:,} of {request.max_files:,} files received"


def _so_far(state: UploadState) -> str:
    if state.length is None:
        return f"{human_bytes(state.offset)} so far (size not told yet)"
    return f"{human_bytes(state.offset)} of {human_bytes(state.length)} so far"


def unfinished_part(request: FileRequest, unfinished: list[UploadState]) -> HtmlElement | None:
    """The request's unfinished uploads, each with what arrived and a Cancel button."""
    if not unfinished:
        return None
    return h.Ul(
        {"class": "request-uploads", "aria-label": f"Unfinished uploads to {request.label}"},
        *[
            h.Li(
                {"class": "request-upload", "id": f"request-upload-{state.id}"},
                h.Span({"class": "file-name"}, state.name),
                h.Span({"class": "file-meta"}, "unfinished: ", _so_far(state)),
                h.Button(
                    {
                        "type": "button",
                        "class": "button danger",
                        "data-url": API_REQUEST_UPLOAD_CANCEL.href(request.id, state.id),
                        "data-name": state.name,
                        "aria-label": f"Cancel the unfinished upload {state.name}",
                    },
                    data.on("click", CANCEL_UPLOAD),
                    "Cancel",
                ),
            )
            for state in unfinished
        ],
    )


def requests_part(requests: list[OpenRequest], now: float) -> HtmlElement:
    if not requests:
        return h.Div({"id": REQUESTS_ID}, h.P({"class": "empty"}, "No file requests."))
    items = []
    for open_request in requests:
        request = open_request.request
        gone = request.gone(now)
        items.append(
            h.Li(
                {"class": "token file-request", "id": f"request-{request.id}"},
                h.Div(
                    {"class": "file-main"},
                    h.Span({"class": "file-name"}, request.label),
                    h.Span(
                        {"class": "file-meta"},
                        h.Span({"class": "request-files"}, _received(request)),
                        h.Span(f"up to {human_bytes(request.max_file_bytes)} each")
                        if request.max_file_bytes is not None
                        else None,
                        h.Span(f"closes {_when(request.expires_at)}"),
                        h.Span({"class": "request-folder"}, f"into {open_request.folder_path}")
                        if open_request.folder_path is not None
                        else h.Strong("its folder was removed"),
                        h.Strong(f"over: {gone.value}") if gone else None,
                    ),
                ),
                h.Button(
                    {
                        "type": "button",
                        "class": "button danger",
                        "data-url": API_REQUEST_CLOSE.href(request.id),
                        "data-name": request.label,
                        "data-action": "close the request",
                        "aria-label": f"Close the request {request.label}",
                    },
                    data.on("click", CLOSE_ONE),
                    "Close",
                ),
                unfinished_part(request, open_request.unfinished),
            )
        )
    return h.Div({"id": REQUESTS_ID}, h.Ul({"class": "token-list"}, *items))


def requests_panel(
    requests: list[OpenRequest], now: float, places: Sequence[tuple[str, str]] = ()
) -> HtmlElement:
    return h.Section(
        {"id": "file-requests", "aria-labelledby": "requests-title"},
        h.H1({"id": "requests-title"}, "File requests"),
        h.P(
            {"class": "note"},
            "Anyone with a request's link can upload files into your space (counted"
            " against your quota), without an account; they cannot see your files."
            " Links are shown only when made.",
        ),
        request_form(places),
        h.Div({"id": NEW_REQUEST_ID}),
        requests_part(requests, now),
    )
