"""Real resumable-upload clients against the real server (issue 12: item 9, and items 4
and 7 as real clients see them).

- tuspy: sha256 and sha1 checksums (and a mismatch), a resume by URL after the client
  stopped, deferred length, its own retry after the network dropped mid-append.
- tus-js-client 4.3.1 under Node, tus-v1: four parallel partial uploads and a final
  concatenation, a stopped upload resumed by URL, creation-with-upload, deferred length,
  X-HTTP-Method-Override, its own retry after the network dropped mid-append.
- tus-js-client, ietf-draft-05 (interop 6): from a file in chunks (quirk Q1), from a
  buffer, the whole file at once; another account; the quota; a dropped network.
- A file request's link as the only credential, for parallel uploads and a resume.
- Empty files; another account's token (404) and a revoked one (401); the account's quota
  at creation, mid-stream for deferred length, and lowered by the CLI mid-upload; the
  live page, which lists a file only once its upload is complete.

Every upload that succeeds ends with the stored file's sha256 from /api/files and a
download of it compared against the file sent. Interruption tests print the bytes sent
(or received by the server) over the file's size."""

import asyncio
import hashlib
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest
from tests.support.clients import DeferredLengthUploader, Sha256Uploader, TusJs, tuspy_client
from tests.support.fixtures import RunningServer, add_account, start_server
from tusclient.exceptions import TusCommunicationError, TusUploadFailed
from tusclient.uploader import Uploader

from app.config import Config

pytestmark = pytest.mark.slow

MiB = 1024 * 1024
TUS = {"tus-resumable": "1.0.0"}
# The small account's quota: room for a few MiB, not for the files refused below.
SMALL_QUOTA = 5 * MiB


class Accounts:
    """The server every test here shares, and an API token for each of its accounts:
    owner (made by start_server), other, small, shrinking (a quota that a test
    lowers), exact and draft (quotas), and watcher (whose page no other test disturbs)."""

    def __init__(self, server: RunningServer, tokens: dict[str, str]) -> None:
        self.server = server
        self.tokens = {"owner": server.token, **tokens}

    @property
    def endpoint(self) -> str:
        # With the trailing slash, as tus clients are configured.
        return f"{self.server.base_url}/tus/"

    def http(self, who: str = "owner") -> httpx.Client:
        return httpx.Client(
            base_url=self.server.base_url,
            headers={"authorization": f"Bearer {self.tokens[who]}"},
            timeout=60,
        )


@pytest.fixture(scope="module")
def accounts(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Accounts]:
    tmp_path = tmp_path_factory.mktemp("clients")
    data = Config.load({"data_dir": str(tmp_path / "server-data")}, environ={})

    async def made() -> dict[str, str]:
        tokens = {}
        for name in ("other", "watcher"):
            tokens[name] = (await add_account(data, name))[1]
        quotas = {"small": SMALL_QUOTA, "shrinking": 20 * MiB, "exact": 5 * MiB, "draft": 5 * MiB}
        for name, quota in quotas.items():
            account = await add_account(data, name, quota_kind="bytes", quota_bytes=quota)
            tokens[name] = account[1]
        return tokens

    tokens = asyncio.run(made())
    # 127.0.0.1 on any port: CuttingProxy relays the clients' Host header unchanged.
    for server in start_server(tmp_path, "--allowed-hosts", "127.0.0.1"):
        yield Accounts(server, tokens)


def random_file(path: Path, size: int) -> str:
    """`size` random bytes at `path`; their sha256."""
    data = os.urandom(size)
    path.write_bytes(data)
    return hashlib.sha256(data).hexdigest()


def assert_stored(accounts: Accounts, name: str, sha256: str, size: int, who: str = "owner"):
    """The account's file `name` is listed with this sha256 and downloads byte-identical;
    returns its /api/files entry."""
    with accounts.http(who) as http:
        files = [f for f in http.get("/api/files").json()["files"] if f["name"] == name]
        assert len(files) == 1, files
        entry = files[0]
        assert (entry["sha256"], entry["size"]) == (sha256, size)
        digest = hashlib.sha256()
        with http.stream("GET", f"/files/{entry['id']}") as download:
            assert download.status_code == 200
            for block in download.iter_bytes():
                digest.update(block)
        assert digest.hexdigest() == sha256
    return entry


def head(accounts: Accounts, url: str, who: str = "owner") -> httpx.Response:
    with accounts.http(who) as http:
        return http.head(url, headers=TUS)


def resumable_bytes(accounts: Accounts, url: str) -> int | None:
    """The size of the upload's file under uploads/.resumable (None: no such file)."""
    path = accounts.server.data_dir / "uploads" / ".resumable" / url.rstrip("/").rsplit("/", 1)[1]
    return path.stat().st_size if path.exists() else None


def resumable_files(accounts: Accounts) -> set[str]:
    root = accounts.server.data_dir / "uploads" / ".resumable"
    return {p.name for p in root.iterdir()} if root.exists() else set()


def patch_part_of(
    accounts: Accounts, url: str, who: str, *, offset: int, body: bytes, content_length: int
) -> bytes:
    """A PATCH that announces `content_length` bytes, sends only `body`, and waits
    (at most 10 s) for the server's answer, as a client whose sending stalled. Stario
    hands a handler 256 KiB at a time: a body that stops within one of those pieces
    is never seen by the handler until the rest arrives."""
    host, port = accounts.server.base_url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        request = (
            f"PATCH {urlsplit(url).path} HTTP/1.1\r\nHost: {host}:{port}\r\n"
            f"Authorization: Bearer {accounts.tokens[who]}\r\nTus-Resumable: 1.0.0\r\n"
            f"Content-Type: application/offset+octet-stream\r\nUpload-Offset: {offset}\r\n"
            f"Content-Length: {content_length}\r\n\r\n"
        )
        sock.sendall(request.encode() + body)
        answer = b""
        try:
            while chunk := sock.recv(65536):  # the server closes after a refusal
                answer += chunk
        except TimeoutError:
            pass
        return answer


class Counting:
    """Counts the bytes a tuspy uploader puts in its PATCH bodies (retries included)."""

    bytes_sent = 0

    def _do_request(self) -> None:
        self.bytes_sent += self.get_request_length()  # type: ignore[attr-defined]
        super()._do_request()  # type: ignore[misc]


class CountingUploader(Counting, Uploader):
    pass


class CuttingProxy:
    """A TCP relay on 127.0.0.1 in front of the server that cuts the connection (both
    ways, at once) the first time `cut_at` bytes of requests have gone through it: a
    network that drops in the middle of an append. It counts every byte of requests the
    server received, headers included."""

    def __init__(self, target: str, cut_at: int) -> None:
        host, port = target.removeprefix("http://").split(":")
        self.target = (host, int(port))
        self.cut_at = cut_at
        self.forwarded = 0
        self.cuts = 0
        self.lock = threading.Lock()
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.base_url = f"http://127.0.0.1:{self.listener.getsockname()[1]}"
        self.threads: list[threading.Thread] = []
        self._spawn(self._accept)

    def _spawn(self, target, *args) -> None:
        thread = threading.Thread(target=target, args=args, daemon=True)
        thread.start()
        self.threads.append(thread)

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return  # closed
            upstream = socket.create_connection(self.target)
            self._spawn(self._pump, client, upstream, True)
            self._spawn(self._pump, upstream, client, False)

    def _pump(self, source: socket.socket, sink: socket.socket, request: bool) -> None:
        try:
            while data := source.recv(65536):
                if request:
                    with self.lock:
                        room = self.cut_at - self.forwarded if self.cuts == 0 else len(data)
                        data = data[: max(0, room)]
                        self.forwarded += len(data)
                        cut = self.cuts == 0 and self.forwarded >= self.cut_at
                        if cut:
                            self.cuts += 1
                    sink.sendall(data)
                    if cut:
                        break
                else:
                    sink.sendall(data)
        except OSError:
            pass
        for side in (source, sink):
            try:
                side.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            side.close()

    def close(self) -> None:
        self.listener.close()


# ---- tuspy ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "uploader, algorithm", [(Sha256Uploader, "sha256"), (Uploader, "sha1")], ids=["sha256", "sha1"]
)
def test_tuspy_uploads_with_checksums(accounts: Accounts, tmp_path: Path, uploader, algorithm):
    size = 7 * MiB + 12345
    name = f"checked-{algorithm}.bin"
    path = tmp_path / name
    sha256 = random_file(path, size)
    tus = tuspy_client(accounts.server.base_url, accounts.tokens["owner"])
    up = uploader(
        str(path),
        client=tus,
        chunk_size=2 * MiB,
        upload_checksum=True,
        retries=0,
        metadata={"filename": name, "filetype": "application/octet-stream"},
    )
    assert up.checksum_algorithm_name == algorithm
    up.upload()
    assert up.offset == size
    assert_stored(accounts, name, sha256, size)


class WrongChecksumUploader(Uploader):
    """Sends sha256 checksums of other bytes than the chunk's, as a corrupting proxy
    would make them."""

    CHECKSUM_ALGORITHM_PAIR = ("sha256", lambda chunk: hashlib.sha256(b"not " + chunk))


def test_tuspy_checksum_mismatch_keeps_nothing_of_that_append(accounts: Accounts, tmp_path):
    size = 3 * MiB
    path = tmp_path / "corrupt.bin"
    random_file(path, size)
    tus = tuspy_client(accounts.server.base_url, accounts.tokens["owner"])
    good = tus.uploader(
        str(path),
        chunk_size=MiB,
        upload_checksum=True,
        retries=0,
        metadata={"filename": "corrupt.bin"},
    )
    good.upload(stop_at=MiB)
    bad = WrongChecksumUploader(
        str(path), url=good.url, chunk_size=MiB, upload_checksum=True, retries=0, client=tus
    )
    with pytest.raises(TusUploadFailed) as failed:
        bad.upload()
    assert failed.value.status_code == 460
    assert head(accounts, good.url).headers["upload-offset"] == str(MiB)
    assert resumable_bytes(accounts, good.url) == MiB


def test_tuspy_resumes_after_the_client_stopped(accounts: Accounts, tmp_path: Path):
    size = 12 * MiB + 777
    stop_at = 5 * MiB + 4321  # not on a chunk boundary
    path = tmp_path / "resumed-tuspy.bin"
    sha256 = random_file(path, size)
    tus = tuspy_client(accounts.server.base_url, accounts.tokens["owner"])
    first = CountingUploader(
        str(path), chunk_size=2 * MiB, retries=0, metadata={"filename": path.name}, client=tus
    )
    first.upload(stop_at=stop_at)
    assert first.offset == stop_at
    with accounts.http() as http:
        assert path.name not in {f["name"] for f in http.get("/api/files").json()["files"]}

    # A new process would know only the URL: the constructor asks the server (HEAD).
    second = CountingUploader(str(path), client=tus, url=first.url, chunk_size=2 * MiB, retries=0)
    assert second.offset == stop_at
    second.upload()
    sent = first.bytes_sent + second.bytes_sent
    print(f"tuspy stopped at {stop_at} of {size} and resumed: sent {sent / size:.3f}x the file")
    assert sent < 1.5 * size
    assert_stored(accounts, path.name, sha256, size)
    assert resumable_bytes(accounts, first.url) is None


def test_tuspy_deferred_length(accounts: Accounts, tmp_path: Path):
    size = 6 * MiB + 99
    path = tmp_path / "deferred.bin"
    sha256 = random_file(path, size)
    tus = tuspy_client(accounts.server.base_url, accounts.tokens["owner"])
    up = DeferredLengthUploader(
        str(path), chunk_size=2 * MiB, retries=0, metadata={"filename": path.name}, client=tus
    )
    up.upload(stop_at=2 * MiB)
    midway = head(accounts, up.url)
    assert midway.headers.get("upload-defer-length") == "1"
    assert "upload-length" not in midway.headers
    up.upload()
    assert_stored(accounts, path.name, sha256, size)


# ---- tus-js-client ----------------------------------------------------------------


def test_tus_js_parallel_uploads_concatenate(accounts: Accounts, tus_js: TusJs, tmp_path: Path):
    size = 10 * MiB + 3
    path = tmp_path / "parallel.bin"
    sha256 = random_file(path, size)
    result = tus_js.upload(
        path,
        endpoint=accounts.endpoint,
        parallel=4,
        token=accounts.tokens["owner"],
        filetype="text/csv",
    )
    assert result.ok, (result.error, result.last_response)
    posts = [r for r in result.requests if r["method"] == "POST"]
    concat = [p["headers"].get("Upload-Concat", "").split(";")[0] for p in posts]
    assert concat == ["partial"] * 4 + ["final"]
    assert all(p["status"] == 201 for p in posts)
    assert sum(r["method"] == "PATCH" for r in result.requests) == 4
    # The final upload is the file, with the name and type of its metadata; the
    # partial uploads are no files of their own.
    entry = assert_stored(accounts, "parallel.bin", sha256, size)
    assert entry["declared_mime"] == "text/csv"
    with accounts.http() as http:
        names = [f["name"] for f in http.get("/api/files").json()["files"]]
    assert [n for n in names if n.startswith("parallel")] == ["parallel.bin"]
    assert "upload" not in names


def test_tus_js_with_method_override(accounts: Accounts, tus_js: TusJs, tmp_path: Path):
    """Behind a proxy that passes only GET and POST: `overridePatchMethod: true`."""
    size = 3 * MiB + 5
    path = tmp_path / "overridden.bin"
    sha256 = random_file(path, size)
    result = tus_js.upload(
        path,
        endpoint=accounts.endpoint,
        chunk_size=MiB,
        token=accounts.tokens["owner"],
        override_patch=True,
    )
    assert result.ok, (result.error, result.last_response)
    appends = [r for r in result.requests if r["headers"].get("X-HTTP-Method-Override")]
    assert [(r["method"], r["status"]) for r in appends] == [("POST", 204)] * 4
    assert "PATCH" not in result.methods()
    assert_stored(accounts, path.name, sha256, size)


@pytest.mark.parametrize("whole", [False, True], ids=["chunked", "one-request"])
def test_tus_js_creation_with_upload(accounts: Accounts, tus_js: TusJs, tmp_path, whole):
    size = 3 * MiB + 7
    path = tmp_path / f"with-creation-{whole}.bin"
    sha256 = random_file(path, size)
    result = tus_js.upload(
        path,
        endpoint=accounts.endpoint,
        chunk_size=None if whole else MiB,
        token=accounts.tokens["owner"],
        data_during_creation=True,
    )
    assert result.ok, (result.error, result.last_response)
    post = result.requests[0]
    assert (post["method"], post["status"]) == ("POST", 201)
    assert post["headers"]["Content-Type"] == "application/offset+octet-stream"
    assert result.methods().count("PATCH") == (0 if whole else 3)
    assert_stored(accounts, path.name, sha256, size)


def test_tus_js_deferred_length(accounts: Accounts, tus_js: TusJs, tmp_path: Path):
    size = 3 * MiB + 9
    path = tmp_path / "js-deferred.bin"
    sha256 = random_file(path, size)
    result = tus_js.upload(
        path,
        endpoint=accounts.endpoint,
        source="buffer",
        chunk_size=MiB,
        token=accounts.tokens["owner"],
        defer_length=True,
    )
    assert result.ok, (result.error, result.last_response)
    assert result.requests[0]["headers"].get("Upload-Defer-Length") == "1"
    patches = [r for r in result.requests if r["method"] == "PATCH"]
    # The length is told once, with the last bytes.
    assert [r["headers"].get("Upload-Length") for r in patches] == [None] * 3 + [str(size)]
    assert_stored(accounts, path.name, sha256, size)


def test_tus_js_resumes_a_stopped_upload(accounts: Accounts, tus_js: TusJs, tmp_path: Path):
    size = 9 * MiB + 1
    path = tmp_path / "resumed-js.bin"
    sha256 = random_file(path, size)
    token = accounts.tokens["owner"]
    first = tus_js.upload(
        path, endpoint=accounts.endpoint, chunk_size=MiB, token=token, stop_after=4 * MiB
    )
    assert first.stopped and not first.ok, first.error
    assert first.url is not None and first.url.startswith(accounts.endpoint)
    assert first.bytes_accepted == 4 * MiB
    durable = int(head(accounts, first.url).headers["upload-offset"])
    assert durable >= first.bytes_accepted

    second = tus_js.upload(path, upload_url=first.url, chunk_size=MiB, token=token)
    assert second.ok, (second.error, second.last_response)
    assert second.methods()[0] == "HEAD"
    resumed_at = int(second.requests[1]["headers"]["Upload-Offset"])
    assert resumed_at == durable
    sent = first.bytes_sent + (second.bytes_sent - resumed_at)
    print(
        f"tus-js-client stopped after {first.bytes_accepted} of {size} and resumed: "
        f"sent {sent / size:.3f}x the file"
    )
    assert sent < 1.5 * size
    assert_stored(accounts, path.name, sha256, size)


def test_empty_files_need_no_patch(accounts: Accounts, tus_js: TusJs, tmp_path: Path):
    """Neither client sends a PATCH for an empty file: creation must store it."""
    empty_sha256 = hashlib.sha256(b"").hexdigest()
    js_file = tmp_path / "empty-js.txt"
    js_file.write_bytes(b"")
    result = tus_js.upload(js_file, endpoint=accounts.endpoint, token=accounts.tokens["owner"])
    assert result.ok, (result.error, result.last_response)
    assert result.methods() == ["POST"]
    py_file = tmp_path / "empty-py.txt"
    py_file.write_bytes(b"")
    tus = tuspy_client(accounts.server.base_url, accounts.tokens["owner"])
    tus.uploader(str(py_file), metadata={"filename": py_file.name}).upload()
    assert_stored(accounts, js_file.name, empty_sha256, 0)
    assert_stored(accounts, py_file.name, empty_sha256, 0)


# ---- ownership and tokens ---------------------------------------------------------


def test_another_account_or_a_revoked_token_cannot_touch_an_upload(
    accounts: Accounts, tus_js: TusJs, tmp_path: Path
):
    size = 4 * MiB
    path = tmp_path / "mine.bin"
    sha256 = random_file(path, size)
    with accounts.http() as http:
        made = http.post("/api/tokens", json={"label": "soon revoked"}).json()
    tus = tuspy_client(accounts.server.base_url, made["secret"])
    up = tus.uploader(str(path), chunk_size=MiB, retries=0, metadata={"filename": path.name})
    up.upload(stop_at=MiB)
    url = up.url
    chunk = path.read_bytes()[MiB : 2 * MiB]
    patch_headers = {
        **TUS,
        "content-type": "application/offset+octet-stream",
        "upload-offset": str(MiB),
    }

    # Another account: as if the upload did not exist, to tuspy, tus-js-client and PATCH.
    other = tuspy_client(accounts.server.base_url, accounts.tokens["other"])
    with pytest.raises(TusCommunicationError) as refused:
        other.uploader(str(path), url=url, chunk_size=MiB)
    assert refused.value.status_code == 404
    js = tus_js.upload(path, upload_url=url, token=accounts.tokens["other"], retry_delays=[])
    assert not js.ok and js.methods() == ["HEAD"] and js.requests[0]["status"] == 404
    with accounts.http("other") as http:
        assert http.head(url, headers=TUS).status_code == 404
        answer = http.patch(url, content=chunk, headers=patch_headers)
        assert answer.status_code == 404, answer.text
        assert http.delete(url, headers=TUS).status_code == 404
    assert head(accounts, url).headers["upload-offset"] == str(MiB)

    # The token that made it, revoked: 401 on HEAD and PATCH.
    with accounts.http() as http:
        assert http.delete(f"/api/tokens/{made['token']['id']}").status_code == 204
    revoked = {"authorization": f"Bearer {made['secret']}"}
    with httpx.Client(base_url=accounts.server.base_url, headers=revoked, timeout=60) as http:
        assert http.head(url, headers=TUS).status_code == 401
        answer = http.patch(url, content=chunk, headers=patch_headers)
        assert answer.status_code == 401, answer.text
    with pytest.raises(TusCommunicationError) as unauthorised:
        tus.uploader(str(path), url=url, chunk_size=MiB)
    assert unauthorised.value.status_code == 401

    # Nothing of theirs landed: the account's other token finishes it.
    assert resumable_bytes(accounts, url) == MiB
    owner = tuspy_client(accounts.server.base_url, accounts.tokens["owner"])
    owner.uploader(str(path), url=url, chunk_size=MiB, retries=0).upload()
    assert_stored(accounts, path.name, sha256, size)


def test_another_account_cannot_concatenate_my_partial_uploads(accounts: Accounts):
    parts = []
    with accounts.http() as http:
        for piece in (b"abc", b"def"):
            made = http.post(
                "/tus/", headers={**TUS, "upload-concat": "partial", "upload-length": "3"}
            )
            assert made.status_code == 201, made.text
            appended = http.patch(
                made.headers["location"],
                content=piece,
                headers={**TUS, "content-type": "application/offset+octet-stream",
                         "upload-offset": "0"},
            )  # fmt: skip
            assert appended.status_code == 204, appended.text
            parts.append(accounts.server.base_url + made.headers["location"])
    final = {**TUS, "upload-concat": "final;" + " ".join(parts)}
    with accounts.http("other") as http:
        assert http.post("/tus/", headers=final).status_code == 404
        assert http.get("/api/files").json()["files"] == []
    with accounts.http() as http:
        done = http.post("/tus/", headers={**final, "upload-metadata": "filename YWJjZGVm"})
        assert done.status_code == 201, done.text
    assert_stored(accounts, "abcdef", hashlib.sha256(b"abcdef").hexdigest(), 6)


# ---- quota ------------------------------------------------------------------------


def test_quota_refuses_a_known_length_at_creation(
    accounts: Accounts, tus_js: TusJs, tmp_path: Path
):
    path = tmp_path / "too-big.bin"
    random_file(path, SMALL_QUOTA + 1)
    before = resumable_files(accounts)
    js = tus_js.upload(
        path, endpoint=accounts.endpoint, token=accounts.tokens["small"], chunk_size=MiB
    )
    assert not js.ok and js.methods() == ["POST"]
    assert js.last_response is not None and js.last_response["status"] == 413
    assert "quota" in js.last_response["body"]

    tus = tuspy_client(accounts.server.base_url, accounts.tokens["small"])
    with pytest.raises(TusCommunicationError) as refused:
        tus.uploader(str(path), chunk_size=MiB).upload()
    assert refused.value.status_code == 413
    assert resumable_files(accounts) == before
    with accounts.http("small") as http:
        assert http.get("/api/files").json()["files"] == []


def test_quota_stops_a_deferred_length_upload_mid_stream(accounts: Accounts, tmp_path: Path):
    size = 8 * MiB
    path = tmp_path / "deferred-over.bin"
    random_file(path, size)
    tus = tuspy_client(accounts.server.base_url, accounts.tokens["small"])
    # 3 MiB fit the 5 MiB quota; the second append passes it while its bytes arrive
    # (the length is still unknown: it comes with the last append).
    up = DeferredLengthUploader(
        str(path), chunk_size=3 * MiB, retries=0, metadata={"filename": path.name}, client=tus
    )
    up.upload(stop_at=3 * MiB)
    # The refusal comes while the bytes arrive: an append that stops sending soon
    # after passing the quota (at 5.5 of its 6 MiB) is answered at once.
    answer = patch_part_of(
        accounts,
        up.url,
        "small",
        offset=3 * MiB,
        body=path.read_bytes()[3 * MiB : 5 * MiB + 512 * 1024],
        content_length=3 * MiB,
    )
    assert answer.startswith(b"HTTP/1.1 413"), answer[:200]
    assert b"quota" in answer
    assert resumable_bytes(accounts, up.url) == 3 * MiB
    with pytest.raises((TusUploadFailed, TusCommunicationError)) as refused:
        up.upload()
    print(f"mid-stream refusal seen by tuspy: {refused.value!r}")
    if isinstance(refused.value, TusUploadFailed):
        assert refused.value.status_code == 413
        assert b"quota" in (refused.value.response_content or b"")
    # The refused append left nothing: the file holds the durable offset's bytes.
    assert head(accounts, up.url, "small").headers["upload-offset"] == str(3 * MiB)
    assert resumable_bytes(accounts, up.url) == 3 * MiB
    with accounts.http("small") as http:
        assert http.get("/api/files").json()["files"] == []
        # Cancelling it gives its reservation back: a file of the whole quota fits.
        assert http.delete(up.url, headers=TUS).status_code == 204
    assert resumable_bytes(accounts, up.url) is None
    fits = tmp_path / "fits.bin"
    sha256 = random_file(fits, SMALL_QUOTA)
    tus.uploader(
        str(fits), chunk_size=2 * MiB, retries=0, metadata={"filename": fits.name}
    ).upload()
    assert_stored(accounts, fits.name, sha256, SMALL_QUOTA, who="small")


# ---- the live page ----------------------------------------------------------------


class LiveStream:
    """The page's /live stream for an account, read line by line in a thread."""

    def __init__(self, accounts: Accounts, who: str) -> None:
        self.http = httpx.Client(
            base_url=accounts.server.base_url,
            timeout=30,
            headers={
                "authorization": f"Bearer {accounts.tokens[who]}",
                "accept-encoding": "identity",
            },
        )
        self.response = self.http.send(self.http.build_request("GET", "/live"), stream=True)
        assert self.response.status_code == 200
        self.lines: list[str] = []
        self.thread = threading.Thread(target=self._read, daemon=True)
        self.thread.start()

    def _read(self) -> None:
        try:
            for line in self.response.iter_lines():
                self.lines.append(line)
        except (httpx.HTTPError, ValueError, AttributeError):
            pass  # closed by close()

    def count(self, predicate) -> int:
        return sum(1 for line in list(self.lines) if predicate(line))

    def wait_for(self, predicate, at_least: int = 1, timeout: float = 10) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.count(predicate) >= at_least:
                return True
            time.sleep(0.05)
        return False

    def close(self) -> None:
        self.response.close()
        self.http.close()
        self.thread.join(5)


def test_the_live_page_lists_a_tus_upload_only_once_complete(accounts: Accounts, tmp_path):
    size = 6 * MiB
    path = tmp_path / "watched.bin"
    sha256 = random_file(path, size)

    def listed(line: str) -> bool:
        return 'id="files"' in line and "watched.bin" in line

    def progress(line: str) -> bool:
        return 'id="progress"' in line

    live = LiveStream(accounts, "watcher")
    try:
        assert live.wait_for(progress)
        painted = live.count(progress)
        tus = tuspy_client(accounts.server.base_url, accounts.tokens["watcher"])
        up = tus.uploader(
            str(path), chunk_size=2 * MiB, retries=0, metadata={"filename": path.name}
        )
        up.upload(stop_at=2 * MiB)
        # The first PATCH is heard (its progress repaints), and the list stays as it was.
        assert live.wait_for(progress, at_least=painted + 1)
        time.sleep(0.5)
        assert live.count(listed) == 0
        up.upload()
        assert live.wait_for(listed), live.lines[-5:]
    finally:
        live.close()
    assert_stored(accounts, path.name, sha256, size, who="watcher")


def test_parallel_partials_hand_their_reservation_to_the_file(
    accounts: Accounts, tus_js: TusJs, tmp_path: Path
):
    """Four partial uploads hold the quota from their creation; the concatenated file
    takes it over and nothing stays held: the rest of the quota, to the byte, still
    takes a file, and one byte more does not."""
    parallel = tmp_path / "four-parts.bin"
    sha256 = random_file(parallel, 4 * MiB + 2)
    result = tus_js.upload(
        parallel, endpoint=accounts.endpoint, parallel=4, token=accounts.tokens["exact"]
    )
    assert result.ok, (result.error, result.last_response)
    assert_stored(accounts, parallel.name, sha256, 4 * MiB + 2, who="exact")
    tus = tuspy_client(accounts.server.base_url, accounts.tokens["exact"])
    over = tmp_path / "one-byte-over.bin"
    random_file(over, MiB - 1)
    with pytest.raises(TusCommunicationError) as refused:
        tus.uploader(str(over), metadata={"filename": over.name}).upload()
    assert refused.value.status_code == 413
    rest = tmp_path / "the-rest.bin"
    rest_sha256 = random_file(rest, MiB - 2)
    tus.uploader(str(rest), chunk_size=MiB, metadata={"filename": rest.name}).upload()
    assert_stored(accounts, rest.name, rest_sha256, MiB - 2, who="exact")


def test_quota_lowered_mid_upload_is_checked_at_completion(accounts: Accounts, tmp_path: Path):
    """`stowage users quota` run while the server runs and a tuspy upload is half done:
    the append that completes the upload is refused, and the upload and its bytes go."""
    size = 8 * MiB
    path = tmp_path / "shrunk.bin"
    random_file(path, size)
    tus = tuspy_client(accounts.server.base_url, accounts.tokens["shrinking"])
    up = tus.uploader(str(path), chunk_size=2 * MiB, retries=0, metadata={"filename": path.name})
    up.upload(stop_at=4 * MiB)
    lowered = subprocess.run(
        [sys.executable, "-m", "app.cli", "users", "quota", "--data-dir",
         str(accounts.server.data_dir), "shrinking", "2MiB"],
        capture_output=True, text=True, timeout=30,
    )  # fmt: skip
    assert lowered.returncode == 0, lowered.stderr
    with pytest.raises(TusUploadFailed) as refused:
        up.upload()
    assert refused.value.status_code == 413
    assert b"quota" in refused.value.response_content
    assert head(accounts, up.url, "shrinking").status_code == 404
    assert resumable_bytes(accounts, up.url) is None
    with accounts.http("shrinking") as http:
        assert http.get("/api/files").json()["files"] == []


# ---- a network that drops mid-append ----------------------------------------------


def test_tus_js_retries_after_the_network_drops(accounts: Accounts, tus_js: TusJs, tmp_path):
    """One PATCH for the whole file, cut 40% in: tus-js-client's own retry asks the
    offset (HEAD) and sends only the rest. The server keeps what arrived."""
    size = 16 * MiB + 11
    path = tmp_path / "dropped-js.bin"
    sha256 = random_file(path, size)
    proxy = CuttingProxy(accounts.server.base_url, cut_at=size * 4 // 10)
    try:
        result = tus_js.upload(
            path, endpoint=proxy.base_url + "/tus/", token=accounts.tokens["owner"]
        )
    finally:
        proxy.close()
    assert result.ok, (result.error, result.last_response)
    assert proxy.cuts == 1
    assert result.methods() == ["POST", "PATCH", "HEAD", "PATCH"]
    resumed_at = int(result.requests[3]["headers"]["Upload-Offset"])
    assert 0 < resumed_at <= size * 4 // 10
    print(
        f"tus-js-client, network cut at 40%: resumed at {resumed_at / size:.0%}, the server "
        f"received {proxy.forwarded / size:.3f}x the file's bytes"
    )
    assert proxy.forwarded < 1.5 * size
    assert_stored(accounts, path.name, sha256, size)


def test_tuspy_retries_after_the_network_drops(accounts: Accounts, tmp_path: Path):
    size = 12 * MiB + 5
    path = tmp_path / "dropped-py.bin"
    sha256 = random_file(path, size)
    proxy = CuttingProxy(accounts.server.base_url, cut_at=size // 2)
    try:
        tus = tuspy_client(proxy.base_url, accounts.tokens["owner"])
        up = CountingUploader(
            str(path), client=tus, retries=2, retry_delay=0, metadata={"filename": path.name}
        )
        up.upload()
    finally:
        proxy.close()
    assert proxy.cuts == 1
    print(
        f"tuspy, network cut at 50%: the server received {proxy.forwarded / size:.3f}x the "
        f"file's bytes"
    )
    assert proxy.forwarded < 1.5 * size
    assert_stored(accounts, path.name, sha256, size)


# ---- tus-js-client, protocol ietf-draft-05 (interop version 6) --------------------
# tests/server/test_ietf_tus_js.py has the small chunked uploads and a resume; these add the
# client's whole-file mode, a download of each file, other accounts, the quota and a
# dropped network.

IETF = {"protocol": "ietf-draft-05"}


@pytest.mark.parametrize(
    "source, chunk_size",
    [("file", MiB), ("buffer", MiB), ("file", None)],
    ids=["file-chunked", "buffer-chunked", "file-whole"],
)
def test_tus_js_ietf_draft_05(
    accounts: Accounts, tus_js: TusJs, tmp_path: Path, source: str, chunk_size: int | None
):
    """`file-chunked` is quirk Q1 (shared notes): tus-js-client's fs.ReadStream source
    sends `Upload-Complete: ?0` on its last append too, so the upload completes when its
    offset reaches the length it announced."""
    size = 5 * MiB + 17
    path = tmp_path / f"ietf-{source}-{chunk_size}.bin"
    sha256 = random_file(path, size)
    result = tus_js.upload(
        path,
        endpoint=accounts.endpoint,
        source=source,
        chunk_size=chunk_size,
        token=accounts.tokens["owner"],
        retry_delays=[],
        **IETF,
    )
    assert result.ok, (result.error, result.last_response)
    assert all(r["headers"].get("Upload-Draft-Interop-Version") == "6" for r in result.requests)
    assert not any("Tus-Resumable" in r["headers"] for r in result.requests)
    patches = [r for r in result.requests if r["method"] == "PATCH"]
    assert all(r["headers"]["Content-Type"] == "application/partial-upload" for r in patches)
    assert len(patches) == (1 if chunk_size is None else 6)
    last = "?0" if source == "file" and chunk_size is not None else "?1"
    assert patches[-1]["headers"]["Upload-Complete"] == last
    assert_stored(accounts, path.name, sha256, size)


def test_tus_js_ietf_draft_05_upload_is_the_accounts_own(
    accounts: Accounts, tus_js: TusJs, tmp_path: Path
):
    size = 4 * MiB + 3
    path = tmp_path / "ietf-mine.bin"
    sha256 = random_file(path, size)
    common = {**IETF, "source": "buffer", "chunk_size": MiB}
    first = tus_js.upload(
        path,
        endpoint=accounts.endpoint,
        token=accounts.tokens["owner"],
        stop_after=2 * MiB,
        **common,
    )
    assert first.stopped and first.url is not None, first.error
    stranger = tus_js.upload(
        path, upload_url=first.url, token=accounts.tokens["other"], retry_delays=[], **common
    )
    assert not stranger.ok and stranger.methods() == ["HEAD"]
    assert stranger.requests[0]["status"] == 404
    draft = {"upload-draft-interop-version": "6"}
    with accounts.http("other") as http:
        assert http.head(first.url, headers=draft).status_code == 404
        answer = http.patch(
            first.url,
            content=b"x" * 1000,
            headers={**draft, "content-type": "application/partial-upload",
                     "upload-offset": str(2 * MiB), "upload-complete": "?0"},
        )  # fmt: skip
        assert answer.status_code == 404, answer.text
    second = tus_js.upload(path, upload_url=first.url, token=accounts.tokens["owner"], **common)
    assert second.ok, (second.error, second.last_response)
    assert second.requests[1]["headers"]["Upload-Offset"] == str(2 * MiB)
    assert_stored(accounts, path.name, sha256, size)


def test_tus_js_ietf_draft_05_quota_at_creation(accounts: Accounts, tus_js: TusJs, tmp_path):
    path = tmp_path / "ietf-too-big.bin"
    random_file(path, SMALL_QUOTA + 1)
    before = resumable_files(accounts)
    result = tus_js.upload(
        path, endpoint=accounts.endpoint, token=accounts.tokens["small"], chunk_size=MiB, **IETF
    )
    assert not result.ok and result.methods() == ["POST"]
    assert result.last_response is not None and result.last_response["status"] == 413
    assert "quota" in result.last_response["body"]
    assert resumable_files(accounts) == before


@pytest.mark.parametrize("interop", ["6", "8"])
def test_ietf_quota_stops_an_upload_of_unknown_length_mid_stream(
    accounts: Accounts, tmp_path: Path, interop: str
):
    """The draft's creation without a length: the quota is counted as bytes arrive, the
    refused append keeps nothing, and the answer tells the durable offset."""
    draft = {"upload-draft-interop-version": interop}
    append = {**draft, "content-type": "application/partial-upload", "upload-complete": "?0"}
    with accounts.http("draft") as http:
        made = http.post("/tus/", headers={**draft, "upload-complete": "?0"})
        assert made.status_code == 201, made.text
        url = made.headers["location"]
        first = http.patch(
            url, content=os.urandom(3 * MiB), headers={**append, "upload-offset": "0"}
        )
        assert first.status_code in (201, 204), first.text
        over = http.patch(
            url, content=os.urandom(3 * MiB), headers={**append, "upload-offset": str(3 * MiB)}
        )
        assert over.status_code == 413, over.text
        assert "quota" in over.json()["error"]
        assert over.headers["upload-offset"] == str(3 * MiB)
        assert resumable_bytes(accounts, url) == 3 * MiB
        assert http.head(url, headers=draft).headers["upload-offset"] == str(3 * MiB)
        assert http.delete(url, headers=draft).status_code == 204
    assert resumable_bytes(accounts, url) is None


def test_tus_js_ietf_draft_05_retries_after_the_network_drops(
    accounts: Accounts, tus_js: TusJs, tmp_path: Path
):
    size = 16 * MiB + 13
    path = tmp_path / "ietf-dropped.bin"
    sha256 = random_file(path, size)
    proxy = CuttingProxy(accounts.server.base_url, cut_at=size // 2)
    try:
        result = tus_js.upload(
            path,
            endpoint=proxy.base_url + "/tus/",
            source="buffer",
            token=accounts.tokens["owner"],
            **IETF,
        )
    finally:
        proxy.close()
    assert result.ok, (result.error, result.last_response)
    assert proxy.cuts == 1
    assert result.methods() == ["POST", "PATCH", "HEAD", "PATCH"]
    print(
        f"tus-js-client ietf-draft-05, network cut at 50%: the server received "
        f"{proxy.forwarded / size:.3f}x the file's bytes"
    )
    assert proxy.forwarded < 1.5 * size
    assert_stored(accounts, path.name, sha256, size)


# ---- through a file request's link ------------------------------------------------


def test_tus_js_through_a_file_request_link(accounts: Accounts, tus_js: TusJs, tmp_path):
    """No account: the link is the credential. Four parallel partials and their
    concatenation go through the link, and a stopped upload resumes through it; the
    files are the link owner's, and an upload made through the link is nobody else's."""
    with accounts.http("watcher") as http:
        made = http.post("/api/requests", json={"label": "send me the footage"})
        assert made.status_code == 201, made.text
    link = urlsplit(made.json()["request"]["url"]).path.rstrip("/")
    endpoint = f"{accounts.server.base_url}{link}/tus/"
    parallel = tmp_path / "footage.bin"
    sha256 = random_file(parallel, 6 * MiB + 1)
    result = tus_js.upload(parallel, endpoint=endpoint, parallel=4)
    assert result.ok, (result.error, result.last_response)
    assert all(urlsplit(r["url"]).path.startswith(f"{link}/tus/") for r in result.requests)
    assert_stored(accounts, parallel.name, sha256, 6 * MiB + 1, who="watcher")

    resumed = tmp_path / "outtakes.bin"
    sha256 = random_file(resumed, 3 * MiB + 1)
    first = tus_js.upload(resumed, endpoint=endpoint, chunk_size=MiB, stop_after=MiB)
    assert first.stopped and first.url is not None, first.error
    upload_id = first.url.rsplit("/", 1)[1]
    # Not through the owner's own /tus/, nor another account's: only through the link.
    assert head(accounts, f"/tus/{upload_id}", "watcher").status_code == 404
    assert head(accounts, f"/tus/{upload_id}", "other").status_code == 404
    second = tus_js.upload(resumed, upload_url=first.url, chunk_size=MiB)
    assert second.ok, (second.error, second.last_response)
    assert second.requests[1]["headers"]["Upload-Offset"] == str(MiB)
    assert_stored(accounts, resumed.name, sha256, 3 * MiB + 1, who="watcher")
