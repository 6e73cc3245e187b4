"""What other screens use of the uploads screen: the JSON an upload answers with (the
IETF draft's completing append answers the same, app/features/resumable/ietf.py)
the words that ask for a file's name, the hook that turns an upload into a
resumable one, and where a request asks its file to go (`?folder=`, `?path=`,
`?replace=`)."""

from collections.abc import Awaitable, Callable

from stario import Context, JsonValue, Writer

from app.catalog.protocol import Database
from app.files.store import FileRow, file_json, uploaded_file_json
from app.folders.store import folder_paths
from app.ingest.intake import Destination, Uploads
from app.ingest.names import BadPath, Placed, relative_path
from app.ingest.pipeline import IngestError

# Starts a resumable upload instead of a single-request one when the request asks for
# it (the IETF draft's `Upload-Complete: ?0`, app/features/resumable/ietf.py), and
# says whether it did; it gets the name the request gives, if any.
type StartResumable = Callable[[Context, Writer, Destination, str | None], Awaitable[bool]]


NAME_THE_FILE = "name the file: add ?name=... or a Content-Disposition header with a filename"


YES = frozenset({"1", "true", "yes", "on"})
NO = frozenset({"0", "false", "no", "off", ""})


def replace_asked(c: Context) -> bool:
    """`?replace=1` (or true): a same-named file in the folder is replaced rather than
    kept beside a numbered "name (2).ext"."""
    value = c.req.query.get("replace")
    if value is None:
        return False
    word = value.strip().lower()
    if word in YES:
        return True
    if word in NO:
        return False
    raise IngestError(400, f"?replace= is 1 or 0 (true or false), not {value!r}")


async def into_asked_folder(uploads: Uploads, c: Context, to: Destination) -> Destination:
    """An account's upload, placed where the request asks: `?folder=ID` ("root" or
    none: the root; unknown or another account's: 404 before a byte is read) and
    `?replace=1`."""
    replace = replace_asked(c)
    folder = c.req.query.get("folder")
    if folder is None and not replace:
        return to
    return await uploads.into_folder(to, folder, replace=replace)


def path_asked(c: Context) -> Placed | None:
    """`?path=a/b/c.txt`: the folders to make under the upload's folder, and the
    file's name; None when not asked; a bad path is a 400 in words."""
    raw = c.req.query.get("path")
    if raw is None:
        return None
    return placed_at(raw)


def placed_at(raw: str) -> Placed:
    try:
        return relative_path(raw)
    except BadPath as exc:
        raise IngestError(400, str(exc)) from None


def placed_by_name(c: Context, name: str) -> Placed:
    """Where a raw body named `name` goes: `?path=` when given, else the name itself,
    a relative path when it holds a "/" (`PUT /uploads/a%2Fb%2Fc.txt`)."""
    asked = path_asked(c)
    if asked is not None:
        return asked
    return placed_at(name) if "/" in name else ((), name)


async def stored_json(
    db: Database, rows: list[FileRow], fields: dict[str, str | list[str]], to: Destination
) -> dict[str, JsonValue]:
    """The body of an upload's 201, also the IETF draft's answer to the append that
    completes a resumable upload."""
    fields_json: dict[str, JsonValue] = {
        key: value if isinstance(value, str) else list(value) for key, value in fields.items()
    }
    if to.public:
        # Through a file request: what was received, and no id or link to anything.
        received: list[JsonValue] = [uploaded_file_json(row) for row in rows]
        return {"files": received, "fields": fields_json}
    paths = (
        await folder_paths(db, to.owner, {row.folder_id for row in rows})
        if any(row.folder_id for row in rows)
        else {}
    )
    files: list[JsonValue] = [file_json(row, paths.get(row.folder_id, "/")) for row in rows]
    return {"files": files, "fields": fields_json}
