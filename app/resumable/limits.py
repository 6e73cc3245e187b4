"""`Upload-Limit`, the IETF resumable-upload draft's limits field (a structured-field
Dictionary of Integers), written the one way every answer of this server writes it:
the creation URLs' `OPTIONS` (app/features/resumable/ietf.py), an upload's state, and
the server-wide `OPTIONS *` (app/server/early_answers.py)."""

from __future__ import annotations

# A structured-field Integer has at most 15 digits (RFC 9651 §3.3.1). A larger limit
# (`--max-file-bytes` takes up to 2^63) is sent as this: no upload comes near 1 PB.
LARGEST_SF_INTEGER = 999_999_999_999_999


def upload_limit_field(
    max_size: int, max_append_size: int, seconds_left: int | None, *, min_size: bool = True
) -> str:
    """`max-size`: the largest file; `min-size=0`: every upload may be resumable (the
    draft's form for "no lower bound"); `max-append-size`: the largest body of one
    request; `max-age` (interop 7 and later) and `expires` (interop 6, draft-05), the
    seconds an unfinished upload has left (None once finished). There is no
    `min-append-size`: an append of any size is taken."""
    limits = [f"max-size={min(max_size, LARGEST_SF_INTEGER)}"]
    if min_size:
        limits.append("min-size=0")
    limits.append(f"max-append-size={min(max_append_size, LARGEST_SF_INTEGER)}")
    if seconds_left is not None:
        limits += [f"expires={seconds_left}", f"max-age={seconds_left}"]
    return ", ".join(limits)
