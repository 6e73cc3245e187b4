"""A data dir and a PostgreSQL catalog written by commit 5707150 itself, before schema
versions existed, open with this code with every file, account, token, share link,
file request and unfinished resumable upload intact.
"""

from __future__ import annotations

import base64
import os
import shutil
import sqlite3
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlencode

import httpx
import psycopg
import pytest
from tests.support.fixtures import (
    PASSWORD,
    ROOT,
    bearer,
    environment_without_venv,
    free_port,
    start_server,
)
from tests.support.postgres import Cluster

from app.catalog.migrate import (
    postgres_version,
    sqlite_version,
)
from app.catalog.migrations import LATEST
from app.catalog.names import name_key

# The last commit whose catalog had no version: the fixture is written by its own code.
OLD_COMMIT = "5707150"


TUS = {"tus-resumable": "1.0.0"}


@dataclass
class OldStowage:
    """The app of OLD_COMMIT (`git archive`, as `bench small --baseline` does) in a venv
    of its own, made by `uv sync` from its pyproject.toml."""

    tree: Path
    python: Path

    def command(self, *args: str, data_dir: Path, database: str | None, stdin: str = "") -> str:
        argv = [str(self.python), "-m", "app.cli", *args, "--data-dir", str(data_dir)]
        if database is not None:
            argv += ["--database", database]
        done = subprocess.run(
            argv, input=stdin, capture_output=True, text=True, cwd=self.tree,
            env=environment_without_venv(), timeout=120,
        )  # fmt: skip
        assert done.returncode == 0, done.stderr
        return done.stdout

    @contextmanager
    def serving(self, data_dir: Path, database: str | None) -> Iterator[str]:
        port = free_port()
        argv = [str(self.python), "-m", "app.cli", "serve", "--port", str(port),
                "--data-dir", str(data_dir), "--log", "off"]  # fmt: skip
        if database is not None:
            argv += ["--database", database]
        log = (data_dir.parent / "old-server.log").open("wb")
        process = subprocess.Popen(
            argv,
            cwd=self.tree,
            stdout=log,
            stderr=subprocess.STDOUT,
            env=environment_without_venv(),
        )
        base_url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 30
        try:
            while True:
                try:
                    httpx.get(base_url + "/login", timeout=1)
                    break
                except httpx.TransportError:
                    if process.poll() is not None or time.monotonic() > deadline:
                        process.kill()
                        log.close()
                        raise RuntimeError(
                            (data_dir.parent / "old-server.log").read_text()
                        ) from None
                    time.sleep(0.1)
            yield base_url
        finally:
            process.terminate()
            try:
                process.wait(20)
            except subprocess.TimeoutExpired:
                process.kill()
            log.close()


@pytest.fixture(scope="session")
def old_stowage(tmp_path_factory: pytest.TempPathFactory) -> OldStowage:
    """Built once per run; uv's cache makes the venv in a second or two (offline when
    the cache holds every package, as it does wherever this checkout's venv was made)."""
    archive = subprocess.run(
        ["git", "archive", "--format=tar", OLD_COMMIT], cwd=ROOT, capture_output=True
    )
    if archive.returncode != 0:
        pytest.skip(f"commit {OLD_COMMIT} is not in this clone")
    tree = tmp_path_factory.mktemp(f"stowage-{OLD_COMMIT}")
    subprocess.run(["tar", "-x", "-C", str(tree)], input=archive.stdout, check=True)
    # The Datastar bundle is git-ignored and fetched at start; reuse this tree's.
    shutil.copytree(ROOT / "assets" / "vendor", tree / "assets" / "vendor", dirs_exist_ok=True)
    uv = os.environ.get("UV") or shutil.which("uv")
    if uv is None:
        pytest.skip("uv is not on PATH: no venv for the old commit")
    reasons = []
    for offline in (["--offline"], []):
        done = subprocess.run(
            [uv, "sync", "--no-dev", "--quiet", *offline], cwd=tree, env=environment_without_venv(),
            capture_output=True, text=True, timeout=900,
        )  # fmt: skip
        if done.returncode == 0:
            return OldStowage(tree, tree / ".venv" / "bin" / "python")
        reasons.append(done.stderr.strip())
    message = f"no venv for commit {OLD_COMMIT}: {reasons[-1]}"
    if os.environ.get("CI"):
        pytest.fail(message)
    pytest.skip(message)


@dataclass
class Written:
    """What the old code stored, to be found again."""

    token: str
    files: dict[str, bytes]
    ids: dict[str, str] = field(default_factory=dict)
    share_url: str = ""
    request_id: str = ""
    received: tuple[str, bytes] = ("receipt.txt", b"paid in full\n")
    unfinished: str = ""  # its tus URL
    unfinished_body: bytes = b""
    unfinished_sent: int = 0
    # Names the old flat list let clash (ignoring case), in upload order: (name, id).
    clashing: list[tuple[str, str]] = field(default_factory=list)


def write_with_old_code(old: OldStowage, data_dir: Path, database: str | None) -> Written:
    old.command("users", "add", "ada", "--admin", data_dir=data_dir, database=database,
                stdin=PASSWORD + "\n")  # fmt: skip
    token = old.command("tokens", "add", "ada", data_dir=data_dir, database=database).strip()
    written = Written(
        token,
        {
            "notes.txt": b"remember the milk\n",
            "random.bin": os.urandom(700_000),
            "Résumé 2026.pdf": b"%PDF-1.4 not really\n" * 50,
        },
    )
    with (
        old.serving(data_dir, database) as base_url,
        httpx.Client(base_url=base_url, headers=bearer(token), timeout=30) as client,
        httpx.Client(base_url=base_url, timeout=30) as anonymous,
    ):
        for name, body in written.files.items():
            r = client.put(f"/uploads/{name}", content=body)
            assert r.status_code == 201, r.text
            written.ids[name] = r.json()["files"][0]["id"]
        for name in ("a.txt", "A.txt", "a.txt"):
            r = client.put(f"/uploads/{name}", content=name.encode())
            assert r.status_code == 201, r.text
            assert r.json()["files"][0]["name"] == name  # the old code kept each as given
            written.clashing.append((name, r.json()["files"][0]["id"]))
        r = client.post(f"/api/files/{written.ids['notes.txt']}/shares", json={})
        assert r.status_code == 201, r.text
        written.share_url = r.json()["share"]["url"]
        r = client.post("/api/requests", json={"label": "Receipts"})
        assert r.status_code == 201, r.text
        request = r.json()["request"]
        written.request_id = request["id"]
        name, body = written.received
        r = anonymous.put(f"{request['url']}/uploads/{name}", content=body)
        assert r.status_code == 201, r.text
        # A tus upload left unfinished: created, then part of its bytes.
        written.unfinished_body = os.urandom(300_000)
        written.unfinished_sent = 120_000
        metadata = "filename " + base64.b64encode(b"later.bin").decode()
        r = client.post(
            "/tus",
            headers={**TUS, "upload-length": str(len(written.unfinished_body)),
                     "upload-metadata": metadata},
        )  # fmt: skip
        assert r.status_code == 201, r.text
        written.unfinished = r.headers["location"]
        r = client.patch(
            written.unfinished,
            content=written.unfinished_body[: written.unfinished_sent],
            headers={**TUS, "upload-offset": "0",
                     "content-type": "application/offset+octet-stream"},
        )  # fmt: skip
        assert r.status_code == 204, r.text
        assert r.headers["upload-offset"] == str(written.unfinished_sent)
    return written


def check_with_this_code(tmp_path: Path, database: str | None, written: Written) -> None:
    servers = start_server(tmp_path, account=False, database=database)
    try:
        server = next(servers)
        with (
            httpx.Client(base_url=server.base_url, headers=bearer(written.token), timeout=30)
            as client,
            httpx.Client(base_url=server.base_url, timeout=30) as anonymous,
        ):  # fmt: skip
            # The token works, and every file is there, byte for byte.
            listed = client.get("/api/files")
            assert listed.status_code == 200, listed.text
            names = {f["name"] for f in listed.json()["files"]}
            # Names that clashed in the root get numbered copies, the oldest keeping its
            # own (deterministic: by upload time, then id).
            numbered = ["a.txt", "A (2).txt", "a (3).txt"]
            assert names == {*written.files, written.received[0], *numbered}
            by_id = {f["id"]: f for f in listed.json()["files"]}
            for (old_name, file_id), new_name in zip(written.clashing, numbered, strict=True):
                assert (by_id[file_id]["name"], by_id[file_id]["path"]) == (
                    new_name,
                    "/" + new_name,
                )
                assert by_id[file_id]["folder"] == "root"
                r = client.get(f"/files/{file_id}")
                assert r.content == old_name.encode()
            assert {f["folder"] for f in listed.json()["files"]} == {"root"}
            for name, body in written.files.items():
                r = client.get(f"/files/{written.ids[name]}")
                assert r.status_code == 200 and r.content == body, name
            # The account signs in with its password.
            signed_in = anonymous.post(
                "/login",
                content=urlencode({"name": "ada", "password": PASSWORD}).encode(),
                headers={"content-type": "application/x-www-form-urlencoded"},
            )
            assert signed_in.status_code == 303, signed_in.text
            # The share link serves its file to anyone.
            shared = anonymous.get(written.share_url + "/file")
            assert shared.status_code == 200 and shared.content == written.files["notes.txt"]
            # The file request is listed, with the file it received.
            requests = {q["id"]: q for q in client.get("/api/requests").json()["requests"]}
            assert requests[written.request_id]["label"] == "Receipts"
            assert requests[written.request_id]["files"] == 1
            # The unfinished upload resumes where it stopped, and becomes a file.
            head = client.head(written.unfinished, headers=TUS)
            assert head.status_code == 200, head.text
            assert head.headers["upload-offset"] == str(written.unfinished_sent)
            rest = client.patch(
                written.unfinished,
                content=written.unfinished_body[written.unfinished_sent :],
                headers={**TUS, "upload-offset": str(written.unfinished_sent),
                         "content-type": "application/offset+octet-stream"},
            )  # fmt: skip
            assert rest.status_code == 204, rest.text
            assert rest.headers["upload-offset"] == str(len(written.unfinished_body))
            files = {f["name"]: f["id"] for f in client.get("/api/files").json()["files"]}
            later = client.get(f"/files/{files['later.bin']}")
            assert later.status_code == 200 and later.content == written.unfinished_body
    finally:
        servers.close()
    # Every name has its key, as this code computes it (NFC, case-folded).
    sql = "SELECT name, name_key FROM files"
    if database is None:
        with sqlite3.connect(tmp_path / "server-data" / "stowage.db") as db:
            keys = db.execute(sql).fetchall()
    else:
        with psycopg.connect(database) as db:
            keys = db.execute(sql).fetchall()
    assert keys and all(key == name_key(name) for name, key in keys), keys


@pytest.mark.slow
def test_a_sqlite_data_dir_written_by_5707150_opens_with_everything_in_it(
    old_stowage: OldStowage, tmp_path: Path
):
    data_dir = tmp_path / "server-data"  # where start_server serves from
    written = write_with_old_code(old_stowage, data_dir, None)
    assert sqlite_version(data_dir / "stowage.db") == 0  # written before versions
    check_with_this_code(tmp_path, None, written)
    assert sqlite_version(data_dir / "stowage.db") == LATEST


@pytest.mark.slow
def test_a_postgres_catalog_written_by_5707150_opens_with_everything_in_it(
    old_stowage: OldStowage, postgres: Cluster, tmp_path: Path
):
    url = postgres.new_database()
    data_dir = tmp_path / "server-data"
    written = write_with_old_code(old_stowage, data_dir, url)
    assert postgres_version(url) == 0
    check_with_this_code(tmp_path, url, written)
    assert postgres_version(url) == LATEST
