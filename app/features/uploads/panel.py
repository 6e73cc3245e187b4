"""The upload form, on the account's page and on a file request's page: the drop
zone, the file picker and where this tab's resumable uploads are drawn."""

from dataclasses import dataclass
from urllib.parse import urlsplit

from stario import h
from stario.datastar import at, data
from stario.datastar.format import SignalValue, string_literal
from stario.markup import HtmlElement
from stario.markup.types import Attrs

from app.common.units import human_bytes
from app.config import Config
from app.ingest.multipart import MAX_PARTS
from app.storage.direct import Direct
from app.storage.ids import new_blob_id

# Bytes of JSON around each file signal besides its base64 (name escapes, keys, mime).
SIGNAL_OVERHEAD = 512
# Largest append (PATCH) the page sends: under the 100 MB request cap of common
# proxies (Cloudflare's), so an upload passes them with no setting.
RESUMABLE_APPEND_BYTES = 64 * 1024 * 1024


@dataclass(frozen=True, slots=True)
class Resumable:
    """Where the page's resumable uploads go: the tus creation URL, and whose uploads
    they are (the browser remembers unfinished ones per account, or per file
    request). `links`: a stored file's name links to it (not for a file request's
    uploader, who may not open what it sent)."""

    endpoint: str
    account: str
    links: bool = True
    # The folder its uploads go into (an API id; "" the root).
    folder: str = ""
    # A file request's page: after each stored file the module reads the page's
    # `#limits` afresh (what the request still takes).
    refresh_limits: bool = False
    # Where the page opens direct upload sessions (file bytes straight to the
    # bucket, docs/direct-transfers.md), or "" when this node has them off.
    direct: str = ""


async def bucket_origin(direct: Direct) -> str:
    """The origin the page sends parts to when direct uploads are on (its CSP must
    allow it), else "". Read from a URL signed here (no request): on AWS it may be
    the bucket's own host rather than the endpoint's."""
    if not direct.uploads or direct.bucket is None:
        return ""
    url = await direct.bucket.part_url(new_blob_id(), "origin", 1, 1)
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


def limits_words(config: Config) -> str:
    per_upload = human_bytes(config.max_request_body_bytes)
    if config.max_file_bytes >= config.max_request_body_bytes:
        return f"at most {per_upload} per upload"
    return f"at most {human_bytes(config.max_file_bytes)} per file and {per_upload} per upload"


def _scripts(
    config: Config, per_file_cap: int | None = None, *, resumable: bool = False
) -> tuple[str, str]:
    """The picker's and the upload form's fetch-listener expressions, with this
    server's limits in them. `per_file_cap`: a smaller per-file limit (a file
    request's), checked in the browser before anything is sent. `resumable`: files
    too large for signals go to the page's resumable module (assets/resumable.js)."""
    budget = min(config.max_signals_bytes, config.max_request_body_bytes)
    # Every file goes to the page's upload queue (assets/resumable.js), which calls
    # preventDefault() on the event: one named row each, refused there when over a
    # limit, queued behind what is on its way. Without the module (it failed to
    # load) they go in the form as before.
    hand_over = (
        " if (!el.dispatchEvent(new CustomEvent('upload-files',"
        " {bubbles: true, cancelable: true, detail: picked}))) return;"
        if resumable
        else ""
    )
    too_big = ""
    if per_file_cap is not None:
        words = string_literal(f" is larger than this request's {human_bytes(per_file_cap)} limit.")
        too_big = (
            f" const big = picked.find(f => f.size > {per_file_cap});"
            f" if (big) {{ $_error = 'Not sent: ' + big.name + {words}; return }}"
        )
    # Small batches travel as Datastar file signals (base64 JSON, 4/3 the size);
    # anything bigger goes as a streamed multipart form. The user never chooses.
    # More files than one request may hold go in batches, as a chosen folder's do
    # (assets/resumable.js, where the page has it); without it the server says why.
    in_batches = (
        f" if (picked.length > {MAX_PARTS} && !el.dispatchEvent(new CustomEvent('folder-files',"
        " {bubbles: true, cancelable: true, detail: picked}))) return;"
        if resumable
        else ""
    )
    route_picked = (
        "let picked = [...el.files]; el.value = '';"
        " if (!picked.length) return;" + in_batches + hand_over + " if ($_sending) {"
        " $_error = 'Wait for the upload in progress to finish, then try again.'; return }"
        + too_big
        + " $_what = picked.length === 1 ? picked[0].name : picked.length + ' files';"
        " const list = new DataTransfer(); picked.forEach(f => list.items.add(f));"
        " const need = picked.reduce((n, f) =>"
        f" n + Math.ceil(f.size / 3) * 4 + 6 * f.name.length + {SIGNAL_OVERHEAD}, 256);"
        f" const target = el.form.querySelector(need <= {budget}"
        " ? '#upload-small' : '#upload-big');"
        " target.files = list.files;"
        " if (target.id === 'upload-big') el.form.requestSubmit();"
        " else target.dispatchEvent(new Event('change'));"
        " target.value = ''"
    )
    reasons = {
        "413": f"larger than this server accepts ({limits_words(config)}; HTTP 413).",
        "408": f"the upload stalled: no bytes arrived for {config.body_timeout:g} seconds"
        " (HTTP 408).",
        "403": "the server refused an upload sent from another site (HTTP 403).",
        "401": "you are signed out; reload the page and sign in again (HTTP 401).",
    }
    unreachable = (
        "the upload did not reach the server (the connection failed or was closed)."
        " Check the connection and try again."
    )
    # Datastar applies no body from a non-200 reply and fires `datastar-fetch`
    # instead; Stario's own 413 and 408 never reach the handler at all.
    fetch_feedback = (
        "const d = evt.detail; if (d.el !== el) return;"
        " if (d.type === 'started') {"
        " $_error = ''; document.getElementById('upload-results').replaceChildren() }"
        " else if (d.type === 'error') $_error = 'Not stored: ' + $_what + ' — ' + (({"
        + ", ".join(f"'{code}': {string_literal(text)}" for code, text in reasons.items())
        + " })[d.argsRaw.status] || 'the server answered HTTP ' + d.argsRaw.status + '.');"
        f" else if (d.type === 'retries-failed')"
        f" $_error = 'Not stored: ' + $_what + ' — ' + {string_literal(unreachable)}"
    )
    return route_picked, fetch_feedback


DRAG_OVER = "evt.dataTransfer.types.includes('Files') && ($_dragging = true)"
DRAG_LEAVE = "evt.relatedTarget || ($_dragging = false)"
# A drop that holds a folder goes to the page's module (assets/resumable.js), which
# walks it and keeps its paths; the entries must be taken while the drop event lasts.
# Without the module (a file request's page) the plain files go as before.
DROP = (
    "$_dragging = false; const input = document.getElementById('picker');"
    " const entries = [...evt.dataTransfer.items]"
    ".map(i => i.webkitGetAsEntry && i.webkitGetAsEntry()).filter(Boolean);"
    " if (entries.some(e => e.isDirectory) && !el.dispatchEvent(new CustomEvent("
    "'folder-drop', {bubbles: true, cancelable: true, detail: entries}))) return;"
    " if (!evt.dataTransfer.files.length) return;"
    " input.files = evt.dataTransfer.files; input.dispatchEvent(new Event('change'))"
)


# What the upload form keeps in the page's signals.
UPLOAD_SIGNALS: dict[str, SignalValue] = {
    "files": [],
    "_what": "",
    "_error": "",
    "_dragging": False,
}


def drop_anywhere() -> tuple[Attrs, ...]:
    """For the page's <main>: a file dropped anywhere in the window goes to the picker."""
    return (
        data.on("dragover", DRAG_OVER, target="window", prevent=True),
        data.on("dragleave", DRAG_LEAVE, target="window"),
        data.on("drop", DROP, target="window", prevent=True),
    )


def upload_section(
    config: Config,
    post_url: str,
    hint: HtmlElement,
    *,
    per_file_cap: int | None = None,
    resumable: Resumable | None = None,
    folders: bool = False,
) -> HtmlElement:
    """The picker, drop zone, sending indicator, error line and result lines, posting
    to `post_url` (the account's /uploads, or a file request's). `hint` (id `limits`)
    says what may be sent. The page's <main> needs UPLOAD_SIGNALS and drop_anywhere().
    With `resumable` (and assets/resumable.js on the page), files too large for
    signals go up as resumable uploads, each with its own row in `#resumable`."""
    route_picked, fetch_feedback = _scripts(config, per_file_cap, resumable=resumable is not None)
    return h.Section(
        {"id": "upload", "aria-labelledby": "upload-title"},
        h.H2({"id": "upload-title", "class": "visually-hidden"}, "Upload"),
        h.Form(
            {
                "id": "upload-form",
                "class": "dropzone",
                # Without scripts (or before Datastar loads) this is a plain form
                # post, answered 303 back to the page.
                "method": "post",
                "action": post_url,
                "enctype": "multipart/form-data",
            },
            data.class_("dragging", "$_dragging"),
            data.indicator("_sending"),
            data.on(
                "submit",
                at.post(post_url, content_type="form", retry_max_count=0),
                prevent=True,
            ),
            data.on_signal_patch(
                "$files.length && " + at.post(post_url, include="^files$", retry_max_count=0),
                include="^files$",
            ),
            data.on("datastar-fetch", fetch_feedback),
            h.Label(
                {"for": "picker", "class": "drop-title"},
                "Choose files",
                h.Span({"class": "drop-hint"}, " or drop them here"),
            ),
            h.Input(
                {
                    "id": "picker",
                    "type": "file",
                    # Named for the plain form post; with scripts the picker is
                    # emptied as its files are routed, so they never go twice.
                    "name": "file",
                    "multiple": True,
                    "aria-describedby": "limits",
                },
                data.on("change", route_picked),
            ),
            _folder_picker() if folders and resumable is not None else None,
            hint,
            h.Noscript(h.Button({"type": "submit", "class": "button primary"}, "Upload")),
            h.P(
                {"class": "sending", "role": "status"},
                data.text("$_sending ? 'Uploading ' + $_what + '…' : ''"),
            ),
            # Where the picker puts what it routes: signals read the first
            # (no name, so never in the form), the form sends the second.
            h.Input(
                {"id": "upload-small", "type": "file", "multiple": True, "hidden": True},
                data.bind("files"),
            ),
            h.Input(
                {
                    "id": "upload-big",
                    "type": "file",
                    "name": "file",
                    "multiple": True,
                    "hidden": True,
                }
            ),
        ),
        h.P({"id": "upload-error", "class": "error", "role": "alert"}, data.text("$_error")),
        h.Div({"id": "upload-results", "aria-live": "polite"}),
        _tree_panel(config, post_url, resumable.folder, owner=resumable.links)
        if folders and resumable is not None
        else None,
        _resumable_panel(config, resumable, post_url, per_file_cap)
        if resumable is not None
        else None,
    )


# A folder's files, picked with the directory picker, go to the page's module.
PICK_FOLDER = (
    "const picked = [...el.files]; el.value = ''; if (!picked.length) return;"
    " el.dispatchEvent(new CustomEvent('folder-files',"
    " {bubbles: true, cancelable: true, detail: picked}))"
)
# The largest batch of a folder's small files in one request (and the size above
# which a file of a folder goes up resumably, alone).
TREE_BATCH_BYTES = 16 * 1024 * 1024


def _folder_picker() -> HtmlElement:
    """ "Choose a folder": a directory picker. Every file keeps its path in the folder."""
    return h.Label(
        {"class": "button folder-pick"},
        "Choose a folder",
        h.Input(
            {
                "id": "folder-picker",
                "class": "visually-hidden",
                "type": "file",
                "multiple": True,
                "webkitdirectory": True,
                "aria-describedby": "limits",
            },
            data.attr("disabled", "$_sending"),
            data.on("change", PICK_FOLDER),
        ),
    )


def _tree_panel(config: Config, post_url: str, folder: str, *, owner: bool) -> HtmlElement:
    """Where assets/resumable.js draws a dropped folder's progress: the whole, then
    each file. `data-folder` (the folder shown, an API id) is where it re-creates the
    drop's folders (POST /api/folders with a path) and looks for what an interrupted
    drop already sent. Only the account's own page may (`data-make-folders`): a visitor
    through a link has no folders API, and its files make their folders by their
    paths as they arrive."""
    return h.Div(
        {
            "id": "tree-upload",
            "class": "tree-upload",
            "hidden": True,
            "data-url": post_url,
            "data-folder": folder or "root",
            "data-make-folders": "true" if owner else "false",
            "data-batch-bytes": min(TREE_BATCH_BYTES, config.max_request_body_bytes // 2),
            # The server refuses a form of more parts (413): a batch holds at most this.
            "data-batch-files": MAX_PARTS,
        },
        h.P({"class": "tree-summary", "role": "status"}),
        h.Progress({"class": "tree-bar", "aria-label": "The whole folder"}),
        # It scrolls (a folder may hold thousands): focusable, so keys scroll it too.
        h.Ul({"class": "tree-files", "aria-label": "Files of the folder", "tabindex": "0"}),
    )


def _resumable_panel(
    config: Config, resumable: Resumable, post_url: str, per_file_cap: int | None
) -> HtmlElement:
    """Where assets/resumable.js draws this tab's upload queue; the data-* attributes
    are its settings. An append never exceeds the request body cap. A file goes in one
    request (to `post_url`) when it would fit as file signals, else resumably; a file
    over `data-max-file-bytes` (the page's limit) is refused before it is sent."""
    max_file = config.max_file_bytes if per_file_cap is None else per_file_cap
    return h.Div(
        {
            "id": "resumable",
            "data-tus-endpoint": resumable.endpoint,
            "data-account": resumable.account,
            "data-append-bytes": min(RESUMABLE_APPEND_BYTES, config.max_request_body_bytes),
            "data-links": "true" if resumable.links else "false",
            "data-folder": resumable.folder,
            "data-url": post_url,
            "data-single-bytes": min(config.max_signals_bytes, config.max_request_body_bytes),
            "data-max-file-bytes": min(max_file, config.max_file_bytes),
            "data-refresh-limits": "true" if resumable.refresh_limits else "false",
            # Only when on: without it the module sends by tus as before.
            "data-direct-uploads": resumable.direct or None,
        },
        h.Ul({"class": "resumable-list", "aria-label": "Uploads from this tab"}),
    )
