"""The curl commands of docs/resumable-uploads.md for the IETF resumable-upload draft,
against a real server: an upload cut off midway (curl killed) is finished with the
docs' own lines, and the stored file is the file."""

import hashlib
import os
import re
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from tests.support.fixtures import RunningServer, start_server, write_random_file
from tests.support.readme import README_ADDRESS, readme_blocks

pytestmark = pytest.mark.slow

# As tests/server/test_readme.py runs them: an HTTP error status fails the line.
CURL = 'curl() { command curl --fail-with-body -sS "$@"; }'


@pytest.fixture
def server(tmp_path: Path) -> Iterator[RunningServer]:
    yield from start_server(tmp_path)


def draft_lines() -> dict[str, str]:
    """The docs block of the draft, by what each line does."""
    block = next(
        b for b in readme_blocks() if any("Upload-Draft-Interop-Version" in c.text for c in b)
    )
    lines = [command.text for command in block]
    assert len(lines) == 4, lines
    return dict(zip(("start", "first", "offset", "rest"), lines, strict=True))


def run(server: RunningServer, cwd: Path, script: str, env: dict[str, str]) -> str:
    """Lines of the docs in bash, on `server`; prints what `env` names afterwards."""
    port = server.base_url.rsplit(":", 1)[1]
    text = script.replace(README_ADDRESS, f"127.0.0.1:{port}")
    done = subprocess.run(
        ["bash", "--noprofile", "--norc", "-c", f"{CURL}\nset -e\n{text}\n"],
        cwd=cwd,
        env={"PATH": os.environ["PATH"], "TOKEN": server.token, **env},
        stdin=subprocess.DEVNULL,
        capture_output=True,
        timeout=60,
    )
    output = (done.stdout + done.stderr).decode(errors="replace")
    assert done.returncode == 0, f"{text}\nexit {done.returncode}:\n{output}"
    return done.stdout.decode()


def stored(server: RunningServer) -> list[dict]:
    with server.http() as http:
        return http.get("/api/files").json()["files"]


def test_readme_commands_resume_an_upload_cut_off_midway(server: RunningServer, tmp_path: Path):
    lines = draft_lines()
    work = tmp_path / "work"
    work.mkdir()
    size = 8_000_000
    digest = write_random_file(work / "photo.jpg", size // 1_000_000)
    url = run(server, work, lines["start"] + '\necho "$URL"', {}).strip()
    assert re.fullmatch(r"http://127\.0\.0\.1:\d+/tus/[\w-]{32}", url), url
    # The whole file at 2 MB/s, as step 2 of a script would send it; killed after ~1.5 s.
    port = server.base_url.rsplit(":", 1)[1]
    cut = subprocess.Popen(
        ["curl", "-sS", "-o", "/dev/null", "--limit-rate", "2M", "-X", "PATCH",
         "--upload-file", "photo.jpg", *server.curl_auth,
         "-H", "Upload-Draft-Interop-Version: 8", "-H", "Content-Type: application/partial-upload",
         "-H", "Upload-Offset: 0", "-H", "Upload-Complete: ?1",
         url.replace(README_ADDRESS, f"127.0.0.1:{port}")],
        cwd=work, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        time.sleep(1.5)
    finally:
        cut.send_signal(signal.SIGKILL)
        cut.wait()
    assert stored(server) == []
    # Steps 3 and 4 of the docs, as written.
    offset = run(server, work, lines["offset"] + '\necho "$OFFSET"', {"URL": url}).strip()
    assert 0 < int(offset) < size, offset
    answer = run(server, work, f"OFFSET={offset}\n" + lines["rest"], {"URL": url})
    assert f'"sha256":"{digest}"' in answer
    files = stored(server)
    assert [(f["name"], f["size"], f["sha256"]) for f in files] == [("photo.jpg", size, digest)]
    with server.http() as http:
        assert hashlib.sha256(http.get(files[0]["url"]).content).hexdigest() == digest


def test_a_chunked_last_append_that_ends_short_keeps_its_bytes(
    server: RunningServer, tmp_path: Path
):
    """Without a Content-Length the server learns only at the end that `?1` came
    short of the announced length: the bytes stay, the upload stays incomplete."""
    lines = draft_lines()
    (tmp_path / "photo.jpg").write_bytes(os.urandom(10_000))
    url = run(server, tmp_path, lines["start"] + '\necho "$URL"', {}).strip()
    port = server.base_url.rsplit(":", 1)[1]
    local = url.replace(README_ADDRESS, f"127.0.0.1:{port}")
    short = subprocess.run(
        f"head -c 3000 photo.jpg | curl -sS -X PATCH --upload-file - '{local}'"
        f" -H 'Authorization: Bearer {server.token}' -H 'Upload-Draft-Interop-Version: 8'"
        " -H 'Content-Type: application/partial-upload' -H 'Upload-Offset: 0'"
        " -H 'Upload-Complete: ?1' -o /dev/null -w '%{http_code}'",
        shell=True, cwd=tmp_path, capture_output=True, timeout=30,
    )  # fmt: skip
    assert short.stdout.decode() == "400", short
    with server.http() as http:
        head = http.head(local, headers={"Upload-Draft-Interop-Version": "8"})
    assert head.headers["upload-offset"] == "3000"
    assert head.headers["upload-complete"] == "?0"
    assert head.headers["upload-length"] == "10000"
    assert stored(server) == []
    # The docs' steps 3 and 4 finish it.
    answer = run(server, tmp_path, lines["offset"] + "\n" + lines["rest"], {"URL": url})
    assert '"size":10000' in answer


def test_an_append_over_the_body_cap_is_told_the_largest_append(tmp_path: Path):
    """Stario refuses a Content-Length over the cap before Stowage sees the request;
    its 413 still carries `Upload-Limit` (interop 8 requires it)."""
    for server in start_server(tmp_path, "--max-request-body-bytes", "1048576"):
        with server.http() as http:
            created = http.post("/tus/", headers={"Upload-Draft-Interop-Version": "8",
                                                  "Upload-Complete": "?0"})  # fmt: skip
            assert created.status_code == 201
            assert "max-append-size=1048576" in created.headers["upload-limit"]
            answer = http.patch(
                created.headers["location"], content=b"x" * (1048576 + 1),
                headers={"Upload-Draft-Interop-Version": "8", "Upload-Offset": "0",
                         "Upload-Complete": "?1", "Content-Type": "application/partial-upload"},
            )  # fmt: skip
            assert answer.status_code == 413
            assert answer.headers["upload-limit"] == "max-append-size=1048576"
            assert "resumable" in answer.json()["error"]


def test_curl_resumes_through_a_file_request_link(server: RunningServer, tmp_path: Path):
    """`Upload-Complete: ?0` on a request link's /uploads starts a resumable upload under
    the link, which curl finishes; the uploader needs no account."""
    with server.http() as http:
        made = http.post("/api/requests", json={"label": "Send the notes"})
        link = server.base_url + made.json()["request"]["url"]
    data = os.urandom(300_000)
    (tmp_path / "first").write_bytes(data[:100_000])
    (tmp_path / "rest").write_bytes(data[100_000:])

    def curl(*args: str) -> str:
        done = subprocess.run(
            ["curl", "-sS", "--fail-with-body", "-D", "-", "-o", "/dev/null", *args],
            cwd=tmp_path, stdin=subprocess.DEVNULL, capture_output=True, timeout=30,
        )  # fmt: skip
        assert done.returncode == 0, done.stderr.decode()
        return done.stdout.decode()

    started = curl("-X", "PUT", "--data-binary", "@first", "-H", "Upload-Complete: ?0",
                   "-H", f"Upload-Length: {len(data)}", f"{link}/uploads/notes.bin")  # fmt: skip
    assert started.startswith("HTTP/1.1 201"), started
    location = re.search(r"(?im)^location: (\S+)", started)
    assert location and location.group(1).startswith(made.json()["request"]["url"] + "/tus/")
    assert re.search(r"(?im)^upload-offset: 100000\b", started), started
    assert stored(server) == []  # the first part is not a file
    done = curl("-X", "PATCH", "--data-binary", "@rest", "-H", "Upload-Offset: 100000",
                "-H", "Upload-Complete: ?1", "-H", "Upload-Draft-Interop-Version: 8",
                "-H", "Content-Type: application/partial-upload",
                server.base_url + location.group(1))  # fmt: skip
    assert done.startswith("HTTP/1.1 201"), done
    [file] = stored(server)
    assert (file["name"], file["sha256"]) == ("notes.bin", hashlib.sha256(data).hexdigest())
