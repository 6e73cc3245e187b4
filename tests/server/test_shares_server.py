"""Share links against the real `stowage serve` process, with curl and raw sockets:
what a download that is cut off, resumed or raced counts, and that no URL shape a
client can send reaches a sibling file."""

import hashlib
import os
import shutil
import socket
import subprocess
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest
from tests.support.fixtures import RunningServer
from tests.support.shares import READ_WINDOW, attack, take

pytestmark = pytest.mark.slow

CURL = shutil.which("curl") or "/usr/bin/curl"
MiB = 1024 * 1024


def curl(*args: str) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        [CURL, "--silent", "--show-error", *args], capture_output=True, timeout=60, check=True
    )


def upload(server: RunningServer, path: Path) -> str:
    with server.http() as http:
        r = http.put(f"/uploads/{path.name}", content=path.read_bytes())
    assert r.status_code == 201
    return str(r.json()["files"][0]["id"])


def make_share(server: RunningServer, file_id: str, **fields: object) -> dict:
    with server.http() as http:
        r = http.post(f"/api/files/{file_id}/shares", json=fields)
    assert r.status_code == 201, r.text
    made: dict = r.json()["share"]
    return made


def count(server: RunningServer, share_id: str, expected: int) -> int:
    """The link's count once it reaches `expected`, read again a moment later."""
    with server.http() as http:
        deadline = time.monotonic() + 10
        while True:
            shares = {s["id"]: s for s in http.get("/api/shares").json()["shares"]}
            if shares[share_id]["downloads"] >= expected or time.monotonic() > deadline:
                break
            time.sleep(0.05)
        time.sleep(0.3)
        shares = {s["id"]: s for s in http.get("/api/shares").json()["shares"]}
    return int(shares[share_id]["downloads"])


def cut_off_download(server: RunningServer, path: str, keep_bytes: int) -> int:
    """GET `path`, read about `keep_bytes` of the answer, then hang up."""
    port = int(server.base_url.rsplit(":", 1)[1])
    received = 0
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 64 * 1024)
        sock.sendall(f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n\r\n".encode())
        while received < keep_bytes:
            chunk = sock.recv(65536)
            if not chunk:
                break
            received += len(chunk)
    return received


def test_cut_off_resumed_and_whole_downloads_count_honestly(
    server: RunningServer, tmp_path: Path
) -> None:
    source = tmp_path / "big.bin"
    body = os.urandom(48 * MiB)
    source.write_bytes(body)
    made = make_share(server, upload(server, source))
    url = server.base_url + made["url"] + "/file"

    # Cut off after 2 MiB of 48: never counts.
    assert cut_off_download(server, made["url"] + "/file", 2 * MiB) >= 2 * MiB
    assert count(server, made["id"], 0) == 0

    # curl's own resume: the first part, then `-C -` fetches the rest (one range
    # ending at the last byte): one download.
    part = tmp_path / "part.bin"
    curl("--range", "0-9999999", "-o", str(part), url)
    assert part.stat().st_size == 10_000_000
    assert count(server, made["id"], 0) == 0
    curl("-C", "-", "-o", str(part), url)
    assert hashlib.sha256(part.read_bytes()).digest() == hashlib.sha256(body).digest()
    assert count(server, made["id"], 1) == 1

    # A whole download, HEAD and a 304.
    whole = tmp_path / "whole.bin"
    etag = f'"{hashlib.sha256(body).hexdigest()}"'
    assert curl("-o", "/dev/null", "-w", "%{http_code}", "-I", url).stdout == b"200"
    conditional = ["-H", f"If-None-Match: {etag}"]
    not_modified = curl("-o", "/dev/null", "-w", "%{http_code}", *conditional, url)
    assert not_modified.stdout == b"304"
    curl("-o", str(whole), url)
    assert whole.read_bytes() == body
    assert count(server, made["id"], 2) == 2


def test_the_last_allowed_download_is_reserved_while_it_runs(
    server: RunningServer, tmp_path: Path
) -> None:
    source = tmp_path / "big.bin"
    body = os.urandom(32 * MiB)
    source.write_bytes(body)
    made = make_share(server, upload(server, source), max_downloads=1)
    url = server.base_url + made["url"] + "/file"
    slow = tmp_path / "slow.bin"
    # A slow first download holds the one download the link allows...
    # ~8 s at 4 MB/s: still running when the second comes, however loaded the machine.
    first = threading.Thread(
        target=curl, args=("--limit-rate", "4M", "-o", str(slow), url), daemon=True
    )
    first.start()
    deadline = time.monotonic() + 10
    while not (slow.exists() and slow.stat().st_size > 0) and time.monotonic() < deadline:
        time.sleep(0.05)  # until the first has begun to arrive
    second = curl("-o", "/dev/null", "-w", "%{http_code}", url)
    assert second.stdout == b"409"  # ...so a second, meanwhile, cannot pass the limit
    first.join(30)
    assert slow.read_bytes() == body
    assert count(server, made["id"], 1) == 1
    third = curl("-w", "%{http_code}", url)
    assert third.stdout.endswith(b"410")
    assert b"downloaded as many times as its owner allowed" in third.stdout


def test_no_url_shape_reaches_a_sibling_file(server: RunningServer, tmp_path: Path) -> None:
    shared_path, sibling_path = tmp_path / "shared.txt", tmp_path / "sibling.txt"
    shared_path.write_bytes(b"shared bytes\n")
    sibling_path.write_bytes(b"SIBLING SECRET\n")
    shared, sibling = upload(server, shared_path), upload(server, sibling_path)
    made = make_share(server, shared, password="open sesame")
    link = server.base_url + made["url"]
    # The password as curl sends it; the link answers its own file.
    assert curl("-u", ":open sesame", link + "/file").stdout == b"shared bytes\n"
    for path in (
        f"{link}/../../files/{sibling}",
        f"{link}/file/../../../files/{sibling}",
        f"{link}/%2e%2e/%2e%2e/files/{sibling}",
        f"{link}/..%2f..%2ffiles%2f{sibling}",
        f"{link}/file?id={sibling}",
        f"{link}/{sibling}",
        f"{link}/file/{sibling}",
        f"{server.base_url}/s/{sibling}/file",
        f"{server.base_url}/files/{sibling}",
        f"{server.base_url}/api/files",
    ):
        answer = curl("--path-as-is", "-L", "-u", ":open sesame", "-w", "\n%{http_code}", path)
        assert b"SIBLING SECRET" not in answer.stdout, path
        status = answer.stdout.rsplit(b"\n", 1)[1]
        if status == b"200":
            assert answer.stdout.startswith(b"shared bytes\n"), path
        else:
            assert status in (b"401", b"404"), (path, status)


# A limited link's byte budget -----------------------------------------------------------


@pytest.mark.parametrize("limit", [1, 3])
def test_a_limited_link_never_serves_more_than_its_limit_by_any_mix_of_ranges(
    server: RunningServer, tmp_path: Path, limit: int
) -> None:
    source = tmp_path / "limited.bin"
    size = 4 * MiB
    source.write_bytes(os.urandom(size))
    made = make_share(server, upload(server, source), max_downloads=limit)
    served, statuses, refusals = attack([server.base_url], made["url"] + "/file", size)
    print(f"limit {limit} of {size:,} bytes: {served:,} served; answers {dict(statuses)}")
    # Before: 20 copies of all but the last byte went out, and the count stayed 0.
    assert served <= limit * size + READ_WINDOW, (served, statuses)
    assert set(statuses) <= {200, 206, 409, 410}, statuses
    assert statuses[409] + statuses[410] > 0
    for words in refusals:  # readable, and says what to do
        assert "This link" in words or "download this link allows is under way" in words
    # What left is what counts: whole copies of it.
    assert count(server, made["id"], served // size) == served // size
    # The link ends once its copies have left; another address cannot start it again.
    if served >= limit * size:
        status, body = take(server.base_url, made["url"] + "/file", "127.0.0.9")
        assert status == 410 and b"downloaded as many times as its owner allowed" in body


def test_bots_taking_a_few_bytes_never_count_and_never_cost_the_download(
    server: RunningServer, tmp_path: Path
) -> None:
    source = tmp_path / "doc.bin"
    size = 3 * MiB + 17
    body = os.urandom(size)
    source.write_bytes(body)
    made = make_share(server, upload(server, source), max_downloads=2)
    url, base = made["url"] + "/file", server.base_url
    # A sniffer reads the head, a previewer the tail (where a ZIP or MP4 keeps its
    # index): neither is a download (before, the tail counted as one).
    for ask in ("bytes=0-1023", "bytes=-1024", "bytes=2000-2999"):
        assert take(base, url, "127.0.0.7", ask)[0] == 206
    assert count(server, made["id"], 0) == 0

    # One client's ranges, on parallel connections and overlapping, make up the file:
    # one download.
    quarter = size // 4
    asks = [f"bytes={n * quarter}-{(n + 1) * quarter + 99}" for n in range(3)]
    asks.append(f"bytes={3 * quarter}-")
    with ThreadPoolExecutor(4) as pool:
        parts = list(pool.map(lambda ask: take(base, url, "127.0.0.3", ask), asks))
    assert all(status == 206 for status, _ in parts)
    assembled = b"".join(part[: quarter if n < 3 else None] for n, (_, part) in enumerate(parts))
    assert assembled == body
    assert count(server, made["id"], 1) == 1

    # A whole download: the second, though the bots took bytes too.
    status, whole = take(base, url, "127.0.0.4")
    assert status == 200 and whole == body
    assert count(server, made["id"], 2) == 2
    status, words = take(base, url, "127.0.0.5", "bytes=0-0")
    assert status == 410 and b"downloaded as many times" in words


def test_what_is_left_of_a_budget_is_said_and_can_be_resumed(
    server: RunningServer, tmp_path: Path
) -> None:
    source = tmp_path / "half.bin"
    size = 2 * MiB
    body = os.urandom(size)
    source.write_bytes(body)
    made = make_share(server, upload(server, source), max_downloads=1)
    url, base = made["url"] + "/file", server.base_url
    status, first = take(base, url, "127.0.0.2", f"bytes=0-{size // 2 - 1}")
    assert status == 206
    # A whole GET would pass the budget: refused before its first byte, in words.
    status, words = take(base, url, "127.0.0.3")
    assert status == 410
    assert b"bytes left of what its owner allowed" in words and b"Range" in words
    with httpx.Client(base_url=base) as client:
        page = client.get(made["url"])
    assert page.status_code == 200 and "Less than a whole download is left" in page.text
    # The rest, as a resumed download asks for it, fits: the copy is whole, counted once.
    status, rest = take(base, url, "127.0.0.2", f"bytes={size // 2}-")
    assert status == 206 and first + rest == body
    assert count(server, made["id"], 1) == 1


def test_a_small_file_under_a_limit_goes_out_once_to_parallel_clients(
    server: RunningServer, tmp_path: Path
) -> None:
    source = tmp_path / "secret.txt"
    body = os.urandom(10_000)
    source.write_bytes(body)
    made = make_share(server, upload(server, source), max_downloads=1)
    url, base = made["url"] + "/file", server.base_url
    with ThreadPoolExecutor(8) as pool:
        answers = list(pool.map(lambda n: take(base, url, f"127.0.0.{2 + n % 6}"), range(16)))
    # The spare for sniffers is never a whole copy more: one client gets the file.
    whole = [content for status, content in answers if status == 200]
    assert whole == [body], [status for status, _ in answers]
    assert {status for status, _ in answers} <= {200, 409, 410}
    assert count(server, made["id"], 1) == 1
