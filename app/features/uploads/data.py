"""What other screens use of the uploads screen: the JSON an upload answers with (the
IETF draft's completing append answers the same, app/features/resumable/ietf.py)
the words that ask for a file's name, and the hook that turns an upload into a
resumable one."""

from collections.abc import Awaitable, Callable

from stario import Context, JsonValue, Writer

from app.files.store import FileRow, file_json, uploaded_file_json
from app.ingest.intake import Destination

# Starts a resumable upload instead of a single-request one when the request asks for
# it (the IETF draft's `Upload-Complete: ?0`, app/features/resumable/ietf.py), and
# says whether it did; it gets the name the request gives, if any.
type StartResumable = Callable[[Context, Writer, Destination, str | None], Awaitable[bool]]


NAME_THE_FILE = "name the file: add ?name=... or a Content-Disposition header with a filename"


def stored_json(
    rows: list[FileRow], fields: dict[str, str | list[str]], to: Destination
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
    files: list[JsonValue] = [file_json(row) for row in rows]
    return {"files": files, "fields": fields_json}
