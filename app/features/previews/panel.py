"""What a screen shows of a preview: the `#preview` region and the dialog in it.

The dialog is plain HTML with links (Previous, Next, Download, Close), so it works
without scripts: the Files screen renders itself with it open at `/?preview=ID`,
a share page at `?preview=ID`. On the Files screen Datastar enhances the same links
(`preview_region`): a click fetches the dialog (`GET /files/{id}/preview`, a patch
of `#preview`) and pushes the link's URL, so back and forward open and close it.

Nothing a file holds runs here: text (HTML and SVG included) is escaped source;
images, media and PDFs are loaded from the file's own URL, which answers with the
downloads' sandboxing Content-Security-Policy (app/downloads/policy.py).
"""

from dataclasses import dataclass

from stario import h
from stario.datastar import data
from stario.markup import HtmlElement

from app.common.units import human_bytes
from app.files.store import FileRow
from app.previews.renditions import TEXT_PREVIEW_BYTES, PreviewKind, TextHead


@dataclass(frozen=True, slots=True)
class PreviewLinks:
    """Where a preview's parts come from and lead to. `inline`: the file itself,
    shown in the page; `image`: the full-size image (a rendition when needed);
    `previous`/`next`: the preview of the neighbouring file in the list's order,
    None at an end; `close`: the list without the preview; `position`: "3 of 50"."""

    inline: str
    image: str
    download: str
    close: str
    previous: str | None = None
    next: str | None = None
    position: str = ""


# On the Files screen: a click on a file's name (or on Previous/Next) opens its
# preview in the page and pushes the link's URL; Close (or Escape) goes back to the
# list's URL and gives the focus back to the file's name. A click with a modifier
# (a new tab) is the browser's.
OPEN = (
    "const a = evt.target.closest('a.opens-preview, a.closes-preview');"
    " if (!a || evt.button || evt.ctrlKey || evt.metaKey || evt.shiftKey || evt.altKey) return;"
    " evt.preventDefault(); const u = new URL(a.href), id = u.searchParams.get('preview');"
    " history.pushState(null, '', u.pathname + u.search);"
    " if (!id) { const d = el.querySelector('[data-file]');"
    " const from = d && document.querySelector('#file-' + d.dataset.file + ' .file-name');"
    " el.replaceChildren(); if (from) from.focus(); return }"
    " @get('/files/' + id + '/preview' + u.search, {retryMaxCount: 0})"
)
# Back and forward: the URL says whether a preview is open, and of which file.
POP = (
    "const u = new URL(location.href), id = u.searchParams.get('preview');"
    " if (!id) { const d = el.querySelector('[data-file]');"
    " const from = d && document.querySelector('#file-' + d.dataset.file + ' .file-name');"
    " el.replaceChildren(); if (from) from.focus(); return }"
    " @get('/files/' + id + '/preview' + u.search, {retryMaxCount: 0})"
)
ESCAPE = (
    "if (evt.key !== 'Escape' || !el.firstElementChild) return;"
    " const c = el.querySelector('a.closes-preview'); if (c) { evt.preventDefault(); c.click() }"
)
# Click or Enter on the image: 100% (scrolling) and back to fitting the window.
ZOOM = "evt.preventDefault(); el.closest('.preview-body').classList.toggle('actual-size')"


def preview_region(dialog: HtmlElement | None = None, *, scripted: bool = True) -> HtmlElement:
    """`#preview`: empty, or holding the open preview's dialog. `scripted`: the page
    runs Datastar (the Files screen), so the links open previews in place."""
    return h.Div(
        {"id": "preview", "class": "preview-region"},
        data.on("click", OPEN, target="window") if scripted else None,
        data.on("popstate", POP, target="window") if scripted else None,
        data.on("keydown", ESCAPE, target="window") if scripted else None,
        dialog,
    )


def _step(label: str, href: str | None, rel: str, name: str) -> HtmlElement:
    if href is None:
        return h.Span({"class": "button", "aria-disabled": "true"}, label)
    return h.A(
        {"class": "button opens-preview", "href": href, "rel": rel, "aria-label": f"{name}"},
        label,
    )


def text_part(head: TextHead) -> HtmlElement:
    """Escaped source with line numbers (a CSS counter, so copying takes the text
    alone); a note when the file goes on past the first MiB."""
    return h.Div(
        h.P({"class": "note"}, f"Showing the first {human_bytes(TEXT_PREVIEW_BYTES)}.")
        if head.cut
        else None,
        h.Pre(
            {"class": "text-lines", "tabindex": "0", "aria-label": "File contents"},
            h.Code(*[h.Span({"class": "line"}, line) for line in head.lines]),
        ),
    )


def _other(row: FileRow, why: str) -> HtmlElement:
    return h.Div(
        {"class": "preview-other"},
        h.P(why),
        h.P({"class": "file-meta"}, f"{row.name} · {human_bytes(row.size)} · {row.mime}"),
    )


def body_part(
    row: FileRow,
    kind: PreviewKind,
    links: PreviewLinks,
    text: TextHead | None = None,
    *,
    scripted: bool = True,
) -> HtmlElement:
    if kind == "image":
        shown: HtmlElement = h.A(
            {"class": "zoom", "href": links.image, "title": "Show at full size"},
            data.on("click", ZOOM) if scripted else None,
            h.Img({"class": "preview-image", "src": links.image, "alt": row.name}),
        )
    elif kind == "video":
        shown = h.Video(
            {"class": "preview-media", "src": links.inline, "controls": True,
             "preload": "metadata", "aria-label": row.name},
            h.A({"href": links.download}, "Download the video"),
        )  # fmt: skip
    elif kind == "audio":
        shown = h.Audio(
            {"class": "preview-media", "src": links.inline, "controls": True,
             "preload": "metadata", "aria-label": row.name},
            h.A({"href": links.download}, "Download the audio"),
        )  # fmt: skip
    elif kind == "pdf":
        # The frame's document is the file's own answer: `sandbox` in its CSP makes it
        # an opaque origin that runs no script, whatever the PDF holds.
        shown = h.Div(
            h.Iframe({"class": "preview-pdf", "src": links.inline, "title": f"{row.name} (PDF)"}),
            h.P(
                {"class": "note"},
                h.A(
                    {"href": links.inline, "target": "_blank", "rel": "noopener"},
                    "Open the PDF in its own tab",
                ),
                " if it does not show here.",
            ),  # fmt: skip
        )
    elif kind == "text" and text is not None and not text.binary:
        shown = text_part(text)
    elif kind == "text" and text is None:
        shown = _other(row, "The file's contents are missing.")
    else:
        shown = _other(row, "No preview for files of this type: download it to open it.")
    return h.Div({"class": f"preview-body preview-{kind}"}, shown)


def preview_dialog(
    row: FileRow,
    kind: PreviewKind,
    links: PreviewLinks,
    text: TextHead | None = None,
    *,
    scripted: bool = True,
) -> HtmlElement:
    """The open preview: the file's name and facts, Previous/Next/Download/Close, and
    the file as its kind is shown. With scripts the focus moves into it when it opens."""
    meta = f"{human_bytes(row.size)} · {row.mime}"
    if links.position:
        meta += f" · {links.position}"
    return h.Section(
        {
            "id": "preview-dialog",
            "class": "preview-dialog",
            "role": "dialog",
            "aria-labelledby": "preview-title",
            "tabindex": "-1",
            "data-file": row.id,
        },
        data.init("el.focus()") if scripted else None,
        h.Div(
            {"class": "preview-head"},
            h.H2({"id": "preview-title", "class": "preview-title"}, row.name),
            h.P({"class": "file-meta"}, meta),
            h.Nav(
                {"class": "preview-steps", "aria-label": "Preview"},
                _step("‹ Previous", links.previous, "prev", "Previous file"),
                _step("Next ›", links.next, "next", "Next file"),
                h.A(
                    {
                        "class": "button primary",
                        "href": links.download,
                        "download": True,
                        "aria-label": f"Download {row.name}",
                    },
                    "Download",
                ),  # fmt: skip
                h.A(
                    {
                        "class": "button closes-preview",
                        "href": links.close,
                        "aria-label": f"Close the preview of {row.name}",
                    },
                    "Close",
                ),  # fmt: skip
            ),
        ),
        body_part(row, kind, links, text, scripted=scripted),
    )
