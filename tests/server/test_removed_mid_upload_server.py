"""An account removed (`stowage users remove`) while one of its uploads runs: the
upload fails with 410 and nothing of it is kept, neither a row nor a blob."""

import os
import sqlite3
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import httpx
import psycopg
import pytest
from tests.support.accounts import until_a_credential_change_is_seen
from tests.support.fixtures import ROOT, RunningServer, start_server

pytestmark = pytest.mark.slow

MiB = 1024 * 1024
TUS = {"tus-resumable": "1.0.0"}


@pytest.fixture(params=["sqlite", "postgres"])
def server(request, tmp_path: Path) -> Iterator[RunningServer]:
    """The server on either catalog; `.database` is its PostgreSQL URL, if any."""
    database = None
    if request.param == "postgres":
        database = request.getfixturevalue("postgres").new_database()
    for running in start_server(tmp_path, database=database):
        running.database = database  # type: ignore[attr-defined]
        yield running


def remove_account(server: RunningServer, name: str) -> None:
    env = {"STOWAGE_DATA_DIR": str(server.data_dir), "PATH": "/usr/bin:/bin"}
    if server.database is not None:  # type: ignore[attr-defined]
        env["STOWAGE_DATABASE"] = server.database  # type: ignore[attr-defined]
    done = subprocess.run(
        [sys.executable, "-m", "app.cli", "users", "remove", name],
        env=env, cwd=ROOT, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr


class PausedBody:
    """4 MiB, then a wait until `resume` is set, then 4 MiB more."""

    def __init__(self) -> None:
        self.halfway = threading.Event()
        self.resume = threading.Event()

    def __iter__(self) -> Iterator[bytes]:
        yield os.urandom(4 * MiB)
        self.halfway.set()
        assert self.resume.wait(30)
        yield os.urandom(4 * MiB)


def while_removed(server: RunningServer, send) -> httpx.Response:
    """`send(body)` in a thread; the account goes while its body is half sent."""
    body = PausedBody()
    answers: list[httpx.Response] = []
    sender = threading.Thread(target=lambda: answers.append(send(body)))
    sender.start()
    try:
        assert body.halfway.wait(30)
        remove_account(server, "owner")
    finally:
        body.resume.set()
        sender.join(60)
    (answer,) = answers
    return answer


def nothing_kept(server: RunningServer) -> None:
    until_a_credential_change_is_seen()
    with server.http() as http:
        assert http.get("/api/files").status_code == 401  # the account is gone
    if server.database is None:  # type: ignore[attr-defined]
        with sqlite3.connect(server.data_dir / "stowage.db") as catalog:
            assert catalog.execute("SELECT count(*) FROM files").fetchone() == (0,)
    else:
        with psycopg.connect(server.database) as catalog:  # type: ignore[attr-defined]
            assert catalog.execute("SELECT count(*) FROM files").fetchone() == (0,)
    uploads = server.data_dir / "uploads"
    assert [p for p in uploads.rglob("*") if p.is_file()] == []


def test_an_upload_whose_account_is_removed_meanwhile_fails_and_keeps_nothing(server):
    def send(body: PausedBody) -> httpx.Response:
        with server.http(timeout=60) as http:
            return http.put("/uploads/orphan.bin", content=iter(body))

    answer = while_removed(server, send)
    assert answer.status_code == 410, answer.text
    assert "has been removed" in answer.json()["error"]
    nothing_kept(server)


def test_a_resumable_upload_completed_after_its_account_is_removed_keeps_nothing(server):
    with server.http() as http:
        headers = {**TUS, "upload-length": str(8 * MiB), "upload-metadata": "filename eA=="}
        created = http.post("/tus/", headers=headers)
    assert created.status_code == 201, created.text

    def send(body: PausedBody) -> httpx.Response:
        with server.http(timeout=60) as http:
            return http.patch(
                created.headers["location"],
                content=iter(body),
                headers={**TUS, "content-type": "application/offset+octet-stream",
                         "upload-offset": "0"},
            )  # fmt: skip

    answer = while_removed(server, send)
    assert answer.status_code == 410, answer.text
    nothing_kept(server)
