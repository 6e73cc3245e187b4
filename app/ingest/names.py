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
    name = " ".join("".join(kept).split()).strip(" .")
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
