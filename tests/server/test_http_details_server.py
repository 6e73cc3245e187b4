"""HTTP details that linting tools flag, on the wire of a real `stowage serve`
(issue 27, item 4): `Vary: Accept-Encoding` on every answer Stario may compress,
`Last-Modified` never later than `Date`, and an ASCII fallback filename that keeps
what it can of a non-Latin name under `curl -OJ`."""

import os
import subprocess
from email.utils import parsedate_to_datetime
from pathlib import Path

import pytest
from tests.support.curl import CURL, head_of
from tests.support.fixtures import RunningServer

pytestmark = pytest.mark.slow


def _raw_head(server: RunningServer, path: str, *args: str) -> tuple[int, dict[str, list[str]]]:
    """Status and every header line as sent (curl keeps repeated fields apart)."""
    done = subprocess.run(
        [CURL, "-sS", "-D", "-", "-o", os.devnull, *args, server.base_url + path],
        capture_output=True,
        timeout=30,
        check=True,
    )
    return head_of(done.stdout)


def _vary(headers: dict[str, list[str]]) -> list[str]:
    return [name.strip().lower() for line in headers.get("vary", []) for name in line.split(",")]


def test_vary_accept_encoding_on_every_answer_that_may_be_compressed(
    server: RunningServer,
) -> None:
    bearer = server.curl_auth
    with server.http() as http:
        stored = http.put("/uploads/v.txt", content=b"v" * 2000).json()["files"][0]
    # Small JSON (never compressed at this size, but the same URL is when it grows),
    # a JSON 404, a page signed out, a page signed in: offered zstd or nothing.
    for path, auth in [
        ("/api/files", bearer),
        ("/api/nothing-here", bearer),
        ("/login", []),
        ("/", bearer),
    ]:
        for offer in ([], ["--compressed"]):
            status, headers = _raw_head(server, path, *auth, *offer)
            assert status < 500, path
            # Exactly one accept-encoding, also where Stario compressed and adds its own.
            assert _vary(headers).count("accept-encoding") == 1, (path, offer, headers)
    status, headers = _raw_head(server, "/", *bearer, "--compressed")
    assert headers.get("content-encoding") == ["zstd"]
    # A download goes out with its own Content-Length and is never compressed: no Vary.
    for offer in ([], ["--compressed"], ["-I"]):
        status, headers = _raw_head(server, stored["url"], *bearer, *offer)
        assert status == 200 and "content-encoding" not in headers
        assert "accept-encoding" not in _vary(headers), headers


def test_last_modified_is_never_later_than_date(server: RunningServer) -> None:
    """Stario's Date is refreshed once a second; before the fix, a file downloaded
    right after its upload was Last-Modified after Date in 116 of 200 rounds here."""
    later = []
    with server.http() as http:
        for round_ in range(150):
            stored = http.put(f"/uploads/lm{round_}.bin", content=os.urandom(64)).json()
            file = stored["files"][0]
            for response in (http.get(file["url"]), http.head(file["url"])):
                assert response.status_code == 200
                modified = response.headers["last-modified"]
                if parsedate_to_datetime(modified) > parsedate_to_datetime(
                    response.headers["date"]
                ):
                    later.append((modified, response.headers["date"]))
                # The value sent is the one conditions are judged by.
                again = http.get(file["url"], headers={"if-modified-since": modified})
                assert again.status_code in (200, 304)
                if again.headers["last-modified"] == modified:
                    assert again.status_code == 304
        # A ZIP of files uploaded this very second.
        ids = [http.put(f"/uploads/z{n}.bin", content=os.urandom(64)).json()["files"][0]["id"]
               for n in range(2)]  # fmt: skip
        archive = http.post("/api/archives", json={"ids": ids}).json()["url"]
        zipped = http.get(archive)
        assert zipped.status_code == 200
        assert parsedate_to_datetime(zipped.headers["last-modified"]) <= parsedate_to_datetime(
            zipped.headers["date"]
        )
    assert later == []


def test_curl_oj_keeps_what_it_can_of_a_non_latin_name(
    server: RunningServer, tmp_path: Path
) -> None:
    names = {
        "日本語.txt": "RiBenYu.txt",
        "Привет мир.txt": "Privet mir.txt",
        "☃.txt": "download.txt",  # a pictograph only: the extension with a plain stem
    }
    downloads = tmp_path / "downloads"
    downloads.mkdir()
    with server.http() as http:
        for name in names:
            stored = http.put("/uploads", params={"name": name}, content=name.encode()).json()
            assert stored["files"][0]["name"] == name
            url = server.base_url + stored["files"][0]["url"]
            subprocess.run([CURL, "-sS", "--fail", *server.curl_auth, "-OJ", url],
                           cwd=downloads, check=True, timeout=30)  # fmt: skip
        # A folder link's ZIP is named after the folder, transliterated the same way.
        folder = http.post("/api/folders", json={"name": "Фото"}).json()["folder"]["id"]
        put = http.put("/uploads/p.txt", content=b"p").json()["files"][0]["id"]
        moved = http.post("/api/files/move", json={"ids": [put], "to": folder})
        assert moved.status_code == 200, moved.text
        link = http.post(f"/api/folders/{folder}/shares", json={}).json()["share"]["url"]
    subprocess.run([CURL, "-sS", "--fail", "-OJ", f"{server.base_url}{link}/zip"],
                   cwd=downloads, check=True, timeout=30)  # fmt: skip
    got = sorted(p.name for p in downloads.iterdir())
    assert got == sorted([*names.values(), "Foto.zip"])
    for name, saved in names.items():
        assert (downloads / saved).read_bytes() == name.encode()
