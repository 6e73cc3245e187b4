"""Thumbnails (app/previews, app/features/previews): what is made, from what, and
what a hostile image costs (nothing but its own preview)."""

import asyncio
import hashlib
import random
import time
from pathlib import Path

import pytest
from PIL import Image
from pillow_heif import register_heif_opener
from stario import Relay
from tests.support.fixtures import add_account, bearer, both_stores, signed_in_client
from tests.support.images import image_bytes, rotated_jpeg, webp_size
from tests.support.media import make_video

from app.catalog.open import open_catalog
from app.cli.main import main
from app.config import Config
from app.features.previews.handlers import CACHE_CONTROL
from app.files.store import add_files, remove_file
from app.ingest.pipeline import IngestedFile
from app.previews import thumbnails as thumbnails_module
from app.previews.make import (
    MAX_FRAMES,
    THUMBNAIL_EDGE,
    configure_pillow,
    make_thumbnail,
    temp_path_for,
)
from app.previews.pool import FairQueue, WorkerPool
from app.previews.thumbnails import Thumbnails, ffmpeg_found, thumbnails_ready
from app.storage.ids import new_blob_id
from app.storage.local.store import LocalStore

register_heif_opener()


# --- making one thumbnail (in this process: the code the workers run) ---------------


@pytest.fixture(scope="module", autouse=True)
def pillow_as_in_a_worker():
    """The Pillow settings a worker runs with (not its memory limit: that is for a
    child process, not for pytest)."""
    before = Image.MAX_IMAGE_PIXELS
    configure_pillow()
    yield
    Image.MAX_IMAGE_PIXELS = before


@pytest.mark.parametrize(
    "fmt,save",
    [("JPEG", {}), ("PNG", {}), ("GIF", {}), ("WEBP", {}), ("HEIF", {"quality": 50})],
)
def test_each_format_gives_a_webp_at_most_320_on_the_long_side(tmp_path, fmt, save):
    source = tmp_path / "in"
    source.write_bytes(image_bytes(fmt, (1200, 500), **save))
    target = tmp_path / "out.webp"
    assert make_thumbnail(str(source), str(target))
    assert webp_size(target.read_bytes()) == (THUMBNAIL_EDGE, 133)
    assert not list(tmp_path.glob("*.tmp"))


def test_exif_orientation_is_applied(tmp_path):
    source = tmp_path / "in"
    source.write_bytes(rotated_jpeg())
    target = tmp_path / "out.webp"
    assert make_thumbnail(str(source), str(target))
    assert webp_size(target.read_bytes()) == (160, 320)


def test_a_small_image_is_not_enlarged(tmp_path):
    source = tmp_path / "in"
    source.write_bytes(image_bytes("PNG", (40, 30)))
    target = tmp_path / "out.webp"
    assert make_thumbnail(str(source), str(target))
    assert webp_size(target.read_bytes()) == (40, 30)


def test_a_decompression_bomb_gives_no_thumbnail(tmp_path):
    # A PNG of 10,000 x 10,000 (100 megapixels) of one colour: ~100 KB on disk.
    source = tmp_path / "bomb.png"
    Image.new("1", (10_000, 10_000)).save(source, "PNG")
    assert source.stat().st_size < 200_000
    assert not make_thumbnail(str(source), str(tmp_path / "out.webp"))
    assert not (tmp_path / "out.webp").exists()


def test_too_many_frames_gives_no_thumbnail(tmp_path):
    frames = [Image.new("L", (2, 2), (i % 2) * 255) for i in range(MAX_FRAMES + 1)]
    source = tmp_path / "frames.gif"
    frames[0].save(source, "GIF", save_all=True, append_images=frames[1:], duration=10)
    assert not make_thumbnail(str(source), str(tmp_path / "out.webp"))


@pytest.mark.parametrize(
    "data",
    [b"", b"not an image", image_bytes("JPEG")[:300], image_bytes("PNG")[:100], b"%PDF-1.4"],
)
def test_malformed_and_truncated_files_give_no_thumbnail(tmp_path, data):
    source = tmp_path / "in"
    source.write_bytes(data)
    assert not make_thumbnail(str(source), str(tmp_path / "out.webp"))
    assert not (tmp_path / "out.webp").exists()


# --- the worker pool: time limit, crashes, fuzz -----------------------------------


def sleep_forever(source: str, target: str) -> bool:
    """A job that never ends unless `source` says "quick" (the pool must kill it)."""
    if Path(source).read_bytes() != b"quick":
        import os

        Path(temp_path_for(target, os.getpid())).write_bytes(b"half a thumbnail")
        time.sleep(3600)
    Path(target).write_bytes(b"made")
    return True


async def test_a_job_past_the_time_limit_is_killed_and_the_pool_goes_on(tmp_path):
    slow, quick = tmp_path / "slow", tmp_path / "quick"
    slow.write_bytes(b"slow")
    quick.write_bytes(b"quick")
    pool = WorkerPool(workers=1, seconds=1.0, job=sleep_forever)
    try:
        started = time.monotonic()
        assert not await pool.run(str(slow), str(tmp_path / "a"))
        assert time.monotonic() - started < 10
        assert pool.timed_out == 1
        assert not list(tmp_path.glob("*.tmp"))  # the killed worker's half is gone
        assert await pool.run(str(quick), str(tmp_path / "b"))
        assert pool.started == 2  # the stuck child was replaced
    finally:
        await asyncio.to_thread(pool.close)


def mutations(seed: int, count: int) -> list[bytes]:
    """`count` damaged copies of small real images: flipped bytes, cut tails, spliced
    headers, inflated dimensions."""
    rng = random.Random(seed)
    originals = [
        image_bytes("JPEG", (64, 48)),
        rotated_jpeg(),
        image_bytes("PNG", (50, 40)),
        image_bytes("GIF", (30, 30)),
        image_bytes("WEBP", (40, 40)),
        image_bytes("HEIF", (64, 64), quality=30),
    ]
    found = []
    for n in range(count):
        data = bytearray(originals[n % len(originals)])
        how = n % 4
        if how == 0:
            for _ in range(rng.randint(1, 20)):
                data[rng.randrange(len(data))] = rng.randrange(256)
        elif how == 1:
            data = data[: rng.randrange(1, len(data))]
        elif how == 2:
            start = rng.randrange(len(data))
            data[start:start] = rng.randbytes(rng.randint(1, 64))
        else:
            # Large numbers where headers keep sizes and counts.
            for _ in range(4):
                at = rng.randrange(min(len(data), 64))
                data[at : at + 2] = b"\xff\xff"
        found.append(bytes(data))
    return found


async def test_fuzz_220_malformed_images_end_in_no_preview_or_a_real_thumbnail(tmp_path):
    pool = WorkerPool(workers=2, seconds=5.0)
    try:
        cases = mutations(seed=13, count=220)
        for n, data in enumerate(cases):
            (tmp_path / f"{n}.in").write_bytes(data)
        made = await asyncio.gather(
            *(pool.run(str(tmp_path / f"{n}.in"), str(tmp_path / f"{n}.webp")) for n in range(220))
        )
        for n, ok in enumerate(made):
            target = tmp_path / f"{n}.webp"
            assert ok == target.exists()
            if ok:
                width, height = webp_size(target.read_bytes())
                assert max(width, height) <= THUMBNAIL_EDGE
        assert not list(tmp_path.glob("*.tmp"))
        # The pool still works after all of that.
        (tmp_path / "good").write_bytes(image_bytes("JPEG"))
        assert await pool.run(str(tmp_path / "good"), str(tmp_path / "good.webp"))
    finally:
        await asyncio.to_thread(pool.close)


# --- the route -------------------------------------------------------------------


async def upload(client, name: str, body: bytes) -> dict:
    r = await client.post(f"/uploads?name={name}", content=body)
    assert r.status_code == 201, r.text
    return r.json()["files"][0]


async def wait_for_thumbnail(client, file_id: str, seconds: float = 20.0):
    deadline = time.monotonic() + seconds
    while True:
        r = await client.get(f"/files/{file_id}/thumbnail")
        if r.status_code == 200 or time.monotonic() > deadline:
            return r
        await asyncio.sleep(0.1)


@both_stores
async def test_an_uploaded_photo_gets_a_thumbnail_served_with_strong_etag_and_long_cache(
    client, config: Config
):
    photo = await upload(client, "photo.jpg", rotated_jpeg())
    r = await wait_for_thumbnail(client, photo["id"])
    assert r.status_code == 200
    assert r.headers.get("content-type") == "image/webp"
    assert webp_size(r.content) == (160, 320)
    etag = r.headers.get("etag")
    assert etag == f'"{hashlib.sha256(r.content).hexdigest()}"'  # strong: these bytes
    assert r.headers.get("cache-control") == CACHE_CONTROL
    again = await client.get(f"/files/{photo['id']}/thumbnail", headers={"if-none-match": etag})
    assert again.status_code == 304
    head = await client.head(f"/files/{photo['id']}/thumbnail")
    assert head.status_code == 200
    assert head.headers.get("content-length") == str(len(r.content))
    # Stored as a derived blob, which `stowage check` does not take for an orphan.
    thumb = config.uploads_dir / ".thumbs" / photo["id"][:2] / f"{photo['id']}.webp"
    assert thumb.read_bytes() == r.content


@both_stores
async def test_the_thumbnail_goes_with_the_file(client, config: Config):
    photo = await upload(client, "photo.png", image_bytes("PNG"))
    assert (await wait_for_thumbnail(client, photo["id"])).status_code == 200
    thumb = config.uploads_dir / ".thumbs" / photo["id"][:2] / f"{photo['id']}.webp"
    assert thumb.exists()
    assert (await client.delete(f"/files/{photo['id']}")).status_code == 204
    assert not thumb.exists()
    assert (await client.get(f"/files/{photo['id']}/thumbnail")).status_code == 404


async def test_another_account_gets_404_for_a_thumbnail(client, config: Config):
    photo = await upload(client, "photo.gif", image_bytes("GIF"))
    assert (await wait_for_thumbnail(client, photo["id"])).status_code == 200
    _, token = await add_account(config, "other")
    r = await client.get(f"/files/{photo['id']}/thumbnail", headers=bearer(token))
    assert r.status_code == 404
    assert r.json() == {"error": "no such file"}


async def test_no_thumbnail_for_other_types_and_for_broken_images(client):
    text = await upload(client, "notes.txt", b"just words")
    r = await client.get(f"/files/{text['id']}/thumbnail")
    assert r.status_code == 404
    assert "text/plain" in r.json()["error"]
    broken = await upload(client, "broken.jpg", image_bytes("JPEG")[:200])
    r = await wait_for_thumbnail(client, broken["id"], seconds=1)
    assert r.status_code == 404
    # Tried once: the refusal is remembered, not retried on every request.
    deadline = time.monotonic() + 20
    while "could not be read" not in r.json()["error"] and time.monotonic() < deadline:
        await asyncio.sleep(0.1)
        r = await client.get(f"/files/{broken['id']}/thumbnail")
    assert r.status_code == 404
    assert "could not be read" in r.json()["error"]


async def test_a_file_stored_before_gets_its_thumbnail_on_demand(client, config: Config):
    photo = await upload(client, "photo.webp", image_bytes("WEBP"))
    assert (await wait_for_thumbnail(client, photo["id"])).status_code == 200
    thumb = config.uploads_dir / ".thumbs" / photo["id"][:2] / f"{photo['id']}.webp"
    thumb.unlink()  # as if stored before thumbnails existed
    first = await client.get(f"/files/{photo['id']}/thumbnail")
    assert first.status_code == 404
    assert first.headers.get("retry-after")
    assert first.headers.get("cache-control") == "no-store"
    assert (await wait_for_thumbnail(client, photo["id"])).status_code == 200


async def test_a_ready_thumbnail_is_announced_on_the_relay_and_a_deleted_one_is_not(
    config: Config,
):
    account, _ = await add_account(config, "owner")
    db = await open_catalog(config)
    store = LocalStore(config.uploads_dir)
    store.prepare()
    relay: Relay[str] = Relay()
    thumbnails = Thumbnails(db, store, relay, WorkerPool(workers=1, seconds=10))
    try:
        ids = []
        for body in (image_bytes("HEIF", quality=50), image_bytes("JPEG")):
            writer = store.create()
            await writer.write(body)
            await writer.commit()
            ids.append(writer.id)
        heic, doomed = await add_files(
            db,
            [IngestedFile(i, f"{i}.img", 1, "0" * 64, "image/heic", None) for i in ids],
            account.id,
        )
        async with relay.subscribe(thumbnails_ready(account.id)) as ready:
            thumbnails.stored([heic])
            subject, file_id = await asyncio.wait_for(anext(aiter(ready)), 20)
        assert (subject, file_id) == (thumbnails_ready(account.id), heic.id)
        assert max(webp_size(store.thumbnail_path_of(heic.id).read_bytes())) == THUMBNAIL_EDGE
        # A file deleted while its thumbnail is made leaves no thumbnail behind.
        await remove_file(db, doomed.id, account.id)
        assert thumbnails.ensure(doomed)
        await asyncio.gather(*thumbnails.waiting.values())
        assert not store.thumbnail_path_of(doomed.id).exists()
    finally:
        await thumbnails.close()
        await db.close()
        store.close()


async def test_one_accounts_backlog_delays_anothers_thumbnail_by_at_most_one_job(
    config: Config,
):
    """One worker, real images: an account with a backlog of 12 photos, then another
    account's one photo; counted in order of readiness, not time."""
    busy, _ = await add_account(config, "busy")
    other, _ = await add_account(config, "other")
    db = await open_catalog(config)
    store = LocalStore(config.uploads_dir)
    store.prepare()
    relay: Relay[str] = Relay()
    thumbnails = Thumbnails(db, store, relay, WorkerPool(workers=1, seconds=10))

    async def photos(owner: str, count: int):
        ids = []
        for n in range(count):
            writer = store.create()
            await writer.write(image_bytes("JPEG", color=(n, 30, 30)))
            await writer.commit()
            ids.append(writer.id)
        files = [IngestedFile(i, f"{i}.jpg", 1, "0" * 64, "image/jpeg", None) for i in ids]
        return await add_files(db, files, owner)

    try:
        backlog = await photos(busy.id, 12)
        (single,) = await photos(other.id, 1)
        subjects = [thumbnails_ready(busy.id), thumbnails_ready(other.id)]
        async with relay.subscribe(*subjects) as ready:
            events = aiter(ready)
            thumbnails.stored(backlog)
            # The first of the backlog is made (so the rest have long been queued)...
            assert (await asyncio.wait_for(anext(events), 30))[0] == subjects[0]
            thumbnails.stored([single])
            # ...then at most one more of it before the other account's photo.
            before = 0
            while (await asyncio.wait_for(anext(events), 30))[0] == subjects[0]:
                before += 1
        assert before <= 1
        await asyncio.gather(*thumbnails.waiting.values())
        assert thumbnails.made == 13
    finally:
        await thumbnails.close()
        await db.close()
        store.close()


async def test_one_accounts_backlog_leaves_room_in_the_queue_for_others(
    config: Config, monkeypatch
):
    """Past its share of the waiting places, an account's next image waits for a
    later request; another account's image still gets a place."""
    monkeypatch.setattr(thumbnails_module, "MAX_WAITING_PER_ACCOUNT", 3, raising=False)
    busy, _ = await add_account(config, "busy")
    other, _ = await add_account(config, "other")
    db = await open_catalog(config)
    store = LocalStore(config.uploads_dir)
    store.prepare()
    thumbnails = Thumbnails(db, store, Relay(), WorkerPool(workers=1, seconds=10))
    try:
        ids = []
        for n in range(6):
            writer = store.create()
            await writer.write(image_bytes("JPEG", color=(n, 30, 30)))
            await writer.commit()
            ids.append(writer.id)
        files = [IngestedFile(i, f"{i}.jpg", 1, "0" * 64, "image/jpeg", None) for i in ids]
        backlog = await add_files(db, files[:5], busy.id)
        (single,) = await add_files(db, files[5:], other.id)
        assert [thumbnails.ensure(row) for row in backlog] == [True] * 3 + [False] * 2
        assert thumbnails.ensure(single)
        await asyncio.gather(*thumbnails.waiting.values())
        assert thumbnails.waiting_by_owner == {}
        # Its turn has come: the skipped image gets a place on its next request.
        assert thumbnails.ensure(backlog[4])
        await asyncio.gather(*thumbnails.waiting.values())
        assert store.thumbnail_path_of(backlog[4].id).exists()
    finally:
        await thumbnails.close()
        await db.close()
        store.close()


def test_the_queue_serves_accounts_in_turn_and_a_newcomer_next():
    queue = FairQueue()

    def job(name: str):
        return (name, "", "", lambda made: None)

    for name in ("a1", "a2", "a3", "a4"):
        queue.put("a", job(name))
    taken = [queue.get()]
    queue.put("b", job("b1"))
    queue.put("b", job("b2"))
    queue.put("c", job("c1"))
    while len(queue):
        taken.append(queue.get())
    assert [item[0] for item in taken if item] == ["a1", "b1", "c1", "a2", "b2", "a3", "a4"]
    queue.close()
    assert queue.get() is None


async def test_a_warm_pool_starts_its_worker_before_any_job(tmp_path):
    pool = WorkerPool(workers=1, seconds=10.0, warm_after=0.05)
    try:
        deadline = time.monotonic() + 20
        while pool.started == 0 and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        assert pool.started == 1
        source, target = tmp_path / "in.jpg", tmp_path / "out.webp"
        source.write_bytes(image_bytes("JPEG"))
        assert await pool.run(str(source), str(target))
        assert pool.started == 1  # the job found it ready
    finally:
        await asyncio.to_thread(pool.close)


def test_later_jobs_wait_behind_every_other_until_promoted():
    queue = FairQueue()

    def job(name: str):
        return (name, "", f"/{name}", lambda made: None)

    queue.put("", job("ahead1"), later=True)
    queue.put("", job("ahead2"), later=True)
    queue.put("a", job("a1"))
    queue.put("a", job("a2"))
    assert queue.waiting_now() == 2 and len(queue) == 4
    assert queue.promote("/ahead2", "b") and not queue.promote("/nothing", "b")
    taken = [queue.get() for _ in range(4)]
    assert [item[0] for item in taken if item] == ["a1", "ahead2", "a2", "ahead1"]
    assert queue.get(timeout=0.01) is None and not queue.closed
    queue.close()
    assert queue.get() is None and queue.closed


def test_sha_of_thumbnail_is_stable_for_the_same_image(tmp_path):
    source = tmp_path / "in"
    source.write_bytes(image_bytes("JPEG"))
    a, b = tmp_path / "a.webp", tmp_path / "b.webp"
    assert make_thumbnail(str(source), str(a)) and make_thumbnail(str(source), str(b))
    assert hashlib.sha256(a.read_bytes()).digest() == hashlib.sha256(b.read_bytes()).digest()


async def test_stowage_check_counts_thumbnails_apart_and_repair_removes_stale_ones(
    config: Config, owner, capsys
):
    async with signed_in_client(config, owner[1]) as client:
        photo = await upload(client, "photo.jpg", image_bytes("JPEG"))
        assert (await wait_for_thumbnail(client, photo["id"])).status_code == 200
        # Its preview's answer (made ahead: the marker that the original serves).
        assert (await client.head(f"/files/{photo['id']}/preview-image")).status_code == 200
    thumb = config.uploads_dir / ".thumbs" / photo["id"][:2] / f"{photo['id']}.webp"
    stale_id = new_blob_id()
    stale = config.uploads_dir / ".thumbs" / stale_id[:2] / f"{stale_id}.none"
    stale.parent.mkdir(parents=True, exist_ok=True)
    stale.touch()
    capsys.readouterr()

    assert main(["check", "--data-dir", str(config.data_dir)]) == 0
    out = capsys.readouterr().out
    lines = {line.split()[0]: line for line in out.splitlines() if line.strip()}
    assert lines["blobs"].split()[1] == "1"  # the photo; its thumbnail is not a blob
    assert lines["orphans"].split()[1] == "0"
    assert lines["thumbnails"].split()[1] == "3"  # the thumbnail, `.view.same`, the stale
    assert "1 of them without a row" in lines["thumbnails"]

    assert main(["check", "--repair", "--data-dir", str(config.data_dir)]) == 0
    assert thumb.exists() and not stale.exists()


def die(source: str, target: str) -> bool:
    """A job whose worker dies under it, as a decoder crash or the memory limit would."""
    import os

    os._exit(9)


async def test_a_worker_that_dies_fails_its_job_only(tmp_path):
    (tmp_path / "in").write_bytes(image_bytes("JPEG"))
    pool = WorkerPool(workers=1, seconds=10.0, job=die)
    try:
        assert not await pool.run(str(tmp_path / "in"), str(tmp_path / "out"))
        assert pool.crashed == 1
        pool.job = make_thumbnail  # the next child runs the real job
        assert await pool.run(str(tmp_path / "in"), str(tmp_path / "out.webp"))
    finally:
        await asyncio.to_thread(pool.close)


def video(tmp_path: Path, seconds: float = 2.0) -> bytes:
    return make_video(
        tmp_path / "clip.mp4", seconds=seconds, size=(640, 360), rate=10, audio=False
    ).read_bytes()


async def test_a_video_gets_a_poster_when_ffmpeg_is_installed(
    config: Config, tmp_path, ffmpeg_on_path
):
    """The app looks for ffmpeg on PATH when it starts: with the tests' own (the
    imageio-ffmpeg wheel's) there, it makes posters; without one it makes none."""
    assert ffmpeg_found()
    async with signed_in_client(config) as client:
        clip = await upload(client, "clip.mp4", video(tmp_path))
        assert clip["mime"] == "video/mp4"
        r = await wait_for_thumbnail(client, clip["id"])
        assert r.status_code == 200
        assert webp_size(r.content) == (320, 180)
        # A video a tenth of a second long has no frame at 1 s: its first frame is taken.
        short = await upload(client, "short.mp4", video(tmp_path, 0.1))
        assert (await wait_for_thumbnail(client, short["id"])).status_code == 200
        # A broken one has none, and the worker goes on.
        broken = await upload(client, "broken.mp4", video(tmp_path)[:2000])
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            r = await client.get(f"/files/{broken['id']}/thumbnail")
            if "could not be read" in r.json()["error"]:
                break
            await asyncio.sleep(0.1)
        assert "could not be read" in r.json()["error"]


async def test_without_ffmpeg_a_video_has_no_poster(config: Config, tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path / "nothing-here"))
    assert not ffmpeg_found()
    async with signed_in_client(config) as client:
        clip = await upload(client, "clip.mp4", video(tmp_path))
        r = await client.get(f"/files/{clip['id']}/thumbnail")
        assert r.status_code == 404
        assert "video/mp4" in r.json()["error"]
