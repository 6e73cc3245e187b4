"""The Datastar bundle is fetched, checked and put in place whole, also by several
processes at once (two nodes started together, the suite's two workers)."""

import hashlib
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from app.bundle import DATASTAR_SHA256, ensure_datastar
from app.config import uv_executable


def test_fetches_at_once_each_put_a_whole_checked_bundle_and_leave_nothing(tmp_path: Path):
    target = tmp_path / "vendor" / "datastar.js"
    target.parent.mkdir()
    target.write_bytes(b"not the bundle")  # a stale or damaged copy is replaced
    with ThreadPoolExecutor(4) as pool:
        fetched = list(pool.map(lambda _: ensure_datastar(uv_executable(), target), range(4)))
    assert all(fetched)
    assert hashlib.sha256(target.read_bytes()).hexdigest() == DATASTAR_SHA256
    assert [p.name for p in target.parent.iterdir()] == ["datastar.js"]
    assert target.stat().st_mode & 0o777 == 0o644
    assert ensure_datastar(uv_executable(), target) is False  # in place: nothing fetched
