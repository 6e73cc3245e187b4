"""Keeping a data dir whole, in process: the start-up reclaim, the running sweep,
`stowage check [--repair]` and the refusals of `stowage backup`. The same under
`kill -9` and a live server is in test_ops_server.py."""

import asyncio
import hashlib
import os
import shutil
import tempfile
import time
from pathlib import Path

import pytest
from stario.testing import TestClient
from tests.support.fixtures import SETUP_TOKEN, bearer, request_policy, signed_in_client

from app.cli.main import main
from app.config import Config
from app.main import make_bootstrap
from app.resumable.uploads import new_upload_id
from app.storage.ids import new_blob_id

BIG = 9 * 1024 * 1024  # more than two 4 MiB write batches


def plant_blob(config: Config, body: bytes = b"orphan", *, age: float = 0.0) -> Path:
    """A committed-looking blob with no row, as a crash between rename and commit leaves."""
    blob_id = new_blob_id()
    path = config.uploads_dir / blob_id[:2] / blob_id
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(body)
    if age:
        then = time.time() - age
        os.utime(path, (then, then))
    return path


def plant_temp(config: Config, size: int = 10) -> Path:
    path = config.uploads_dir / ".incoming" / f"{new_blob_id()}.part"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"t" * size)
    return path


def blob_of(config: Config, file_id: str) -> Path:
    return config.uploads_dir / file_id[:2] / file_id


def check(config: Config, *flags: str) -> int:
    database = [] if config.database is None else ["--database", config.database]
    return main(["check", "--data-dir", str(config.data_dir), *database, *flags])


async def test_start_up_removes_every_temp_file_and_reclaims_blobs_without_a_row(config, owner):
    async with signed_in_client(config, owner[1]) as client:
        kept = (await client.put("/uploads/kept.bin", content=b"k" * BIG)).json()["files"][0]
    # What kill -9 leaves: temp files of uploads in flight (fresh ones too), and
    # blobs renamed into place whose row never committed.
    temps = [plant_temp(config), plant_temp(config, 5 * 1024 * 1024)]
    orphans = [plant_blob(config), plant_blob(config, b"x" * BIG, age=7200)]
    async with signed_in_client(config, owner[1]) as client:
        assert not any(p.exists() for p in temps + orphans)
        download = await client.get(kept["url"])
        assert hashlib.sha256(download.content).hexdigest() == kept["sha256"]
    assert check(config) == 0


async def test_the_running_sweep_reclaims_old_orphans_only_and_reports_missing_blobs(
    config, owner, capfd
):
    async with TestClient(
        make_bootstrap(config, setup_token=SETUP_TOKEN, sweep_every=0.05),
        requests=request_policy(config),
        headers=bearer(owner[1]),
        base_url=config.public_url,
    ) as client:
        first, second = [
            (await client.put(f"/uploads/{n}.txt", content=n.encode() * 100)).json()["files"][0]
            for n in ("first", "second")
        ]
        # A blob whose row is merely not committed yet looks like this: new, no row.
        young = plant_blob(config)
        old = plant_blob(config, age=3600)
        # An old blob that has its row is a file, however old.
        then = time.time() - 3600
        os.utime(blob_of(config, first["id"]), (then, then))
        blob_of(config, second["id"]).unlink()  # a row without its blob
        temp = plant_temp(config)  # an upload in flight, as far as the sweep knows
        for _ in range(100):
            if not old.exists():
                break
            await asyncio.sleep(0.05)
        assert not old.exists()
        assert young.exists() and temp.exists()
        assert (await client.get(first["url"])).content == b"first" * 100
        # Reported, never deleted: the row is all that names the file.
        listed = [f["id"] for f in (await client.get("/api/files")).json()["files"]]
        assert second["id"] in listed
        for _ in range(100):
            if second["id"] in capfd.readouterr().err:
                break
            await asyncio.sleep(0.05)
        else:
            raise AssertionError("the sweep did not report the row without a blob")


def test_check_counts_what_it_finds_and_repair_reclaims_it(config, owner, capsys):
    asyncio.run(_upload_two(config, owner[1]))
    assert check(config) == 0
    assert "consistent" in capsys.readouterr().out

    orphan = plant_blob(config, b"o" * 1000)
    temp = plant_temp(config, 20)
    assert check(config) == 1
    out = capsys.readouterr().out
    assert _line(out, "rows").split()[1:2] == ["2"]
    assert _line(out, "blobs").split()[1:2] == ["3"]
    assert _line(out, "orphans").split()[1:4] == ["1", "(1000", "bytes)"]
    assert _line(out, "temp files").split()[2:5] == ["1", "(20", "bytes)"]
    assert orphan.name in out and "PROBLEM" in out

    assert check(config, "--repair") == 0
    out = capsys.readouterr().out
    assert "removed 1 temp file(s) (20 bytes) and 1 orphan blob(s) (1000 bytes)" in out
    assert not orphan.exists() and not temp.exists()
    assert len(list(config.uploads_dir.glob("??/*"))) == 2


def test_a_row_without_a_blob_is_a_problem_that_repair_leaves_for_a_person(config, owner, capsys):
    ids = asyncio.run(_upload_two(config, owner[1]))
    blob_of(config, ids[0]).unlink()
    assert check(config) == 1
    assert _line(capsys.readouterr().out, "missing").split()[1] == "1"
    assert check(config, "--repair") == 1
    out = capsys.readouterr().out
    assert f"missing    {ids[0]}" in out and "DELETE /files/{id}" in out


def test_check_reports_and_repair_removes_files_of_no_resumable_upload(config, owner, capsys):
    """What a failed tus concatenation once left under uploads/.resumable (its output,
    with no row) filled the disk while `stowage check` said "consistent"."""
    unfinished = asyncio.run(_start_a_resumable_upload(config, owner[1], b"kept" * 100))
    held = config.uploads_dir / ".resumable"
    assert check(config) == 0
    capsys.readouterr()

    stray = held / new_upload_id()
    stray.write_bytes(b"s" * 3000)
    odd = held / "not-an-upload"
    odd.write_bytes(b"o" * 10)
    assert check(config) == 1
    out = capsys.readouterr().out
    assert _line(out, "resumable").split()[1:4] == ["3", "(3.3", "KiB)"]
    assert "2 of them without an upload" in out
    assert str(stray) in out and str(odd) in out and "PROBLEM" in out
    assert unfinished not in out

    assert check(config, "--repair") == 0
    out = capsys.readouterr().out
    assert "removed 2 resumable-upload file(s) without an upload (2.9 KiB)" in out
    assert not stray.exists() and not odd.exists()
    assert [p.name for p in held.iterdir()] == [unfinished]
    assert _line(out, "resumable").split()[1:4] == ["1", "(400", "bytes)"]
    assert "consistent" in out


async def _start_a_resumable_upload(config: Config, token: str, first: bytes) -> str:
    """A tus upload of twice `first`'s length with `first` sent: its upload id."""
    tus = {"tus-resumable": "1.0.0"}
    async with signed_in_client(config, token) as client:
        made = await client.post("/tus/", headers={**tus, "upload-length": str(2 * len(first))})
        assert made.status_code == 201, made.text
        url = made.headers.get("location")
        sent = await client.patch(
            url, content=first, headers={**tus, "upload-offset": "0",
                                         "content-type": "application/offset+octet-stream"},
        )  # fmt: skip
        assert sent.status_code == 204, sent.text
    return str(url.rsplit("/", 1)[-1])


def test_check_of_a_dir_without_a_catalog_is_exit_2(tmp_path, capsys):
    assert main(["check", "--data-dir", str(tmp_path / "nothing")]) == 2
    assert "holds no Stowage catalog" in capsys.readouterr().err
    assert not (tmp_path / "nothing").exists()


def test_backup_refuses_a_destination_that_is_not_empty(config, owner, tmp_path, capsys):
    dest = tmp_path / "dest"
    dest.mkdir()
    (dest / "something").write_text("mine")
    assert main(["backup", str(dest), "--data-dir", str(config.data_dir)]) == 2
    assert "is not empty" in capsys.readouterr().err
    assert [p.name for p in dest.iterdir()] == ["something"]


def test_backup_of_a_stopped_server_checks_and_copies(config, owner, tmp_path, capsys):
    ids = asyncio.run(_upload_two(config, owner[1]))
    for flags, links in (([], 2), (["--copy"], 1)):
        dest = tmp_path / f"dest{links}"
        assert main(["backup", str(dest), "--data-dir", str(config.data_dir), *flags]) == 0
        assert "backed up 2 file(s)" in capsys.readouterr().out
        for file_id in ids:
            copied = dest / "uploads" / file_id[:2] / file_id
            assert copied.read_bytes() == blob_of(config, file_id).read_bytes()
            assert copied.stat().st_nlink == links
        assert main(["check", "--data-dir", str(dest)]) == 0


async def _upload_two(config: Config, token: str) -> list[str]:
    async with signed_in_client(config, token) as client:
        return [
            (await client.put(f"/uploads/{n}", content=n.encode() * 50)).json()["files"][0]["id"]
            for n in ("a", "b")
        ]


def _line(out: str, label: str) -> str:
    return next(line for line in out.splitlines() if line.startswith(label))


def test_backup_to_another_filesystem_copies(config, owner, capsys):
    other = Path("/dev/shm")
    if not other.is_dir() or other.stat().st_dev == config.data_dir.parent.stat().st_dev:
        pytest.skip("no second filesystem at /dev/shm")
    ids = asyncio.run(_upload_two(config, owner[1]))
    dest = Path(tempfile.mkdtemp(dir=other)) / "backup"
    try:
        assert main(["backup", str(dest), "--data-dir", str(config.data_dir)]) == 0
        assert "0 hard-linked, 2 copied" in capsys.readouterr().out
        for file_id in ids:
            copied = dest / "uploads" / file_id[:2] / file_id
            assert copied.read_bytes() == blob_of(config, file_id).read_bytes()
        assert main(["check", "--data-dir", str(dest)]) == 0
    finally:
        shutil.rmtree(dest.parent)


async def _two_files_in_a_folder(config: Config, token: str) -> str:
    ids = await _upload_two(config, token)
    async with signed_in_client(config, token) as client:
        made = await client.post("/api/folders", json={"name": "Kept"})
        folder = made.json()["folder"]["id"]
        moved = await client.post("/api/files/move", json={"ids": ids, "to": folder})
        assert moved.status_code == 200, moved.text
    return folder


def _catalog_write(config: Config, sql: str, params: tuple[object, ...]) -> None:
    if config.database is None:
        import sqlite3

        with sqlite3.connect(config.db_path) as conn:
            conn.execute(sql, params)
    else:
        import psycopg

        with psycopg.connect(config.database, autocommit=True) as conn:
            conn.execute(sql.replace("?", "%s"), params)


def test_check_finds_a_folder_whose_counts_drifted_and_repair_counts_again(config, owner, capsys):
    folder = asyncio.run(_two_files_in_a_folder(config, owner[1]))
    assert check(config) == 0
    out = capsys.readouterr().out
    assert _line(out, "folders").split()[1:3] == ["1", "0"]
    # Counters the triggers never leave like this (a hand edit, a bug): found, then fixed.
    _catalog_write(config, "UPDATE folders SET size = 7, files = 9 WHERE id = ?", (folder,))
    assert check(config) == 1
    out = capsys.readouterr().out
    assert f"counts     folder {folder}: 9 files, 7 bytes; its files: 2, 100 bytes" in out
    assert "PROBLEM" in out
    assert check(config, "--repair") == 0
    out = capsys.readouterr().out
    assert "repaired: counted the files of 1 folder(s) again" in out and "consistent" in out
