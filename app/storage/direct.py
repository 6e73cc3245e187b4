"""Direct transfers (`--s3-direct`): whether this node hands clients pre-signed URLs so
file bytes go between them and the bucket, decided once at start from the setting and
from what the bucket was found to do (app/storage/backends.py `open_direct`).

No botocore here: every node imports this module; only an S3 node makes a
`DirectBucket` (app/storage/s3/direct.py), which does the signing.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from app.storage.s3.direct import DirectBucket


class PartsRefused(Exception):
    """The store would not join the parts as listed (`code`: InvalidPart, a part
    replaced after it was checked; EntityTooSmall; InvalidPartOrder): the client's
    doing, not the store's trouble."""

    def __init__(self, code: str) -> None:
        super().__init__(code)
        self.code = code


@dataclass(frozen=True, slots=True)
class Direct:
    """`uploads`: the page and API clients may open direct upload sessions
    (POST /api/uploads/direct); `downloads`: a download the node would send is a 302
    to a pre-signed GET instead (unless it must be counted or transformed). `notes`:
    what start-up found, in words (logged, and shown to admins)."""

    bucket: DirectBucket | None
    uploads: bool
    downloads: bool
    notes: tuple[str, ...] = ()


# Local storage, or `--s3-direct none`: every byte goes through the node.
PROXIED = Direct(None, uploads=False, downloads=False)
