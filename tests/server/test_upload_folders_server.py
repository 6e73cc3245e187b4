"""Uploads into folders with real clients against the real server: curl (raw PUT and
multipart with `?folder=` and `?path=`, and the IETF draft with `?path=`), tuspy and
tus-js-client (tus 1.0 and the draft) with `relativePath` and `folder` metadata as Uppy
sends them. Each file's bytes are downloaded and compared."""

import hashlib
import subprocess
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from tests.support.clients import TusJs, tuspy_client
from tests.support.fixtures import RunningServer, start_server

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    yield from start_server(tmp_path_factory.mktemp("folders"))


def http(server: RunningServer) -> httpx.Client:
    return httpx.Client(
        base_url=server.base_url,
        headers={"authorization": f"Bearer {server.token}"},
        timeout=60,
    )


def new_folder(server: RunningServer, name: str) -> str:
    with http(server) as client:
        answer = client.post("/api/folders", json={"name": name})
    assert answer.status_code == 201, answer.text
    return answer.json()["folder"]["id"]


def stored_at(server: RunningServer, *names: str) -> dict[str, dict]:
    """The files of the folder `names` leads to from the root, by name."""
    with http(server) as client:
        at = client.get("/api/folders/root").json()
        for name in names:
            found = [f for f in at["folders"] if f["name"] == name]
            assert found, (name, at["folders"])
            at = client.get(f"/api/folders/{found[0]['id']}").json()
    return {f["name"]: f for f in at["files"]}


def downloaded(server: RunningServer, file: dict) -> bytes:
    with http(server) as client:
        return client.get(file["url"]).content


def curl(server: RunningServer, *args: str) -> str:
    done = subprocess.run(
        ["curl", "-sS", "--fail-with-body", "-H", f"Authorization: Bearer {server.token}",
         *args],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert done.returncode == 0, (done.stdout, done.stderr)
    return done.stdout


def test_curl_put_and_form_into_a_folder(server: RunningServer, tmp_path: Path):
    folder = new_folder(server, "curl")
    (tmp_path / "a.txt").write_bytes(b"raw body\n")
    (tmp_path / "b.txt").write_bytes(b"form body\n")
    curl(server, "-T", str(tmp_path / "a.txt"),
         f"{server.base_url}/uploads/?folder={folder}&path=raw/deep/a.txt")  # fmt: skip
    # A form whose filename carries a relative path, as a browser sends a chosen folder's.
    curl(server, "-F", f"file=@{tmp_path / 'b.txt'};filename=form/b.txt",
         f"{server.base_url}/uploads?folder={folder}")  # fmt: skip
    raw = stored_at(server, "curl", "raw", "deep")
    assert downloaded(server, raw["a.txt"]) == b"raw body\n"
    form = stored_at(server, "curl", "form")
    assert downloaded(server, form["b.txt"]) == b"form body\n"
    # A second upload of the same path takes the next free number; replace=1 replaces.
    curl(server, "-T", str(tmp_path / "a.txt"),
         f"{server.base_url}/uploads/?folder={folder}&path=raw/deep/a.txt")  # fmt: skip
    assert set(stored_at(server, "curl", "raw", "deep")) == {"a.txt", "a (2).txt"}
    (tmp_path / "a.txt").write_bytes(b"replaced\n")
    curl(server, "-T", str(tmp_path / "a.txt"),
         f"{server.base_url}/uploads/?folder={folder}&path=raw/deep/a.txt&replace=1")  # fmt: skip
    deep = stored_at(server, "curl", "raw", "deep")
    assert set(deep) == {"a.txt", "a (2).txt"}
    assert downloaded(server, deep["a.txt"]) == b"replaced\n"


def test_curl_unknown_folder_is_404(server: RunningServer, tmp_path: Path):
    (tmp_path / "x.txt").write_bytes(b"x")
    done = subprocess.run(
        ["curl", "-sS", "-o", "-", "-w", "\n%{http_code}", "-H",
         f"Authorization: Bearer {server.token}", "-T", str(tmp_path / "x.txt"),
         f"{server.base_url}/uploads/?folder=nosuchfolder00"],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    body, status = done.stdout.rsplit("\n", 1)
    assert status == "404" and "no such folder" in body


def test_curl_ietf_draft_with_a_path(server: RunningServer, tmp_path: Path):
    data = bytes(range(256)) * 40
    (tmp_path / "first").write_bytes(data[:4000])
    (tmp_path / "rest").write_bytes(data[4000:])
    headers = curl(server, "-D", "-", "-o", "/dev/null", "-X", "POST",
                   "--data-binary", f"@{tmp_path / 'first'}", "-H", "Upload-Complete: ?0",
                   f"{server.base_url}/uploads?path=draft/part/file.bin")  # fmt: skip
    location = next(
        line.split(":", 1)[1].strip()
        for line in headers.splitlines()
        if line.lower().startswith("location:")
    )
    curl(server, "-o", "/dev/null", "-X", "PATCH", "--data-binary", f"@{tmp_path / 'rest'}",
         "-H", "Upload-Offset: 4000", "-H", "Upload-Complete: ?1",
         "-H", "Upload-Draft-Interop-Version: 8",
         "-H", "Content-Type: application/partial-upload",
         f"{server.base_url}{location}")  # fmt: skip
    stored = stored_at(server, "draft", "part")["file.bin"]
    assert stored["sha256"] == hashlib.sha256(data).hexdigest()


def test_tuspy_metadata_places_the_file(server: RunningServer, tmp_path: Path):
    folder = new_folder(server, "tuspy")
    path = tmp_path / "photo.jpg"
    path.write_bytes(b"\xff\xd8\xff" + b"j" * 300_000)
    client = tuspy_client(server.base_url, server.token)
    uploader = client.uploader(
        str(path),
        chunk_size=100_000,
        metadata={"filename": "photo.jpg", "relativePath": "photos/2024/photo.jpg",
                  "folder": folder},
    )  # fmt: skip
    uploader.upload()
    stored = stored_at(server, "tuspy", "photos", "2024")["photo.jpg"]
    assert downloaded(server, stored) == path.read_bytes()


@pytest.mark.parametrize("protocol", ["tus-v1", "ietf-draft-05"])
def test_tus_js_relative_path_as_uppy_sends_it(
    server: RunningServer, tus_js: TusJs, tmp_path: Path, protocol: str
):
    path = tmp_path / "song.mp3"
    path.write_bytes(b"ID3" + bytes(range(256)) * 2000)
    # Uppy's relativePath of a dropped folder's file starts with "/".
    result = tus_js.upload(
        path,
        endpoint=f"{server.base_url}/tus/",
        protocol=protocol,
        chunk_size=100_000,
        token=server.token,
        metadata={"relativePath": f"/music-{protocol}/album/song.mp3"},
    )
    assert result.ok, (result.error, result.last_response)
    stored = stored_at(server, f"music-{protocol}", "album")["song.mp3"]
    assert downloaded(server, stored) == path.read_bytes()
    # A plain file: Uppy sends relativePath as the text "null".
    result = tus_js.upload(
        path,
        endpoint=f"{server.base_url}/tus/",
        protocol=protocol,
        token=server.token,
        name=f"plain-{protocol}.mp3",
        metadata={"relativePath": "null"},
    )
    assert result.ok, (result.error, result.last_response)
    assert f"plain-{protocol}.mp3" in stored_at(server)
