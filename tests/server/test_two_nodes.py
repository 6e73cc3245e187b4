"""Two `stowage serve` processes over one SeaweedFS and one PostgreSQL act as one:
what happens on one node shows live on the other, any node serves any file, and a
node killed mid-upload leaves nothing half-stored in sight."""

from __future__ import annotations

import hashlib
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest
from tests.support.fixtures import ROOT, RunningServer, free_port, start_server
from tests.support.livestream import LiveStream
from tests.support.postgres import Cluster
from tests.support.seaweed import Seaweed
from tests.support.shares import READ_WINDOW, attack

pytestmark = pytest.mark.slow
MiB = 1024 * 1024


def readme_nginx_config() -> str:
    """The ```nginx block of docs/scaling-out.md ("Two nodes behind nginx")."""
    page = (ROOT / "docs" / "scaling-out.md").read_text()
    start = page.index("```nginx\n") + len("```nginx\n")
    return page[start : page.index("```", start)]


@contextmanager
def nginx_in_front(tmp_path: Path, a: RunningServer, b: RunningServer) -> Iterator[str]:
    """The docs' nginx configuration on a free port before `a` and `b`; its base URL."""
    binary = shutil.which("nginx") or "/usr/sbin/nginx"
    if not Path(binary).exists():
        if os.environ.get("CI"):
            pytest.fail("CI must have nginx (.ci/run installs nginx-light)")
        pytest.skip("no nginx")
    port = free_port()
    config = readme_nginx_config()
    for readme_port, real in (("8001", a.base_url), ("8002", b.base_url)):
        config = config.replace(f"127.0.0.1:{readme_port}", real.removeprefix("http://"))
    config = config.replace("listen 8000;", f"listen 127.0.0.1:{port};")
    prefix = tmp_path / "nginx"
    (prefix / "logs").mkdir(parents=True)
    (prefix / "nginx.conf").write_text(
        f"daemon off; worker_processes 1; pid {prefix}/nginx.pid;\n"
        f"error_log {prefix}/logs/error.log;\nevents {{}}\nhttp {{\n"
        f"access_log off;\nclient_body_temp_path {prefix}/body;\n{config}\n}}\n"
    )
    process = subprocess.Popen([binary, "-p", str(prefix), "-c", str(prefix / "nginx.conf")])
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                assert process.poll() is None, (prefix / "logs/error.log").read_text()
                assert time.monotonic() < deadline, "nginx did not start"
                time.sleep(0.05)
        yield f"http://127.0.0.1:{port}"
    finally:
        process.terminate()
        process.wait(10)


@contextmanager
def node(tmp_path: Path, name: str, database: str, weed: Seaweed, storage: str,
         account: bool) -> Iterator[RunningServer]:  # fmt: skip
    (tmp_path / name).mkdir()
    yield from start_server(
        tmp_path / name,
        "--storage", storage, "--s3-endpoint-url", weed.endpoint_url,
        # Reached directly and through the proxy (the docs' nginx passes the Host on).
        "--allowed-hosts", "*",
        account=account, database=database, env=weed.env,
    )  # fmt: skip


@contextmanager
def two_nodes(
    tmp_path: Path, postgres: Cluster, seaweed: Seaweed, prefix: str
) -> Iterator[tuple[RunningServer, RunningServer, str, str]]:
    """Nodes a and b on one fresh catalog and one fresh prefix of the bucket, with one
    account (made on a; the catalog is shared, so b accepts a's token). Yields a, b,
    the database URL and the storage setting."""
    database = postgres.new_database()
    storage = f"s3://{seaweed.bucket}/{prefix}-{secrets.token_hex(4)}"
    with (
        node(tmp_path, "a", database, seaweed, storage, account=True) as a,
        node(tmp_path, "b", database, seaweed, storage, account=False) as b_started,
    ):
        b = RunningServer(b_started.process, b_started.base_url, b_started.data_dir, a.token)
        yield a, b, database, storage


def test_two_nodes_act_as_one(tmp_path: Path, postgres: Cluster, seaweed: Seaweed) -> None:
    with two_nodes(tmp_path, postgres, seaweed, "two-nodes") as (a, b, database, storage):
        live_a, live_b = LiveStream(a), LiveStream(b)
        try:
            live_a.wait_for(lambda text: 'id="files"' in text)
            live_b.wait_for(lambda text: 'id="files"' in text)
            body = os.urandom(3 * 1024 * 1024 + 17)

            # Uploaded on a: b's page shows it, live.
            since = live_b.mark()
            with a.http() as http:
                began = time.monotonic()
                stored = http.put("/uploads/from-a.bin", content=body)
            assert stored.status_code == 201, stored.text
            file_id = stored.json()["files"][0]["id"]
            live_b.wait_for(lambda text: "from-a.bin" in text, since)
            seconds = time.monotonic() - began
            print(f"an upload of 3 MiB on a, from its first byte to b's repaint: {seconds:.2f} s")

            # Downloaded from b, whole and by range.
            # (--s3-direct all, the default: a 302 to the store, which sends the bytes.)
            with b.http(follow_redirects=True) as http:
                whole = http.get(f"/files/{file_id}")
                assert [r.status_code for r in whole.history] == [302]
                assert str(whole.url).startswith(seaweed.endpoint_url)
                assert whole.status_code == 200 and whole.content == body
                part = http.get(f"/files/{file_id}", headers={"range": "bytes=1000-1999"})
                assert part.status_code == 206 and part.content == body[1000:2000]
                # Deleted on b: a's page repaints without it.
                since = live_a.mark()
                assert http.delete(f"/files/{file_id}").status_code == 204
            live_a.wait_for(lambda text: 'id="files"' in text and "from-a.bin" not in text, since)
            with a.http() as http:
                assert http.get(f"/files/{file_id}").status_code == 404

            # Through the docs' nginx: any node takes the upload, any serves it, and a
            # page open through the proxy repaints for an upload made on a node.
            with nginx_in_front(tmp_path, a, b) as proxy:
                live_proxy = LiveStream(a, proxy)
                try:
                    live_proxy.wait_for(lambda text: 'id="files"' in text)
                    with httpx.Client(
                        base_url=proxy, headers=a.headers, timeout=30, follow_redirects=True
                    ) as http:
                        ids = []
                        for n in range(4):
                            put = http.put(f"/uploads/proxied-{n}.bin", content=body)
                            assert put.status_code == 201, put.text
                            ids.append(put.json()["files"][0]["id"])
                        for file_id in ids:
                            part = http.get(f"/files/{file_id}", headers={"range": "bytes=5-9"})
                            assert part.status_code == 206 and part.content == body[5:10]
                        since = live_proxy.mark()
                        with b.http() as direct:
                            assert direct.put("/uploads/on-b.bin", content=b"b").status_code == 201
                        live_proxy.wait_for(lambda text: "on-b.bin" in text, since)
                finally:
                    live_proxy.close()
        finally:
            live_a.close()
            live_b.close()

        # a killed mid-upload: nothing half-stored is visible from b.
        port = int(a.base_url.rsplit(":", 1)[1])
        with socket.create_connection(("127.0.0.1", port)) as sock:
            sock.sendall(
                f"PUT /uploads/half.bin HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
                f"Authorization: Bearer {a.token}\r\nContent-Length: {32 * MiB}\r\n\r\n".encode()
            )
            for _ in range(12):
                sock.sendall(os.urandom(MiB))
            # b's page shows the upload a is receiving (a progress snapshot from a).
            live_b = LiveStream(b)
            try:
                live_b.wait_for(lambda text: "Receiving <strong>half.bin</strong>" in text)
            finally:
                live_b.close()
            os.kill(a.process.pid, signal.SIGKILL)
            a.process.wait(10)
        with b.http() as http:
            listed = http.get("/api/files").json()
        names = [f["name"] for f in listed["files"]]
        assert "half.bin" not in names
        assert {"proxied-0.bin", "on-b.bin"} <= set(names)

        # `stowage check --repair` on the dead node's data dir: consistent, and the
        # unfinished multipart upload a left behind is young, so it is left alone (on
        # a shared catalog it could be another node's upload running now).
        done = subprocess.run(
            [sys.executable, "-m", "app.cli", "check", "--repair",
             "--data-dir", str(a.data_dir), "--database", database,
             "--storage", storage, "--s3-endpoint-url", seaweed.endpoint_url],
            cwd=ROOT, capture_output=True, text=True, env={**os.environ, **seaweed.env},
        )  # fmt: skip
        assert done.returncode == 0, done.stdout + done.stderr
        assert "aborted 0 unfinished multipart upload(s)" in done.stdout
        assert "consistent" in done.stdout


def _tus_offset(server: RunningServer, url: str) -> int:
    with server.http() as http:
        head = http.head(url, headers={"tus-resumable": "1.0.0"})
    assert head.status_code == 200, head.status_code
    return int(head.headers["upload-offset"])


def _tus_patch(server: RunningServer, url: str, offset: int, body: bytes) -> httpx.Response:
    with server.http(timeout=60) as http:
        return http.patch(url, content=body, headers={
            "tus-resumable": "1.0.0", "content-type": "application/offset+octet-stream",
            "upload-offset": str(offset),
        })  # fmt: skip


def _recorded_offset(database: str, url: str) -> int | None:
    import psycopg

    with psycopg.connect(database) as conn:
        row = conn.execute(
            'SELECT "offset" FROM resumable_uploads WHERE id = %s',
            (url.rstrip("/").rsplit("/", 1)[1],),
        ).fetchone()
    return None if row is None else int(row[0])


def test_a_tus_upload_begun_on_one_node_is_finished_on_the_other(
    tmp_path: Path, postgres: Cluster, seaweed: Seaweed
) -> None:
    """The bytes of a resumable upload are S3 parts and a tail in the catalog: node b
    goes on from what node a recorded, even when a's client vanished mid-append."""
    with two_nodes(tmp_path, postgres, seaweed, "resume") as (a, b, database, _):
        body = os.urandom(20 * MiB + 3)
        with a.http() as http:
            created = http.post("/tus/", headers={
                "tus-resumable": "1.0.0", "upload-length": str(len(body)),
                "upload-metadata": "filename YmlnLmJpbg==",  # big.bin
            })  # fmt: skip
        assert created.status_code == 201, created.text
        url = created.headers["location"]
        # A PATCH of 14 MiB on a whose client stops after 12 MiB: a keeps those.
        port = int(a.base_url.rsplit(":", 1)[1])
        with socket.create_connection(("127.0.0.1", port)) as sock:
            sock.sendall(
                f"PATCH {url} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
                f"Authorization: Bearer {a.token}\r\nTus-Resumable: 1.0.0\r\n"
                "Content-Type: application/offset+octet-stream\r\nUpload-Offset: 0\r\n"
                f"Content-Length: {14 * MiB}\r\n\r\n".encode()
            )
            sock.sendall(body[: 12 * MiB])
        # Watched in the catalog, not by HEAD: a HEAD (on either node) would take over
        # an append a is still reading from its buffers and end it short of 12 MiB.
        deadline = time.monotonic() + 15
        while _recorded_offset(database, url) != 12 * MiB:
            assert time.monotonic() < deadline, "a never recorded the cut-off append"
            time.sleep(0.1)
        offset = _tus_offset(b, url)
        assert offset == 12 * MiB
        # On b: the rest, then the file is whole on both nodes.
        began = time.monotonic()
        done = _tus_patch(b, url, offset, body[offset:])
        assert done.status_code == 204, done.text
        print(f"the last 8 MiB on b, completing from a's parts: {time.monotonic() - began:.2f} s")
        file_id = done.headers["stowage-file-id"]
        for server in (a, b):
            with server.http(timeout=60) as http:
                assert http.get(f"/files/{file_id}", follow_redirects=True).content == body
                listed = {f["id"]: f for f in http.get("/api/files").json()["files"]}
            assert listed[file_id]["sha256"] == hashlib.sha256(body).hexdigest()
            assert listed[file_id]["name"] == "big.bin"

        # A first append of 1 MiB on b (held as the tail in the catalog), the rest on a.
        small = os.urandom(4 * MiB + 1)
        with b.http() as http:
            created = http.post("/tus/", headers={
                "tus-resumable": "1.0.0", "upload-length": str(len(small)),
            })  # fmt: skip
        url = created.headers["location"]
        assert _tus_patch(b, url, 0, small[:MiB]).status_code == 204
        assert _tus_offset(a, url) == MiB
        done = _tus_patch(a, url, MiB, small[MiB:])
        assert done.status_code == 204, done.text
        with b.http() as http:
            stored = http.get(f"/files/{done.headers['stowage-file-id']}", follow_redirects=True)
            assert stored.content == small

        # An append still open on a (its client's network gone while a holds the
        # socket): b, asked for the offset, has a end that append and record its
        # bytes first (a lease in the catalog, a message on the cluster channel).
        third = os.urandom(16 * MiB)
        with a.http() as http:
            created = http.post("/tus/", headers={
                "tus-resumable": "1.0.0", "upload-length": str(len(third)),
            })  # fmt: skip
        url = created.headers["location"]
        with socket.create_connection(("127.0.0.1", port)) as sock:
            sock.sendall(
                f"PATCH {url} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
                f"Authorization: Bearer {a.token}\r\nTus-Resumable: 1.0.0\r\n"
                "Content-Type: application/offset+octet-stream\r\nUpload-Offset: 0\r\n"
                f"Content-Length: {len(third)}\r\n\r\n".encode()
            )
            sock.sendall(third[: 10 * MiB])
            time.sleep(1.0)  # a reads them; the rest never comes
            began = time.monotonic()
            offset = _tus_offset(b, url)
            print(f"b took over a's open append at {offset} bytes in"
                  f" {time.monotonic() - began:.2f} s")  # fmt: skip
            assert offset > 0  # without the take-over: 0, nothing recorded yet
            sock.settimeout(10)
            assert sock.recv(64).startswith(b"HTTP/1.1 409")  # a's answer to its append
        done = _tus_patch(b, url, offset, third[offset:])
        assert done.status_code == 204, done.text
        with a.http() as http:
            stored = http.get(f"/files/{done.headers['stowage-file-id']}", follow_redirects=True)
            assert stored.content == third


def test_finals_on_two_nodes_join_a_partial_once(
    tmp_path: Path, postgres: Cluster, seaweed: Seaweed
) -> None:
    """A tus final on each node naming the same partial at the same moment: each node
    holds the partial only in its own memory, so the catalog decides: one file."""
    tus = {"tus-resumable": "1.0.0"}
    with two_nodes(tmp_path, postgres, seaweed, "finals") as (a, b, _, _):
        part = os.urandom(6 * MiB)
        with a.http() as http:
            created = http.post("/tus/", headers={**tus, "upload-length": str(len(part)),
                                                  "upload-concat": "partial"})  # fmt: skip
        url = created.headers["location"]
        assert _tus_patch(a, url, 0, part).status_code == 204
        answers: dict[str, int] = {}
        start = threading.Barrier(2)

        def final(server: RunningServer, name: str) -> None:
            with server.http(timeout=60) as http:
                start.wait()
                answers[name] = http.post(
                    "/tus/", headers={**tus, "upload-concat": f"final;{url}"}
                ).status_code

        threads = [threading.Thread(target=final, args=(s, n)) for s, n in ((a, "a"), (b, "b"))]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(90)
        print("finals answered", answers)
        assert sorted(answers.values())[0] == 201, answers
        assert sorted(answers.values())[1] in (404, 503), answers
        for server in (a, b):
            with server.http() as http:
                [stored] = http.get("/api/files").json()["files"]
            assert stored["sha256"] == hashlib.sha256(part).hexdigest()


def test_a_limited_links_byte_budget_holds_across_nodes(
    tmp_path: Path, postgres: Cluster, seaweed: Seaweed
) -> None:
    """Both nodes take the same attack on one link with a limit of 1 at once: the
    budget lives in the catalog, so together they still send one copy's worth."""
    with two_nodes(tmp_path, postgres, seaweed, "share-budget") as (a, b, _, _):
        size = 4 * MiB
        with a.http() as http:
            stored = http.put("/uploads/limited.bin", content=os.urandom(size))
            assert stored.status_code == 201, stored.text
            file_id = stored.json()["files"][0]["id"]
            made = http.post(f"/api/files/{file_id}/shares", json={"max_downloads": 1})
            assert made.status_code == 201, made.text
            link = made.json()["share"]
        served, statuses, _ = attack([a.base_url, b.base_url], link["url"] + "/file", size)
        print(f"two nodes, limit 1 of {size:,} bytes: {served:,} served; {dict(statuses)}")
        assert served <= size + READ_WINDOW, (served, statuses)
        with b.http() as http:
            shares = {s["id"]: s for s in http.get("/api/shares").json()["shares"]}
        assert shares[link["id"]]["downloads"] == served // size


def test_a_direct_upload_opened_on_one_node_completes_on_the_other(
    tmp_path: Path, postgres: Cluster, seaweed: Seaweed
) -> None:
    """A direct session lives in the shared catalog: opened on a, its parts sent to the
    bucket, resumed (GET) and completed on b; a's page shows the file, live, and a
    second completion on a answers the same file."""
    with two_nodes(tmp_path, postgres, seaweed, "two-direct") as (a, b, _database, _storage):
        live_a = LiveStream(a)
        try:
            live_a.wait_for(lambda text: 'id="files"' in text)
            body = os.urandom(9 * MiB)
            with a.http() as http:
                opened = http.post(
                    "/api/uploads/direct", json={"name": "across.bin", "size": len(body)}
                )
            assert opened.status_code == 201, opened.text
            session = opened.json()["session"]
            step = session["part_size"]
            with httpx.Client(timeout=60) as bucket:
                first = session["parts"][0]
                sent = bucket.put(first["url"], content=body[:step])
                assert sent.status_code == 200, sent.text
            with b.http() as http:
                resumed = http.get(f"/api/uploads/direct/{session['id']}").json()["session"]
                assert [p["number"] for p in resumed["held"]] == [1]
                (rest,) = resumed["parts"]
                with httpx.Client(timeout=60) as bucket:
                    last = bucket.put(rest["url"], content=body[step:])
                assert last.status_code == 200, last.text
                since = live_a.mark()
                done = http.post(
                    f"/api/uploads/direct/{session['id']}/complete",
                    json={"parts": [
                        {"number": 1, "etag": resumed["held"][0]["etag"]},
                        {"number": 2, "etag": last.headers["etag"]},
                    ]},
                )  # fmt: skip
            assert done.status_code == 201, done.text
            file = done.json()["file"]
            assert file["sha256"] == hashlib.sha256(body).hexdigest()
            live_a.wait_for(lambda text: "across.bin" in text, since)
            with a.http() as http:
                again = http.post(
                    f"/api/uploads/direct/{session['id']}/complete",
                    json={"parts": [{"number": 1, "etag": "x"}]},
                )
                assert (again.status_code, again.json()["file"]["id"]) == (201, file["id"])
        finally:
            live_a.close()
