"""The real resumable-upload clients (tests/support/clients.py): they install, run, fail readably,
and send what a server has to accept from them, quirks included. A tiny recording tus
endpoint stands in for the server here only to capture the clients' requests (it checks
nothing); Stowage's own resumable tests drive the same clients against the real server."""

import base64
import hashlib
import os
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from tests.support.clients import (
    ClientSetupError,
    DeferredLengthUploader,
    Sha256Uploader,
    TusJs,
    ensure_tus_js_client,
    offline_npm_env,
    tuspy_client,
)
from tests.support.fixtures import free_port

CHUNK = 100_000


class Recorder:
    """Every request the client made: method, path, lower-case headers, body size."""

    def __init__(self, base_url: str) -> None:
        self.base_url = base_url
        self.log: list[dict[str, Any]] = []
        self.uploads: dict[str, dict[str, Any]] = {}

    def requests(self, method: str) -> list[dict[str, Any]]:
        return [entry for entry in self.log if entry["method"] == method]

    def body_bytes(self) -> int:
        return sum(entry["body"] for entry in self.log)


def _handler(recorder: Recorder) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args: object) -> None:
            pass

        def _answer(self, status: int, headers: dict[str, str]) -> None:
            self.send_response(status)
            if "upload-draft-interop-version" not in self.headers:
                self.send_header("Tus-Resumable", "1.0.0")
            for name, value in headers.items():
                self.send_header(name, value)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def _record(self) -> bytes:
            body = self.rfile.read(int(self.headers.get("content-length") or 0))
            recorder.log.append({
                "method": self.command, "path": self.path, "body": len(body),
                "headers": {k.lower(): v for k, v in self.headers.items()},
                "data": body,
            })  # fmt: skip
            return body

        def do_POST(self) -> None:
            body = self._record()
            upload_id = f"u{len(recorder.uploads) + 1}"
            recorder.uploads[upload_id] = {
                "offset": len(body),
                "length": self.headers.get("upload-length"),
            }
            self._answer(201, {"Location": f"/tus/{upload_id}", "Upload-Offset": str(len(body))})

        def do_HEAD(self) -> None:
            self._record()
            upload = recorder.uploads.get(self.path.rsplit("/", 1)[-1])
            if upload is None:
                self._answer(404, {})
                return
            headers = {"Upload-Offset": str(upload["offset"]), "Cache-Control": "no-store"}
            if upload["length"] is not None:
                headers["Upload-Length"] = upload["length"]
            self._answer(200, headers)

        def do_PATCH(self) -> None:
            body = self._record()
            upload = recorder.uploads[self.path.rsplit("/", 1)[-1]]
            upload["offset"] += len(body)
            upload["length"] = self.headers.get("upload-length", upload["length"])
            self._answer(204, {"Upload-Offset": str(upload["offset"])})

    return Handler


@pytest.fixture
def recorder() -> Iterator[Recorder]:
    port = free_port()
    recording = Recorder(f"http://127.0.0.1:{port}")
    httpd = ThreadingHTTPServer(("127.0.0.1", port), _handler(recording))
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield recording
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(5)


def random_file(path: Path, size: int) -> bytes:
    data = os.urandom(size)
    path.write_bytes(data)
    return data


def test_tus_js_parallel_uploads_create_partials_then_concatenate_absolute_urls(
    tus_js: TusJs, recorder: Recorder, tmp_path: Path
) -> None:
    data = random_file(tmp_path / "movie.bin", 4 * CHUNK + 3)
    result = tus_js.upload(
        tmp_path / "movie.bin", endpoint=f"{recorder.base_url}/tus/", parallel=4, token="t0k"
    )
    assert result.ok and result.returncode == 0, result
    posts = recorder.requests("POST")
    partials, final = posts[:4], posts[4]
    assert all(p["headers"]["upload-concat"] == "partial" for p in partials)
    assert sorted(int(p["headers"]["upload-length"]) for p in partials) == [
        CHUNK, CHUNK, CHUNK, CHUNK + 3,
    ]  # fmt: skip
    # The partials carry no metadata; the final POST names the file and lists the parts
    # as ABSOLUTE URLs, space-separated, in file order (not creation order: the four
    # creations race).
    assert all("upload-metadata" not in p["headers"] for p in partials)
    kind, _, listed = final["headers"]["upload-concat"].partition(";")
    urls = listed.split(" ")
    assert kind == "final" and all(u.startswith(f"{recorder.base_url}/tus/u") for u in urls)
    appended = {p["path"]: p["data"] for p in recorder.requests("PATCH")}
    assert b"".join(appended[u.removeprefix(recorder.base_url)] for u in urls) == data
    assert "filename bW92aWUuYmlu" in final["headers"]["upload-metadata"]
    assert "upload-length" not in final["headers"]
    # Every request is signed in and speaks tus 1.0.0; even the partials' PATCHes repeat
    # Upload-Concat: partial.
    assert all(e["headers"]["authorization"] == "Bearer t0k" for e in recorder.log)
    assert all(e["headers"]["tus-resumable"] == "1.0.0" for e in recorder.log)
    assert all(p["headers"]["upload-concat"] == "partial" for p in recorder.requests("PATCH"))
    assert result.url == f"{recorder.base_url}/tus/u5"


def test_tus_js_ietf_draft_05_marks_the_last_append_complete_only_from_a_buffer(
    tus_js: TusJs, recorder: Recorder, tmp_path: Path
) -> None:
    """tus-js-client 4.3.1's fs.ReadStream source never sets Upload-Complete: ?1 when the
    file takes several chunks (its `done` compares one chunk's size with the file's); a
    server must complete such an upload when its offset reaches Upload-Length."""
    random_file(tmp_path / "notes.bin", 2 * CHUNK + 5)
    completes = {}
    for source in ("file", "buffer"):
        recorder.log.clear()
        result = tus_js.upload(
            tmp_path / "notes.bin", endpoint=f"{recorder.base_url}/tus/",
            protocol="ietf-draft-05", chunk_size=CHUNK, source=source,
        )  # fmt: skip
        assert result.ok, result
        post = recorder.requests("POST")[0]["headers"]
        assert post["upload-draft-interop-version"] == "6"
        assert post["upload-complete"] == "?0" and post["upload-length"] == str(2 * CHUNK + 5)
        assert "tus-resumable" not in post and "content-type" not in post
        patches = recorder.requests("PATCH")
        assert [p["headers"]["upload-offset"] for p in patches] == ["0", "100000", "200000"]
        assert {p["headers"]["content-type"] for p in patches} == {"application/partial-upload"}
        completes[source] = [p["headers"]["upload-complete"] for p in patches]
    assert completes == {"file": ["?0", "?0", "?0"], "buffer": ["?0", "?0", "?1"]}


def test_tus_js_stops_midway_and_resumes_from_the_servers_offset(
    tus_js: TusJs, recorder: Recorder, tmp_path: Path
) -> None:
    random_file(tmp_path / "big.bin", 5 * CHUNK)
    first = tus_js.upload(
        tmp_path / "big.bin", endpoint=f"{recorder.base_url}/tus/", chunk_size=CHUNK,
        stop_after=2 * CHUNK,
    )  # fmt: skip
    assert first.stopped and first.returncode == 1 and first.bytes_accepted == 2 * CHUNK
    assert first.url is not None
    second = tus_js.upload(tmp_path / "big.bin", upload_url=first.url, chunk_size=CHUNK)
    assert second.ok, second
    assert second.methods() == ["HEAD", "PATCH", "PATCH", "PATCH"]
    assert second.requests[1]["headers"]["Upload-Offset"] == str(2 * CHUNK)
    assert recorder.body_bytes() == 5 * CHUNK


def test_tus_js_runner_reports_a_refused_connection_as_json(tus_js: TusJs, tmp_path: Path) -> None:
    random_file(tmp_path / "a.bin", 10)
    for protocol in ("tus-v1", "ietf-draft-05"):
        result = tus_js.upload(
            tmp_path / "a.bin", endpoint=f"http://127.0.0.1:{free_port()}/tus/",
            protocol=protocol, retry_delays=[],
        )  # fmt: skip
        assert result.returncode == 1 and not result.ok
        assert result.error is not None and "ECONNREFUSED" in result.error
        assert result.methods() == ["POST"] and result.requests[0]["status"] is None


def test_tuspy_checksums_stops_midway_and_resumes(recorder: Recorder, tmp_path: Path) -> None:
    data = random_file(tmp_path / "photo.bin", 3 * CHUNK + 1)
    tus = tuspy_client(recorder.base_url, "t0k")
    first = Sha256Uploader(
        str(tmp_path / "photo.bin"), client=tus, chunk_size=CHUNK, upload_checksum=True,
        metadata={"filename": "photo.bin"},
    )  # fmt: skip
    first.upload(stop_at=CHUNK)
    assert first.url == f"{recorder.base_url}/tus/u1" and first.offset == CHUNK
    resumed = Sha256Uploader(
        str(tmp_path / "photo.bin"), client=tus, url=first.url, chunk_size=CHUNK,
        upload_checksum=True,
    )  # fmt: skip
    assert resumed.offset == CHUNK  # its constructor asked the server (HEAD)
    resumed.upload()
    patches = recorder.requests("PATCH")
    assert [p["headers"]["upload-offset"] for p in patches] == ["0", "100000", "200000", "300000"]
    for patch in patches:
        digest = base64.b64encode(hashlib.sha256(patch["data"]).digest()).decode()
        assert patch["headers"]["upload-checksum"] == f"sha256 {digest}"
    assert b"".join(p["data"] for p in patches) == data
    assert all(e["headers"]["authorization"] == "Bearer t0k" for e in recorder.log)


def test_tuspy_deferred_length_declares_the_length_on_the_last_append(
    recorder: Recorder, tmp_path: Path
) -> None:
    random_file(tmp_path / "stream.bin", 2 * CHUNK + 7)
    uploader = DeferredLengthUploader(
        str(tmp_path / "stream.bin"), client=tuspy_client(recorder.base_url, "t0k"),
        chunk_size=CHUNK,
    )  # fmt: skip
    uploader.upload()
    creation = recorder.requests("POST")[0]["headers"]
    assert creation["upload-defer-length"] == "1" and "upload-length" not in creation
    lengths = [p["headers"].get("upload-length") for p in recorder.requests("PATCH")]
    assert lengths == [None, None, str(2 * CHUNK + 7)]


def test_tuspy_sends_an_empty_metadata_header_without_metadata(
    recorder: Recorder, tmp_path: Path
) -> None:
    """A server has to accept `Upload-Metadata:` with an empty value from tuspy."""
    random_file(tmp_path / "x.bin", 10)
    tuspy_client(recorder.base_url, "t0k").uploader(str(tmp_path / "x.bin")).upload()
    assert recorder.requests("POST")[0]["headers"]["upload-metadata"] == ""


def test_an_unreachable_npm_registry_is_a_readable_error(tmp_path: Path) -> None:
    with pytest.raises(ClientSetupError) as failure:
        ensure_tus_js_client(tmp_path / "node", env=offline_npm_env(tmp_path))
    message = str(failure.value)
    assert "could not install tus-js-client@4.3.1 from the npm registry" in message
    assert "offline" in message
