"""tus-js-client 4.3.1's `ietf-draft-05` protocol (interop version 6), unmodified under
Node, against the real server: whole uploads from a file and from a buffer, and one
stopped midway and resumed from the server's offset."""

import hashlib
import os
from pathlib import Path

import pytest
from tests.support.clients import TusJs
from tests.support.fixtures import RunningServer

pytestmark = pytest.mark.slow

CHUNK = 100_000


def stored(server: RunningServer) -> list[tuple[str, int, str]]:
    with server.http() as http:
        files = http.get("/api/files").json()["files"]
    return [(f["name"], f["size"], f["sha256"]) for f in files]


@pytest.mark.parametrize("source", ["file", "buffer"])
def test_tus_js_ietf_draft_05_uploads_in_chunks(
    tus_js: TusJs, server: RunningServer, tmp_path: Path, source: str
):
    # From a file the client marks no append Upload-Complete: ?1 (its quirk); the
    # known length completes the upload all the same.
    data = os.urandom(2 * CHUNK + 5)
    (tmp_path / "notes.bin").write_bytes(data)
    result = tus_js.upload(
        tmp_path / "notes.bin", endpoint=f"{server.base_url}/tus/", protocol="ietf-draft-05",
        chunk_size=CHUNK, source=source, token=server.token, name="notes.bin",
    )  # fmt: skip
    assert result.ok, result
    assert result.methods() == ["POST", "PATCH", "PATCH", "PATCH"]
    assert stored(server) == [("notes.bin", len(data), hashlib.sha256(data).hexdigest())]


def test_tus_js_ietf_draft_05_resumes_from_the_servers_offset(
    tus_js: TusJs, server: RunningServer, tmp_path: Path
):
    data = os.urandom(5 * CHUNK)
    (tmp_path / "big.bin").write_bytes(data)
    first = tus_js.upload(
        tmp_path / "big.bin", endpoint=f"{server.base_url}/tus/", protocol="ietf-draft-05",
        chunk_size=CHUNK, token=server.token, name="big.bin", stop_after=2 * CHUNK,
    )  # fmt: skip
    assert first.stopped and first.bytes_accepted == 2 * CHUNK and first.url, first
    assert stored(server) == []
    second = tus_js.upload(
        tmp_path / "big.bin", upload_url=first.url, protocol="ietf-draft-05",
        chunk_size=CHUNK, token=server.token,
    )  # fmt: skip
    assert second.ok, second
    assert second.methods() == ["HEAD", "PATCH", "PATCH", "PATCH"]
    assert second.requests[1]["headers"]["Upload-Offset"] == str(2 * CHUNK)
    assert stored(server) == [("big.bin", len(data), hashlib.sha256(data).hexdigest())]
