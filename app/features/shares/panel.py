"""What the Files screen shows of share links: the "Share" form every file row's
Share button opens, and the new link it makes. (The Shared screen's list of links is
app/features/shares/screen_views.py.)
"""

import re

from stario import h
from stario.datastar import SSE, data
from stario.datastar.format import SignalValue
from stario.markup import HtmlElement
from stario.markup.types import Attrs

from app.common.forms import as_sentence
from app.common.shell import shown_once, slot_error
from app.features.shares.urls import (
    API_COLLECTION_CREATE,
    FILE_SHARE_PAGE,
    FOLDER_SHARE_PAGE,
)
from app.files.store import FileRow

NEW_SHARE_ID = "new-share"
_MIB = 1024 * 1024
# The API's refusals name its fields (`max_downloads`, `expires_in`); the share form
# says the same in the words beside its fields.
_FORM_WORDS = (
    (r"expires_in must be a whole number of seconds, or null for never",
     lambda _: "expiry must be one of the choices offered, or never"),
    (r"expires_in must be between 60 and \d+ seconds \(10 years\)",
     lambda _: "expiry must be between 1 minute and 10 years"),
    (r"max_downloads must be a whole number, or null for no limit",
     lambda _: "the download limit must be a whole number, or empty for no limit"),
    (r"max_downloads must be between (.*)",
     lambda m: f"the download limit must be between {m[1]}"),
    (r"max_files must be a whole number, or null for no limit",
     lambda _: "the most files must be a whole number, or empty for no limit"),
    (r"max_files must be between (.*)", lambda m: f"the most files must be between {m[1]}"),
    (r"max_file_bytes must be a whole number of bytes, or null for no limit",
     lambda _: "the largest file must be a whole number of MiB, or empty for no limit"),
    (r"max_file_bytes must be between 1 and ([\d,]+), the most (.*)",
     lambda m: f"the largest file must be at most {int(m[1].replace(',', '')) // _MIB:,} MiB,"
     f" the most {m[2]}"),
    (r"password must be text, or null for none", lambda _: "the password must be text"),
)  # fmt: skip


# Which of the dialog's fields an API refusal is about, by the field it names.
_FIELD_OF = (
    ("expires_in", "expiry"),
    ("max_downloads", "limit"),
    ("max_file_bytes", "max-mib"),
    ("max_files", "max-files"),
    ("password", "password"),
    ("a link's password", "password"),
)


def field_at_fault(message: str) -> str | None:
    """The share dialog's field a refusal (the API's words) is about, if one is."""
    return next((key for api, key in _FIELD_OF if message.startswith(api + " ")), None)


def in_form_words(message: str) -> str:
    """A share refusal as a sentence in the share form's words."""
    for pattern, words in _FORM_WORDS:
        if found := re.fullmatch(pattern, message):
            message = words(found)
            break
    return as_sentence(message)


# The page's signals for the share form (Datastar posts those matching `^share`).
# One of `shareFile` (a file's id), `shareFolder` (a folder's api id) or `shareIds` (a
# selection's file ids) says what the form shares.
SIGNALS: dict[str, SignalValue] = {
    "shareFile": "",
    "shareFolder": "",
    "shareIds": [],
    "shareUploads": False,
    "shareMaxFiles": "",
    "shareMaxMib": "",
    "shareName": "",
    "shareExpiry": "604800",
    "sharePassword": "",
    "shareLimit": "",
    # A refusal, in words, and which field it is about (`_shareErrorFor`: a key of
    # _FIELD_OF), shown beside that field until it is edited.
    "_shareError": "",
    "_shareErrorFor": "",
}
EXPIRY_CHOICES = (
    ("3600", "1 hour"),
    ("86400", "1 day"),
    ("604800", "7 days"),
    ("2592000", "30 days"),
    ("never", "never"),
)


# On the page's <main>, for every row's Share button at once (one compiled expression,
# and a repainted list of 50 rows stays small). A file's button carries its id
# (`data-share`, the name read from its row); a folder's its api id and path
# (`data-share-folder`, `data-share-name`), never pasted into an expression.
RESET_FORM = (
    " $sharePassword = ''; $shareLimit = ''; $shareUploads = false;"
    " $shareMaxFiles = ''; $shareMaxMib = '';"
    " document.getElementById('new-share').replaceChildren()"
)
OPEN_FORM = (
    "const b = evt.target.closest('[data-share], [data-share-folder]');"
    " if (!b) return; evt.preventDefault();"
    " $shareFile = 'share' in b.dataset ? b.closest('li').id.slice(5) : '';"
    " $shareFolder = b.dataset.shareFolder || '';"
    " $shareIds = [];"
    " $shareName = b.dataset.shareName"
    " || b.closest('li').querySelector('.file-name').textContent;" + RESET_FORM
)
SHOWN = "$shareFile !== '' || $shareFolder !== '' || $shareIds.length > 0"
_OPTIONS = "{filterSignals: {include: '^share'}, retryMaxCount: 0}"
CREATE = (
    f"if ($shareFolder) {{ @post('/api/folders/' + $shareFolder + '/shares', {_OPTIONS}) }}"
    f" else if ($shareIds.length) {{ @post('{API_COLLECTION_CREATE.href()}', {_OPTIONS}) }}"
    f" else {{ @post('/api/files/' + $shareFile + '/shares', {_OPTIONS}) }}"
)
CLOSE = "$shareFile = ''; $shareFolder = ''; $shareIds = []; $_shareErrorFor = ''"


# Open as a modal (in view, the page behind inert), focus on its first field.
OPEN_MODAL = (
    "(el.open || (el.showModal(), setTimeout(() => el.querySelector('[autofocus]')?.focus())))"
)


def share_folder_button(folder_id: str, path: str, label: str) -> HtmlElement:
    """A link to the folder's share page; with scripts it opens the share dialog
    (OPEN_FORM) instead, for a folder (`folder_id`: its api id), named
    by its `path` there; `label` says which folder to a screen reader."""
    return h.A(
        {
            "class": "button",
            "href": FOLDER_SHARE_PAGE.href(folder_id),
            "data-share-folder": folder_id,
            "data-share-name": path,
            "aria-label": label,
        },
        "Share",
    )


def share_button(row: FileRow) -> HtmlElement:
    """A link to the file's share page; with scripts it opens the share dialog
    (OPEN_FORM, on the page's <main>) instead."""
    return h.A(
        {
            "class": "button",
            "href": FILE_SHARE_PAGE.href(row.id),
            "data-share": True,
            "aria-label": f"Share {row.name}",
        },
        "Share",
    )


def _described(key: str) -> dict[str, str]:
    return {"aria-describedby": f"share-{key}-fault"}


def _flagged(key: str) -> tuple[Attrs, ...]:
    """A field marked invalid while the refusal is about it; editing it clears that."""
    at_fault = f"$_shareErrorFor === '{key}'"
    return (
        data.attr("aria-invalid", f"{at_fault} ? 'true' : 'false'"),
        data.on("input", f"{at_fault} && ($_shareErrorFor = '')"),
    )


def _fault(key: str) -> HtmlElement:
    """Where a refusal of the field shows, beside it, and goes once it no longer applies."""
    return h.P(
        {"id": f"share-{key}-fault", "class": "error field-error", "role": "alert"},
        data.show(f"$_shareErrorFor === '{key}'"),
        data.text("$_shareError"),
    )


def share_form() -> HtmlElement:
    """One form for every file, folder and selection: a Share button fills `$shareFile`
    or `$shareFolder`, "Share selected" `$shareIds`. A folder's link may also take
    uploads, with a file request's limits."""
    return h.Form(
        {"id": "share-form", "class": "token-form share-form"},
        data.show(SHOWN),
        data.on("submit", CREATE, prevent=True),
        h.H2(
            {"class": "share-what", "id": "share-what"}, "Share ", h.Strong(data.text("$shareName"))
        ),
        h.Label(
            {"class": "field"},
            h.Span("Expires after"),
            h.Select(
                {"name": "expiry", "autofocus": True, **_described("expiry")},
                data.bind("shareExpiry"),
                *_flagged("expiry"),
                *[h.Option({"value": value}, label) for value, label in EXPIRY_CHOICES],
            ),
            _fault("expiry"),
        ),
        h.Label(
            {"class": "field"},
            h.Span("Password (optional)"),
            h.Input(
                {
                    "type": "password",
                    "name": "share-password",
                    "autocomplete": "new-password",
                    **_described("password"),
                },
                data.bind("sharePassword"),
                *_flagged("password"),
            ),
            _fault("password"),
        ),
        h.Label(
            {"class": "field"},
            h.Span("Download limit (optional)"),
            h.Input(
                {
                    "type": "number",
                    "min": 1,
                    "name": "limit",
                    "inputmode": "numeric",
                    **_described("limit"),
                },
                data.bind("shareLimit"),
                *_flagged("limit"),
            ),
            _fault("limit"),
        ),
        h.Fieldset(
            {"class": "share-uploads"},
            data.show("$shareFolder !== ''"),
            h.Legend("Uploads"),
            h.Label(
                {"class": "check"},
                h.Input({"type": "checkbox", "name": "share-uploads"}, data.bind("shareUploads")),
                " Take uploads: anyone with the link can add files to this folder",
            ),
            h.Label(
                {"class": "field"},
                data.show("$shareUploads"),
                h.Span("Most files (optional)"),
                h.Input(
                    {
                        "type": "number",
                        "min": 1,
                        "name": "share-max-files",
                        "inputmode": "numeric",
                        **_described("max-files"),
                    },
                    data.bind("shareMaxFiles"),
                    *_flagged("max-files"),
                ),
                _fault("max-files"),
            ),
            h.Label(
                {"class": "field"},
                data.show("$shareUploads"),
                h.Span("Largest file, MiB (optional)"),
                h.Input(
                    {
                        "type": "number",
                        "min": 1,
                        "name": "share-max-mib",
                        "inputmode": "numeric",
                        **_described("max-mib"),
                    },
                    data.bind("shareMaxMib"),
                    *_flagged("max-mib"),
                ),
                _fault("max-mib"),
            ),
        ),
        h.Button({"type": "submit", "class": "button primary"}, "Create link"),
        h.Button({"type": "button", "class": "button"}, data.on("click", CLOSE), "Close"),
    )


def new_share_part(name: str, link: str) -> HtmlElement:
    return shown_once(
        NEW_SHARE_ID,
        "New link to ",
        name,
        ". Copy it now: it is shown only this once.",
        link,
        value_id="new-share-url",
    )


def share_refusal(sse: SSE, message: str) -> None:
    """A refusal (the API's words) in the form's words: beside the field it is about,
    or, about none of them, where the link would show."""
    field = field_at_fault(message)
    words = in_form_words(message)
    sse.patch_signals({"_shareError": words if field else "", "_shareErrorFor": field or ""})
    sse.patch_elements(h.Div({"id": NEW_SHARE_ID}) if field else slot_error(NEW_SHARE_ID, words))


def share_dialog() -> HtmlElement:
    """The Share form every row's Share button opens, on the Files screen, and the
    new link it makes."""
    # A modal <dialog>: it opens in view wherever the row is, focus moves into it, and
    # Escape or Close gives focus back to the Share link that opened it.
    return h.Dialog(
        {"id": "share-dialog", "class": "share-dialog", "aria-labelledby": "share-what"},
        data.effect(f"({SHOWN}) ? {OPEN_MODAL} : (el.open && el.close())"),
        data.on("close", CLOSE),
        share_form(),
        h.Div({"id": NEW_SHARE_ID}),
    )
