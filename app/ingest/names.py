"""Names as people gave them, made safe to show and to put in a header."""

import unicodedata
from email.message import Message
from email.utils import collapse_rfc2231_value

MAX_NAME_CHARS = 255
UNNAMED = "unnamed"


def display_name(raw: str) -> str:
    """A name fit for lists and headers: no control or format characters, no path
    separators, at most 255 characters (the extension kept when cutting)."""
    text = unicodedata.normalize("NFC", raw)
    kept = []
    for char in text:
        category = unicodedata.category(char)
        if char in "/\\":
            kept.append("_")
        elif category in ("Zl", "Zp") or category.startswith("C"):
            # Cc controls, Cf format (bidi overrides that disguise extensions),
            # Cs/Co/Cn surrogates, private and unassigned code points.
            kept.append(" " if category in ("Zl", "Zp") or char in "\t\r\n" else "")
        else:
            kept.append(char)
    # A leading dot stays (".bashrc", ".gitignore": a sync tool must store what it
    # syncs, and folders keep theirs too); trailing dots and spaces go, as Windows
    # drops them on save; a name of nothing but dots is no name (".", "..").
    name = " ".join("".join(kept).split()).rstrip(" .")
    if len(name) > MAX_NAME_CHARS:
        stem, dot, extension = name.rpartition(".")
        if dot and stem and 0 < len(extension) <= 16:
            name = stem[: MAX_NAME_CHARS - len(extension) - 1].rstrip(" .") + "." + extension
        else:
            name = name[:MAX_NAME_CHARS].rstrip(" .")
    return name or UNNAMED


def filename_from_disposition(value: str | None) -> str | None:
    """The filename of a Content-Disposition value; RFC 8187 `filename*` wins over
    `filename`. (python-multipart's header parser drops `filename*`.)"""
    if not value:
        return None
    message = Message()
    message["content-disposition"] = value
    params = message.get_params(header="content-disposition") or []
    plain: str | None = None
    for key, param in params[1:]:
        if key != "filename":
            continue
        if isinstance(param, tuple):
            return collapse_rfc2231_value(param)
        plain = plain if plain is not None else param
    return plain


# How many folders a relative path may name: as deep as a folder tree may go
# (app/folders/store.py MAX_DEPTH), far past what a person makes.
MAX_PATH_DEPTH = 64
PATH_SEPARATORS = ("/", "\\")

# Where a file goes: the folders under the upload's folder ("a", "b"), and its name.
type Placed = tuple[tuple[str, ...], str]


class BadPath(ValueError):
    """A relative path refused; its text says why, fit to show the uploader."""


def holds_path(raw: str) -> bool:
    """Whether a name a client gave is a relative path ("a/b/c.txt")."""
    return any(separator in raw for separator in PATH_SEPARATORS)


def relative_path(raw: str) -> Placed:
    """(("a", "b"), "c.txt") of "a/b/c.txt": the folders to place a file in, under the
    upload's folder, and its name. Backslashes separate too (Windows clients); one
    leading separator is allowed, because browsers' dropped entries and Uppy's
    `relativePath` start with "/" ("/photos/a.jpg" is relative to the drop).
    Refused (BadPath) rather than repaired: an empty part ("a//b", "a/"), "." or
    "..", a control character, a part over 255 characters, more than 64 folders."""
    text = unicodedata.normalize("NFC", raw)
    for separator in PATH_SEPARATORS[1:]:
        text = text.replace(separator, "/")
    if text.startswith("/"):
        text = text[1:]
    parts = text.split("/")
    for part in parts:
        if not part.strip():
            raise BadPath(f"the path {raw!r} has an empty part (// or a / at its end)")
        if part in (".", ".."):
            raise BadPath(f"the path {raw!r} holds {part!r}: paths go down, never up")
        if any(unicodedata.category(char) == "Cc" for char in part):
            raise BadPath(f"the path {raw!r} holds a control character")
        if len(part) > MAX_NAME_CHARS:
            raise BadPath(f"a part of the path {raw!r} is longer than {MAX_NAME_CHARS} characters")
    if len(parts) - 1 > MAX_PATH_DEPTH:
        raise BadPath(f"the path {raw!r} names more than {MAX_PATH_DEPTH} folders")
    *folders, name = parts
    return tuple(" ".join(folder.split()) for folder in folders), display_name(name)
