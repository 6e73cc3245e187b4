"""The files of unfinished resumable uploads (app/storage/local/partials.py)."""

import os

import pytest

from app.storage.local import partials
from app.storage.local.partials import APPEND_WRITEBACK_BYTES, PartialFiles
from app.storage.local.writer import BlobStore

MiB = 1024 * 1024


async def test_an_append_starts_write_back_of_its_own_bytes(tmp_path, monkeypatch):
    """Write-back runs ahead of an append's fsync over the file offsets the append
    wrote, every APPEND_WRITEBACK_BYTES: a 16 MiB append at offset 48 MiB asks for
    48-56 and 56-64 MiB (it once asked for 0-8 MiB: bytes long durable, no help)."""
    started: list[tuple[int, int]] = []
    monkeypatch.setattr(partials, "_start_writeback", lambda fd, at, n: started.append((at, n)))
    store = BlobStore(tmp_path / "uploads")
    files = PartialFiles(store)
    files.prepare()
    upload_id = "u" * 32
    await files.create(upload_id)
    start = 48 * MiB
    await files.truncate(upload_id, start)
    writer = files.appender(upload_id, start, None)
    for _ in range(16):
        await writer.write(os.urandom(MiB))
    assert await writer.flush() == 16 * MiB
    store.close()
    assert started == [(start, APPEND_WRITEBACK_BYTES), (start + 8 * MiB, APPEND_WRITEBACK_BYTES)]
    assert os.path.getsize(files.path_of(upload_id)) == start + 16 * MiB


@pytest.mark.parametrize("start", [0, 5 * MiB + 3])
async def test_write_back_never_reaches_before_the_append(tmp_path, monkeypatch, start):
    started: list[tuple[int, int]] = []
    monkeypatch.setattr(partials, "_start_writeback", lambda fd, at, n: started.append((at, n)))
    store = BlobStore(tmp_path / "uploads")
    files = PartialFiles(store)
    files.prepare()
    upload_id = "v" * 32
    await files.create(upload_id)
    await files.truncate(upload_id, start)
    writer = files.appender(upload_id, start, None)
    for _ in range(40):
        await writer.write(os.urandom(MiB))
    await writer.flush()
    store.close()
    assert started and all(at >= start and at + n <= start + 40 * MiB for at, n in started)
