"""The catalog's schema versions (app/catalog/migrate.py, app/catalog/migrations/).

A data dir and a PostgreSQL catalog written by commit 5707150 itself, before versions
existed, open with this code with every file, account, token, share link, file request
and unfinished resumable upload intact. A fresh catalog gets the latest version,
opening twice changes nothing, two processes migrate once, and a catalog newer than the
code is refused with one line by `serve` and by every command.
"""

from __future__ import annotations

import base64
import os
import re
import shutil
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlencode

import httpx
import psycopg
import pytest
from tests.conftest import PASSWORD, ROOT, bearer, free_port, start_server
from tests.postgres import Cluster

from app.catalog.migrate import (
    CatalogTooNew,
    migrate_postgres,
    migrate_sqlite,
    postgres_version,
    sqlite_version,
)
from app.catalog.migrations import LATEST, MIGRATIONS
from app.catalog.open import open_catalog
from app.config import Config

# The last commit whose catalog had no version: the fixture is written by its own code.
OLD_COMMIT = "5707150"
TUS = {"tus-resumable": "1.0.0"}


def _environment() -> dict[str, str]:
    """This process's environment without any STOWAGE_* setting or the venv of this
    checkout (the old tree has its own)."""
    return {
        name: value
        for name, value in os.environ.items()
        if not name.startswith("STOWAGE_") and name != "VIRTUAL_ENV"
    }


# Stowage as commit 5707150 shipped it -------------------------------------------------------


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
            env=_environment(), timeout=120,
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
            argv, cwd=self.tree, stdout=log, stderr=subprocess.STDOUT, env=_environment()
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
            [uv, "sync", "--no-dev", "--quiet", *offline], cwd=tree, env=_environment(),
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
            assert names == {*written.files, written.received[0]}
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


# Versions ------------------------------------------------------------------------------------


def sqlite_schema(path: Path) -> list[tuple[object, ...]]:
    conn = sqlite3.connect(path)
    try:
        return conn.execute(
            "SELECT type, name, sql FROM sqlite_master ORDER BY type, name"
        ).fetchall()
    finally:
        conn.close()


def version_rows(path: Path) -> list[tuple[object, ...]]:
    conn = sqlite3.connect(path)
    try:
        return conn.execute("SELECT version, name, how FROM schema_version ORDER BY 1").fetchall()
    finally:
        conn.close()


def sqlite_config(tmp_path: Path) -> Config:
    return Config.load({"data_dir": str(tmp_path / "data")}, environ={})


async def test_a_fresh_catalog_gets_the_latest_version_and_a_second_open_changes_nothing(
    tmp_path: Path,
):
    config = sqlite_config(tmp_path)
    db = await open_catalog(config)
    await db.close()
    assert sqlite_version(config.db_path) == LATEST
    applied = [(m.number, m.name, "applied") for m in MIGRATIONS]
    assert version_rows(config.db_path) == applied
    schema = sqlite_schema(config.db_path)
    db = await open_catalog(config)
    await db.close()
    assert sqlite_schema(config.db_path) == schema
    assert version_rows(config.db_path) == applied


async def test_a_fresh_postgres_catalog_gets_the_latest_version_and_a_second_open_changes_nothing(
    postgres: Cluster, tmp_path: Path
):
    url = postgres.new_database()
    config = Config.load({"data_dir": str(tmp_path / "data"), "database": url}, environ={})
    db = await open_catalog(config)
    await db.close()
    assert postgres_version(url) == LATEST
    with psycopg.connect(url) as conn:
        rows = conn.execute("SELECT version, how FROM schema_version ORDER BY 1").fetchall()
    assert rows == [(m.number, "applied") for m in MIGRATIONS]
    db = await open_catalog(config)
    await db.close()
    with psycopg.connect(url) as conn:
        again = conn.execute("SELECT version, how FROM schema_version ORDER BY 1").fetchall()
    assert again == rows


def _main_before_versions(path: Path, *, upto: int, skip: tuple[int, ...] = ()) -> None:
    """A catalog as main wrote it before versions existed: the migrations' statements
    up to `upto` (but `skip`), and no schema_version table."""
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        for migration in MIGRATIONS[:upto]:
            if migration.number not in skip:
                for statement in migration.sqlite:
                    conn.execute(statement)
        conn.execute(
            "INSERT INTO users (id, name, name_key, password_hash, created_at)"
            " VALUES ('u1', 'ada', 'ada', 'x', '2026')"
        )
        conn.execute(
            "INSERT INTO files (id, name, size, sha256, mime, created_at, owner)"
            " VALUES ('AAAAAAAAAAAAAAAAAAAAAA', 'kept.txt', 4, '0', 'text/plain', '2026', 'u1')"
        )
    finally:
        conn.close()


@pytest.mark.parametrize(
    ("upto", "skip", "found"),
    [
        (1, (), [1]),  # 5707150
        (LATEST, (), list(range(1, LATEST + 1))),  # main just before versions
        (LATEST, (2,), [1, 3, 4]),  # a commit between: one change merged, not another
    ],
)
async def test_a_catalog_without_a_version_is_recognised_and_brought_up_to_date(
    tmp_path: Path, upto: int, skip: tuple[int, ...], found: list[int]
):
    config = sqlite_config(tmp_path)
    config.data_dir.mkdir(parents=True)
    _main_before_versions(config.db_path, upto=upto, skip=skip)
    db = await open_catalog(config)
    try:
        assert await db.fetch_all("SELECT name, owner FROM files") == [("kept.txt", "u1")]
        assert await db.fetch_all("SELECT used_bytes, file_count FROM users") == [(4, 1)]
    finally:
        await db.close()
    assert version_rows(config.db_path) == [
        (m.number, m.name, "found" if m.number in found else "applied") for m in MIGRATIONS
    ]
    fresh = sqlite_config(tmp_path / "fresh")
    db = await open_catalog(fresh)
    await db.close()
    # Whatever it lacked, it has now: the same tables, indexes and triggers as a new one.
    assert {(t, n) for t, n, _ in sqlite_schema(config.db_path)} == {
        (t, n) for t, n, _ in sqlite_schema(fresh.db_path)
    }


def test_a_catalog_from_before_file_requests_gets_their_column(tmp_path: Path):
    """What 5707150's add_request_column did for a catalog older than itself."""
    path = tmp_path / "stowage.db"
    conn = sqlite3.connect(path)
    conn.execute(
        "CREATE TABLE files (id TEXT PRIMARY KEY, name TEXT NOT NULL, size INTEGER NOT NULL,"
        " sha256 TEXT NOT NULL, mime TEXT NOT NULL, declared_mime TEXT,"
        " created_at TEXT NOT NULL, owner TEXT)"
    )
    conn.commit()
    conn.close()
    assert migrate_sqlite(path) == LATEST
    conn = sqlite3.connect(path)
    columns = [row[1] for row in conn.execute("PRAGMA table_info(files)")]
    conn.close()
    assert "request_id" in columns


def _newer(path: Path) -> None:
    conn = sqlite3.connect(path)
    conn.execute(
        "INSERT INTO schema_version (version, name, applied_at, how)"
        " VALUES (?, 'from the future', 0, 'applied')",
        (LATEST + 3,),
    )
    conn.commit()
    conn.close()


ONE_LINE = re.compile(
    rf"stowage( \w+)?: error: the catalog at \S+ has schema version {LATEST + 3}; this Stowage"
    rf" knows up to {LATEST}: upgrade Stowage\n"
)


async def test_a_catalog_newer_than_the_code_is_refused_with_one_line(tmp_path: Path):
    config = sqlite_config(tmp_path)
    migrate_sqlite(config.db_path)
    _newer(config.db_path)
    schema = sqlite_schema(config.db_path)
    with pytest.raises(CatalogTooNew, match=f"has schema version {LATEST + 3}"):
        await open_catalog(config)
    for args in (
        ["serve", "--port", str(free_port())],
        ["users", "list"],
        ["tokens", "list", "ada"],
        ["check"],
        ["backup", str(tmp_path / "copy")],
    ):
        done = subprocess.run(
            [sys.executable, "-m", "app.cli", *args, "--data-dir", str(config.data_dir)],
            capture_output=True, text=True, cwd=ROOT, timeout=60, env=_environment(),
        )  # fmt: skip
        assert done.returncode == 2, (args, done.stderr)
        assert ONE_LINE.fullmatch(done.stderr), (args, done.stderr)
    assert sqlite_schema(config.db_path) == schema  # nothing was written to it


async def test_a_postgres_catalog_newer_than_the_code_is_refused(postgres: Cluster, tmp_path):
    url = postgres.new_database()
    migrate_postgres(url, where="test")
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(
            "INSERT INTO schema_version VALUES (%s, 'from the future', 0, 'applied')",
            (LATEST + 3,),
        )
    config = Config.load({"data_dir": str(tmp_path / "data"), "database": url}, environ={})
    with pytest.raises(CatalogTooNew, match=f"has schema version {LATEST + 3}; this Stowage"):
        await open_catalog(config)
    done = subprocess.run(
        [sys.executable, "-m", "app.cli", "users", "list", "--data-dir", str(config.data_dir),
         "--database", url],
        capture_output=True, text=True, cwd=ROOT, timeout=60, env=_environment(),
    )  # fmt: skip
    assert done.returncode == 2 and ONE_LINE.fullmatch(done.stderr), done.stderr


def _at_once(migrate, times: int = 4) -> list[int]:
    results: list[int] = []
    errors: list[BaseException] = []

    def one() -> None:
        try:
            results.append(migrate())
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=one) for _ in range(times)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert not errors, errors
    return results


def test_processes_opening_one_catalog_at_once_migrate_it_once(postgres: Cluster, tmp_path):
    url = postgres.new_database()
    assert _at_once(lambda: migrate_postgres(url, where="test")) == [LATEST] * 4
    with psycopg.connect(url) as conn:
        assert conn.execute("SELECT count(*) FROM schema_version").fetchone() == (LATEST,)
    path = tmp_path / "stowage.db"
    assert _at_once(lambda: migrate_sqlite(path)) == [LATEST] * 4
    assert len(version_rows(path)) == LATEST


# The migrations themselves -------------------------------------------------------------------

_MADE = re.compile(
    r"CREATE (?:OR REPLACE )?(TABLE|INDEX|TRIGGER) (?:IF NOT EXISTS )?(\w+)"
    r"|ALTER TABLE (\w+) ADD COLUMN (\w+)"
)


def _made(statements: tuple[str, ...]) -> set[tuple[str, str]]:
    made = set()
    for statement in statements:
        for kind, name, table, column in _MADE.findall(statement):
            made.add((kind, name) if kind else ("COLUMN", f"{table}.{column}"))
    return made


@pytest.mark.parametrize("migration", MIGRATIONS, ids=lambda m: f"{m.number}-{m.name}")
def test_each_migration_makes_the_same_things_in_both_dialects(migration):
    """What the regex translation's check did (a SQLite trigger without a PostgreSQL
    twin stopped the start): each table, index, trigger and column is written for both."""
    assert migration.sqlite and migration.postgres
    assert _made(migration.sqlite) == _made(migration.postgres)


WEB_APP_LOADED = (
    "import sys, app.cli.accounts, app.cli.ops, app.cli.main;"
    " print(sorted(m for m in sys.modules if m == 'app.main' or m.startswith('app.features')))"
)


def test_the_commands_but_serve_never_import_the_web_app():
    done = subprocess.run(
        [sys.executable, "-c", WEB_APP_LOADED],
        capture_output=True, text=True, cwd=ROOT, timeout=60,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"
