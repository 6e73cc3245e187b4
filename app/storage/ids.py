"""The ids that name stored bytes, whatever the backend: blob ids (a file's bytes:
a local file's name, an S3 object's key under the prefix) and resumable upload ids
(an unfinished upload's bytes). Both are random, so client filenames never reach
the filesystem or the bucket."""

from __future__ import annotations

import base64
import os
import re
import threading

BLOB_ID = re.compile(r"[A-Za-z0-9_-]{22}")
UPLOAD_ID = re.compile(r"[A-Za-z0-9_-]{32}")

# Random bytes for blob ids are read from the kernel this many ids at a time: one
# getrandom call per id, on the event loop, was 2-3% of its time under small uploads
# (each syscall there gives the GIL up, and taking it back waits behind the writer
# threads). The bytes are the kernel's CSPRNG output, each used once; a forked child
# starts with none of its parent's.
_IDS_PER_READ = 256
_id_bytes = b""
_id_used = 0
_id_lock = threading.Lock()


def _forget_id_bytes() -> None:
    global _id_bytes, _id_used
    _id_bytes, _id_used = b"", 0


os.register_at_fork(after_in_child=_forget_id_bytes)


def new_blob_id() -> str:
    """128 random bits, URL-safe, 22 characters."""
    global _id_bytes, _id_used
    with _id_lock:
        if _id_used == len(_id_bytes):
            _id_bytes, _id_used = os.urandom(16 * _IDS_PER_READ), 0
        raw = _id_bytes[_id_used : _id_used + 16]
        _id_used += 16
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def is_blob_id(text: str) -> bool:
    return BLOB_ID.fullmatch(text) is not None
