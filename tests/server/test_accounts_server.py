"""Accounts on the real `stowage serve` and through the `stowage users` / `stowage
tokens` commands as a person runs them: failures counted per client address (and
behind a trusted proxy), the first run's setup link, a password change ending sessions."""

import asyncio
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
from tests.support.accounts import CREDENTIAL_CHANGE_SEEN_SECONDS, fresh_client, sign_in
from tests.support.fixtures import (
    PASSWORD,
    ROOT,
    add_account,
    bearer,
    stored_blobs,
)

from app.config import Config


@pytest.mark.slow
def test_users_and_tokens_from_the_command_line(tmp_path):
    data = tmp_path / "data"
    added = stowage("users", "add", "Alice", "--admin", "--quota", "10MiB", data_dir=data,
                    stdin=PASSWORD + "\n")  # fmt: skip
    assert (added.returncode, added.stderr) == (0, "")
    dup = stowage("users", "add", "alice", data_dir=data, stdin=PASSWORD + "\n")
    assert dup.returncode == 2 and dup.stderr.count("\n") == 1 and "already exists" in dup.stderr
    weak = stowage("users", "add", "bob", data_dir=data, stdin="short\n")
    assert weak.returncode == 2 and "at least 10 characters" in weak.stderr
    bad = stowage("users", "add", "no spaces", data_dir=data, stdin=PASSWORD + "\n")
    assert bad.returncode == 2 and "letters, digits" in bad.stderr
    assert stowage("users", "add", "bob", data_dir=data, stdin=PASSWORD + "\n").returncode == 0

    listing = stowage("users", "list", data_dir=data).stdout.splitlines()
    assert listing[0].split() == ["NAME", "ADMIN", "QUOTA", "USED", "FILES", "CREATED"]
    assert listing[1].split()[:6] == ["Alice", "yes", "10", "MiB", "0", "bytes"]
    assert listing[2].split()[:3] == ["bob", "no", "none"]

    token = stowage("tokens", "add", "alice", "--label", "ci", data_dir=data)
    assert token.returncode == 0 and len(token.stdout.splitlines()) == 1
    assert token.stdout.startswith("stw_")
    listed = stowage("tokens", "list", "alice", data_dir=data).stdout.splitlines()
    assert listed[0].split() == ["ID", "CREATED", "LAST_USED", "LABEL"]
    assert len(listed) == 2 and token.stdout.startswith(f"stw_{listed[1].split()[0]}_")
    assert stowage("tokens", "revoke", listed[1].split()[0], data_dir=data).returncode == 0
    assert stowage("tokens", "list", "alice", data_dir=data).stdout.split() == listed[0].split()
    assert stowage("tokens", "revoke", "nope", data_dir=data).returncode == 2
    assert stowage("tokens", "add", "nobody", data_dir=data).returncode == 2

    assert stowage("users", "quota", "bob", "1GiB", data_dir=data).stdout.strip() == (
        "quota of bob: 1 GiB"
    )
    assert stowage("users", "quota", "bob", "none", data_dir=data).returncode == 0
    assert stowage("users", "quota", "bob", "lots", data_dir=data).returncode == 2
    assert stowage("users", "passwd", "bob", data_dir=data, stdin="x" * 12 + "\n").returncode == 0
    assert stowage("users", "remove", "bob", data_dir=data).returncode == 0
    assert "bob" not in stowage("users", "list", data_dir=data).stdout
    # Each change is in the admin log the Admin screen shows, by "the command line";
    # the refused quota is not.
    with sqlite3.connect(data / "stowage.db") as catalog:
        logged = catalog.execute(
            "SELECT actor_name, action, target FROM admin_log ORDER BY at, rowid"
        ).fetchall()
    assert [(action, target) for _, action, target in logged if target == "bob"] == [
        ("created account", "bob"), ("set quota", "bob"), ("set quota", "bob"),
        ("set password", "bob"), ("removed account", "bob"),
    ]  # fmt: skip
    assert {actor for actor, _, _ in logged} == {"the command line"}


@pytest.mark.slow
async def test_remove_refuses_while_the_account_owns_files(tmp_path):
    config = Config.load({"data_dir": str(tmp_path / "data")}, environ={})
    account, token = await add_account(config, "carol")
    async with fresh_client(config, headers=bearer(token)) as client:
        assert (await client.put("/uploads/c.txt", content=b"carol's")).status_code == 201
    refused = await asyncio.to_thread(
        stowage, "users", "remove", "carol", data_dir=config.data_dir, database=config.database
    )
    assert refused.returncode == 2 and "--delete-files" in refused.stderr
    assert len(stored_blobs(config)) == 1
    removed = await asyncio.to_thread(
        stowage,
        "users",
        "remove",
        "carol",
        "--delete-files",
        data_dir=config.data_dir,
        database=config.database,
    )
    assert removed.returncode == 0 and "1 file" in removed.stdout
    assert stored_blobs(config) == []


@pytest.mark.slow
async def test_a_password_change_ends_every_session(config, owner):
    _, token = owner
    async with fresh_client(config) as client:
        await sign_in(client)
        assert (await client.get("/api/files")).status_code == 200
        changed = await asyncio.to_thread(
            stowage,
            "users",
            "passwd",
            "owner",
            data_dir=config.data_dir,
            stdin="a new password\n",
            database=config.database,
        )
        assert changed.returncode == 0
        await asyncio.sleep(CREDENTIAL_CHANGE_SEEN_SECONDS)
        assert (await client.get("/api/files")).status_code == 401
        assert (await sign_in(client)).status_code == 401
        assert (await sign_in(client, password="a new password")).status_code == 303
        # API tokens are not sessions: they stay until revoked.
        assert (await client.get("/api/files", headers=bearer(token))).status_code == 200


@pytest.mark.slow
def test_failures_are_counted_per_client_address_on_the_real_server(tmp_path):
    """Loopback is a /8: the guesser connects from 127.0.0.2, the owner from 127.0.0.1."""
    import httpx
    from tests.support.fixtures import start_server

    servers = start_server(tmp_path)
    server = next(servers)
    try:
        guesser = httpx.Client(
            base_url=server.base_url,
            transport=httpx.HTTPTransport(local_address="127.0.0.2"),
            follow_redirects=False,
        )
        with guesser:
            for n in range(5):
                answer = guesser.post("/login", data={"name": f"guess{n}", "password": "x" * 12})
                assert answer.status_code == 401
            locked = guesser.post("/login", data={"name": "owner", "password": PASSWORD})
            assert locked.status_code == 429 and locked.headers.get("retry-after")
        with httpx.Client(base_url=server.base_url, follow_redirects=False) as person:
            signed_in = person.post("/login", data={"name": "owner", "password": PASSWORD})
            assert signed_in.status_code == 303
            assert person.get("/api/files").status_code == 200
    finally:
        servers.close()


@pytest.mark.slow
def test_first_run_prints_the_setup_link_and_the_cli_works_while_serving(tmp_path):
    import re

    import httpx
    from tests.support.fixtures import start_server

    servers = start_server(tmp_path, account=False)
    server = next(servers)
    try:
        printed = (tmp_path / "server.log").read_text()
        [link] = re.findall(r"http://127\.0\.0\.1:\d+/setup\?token=[\w-]+", printed)
        assert link.startswith(server.base_url)
        with httpx.Client(base_url=server.base_url, follow_redirects=False) as browser:
            assert browser.get("/setup").status_code == 404
            assert browser.get(link.replace(server.base_url, "")).status_code == 200
            assert browser.get("/api/files").status_code == 401
        # The CLI, against the data dir of the running server.
        data = server.data_dir
        assert stowage("users", "add", "dora", data_dir=data, stdin=PASSWORD + "\n").returncode == 0
        token = stowage("tokens", "add", "dora", data_dir=data).stdout.strip()
        with httpx.Client(base_url=server.base_url, headers=bearer(token)) as script:
            assert script.put("/uploads/a.txt", content=b"a").status_code == 201
            assert len(script.get("/api/files").json()["files"]) == 1
            token_id = token.split("_")[1]
            assert stowage("tokens", "revoke", token_id, data_dir=data).returncode == 0
            # A change by another process is seen within a quarter of a second (docs/accounts.md).
            time.sleep(0.3)
            assert script.get("/api/files").status_code == 401
        # An account exists now: the setup link is dead.
        assert httpx.get(link).status_code == 404
    finally:
        servers.close()


@pytest.mark.slow
def test_behind_a_trusted_proxy_failures_count_per_forwarded_client(tmp_path):
    import httpx
    from tests.support.fixtures import start_server

    servers = start_server(tmp_path, "--trusted-proxies", "127.0.0.1")
    server = next(servers)
    try:
        with httpx.Client(base_url=server.base_url, follow_redirects=False) as proxy:
            guesser = {"x-forwarded-for": "203.0.113.9"}
            for n in range(5):
                wrong = {"name": f"guess{n}", "password": "x" * 12}
                assert proxy.post("/login", data=wrong, headers=guesser).status_code == 401
            right = {"name": "owner", "password": PASSWORD}
            assert proxy.post("/login", data=right, headers=guesser).status_code == 429
            # What the client wrote left of the proxy's entry proves nothing.
            spoofed = {"x-forwarded-for": "198.51.100.7, 203.0.113.9"}
            assert proxy.post("/login", data=right, headers=spoofed).status_code == 429
            person = {"x-forwarded-for": "198.51.100.7"}
            assert proxy.post("/login", data=right, headers=person).status_code == 303
    finally:
        servers.close()


def stowage(
    *args: str, data_dir: Path, stdin: str = "", database: str | None = None
) -> subprocess.CompletedProcess[str]:
    """A `stowage` command; `database` is its --database (by STOWAGE_DATABASE)."""
    env = {"STOWAGE_DATA_DIR": str(data_dir), "PATH": "/usr/bin:/bin"}
    if database is not None:
        env["STOWAGE_DATABASE"] = database
    return subprocess.run(
        [sys.executable, "-m", "app.cli", *args],
        input=stdin,
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=env,
        timeout=60,
    )
