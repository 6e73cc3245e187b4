"""What the account page shows of file requests: the "File requests" panel, its
form and the list (each request's unfinished uploads included) the stream repaints.
"""

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

from stario import h
from stario.datastar import data
from stario.markup import HtmlElement

from app.common.forms import AttributeValue, error_id, form_field, post_form
from app.common.shell import shown_once, slot_error
from app.common.units import human_bytes
from app.features.requests.data import OpenRequest
from app.features.requests.urls import (
    REQUEST_CLOSE_FORM,
    REQUEST_UPLOAD_CANCEL_FORM,
    REQUESTS_CREATE,
)
from app.requests.store import FileRequest
from app.resumable.store import UploadState

REQUESTS_ID = "requests"
NEW_REQUEST_ID = "new-request"
NOTICE_ID = "requests-notice"
# Keeps the chosen folder while the stream repaints the select (folders change).
FOLDER_SIGNAL = "requestFolder"
DEFAULT_EXPIRY = "604800"
# `?done=` codes of the plain forms' redirects and what the screen then says.
DONE = {
    "closed": "The request is closed: its link takes no more files.",
    "cancelled": "The unfinished upload is cancelled.",
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


def notice_part(message: str | None = None) -> HtmlElement:
    return h.Div({"id": NOTICE_ID, "class": "notice", "role": "status"}, message or "")


def _plural(count: int, word: str) -> str:
    return f"{count:,} {word}" + ("" if count == 1 else "s")


def request_folder_select(
    places: Sequence[tuple[str, str]], error: str | None = None, chosen: str = "root"
) -> HtmlElement:
    """`#request-folder`: where a new request's files land, every folder of the account
    by its path (`places`: api id and path). The stream repaints it when folders
    change; its signal keeps what the person chose across those repaints."""
    attributes: dict[str, AttributeValue] = {"id": "request-folder", "name": "folder"}
    if error:
        attributes |= {"aria-invalid": "true", "aria-describedby": error_id("request-folder")}
    return h.Select(
        attributes,
        data.bind(FOLDER_SIGNAL),
        h.Option({"value": "root", "selected": chosen == "root"}, "/ (Files)"),
        *[
            h.Option({"value": folder_id, "selected": chosen == folder_id}, path)
            for folder_id, path in places
        ],
    )


@dataclass(frozen=True, slots=True)
class RequestForm:
    """What the request form holds (as typed, after a refusal) and its errors by field
    (`label`, `expires`, `max_files`, `max_mib`, `folder`)."""

    label: str = ""
    expires: str = DEFAULT_EXPIRY
    max_files: str = ""
    max_mib: str = ""
    folder: str = "root"
    errors: dict[str, str] = field(default_factory=dict)


def request_form(
    places: Sequence[tuple[str, str]] = (), typed: RequestForm | None = None
) -> HtmlElement:
    """`#request-form`: a plain form (it works without scripts) that Datastar sends as
    the same form. `places`: the account's folders (api id, path) a request's files may
    land in."""
    typed = typed or RequestForm()
    errors = typed.errors
    folder_error = errors.get("folder")
    return post_form(
        REQUESTS_CREATE.href(),
        form_field(
            "What to ask for", "request-label",
            {"type": "text", "name": "label", "required": True, "maxlength": 200,
             "placeholder": "Photos from the trip", "value": typed.label},
            errors.get("label"),
        ),
        form_field(
            "Open for", "request-expiry", {"name": "expires"}, errors.get("expires"),
            kind="select",
            children=tuple(
                h.Option({"value": value, "selected": value == typed.expires}, label)
                for value, label in EXPIRY_CHOICES
            ),
        ),
        form_field(
            "Most files (optional)", "request-max-files",
            {"type": "number", "min": 1, "name": "max_files", "inputmode": "numeric",
             "value": typed.max_files},
            errors.get("max_files"),
        ),
        form_field(
            "Largest file, MiB (optional)", "request-max-mib",
            {"type": "number", "min": 1, "name": "max_mib", "inputmode": "numeric",
             "value": typed.max_mib},
            errors.get("max_mib"),
        ),
        h.Div(
            {"class": "field"},
            h.Label({"for": "request-folder"}, "Files land in"),
            request_folder_select(places, folder_error, typed.folder),
            h.P({"id": error_id("request-folder"), "class": "error field-error", "role": "alert"},
                folder_error or ""),
        ),
        h.Button({"type": "submit", "class": "button primary"}, "Create request"),
        id="request-form",
        **{"class": "token-form request-form"},
    )  # fmt: skip


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
                post_form(
                    REQUEST_UPLOAD_CANCEL_FORM.href(request.id, state.id),
                    h.Button(
                        {
                            "type": "submit",
                            "class": "button danger",
                            "aria-label": f"Cancel the unfinished upload {state.name}",
                        },
                        "Cancel",
                    ),
                    confirm=f"Cancel the unfinished upload {state.name}? What it sent so far"
                    " is discarded.",
                    **{"class": "inline-form"},
                ),  # fmt: skip
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
                post_form(
                    REQUEST_CLOSE_FORM.href(request.id),
                    h.Button(
                        {
                            "type": "submit",
                            "class": "button danger",
                            "aria-label": f"Close the request {request.label}",
                        },
                        "Close",
                    ),
                    confirm=f"Close the request {request.label}? Its link stops taking files"
                    " at once.",
                    **{"class": "inline-form"},
                ),  # fmt: skip
                unfinished_part(request, open_request.unfinished),
            )
        )
    return h.Div({"id": REQUESTS_ID}, h.Ul({"class": "token-list"}, *items))


def requests_panel(
    requests: list[OpenRequest],
    now: float,
    places: Sequence[tuple[str, str]] = (),
    *,
    typed: RequestForm | None = None,
    new_request: tuple[str, str] | None = None,
    notice: str | None = None,
) -> HtmlElement:
    """The screen's panel; after a plain form's post, what it typed (with errors), or
    the new request's (label, link) shown once, or a notice."""
    return h.Section(
        {"id": "file-requests", "aria-labelledby": "requests-title"},
        h.H1({"id": "requests-title"}, "File requests"),
        h.P(
            {"class": "note"},
            "Anyone with a request's link can upload files into your space (counted"
            " against your quota), without an account; they cannot see your files."
            " Links are shown only when made.",
        ),
        notice_part(notice),
        request_form(places, typed),
        new_request_part(*new_request) if new_request else h.Div({"id": NEW_REQUEST_ID}),
        requests_part(requests, now),
    )
