"""A file request's public page.

It is the account page's upload form (`upload_section`) posting to the request's own
upload URL, and nothing else of the owner's: no list, no progress of other uploads,
no links to what was sent.
"""

from datetime import UTC, datetime

from stario import h
from stario.datastar import data
from stario.markup import HtmlElement
from stario.markup.types import Attrs

from app.common.shell import PageAssets, page
from app.common.units import human_bytes
from app.config import Config
from app.features.direct.urls import REQUEST_DIRECT_OPEN
from app.features.requests.urls import REQUEST_UPLOADS
from app.features.resumable.urls import REQUEST_CREATE
from app.features.uploads.panel import (
    UPLOAD_SIGNALS,
    Resumable,
    drop_anywhere,
    limits_words,
    upload_section,
)
from app.requests.store import FileRequest


def _when(moment: float | None) -> str:
    if moment is None:
        return "never"
    return datetime.fromtimestamp(moment, UTC).strftime("%Y-%m-%d %H:%M UTC")


def _plural(count: int, word: str) -> str:
    return f"{count:,} {word}" + ("" if count == 1 else "s")


def files_left(request: FileRequest, unfinished: int = 0) -> int | None:
    """How many more files the request takes (None: any number): what it has received
    and its `unfinished` resumable uploads, which hold their places, count."""
    if request.max_files is None:
        return None
    return max(0, request.max_files - request.files - unfinished)


def limits_text(config: Config, request: FileRequest, unfinished: int = 0) -> str:
    """What this request still takes, in words."""
    parts = []
    left = files_left(request, unfinished)
    if request.max_files is not None and left is not None:
        parts.append(f"{_plural(left, 'more file')} (of {request.max_files:,})")
    else:
        parts.append("any number of files")
    cap = config.max_file_bytes
    if request.max_file_bytes is not None:
        cap = min(cap, request.max_file_bytes)
        parts.append(f"up to {human_bytes(cap)} each")
    else:
        parts.append(limits_words(config))
    expires = (
        "it does not expire"
        if request.expires_at is None
        else f"it closes at {_when(request.expires_at)}"
    )
    return f"This request takes {', '.join(parts)}; {expires}."


def _public_page(
    assets: PageAssets,
    title: str,
    *body: HtmlElement | Attrs | None,
    nonce: str | None = None,
    modules: tuple[str, ...] = (),
) -> HtmlElement:
    return page(
        assets,
        f"{title} · Stowage",
        h.Main({"id": "request", "class": "auth"}, *body),
        nonce,
        modules,
    )


def request_page(
    config: Config,
    assets: PageAssets,
    token: str,
    request: FileRequest,
    owner_name: str,
    *,
    nonce: str,
    unfinished: int = 0,
    direct_uploads: bool = False,
) -> HtmlElement:
    """The upload form of the request, and what it still takes (`#limits`, read
    afresh by the page's upload queue after each stored file: `data-files-left` is
    what it refuses past, before sending)."""
    cap = request.max_file_bytes
    per_file = None if cap is None or cap >= config.max_file_bytes else cap
    left = files_left(request, unfinished)
    return _public_page(
        assets,
        request.label,
        data.signals(UPLOAD_SIGNALS, if_missing=True),
        *drop_anywhere(),
        h.H1({"class": "request-label"}, request.label),
        h.P(
            {"class": "lede"},
            h.Strong({"class": "request-owner"}, owner_name),
            " asks you for files. What you send goes to them; you will not see their"
            " other files, nor open what you sent.",
        ),
        upload_section(
            config,
            REQUEST_UPLOADS.href(token),
            h.P(
                {"id": "limits", "class": "hint", "data-files-left": left},
                limits_text(config, request, unfinished),
            ),
            per_file_cap=per_file,
            # Remembered per request (its id, never its token) in the uploader's browser.
            resumable=Resumable(
                REQUEST_CREATE.href(token),
                f"request-{request.id}",
                links=False,
                refresh_limits=True,
                direct=REQUEST_DIRECT_OPEN.href(token) if direct_uploads else "",
            ),
        ),
        nonce=nonce,
        modules=(assets.resumable_js,),
    )


def gone_page(assets: PageAssets, reason: str) -> HtmlElement:
    return _public_page(
        assets,
        "Request closed",
        h.H1("This request takes no more files"),
        h.P({"class": "error", "role": "alert"}, f"This link no longer takes files: {reason}."),
    )


def unknown_page(assets: PageAssets) -> HtmlElement:
    return _public_page(
        assets,
        "No such request",
        h.H1("No such request"),
        h.P("This link does not exist. Check that it was copied whole."),
    )
