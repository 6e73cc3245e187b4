"""Stario's plain early answers, in JSON with words, end to end on the real `stowage
serve` with curl and raw sockets (tests/unit/test_early_answers.py has the unit side)."""

import json
import shutil
import socket
import subprocess
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from tests.support.fixtures import RunningServer, start_server, stored_blobs, write_random_file

from app.config import Config

MiB = 1024 * 1024


@pytest.mark.slow
def test_an_upload_over_the_body_cap_is_told_to_go_resumable(
    capped_server: RunningServer, tmp_path: Path
) -> None:
    server = capped_server
    source = tmp_path / "three.bin"
    write_random_file(source, 3)
    body, written = curl(
        *server.curl_auth, "-T", str(source), "-w", "\n%{http_code} %{size_upload}",
        server.base_url + "/uploads/three.bin",
    )  # fmt: skip
    status, sent = written.split()
    error = json.loads(body)["error"]
    assert status == "413"
    assert "larger than the 1 MiB this server takes in one request" in error
    assert "tus 1.0 at /tus/" in error and "Upload-Complete: ?0" in error
    # curl asked `Expect: 100-continue`; the refusal came first, so no body went out.
    assert int(sent) == 0

    # Declared at 2^31 and beyond (Stario's hard limit): the same answer, at once.
    for length in (2**31, 2**40):
        answer = exchange(
            server,
            request(server, "PUT /uploads/huge.bin HTTP/1.1")
            + f"Content-Length: {length}\r\nExpect: 100-continue\r\n\r\n".encode(),
            until_close=True,
        )
        assert answer.startswith(b"HTTP/1.1 413 "), answer[:200]  # never a 100 Continue
        head, parsed = answer_json(answer)
        assert b"connection: close" in head
        assert "resumable upload, in parts under 1 MiB" in parsed["error"]

    # Without a length: Stario stops the body at the cap, and the upload says why.
    body, written = curl(
        *server.curl_auth, "-H", "Transfer-Encoding: chunked", "-T", str(source),
        "-w", "\n%{http_code}", server.base_url + "/uploads/chunked.bin",
    )  # fmt: skip
    assert written == "413"
    assert "larger than the 1 MiB this server takes in one request" in json.loads(body)["error"]

    # Under the cap, uploads stream and store as before.
    body, written = curl(
        *server.curl_auth, "-T", "-", "-w", "\n%{http_code}",
        server.base_url + "/uploads/fits.bin", stdin=b"f" * (MiB - 1000),
    )  # fmt: skip
    assert written == "201", body
    config = Config.load({"data_dir": str(server.data_dir)}, environ={})
    assert len(stored_blobs(config)) == 1


@pytest.mark.slow
def test_a_trailing_slash_and_a_control_character_get_words(server: RunningServer) -> None:
    url = server.base_url + "/uploads/"
    # `curl -T -` has no file name to append: the connection hands `/uploads/` to its
    # route (app/server/peers.py), which answers the JSON 400 at once.
    body, written = curl(*server.curl_auth, "-T", "-", "-w", "\n%{http_code}", url,
                         stdin=b"data")  # fmt: skip
    assert written == "400" and json.loads(body)["error"].startswith("name the file")
    # Any other slashed path meets Stario's 308, which now says where it leads.
    body, written = curl(*server.curl_auth, "-w", "\n%{http_code} %{redirect_url}",
                         server.base_url + "/api/files/")  # fmt: skip
    assert written == f"308 {server.base_url}/api/files"
    assert "the same request goes to /api/files" in json.loads(body)["error"]
    # A HEAD gets the same answer and the connection ends, so its body cannot be
    # mistaken for the next answer.
    answer = exchange(server, request(server, "HEAD /api/files/ HTTP/1.1") + b"\r\n",
                      until_close=True)  # fmt: skip
    assert answer.startswith(b"HTTP/1.1 308 ") and b"connection: close" in answer

    # A percent-encoded control character in the path: JSON 400, and the connection
    # goes on to the next request.
    answer = exchange(
        server,
        request(server, "PUT /uploads/a%0Db.txt HTTP/1.1") + b"Content-Length: 1\r\n\r\nx"
        + request(server, "GET /api/files HTTP/1.1") + b"\r\n",
        until=b'{"files":[]}',  # both answers, not a second's pause after the first
    )  # fmt: skip
    first, _, rest = answer.partition(b"\r\n\r\n")
    assert first.startswith(b"HTTP/1.1 400 ") and b"application/json" in first
    error_body, _, second = rest.partition(b"HTTP/1.1 ")
    error = json.loads(error_body)["error"]
    assert "percent-encoded control character" in error and "?name=" in error
    assert second.startswith(b"200 ") and b'{"files":[]}' in second
    config = Config.load({"data_dir": str(server.data_dir)}, environ={})
    assert stored_blobs(config) == []


CURL = shutil.which("curl") or "/usr/bin/curl"


def curl(*args: str, stdin: bytes = b"") -> tuple[str, str]:
    """(body, the --write-out line) of a curl run."""
    done = subprocess.run(
        [CURL, "--silent", "--show-error", *args],
        capture_output=True, input=stdin, timeout=30, check=True,
    )  # fmt: skip
    body, _, written = done.stdout.decode().rpartition("\n")
    return body, written


def exchange(
    server: RunningServer, raw: bytes, *, until_close: bool = False, until: bytes | None = None
) -> bytes:
    """Send `raw` on one connection; what comes back: until closed, until `until` has
    arrived, or else until a pause of a second."""
    port = urlsplit(server.base_url).port
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(raw)
        sock.settimeout(10 if until_close or until else 1.0)
        answer = b""
        try:
            while chunk := sock.recv(65536):
                answer += chunk
                if until is not None and until in answer:
                    break
        except TimeoutError:
            assert not until_close, f"the connection stayed open: {answer[:300]!r}"
    return answer


def request(server: RunningServer, head: str, body: bytes = b"") -> bytes:
    port = urlsplit(server.base_url).port
    lines = [head, f"Host: 127.0.0.1:{port}", f"Authorization: Bearer {server.token}"]
    return ("\r\n".join(lines) + "\r\n").encode() + body


def answer_json(answer: bytes) -> tuple[bytes, dict]:
    head, _, body = answer.partition(b"\r\n\r\n")
    assert b"content-type: application/json" in head
    return head, json.loads(body)


@pytest.fixture
def capped_server(tmp_path: Path):
    yield from start_server(tmp_path, "--max-request-body-bytes", str(MiB))
