"""How the catalog compares names: a folder holds one entry per name, ignoring case,
and a name that is taken gives way to the next free "name (2).ext".

The key is computed here, in Python, so that SQLite and PostgreSQL agree on it (SQLite's
own `lower()` knows ASCII only). Imports nothing of the app.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Callable, Iterable

# Long enough for any real run of copies; past it a name is refused, not looped on.
MAX_COPIES = 10_000
MAX_NAME_CHARS = 255


def name_key(name: str) -> str:
    """What two names are compared by: NFC, then Unicode case folding."""
    return unicodedata.normalize("NFC", name).casefold()


def split_extension(name: str) -> tuple[str, str]:
    """("report", ".pdf") of "report.pdf"; a leading dot is part of the stem, and so
    is an "extension" longer than 16 characters or with a space."""
    stem, dot, extension = name.rpartition(".")
    if not dot or not stem or len(extension) > 16 or " " in extension:
        return name, ""
    return stem, "." + extension


def numbered(name: str, number: int) -> str:
    """The name's `number`th copy: "a.txt" -> "a (2).txt" (cut to fit 255 characters)."""
    stem, extension = split_extension(name)
    suffix = f" ({number}){extension}"
    return stem[: MAX_NAME_CHARS - len(suffix)].rstrip() + suffix


def free_name(name: str, taken: Callable[[str], bool]) -> str:
    """`name` if its key is free, else the first free numbered copy of it."""
    if not taken(name_key(name)):
        return name
    for number in range(2, MAX_COPIES + 2):
        candidate = numbered(name, number)
        if not taken(name_key(candidate)):
            return candidate
    raise ValueError(f"{MAX_COPIES} copies of {name!r} are here already")


def unique_names(names: Iterable[str]) -> list[str]:
    """The names in order, each later clash renamed to its first free copy (so the
    result never depends on anything but the order)."""
    wanted = list(names)
    used = {name_key(n) for n in wanted}
    # The first holder of each key keeps it; later ones take numbered copies that are
    # neither an original name nor given out before.
    kept: set[str] = set()
    result: list[str] = []
    for name in wanted:
        key = name_key(name)
        if key not in kept:
            kept.add(key)
            result.append(name)
            continue
        copy = free_name(name, lambda k: k in used)
        used.add(name_key(copy))
        kept.add(name_key(copy))
        result.append(copy)
    return result
