"""What a browser may do with a stored file: the served type, inline or attachment,
and the Content-Security-Policy that keeps an upload from ever running as our origin.

The type is the one sniffed at upload (row.mime), never the client's claim. A file is
shown inline only when its type cannot carry script into our origin; markup (HTML, SVG,
XML), JavaScript and anything unknown is a download. Every response also carries
`X-Content-Type-Options: nosniff`, so no browser second-guesses the type.
"""

import re
from typing import Literal

OCTET_STREAM = "application/octet-stream"

RASTER_IMAGES = frozenset(
    {
        "image/png",
        "image/jpeg",
        "image/gif",
        "image/webp",
        "image/avif",
        "image/bmp",
        "image/x-icon",
        "image/tiff",
        "image/heic",
        "image/heif",
    }
)
AUDIO_VIDEO = frozenset(
    {
        "audio/mpeg",
        "audio/ogg",
        "audio/wav",
        "audio/flac",
        "audio/mp4",
        "video/mp4",
        "video/webm",
        "video/quicktime",
        "video/3gpp",
    }
)
PDF = "application/pdf"
PLAIN_TEXT = "text/plain"
INLINE_TYPES = RASTER_IMAGES | AUDIO_VIDEO | {PDF, PLAIN_TEXT}

# What a browser would run or render as a document of our origin, if it believed it.
ACTIVE_TYPES = frozenset(
    {
        "text/html",
        "application/xhtml+xml",
        "image/svg+xml",
        "text/xml",
        "application/xml",
        "text/javascript",
        "application/javascript",
        "application/ecmascript",
        "text/ecmascript",
        "application/x-javascript",
    }
)
ACTIVE_EXTENSIONS = frozenset(
    {
        "html",
        "htm",
        "shtml",
        "xhtml",
        "xht",
        "svg",
        "svgz",
        "xml",
        "xsl",
        "xslt",
        "js",
        "mjs",
        "cjs",
    }
)

# type "/" subtype, both RFC 9110 tokens: anything else never reaches a header.
_MEDIA_TYPE = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+/[!#$%&'*+.^_`|~0-9A-Za-z-]+")

# Every stored file: a sandboxed document (opaque origin, no script, forms, popups
# or plugins) that may load nothing. Chromium 156 still shows PDFs and plain text
# under it (measured), so those need nothing more.
SANDBOX = "sandbox; default-src 'none'"
# A browser shows an image in a document it builds around it; that document styles
# itself inline (centring, dark backdrop). The DOM is the browser's, never the file's,
# so inline style is harmless there.
IMAGE = f"{SANDBOX}; img-src 'self'; style-src 'unsafe-inline'"
# Chromium plays audio/video through a generated `<video crossorigin=anonymous
# src=this-URL>` that re-fetches the file with Range. From the opaque origin that a
# bare `sandbox` gives, that fetch is a CORS request we must refuse (answering
# `Access-Control-Allow-Origin: null` would open every file to every sandboxed
# page on the web), so playback fails. `allow-same-origin` keeps our origin for
# that fetch; without `allow-scripts` nothing in the document can run (measured).
MEDIA = "sandbox allow-same-origin; default-src 'none'; media-src 'self'"


def served_type(mime: str) -> str:
    """The Content-Type to send for a sniffed type; text gets an explicit charset
    (no charset sniffing, e.g. UTF-7)."""
    media_type = mime.strip().lower()
    if _MEDIA_TYPE.fullmatch(media_type) is None:
        return OCTET_STREAM
    if media_type == PLAIN_TEXT:
        return "text/plain; charset=utf-8"
    return media_type


def _claims_active_content(name: str, declared_mime: str | None) -> bool:
    declared = (declared_mime or "").split(";")[0].strip().lower()
    extension = name.rpartition(".")[2].lower() if "." in name else ""
    return declared in ACTIVE_TYPES or extension in ACTIVE_EXTENSIONS


def disposition(
    mime: str, *, name: str = "", declared_mime: str | None = None, force_download: bool = False
) -> Literal["inline", "attachment"]:
    """Inline only for types a browser renders without running script as us.

    Text is the sniffer's fallback, so it cannot tell JavaScript or a scrap of markup
    from prose: text that its name or its uploader calls HTML, SVG, XML or script is
    an attachment too (inline it would be harmless text/plain under nosniff, but a
    download says plainly what it is)."""
    media_type = served_type(mime).split(";")[0]
    if force_download or media_type not in INLINE_TYPES:
        return "attachment"
    if media_type == PLAIN_TEXT and _claims_active_content(name, declared_mime):
        return "attachment"
    return "inline"


# What a browser shows inline safely with no header of ours around it: an image or
# media document the browser builds itself. The WHATWG sniffing rules never turn an
# image, audio or video type into a document, and none of them can carry script.
SAFE_WITHOUT_GUARDS = RASTER_IMAGES | AUDIO_VIDEO


def redirected_disposition(
    mime: str, kind: Literal["inline", "attachment"]
) -> Literal["inline", "attachment"]:
    """The disposition for a download the store sends (a 302 to a pre-signed GET).

    The store cannot send our `Content-Security-Policy: sandbox` or `nosniff`, and the
    file would be shown as the store's origin. What is inline only thanks to those
    headers becomes an attachment: a PDF (a viewer may run the PDF's own scripts; the
    sandbox keeps them in an opaque origin) and plain text (without nosniff a browser
    may second-guess text/plain). Images, audio and video stay inline."""
    if kind == "inline" and served_type(mime).split(";")[0] in SAFE_WITHOUT_GUARDS:
        return "inline"
    return "attachment"


def content_security_policy(mime: str, kind: Literal["inline", "attachment"]) -> str:
    """The CSP for a stored file: `sandbox; default-src 'none'`, plus only what viewing
    an inline image or playing inline media needs."""
    media_type = served_type(mime).split(";")[0]
    if kind == "inline" and media_type in RASTER_IMAGES:
        return IMAGE
    if kind == "inline" and media_type in AUDIO_VIDEO:
        return MEDIA
    return SANDBOX
