"""A data dir stays whole against the real server: `kill -9` under concurrent uploads
of every transport, one server per data dir, `stowage check` beside a running server,
and a backup taken during uploads that checks, verifies byte for byte, and serves."""

import asyncio
import base64
import hashlib
import os
import random
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest
from tests.support.fixtures import ROOT, add_account, bearer, free_port

from app.config import Config

pytestmark = pytest.mark.slow

BIG = 10 * 1000 * 1000  # spans several 4 MiB write batches
SIGNALS_BIG = 5 * 1000 * 1000  # base64 keeps it under the 16 MiB signals cap
SMALL = 30_000


class Stowage:
    """`stowage serve` on one data dir, started and ended by the test (kill -9 included)."""

    def __init__(self, data_dir: Path, log: Path) -> None:
        self.data_dir = data_dir
        self.port = free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        self.log = log.open("ab")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "app.cli", "serve", "--port", str(self.port),
             "--data-dir", str(data_dir), "--log", "off"],
            cwd=ROOT, stdout=self.log, stderr=subprocess.STDOUT,
        )  # fmt: skip
        deadline = time.monotonic() + 20
        while True:
            try:
                httpx.get(self.base_url + "/login", timeout=1)
                return
            except httpx.TransportError:
                if self.process.poll() is not None or time.monotonic() > deadline:
                    self.kill()
                    raise RuntimeError(log.read_text()) from None
                time.sleep(0.05)

    def kill(self) -> None:
        self.process.kill()
        self.process.wait(10)
        self.log.close()

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(10)
        self.log.close()


def stowage_command(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "app.cli", *args],
        cwd=ROOT, capture_output=True, text=True, timeout=60,
    )  # fmt: skip


def data_dir_with_account(tmp_path: Path) -> tuple[Path, str]:
    data_dir = tmp_path / "data"
    config = Config.load({"data_dir": str(data_dir)}, environ={})
    _, token = asyncio.run(add_account(config, "owner", admin=True))
    return data_dir, token


# Each transport: (name, body) -> the request's keyword arguments for httpx.
TRANSPORTS: dict[str, Callable[[str, bytes], dict]] = {
    "put": lambda name, body: {"method": "PUT", "url": f"/uploads/{name}", "content": body},
    "post-raw": lambda name, body: {
        "method": "POST", "url": "/uploads", "params": {"name": name}, "content": body,
    },
    "multipart": lambda name, body: {
        "method": "POST", "url": "/uploads",
        "files": {"file": (name, body, "application/octet-stream")},
    },
    "signals": lambda name, body: {
        "method": "POST", "url": "/uploads",
        "json": {"files": [{"name": name, "contents": base64.b64encode(body).decode(),
                            "mime": "application/octet-stream"}]},
    },
}  # fmt: skip


class Uploaders:
    """Threads that upload without pause, every transport, big and small bodies, and
    remember every upload acknowledged with 201 (id -> sha256 the client computed)."""

    def __init__(self, base_url: str, token: str, per_transport: int = 2) -> None:
        self.base_url = base_url
        self.token = token
        self.acknowledged: dict[str, str] = {}
        self.attempts = 0
        self.stopping = threading.Event()
        self._lock = threading.Lock()
        shared = os.urandom(BIG)
        self._threads = [
            threading.Thread(target=self._run, args=(transport, n, shared), daemon=True)
            for transport in TRANSPORTS
            for n in range(per_transport)
        ]
        for thread in self._threads:
            thread.start()

    def _run(self, transport: str, n: int, shared: bytes) -> None:
        big = SIGNALS_BIG if transport == "signals" else BIG
        with httpx.Client(base_url=self.base_url, headers=bearer(self.token), timeout=20) as http:
            count = 0
            while not self.stopping.is_set():
                count += 1
                size = big if count % 2 == n % 2 else SMALL
                # A unique head makes every body distinct at no cost.
                body = os.urandom(16) + shared[: size - 16]
                try:
                    answer = http.request(**TRANSPORTS[transport](f"{transport}-{n}.bin", body))
                except httpx.HTTPError:
                    time.sleep(0.02)  # the server is down: wait for the next one
                    continue
                with self._lock:
                    self.attempts += 1
                if answer.status_code == 201:
                    [stored] = answer.json()["files"]
                    expected = hashlib.sha256(body).hexdigest()
                    assert stored["sha256"] == expected
                    with self._lock:
                        self.acknowledged[stored["id"]] = expected

    def stop(self) -> None:
        self.stopping.set()
        for thread in self._threads:
            thread.join(30)


def on_disk(data_dir: Path) -> tuple[dict[str, Path], list[Path]]:
    uploads = data_dir / "uploads"
    blobs = {p.name: p for p in uploads.glob("??/*") if p.is_file()}
    return blobs, sorted((uploads / ".incoming").glob("*"))


def catalog(data_dir: Path) -> dict[str, tuple[str, int]]:
    conn = sqlite3.connect(f"{(data_dir / 'stowage.db').as_uri()}?mode=ro", uri=True)
    try:
        found = conn.execute("SELECT id, sha256, size FROM files")
        return {file_id: (sha, size) for file_id, sha, size in found}
    finally:
        conn.close()


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        while piece := f.read(1 << 20):
            digest.update(piece)
    return digest.hexdigest()


def test_kill_9_under_concurrent_uploads_leaves_no_orphans_and_loses_nothing(tmp_path):
    data_dir, token = data_dir_with_account(tmp_path)
    log = tmp_path / "server.log"
    rng = random.Random(10)
    rounds, acknowledged, attempts = 5, {}, 0
    leftovers_seen = {"temp": 0, "orphans": 0}
    last_round_left = 0
    for _ in range(rounds):
        server = Stowage(data_dir, log)
        uploaders = Uploaders(server.base_url, token)
        time.sleep(rng.uniform(0.8, 1.6))
        server.kill()  # mid-upload: several bodies are on their way at any moment
        uploaders.stop()
        acknowledged.update(uploaders.acknowledged)
        attempts += uploaders.attempts
        blobs, temps = on_disk(data_dir)
        orphans = len(blobs.keys() - catalog(data_dir).keys())
        leftovers_seen["temp"] += len(temps)
        leftovers_seen["orphans"] += orphans
        last_round_left = len(temps) + orphans
    # With no server, check sees what the last crash left, and says so.
    crashed = stowage_command("check", "--data-dir", str(data_dir))
    assert crashed.returncode == (1 if last_round_left else 0), crashed.stdout

    server = Stowage(data_dir, log)
    try:
        blobs, temps = on_disk(data_dir)
        rows = catalog(data_dir)
        assert temps == []
        assert sorted(blobs.keys() - rows.keys()) == []  # no orphan blob
        assert sorted(rows.keys() - blobs.keys()) == []  # no row without its blob
        for file_id, expected in acknowledged.items():
            assert rows[file_id][0] == expected
            assert sha256_of(blobs[file_id]) == expected
        with httpx.Client(base_url=server.base_url, headers=bearer(token)) as http:
            listed = http.get("/api/files", params={"limit": 10000}).json()["files"]
            assert {f["id"] for f in listed} == rows.keys()
            sample = rng.choice(sorted(acknowledged))
            got = http.get(f"/files/{sample}").content
            assert hashlib.sha256(got).hexdigest() == acknowledged[sample]
        beside = stowage_command("check", "--data-dir", str(data_dir))
        assert beside.returncode == 0, beside.stdout
        assert "a server is running" in beside.stdout
    finally:
        server.stop()
    print(
        f"\nkill -9: {rounds} rounds, {attempts} uploads answered before the kills, "
        f"{len(acknowledged)} acknowledged (201), all present and byte-identical; "
        "left by the crashes: "
        f"{leftovers_seen['temp']} temp files, {leftovers_seen['orphans']} blobs without a "
        f"row; after restart: 0 temp files, 0 orphans, 0 rows without a blob"
    )
    assert len(acknowledged) >= rounds  # the rounds did upload


def test_one_server_per_data_dir_and_repair_waits_for_it(tmp_path):
    data_dir, _ = data_dir_with_account(tmp_path)
    server = Stowage(data_dir, tmp_path / "server.log")
    try:
        second = stowage_command(
            "serve", "--data-dir", str(data_dir), "--port", str(free_port()), "--log", "off"
        )
        assert second.returncode == 2
        [line] = second.stderr.splitlines()
        assert str(data_dir.resolve()) in line and "another stowage process" in line
        repair = stowage_command("check", "--repair", "--data-dir", str(data_dir))
        assert repair.returncode == 2
        assert "stop the server to repair" in repair.stderr
        assert httpx.get(server.base_url + "/login").status_code == 200  # still serving
    finally:
        server.stop()
    # Stopped (and killed, below), the dir is free again: the kernel drops the lock.
    server = Stowage(data_dir, tmp_path / "server.log")
    server.kill()
    assert stowage_command("check", "--repair", "--data-dir", str(data_dir)).returncode == 0


def test_backup_during_uploads_checks_serves_and_matches_byte_for_byte(tmp_path):
    data_dir, token = data_dir_with_account(tmp_path)
    server = Stowage(data_dir, tmp_path / "server.log")
    dest = tmp_path / "backup"
    try:
        uploaders = Uploaders(server.base_url, token, per_transport=1)
        try:
            time.sleep(1.0)
            started = time.monotonic()
            made = stowage_command("backup", str(dest), "--data-dir", str(data_dir))
            seconds = time.monotonic() - started
        finally:
            uploaders.stop()
        assert made.returncode == 0, made.stdout + made.stderr
    finally:
        server.stop()
    checked = stowage_command("check", "--data-dir", str(dest))
    assert checked.returncode == 0, checked.stdout
    rows = catalog(dest)
    assert rows, "the backup holds no file"
    blobs, temps = on_disk(dest)
    assert temps == [] and blobs.keys() == rows.keys()
    for file_id, (sha, size) in rows.items():
        assert blobs[file_id].stat().st_size == size
        assert sha256_of(blobs[file_id]) == sha
        assert uploaders.acknowledged.get(file_id, sha) == sha
    # The copy is a data dir: it serves, with the same accounts and tokens.
    copy = Stowage(dest, tmp_path / "copy.log")
    try:
        with httpx.Client(base_url=copy.base_url, headers=bearer(token)) as http:
            listed = http.get("/api/files", params={"limit": 10000}).json()["files"]
            assert {f["id"] for f in listed} == rows.keys()
            some = sorted(rows)[0]
            assert hashlib.sha256(http.get(f"/files/{some}").content).hexdigest() == rows[some][0]
    finally:
        copy.stop()
    print(
        f"\nbackup during uploads: {made.stdout.strip()} (command {seconds:.2f} s); "
        f"{len(rows)} rows verified by sha256"
    )
