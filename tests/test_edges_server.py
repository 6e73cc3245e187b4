"""The small edges against the real `stowage serve` and real curl: DNS rebinding,
`curl -OJ` on a name with a quote, and `curl -T -` with no name."""

import json
import shutil
import subprocess
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from tests.conftest import RunningServer, stored_blobs

from app.config import Config

pytestmark = pytest.mark.slow

CURL = shutil.which("curl") or "/usr/bin/curl"


def curl(*args: str, cwd: Path | None = None, stdin: bytes = b"") -> str:
    done = subprocess.run(
        [CURL, "--silent", "--show-error", *args],
        capture_output=True,
        input=stdin,
        cwd=cwd,
        timeout=30,
        check=True,
    )
    return done.stdout.decode()


def test_a_rebound_name_gets_421_from_the_real_server(server: RunningServer) -> None:
    port = urlsplit(server.base_url).port
    # evil.example resolves to 127.0.0.1, as a rebinding DNS server would make it.
    out = curl(
        *server.curl_auth,
        "--resolve", f"evil.example:{port}:127.0.0.1",
        "-w", "\n%{http_code}",
        f"http://evil.example:{port}/api/files",
    )  # fmt: skip
    body, status = out.rsplit("\n", 1)
    assert status == "421" and "host" in json.loads(body)["error"]
    out = curl(*server.curl_auth, "-w", "\n%{http_code}", f"http://localhost:{port}/api/files")
    assert out.rsplit("\n", 1)[1] == "200"


def test_curl_saves_a_quoted_name_under_a_sane_name(server: RunningServer, tmp_path) -> None:
    with server.http() as http:
        stored = http.put('/uploads/a"b.txt', content=b"quoted").json()["files"][0]
    assert stored["name"] == 'a"b.txt'
    downloads = tmp_path / "downloads"
    downloads.mkdir()
    # curl -OJ takes the ASCII filename= and does not unescape quoted-strings.
    curl(*server.curl_auth, "--fail", "-OJ", server.base_url + stored["url"], cwd=downloads)
    assert [p.name for p in downloads.iterdir()] == ["a_b.txt"]
    assert (downloads / "a_b.txt").read_bytes() == b"quoted"


def test_curl_put_without_a_name_is_told_to_name_the_file(server: RunningServer) -> None:
    url = server.base_url + "/uploads/"
    # Stario itself redirects a trailing slash (308) before any route runs; following
    # it lands on PUT /uploads, the JSON 400.
    out = curl(*server.curl_auth, "-L", "-T", "-", "-w", "\n%{http_code}", url, stdin=b"data")
    body, status = out.rsplit("\n", 1)
    assert status == "400" and json.loads(body)["error"].startswith("name the file")
    out = curl(*server.curl_auth, "-T", "-", "-w", "%{http_code} %{redirect_url}", url, stdin=b"d")
    assert out == f"308 {server.base_url}/uploads"
    config = Config.load({"data_dir": str(server.data_dir)}, environ={})
    assert stored_blobs(config) == []
