"""Dead properties (RFC 4918 §4): what clients store on a file or folder with
PROPPATCH, kept in the catalog (`dav_properties`, migration 7) by the id of what they
belong to ('' for the account's root). So they follow a MOVE (the id does not
change), are copied by COPY (`copy`), and go with a DELETE (the catalog's triggers
remove them with their file's or folder's row, whoever deletes it)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from app.catalog.protocol import Database, id_batches

# (namespace, local name): '' is no namespace.
type PropertyName = tuple[str, str]

# What one resource may hold, so a client cannot fill the catalog through one file:
# so many properties, each value (its element as XML) at most so long, and all of
# them together at most MOST_TOTAL_CHARS.
MOST_PROPERTIES = 256
MOST_VALUE_CHARS = 64 * 1024
MOST_TOTAL_CHARS = 512 * 1024


class TooManyProperties(Exception):
    """A change that would leave a resource over one of the limits above; the message
    says which, and `names` the properties that broke it (empty: the whole change)."""

    def __init__(self, message: str, names: Sequence[PropertyName] = ()) -> None:
        super().__init__(message)
        self.message = message
        self.names = tuple(names)


@dataclass(frozen=True, slots=True)
class Change:
    """One PROPPATCH instruction: set `name` to `value` (its element as XML), or
    remove it when `value` is None."""

    name: PropertyName
    value: str | None


async def properties_of(db: Database, owner: str, target: str) -> dict[PropertyName, str]:
    """The dead properties of one file or folder, by name: each its element as XML."""
    found = await properties_of_many(db, owner, [target])
    return found.get(target, {})


async def properties_of_many(
    db: Database, owner: str, targets: Sequence[str]
) -> dict[str, dict[PropertyName, str]]:
    """The dead properties of each of `targets` that has any."""
    found: dict[str, dict[PropertyName, str]] = {}
    for batch, marks in id_batches(list(targets)):
        records = await db.fetch_all(
            "SELECT target, namespace, name, value FROM dav_properties"
            f" WHERE owner = ? AND target IN ({marks})",
            (owner, *batch),
        )
        for target, namespace, name, value in records:
            found.setdefault(str(target), {})[(str(namespace), str(name))] = str(value)
    return found


async def change(db: Database, owner: str, target: str, changes: Sequence[Change]) -> None:
    """Apply every change in order, all or none (RFC 4918 §9.2: PROPPATCH is atomic)."""
    too_long = [one.name for one in changes if one.value and len(one.value) > MOST_VALUE_CHARS]
    if too_long:
        raise TooManyProperties(
            f"a dead property's value is at most {MOST_VALUE_CHARS} characters of XML", too_long
        )
    async with db.transaction() as conn:
        for one in changes:
            namespace, name = one.name
            await conn.execute(
                "DELETE FROM dav_properties"
                " WHERE owner = ? AND target = ? AND namespace = ? AND name = ?",
                (owner, target, namespace, name),
            )
            if one.value is not None:
                await conn.execute(
                    "INSERT INTO dav_properties (owner, target, namespace, name, value)"
                    " VALUES (?, ?, ?, ?, ?)",
                    (owner, target, namespace, name, one.value),
                )
        cursor = await conn.execute(
            "SELECT count(*), coalesce(sum(length(value)), 0) FROM dav_properties"
            " WHERE owner = ? AND target = ?",
            (owner, target),
        )
        record = await cursor.fetchone()
        if record is not None and int(record[0]) > MOST_PROPERTIES:
            raise TooManyProperties(
                f"a file or folder holds at most {MOST_PROPERTIES} dead properties"
            )
        if record is not None and int(record[1]) > MOST_TOTAL_CHARS:
            raise TooManyProperties(
                f"the dead properties of a file or folder are at most {MOST_TOTAL_CHARS}"
                " characters of XML together"
            )


async def copy_properties(db: Database, owner: str, pairs: Sequence[tuple[str, str]]) -> None:
    """Give each new resource (second of a pair) the dead properties of its source."""
    if not pairs:
        return
    async with db.transaction() as conn:
        for source, copy in pairs:
            await conn.execute(
                "DELETE FROM dav_properties WHERE owner = ? AND target = ?", (owner, copy)
            )
            await conn.execute(
                "INSERT INTO dav_properties (owner, target, namespace, name, value)"
                " SELECT owner, ?, namespace, name, value FROM dav_properties"
                " WHERE owner = ? AND target = ?",
                (copy, owner, source),
            )
