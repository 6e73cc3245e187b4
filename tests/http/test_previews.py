"""Previews through the production bootstrap: who may see one (the owner, a link's
holder, 404 otherwise), image renditions (EXIF orientation, HEIC) and when the
original is served instead, text shown escaped with line numbers and cut at 1 MiB,
the Files screen with `?preview=` open (no scripts), and that a share's preview is
never counted as a download."""

import asyncio
import io
import re
import time
from pathlib import Path

from PIL import Image
from stario.testing import TestClient
from tests.support.fixtures import add_account, bearer
from tests.support.images import image_bytes, rotated_jpeg
from tests.support.media import Videos

from app.config import Config
from app.previews import renditions
from app.previews.renditions import TEXT_PREVIEW_BYTES, decode_text

DATASTAR = {"datastar-request": "true"}


async def upload(client: TestClient, token: str, body: bytes, name: str) -> str:
    r = await client.put(f"/uploads/{name}", content=body, headers=bearer(token))
    assert r.status_code == 201, r.text
    return str(r.json()["files"][0]["id"])


def heic_bytes(size=(640, 480)) -> bytes:
    from pillow_heif import register_heif_opener

    register_heif_opener()
    out = io.BytesIO()
    Image.new("RGB", size, (0, 200, 0)).save(out, "HEIF")
    return out.getvalue()


def jpeg_size(data: bytes) -> tuple[int, int]:
    with Image.open(io.BytesIO(data)) as image:
        assert image.format == "JPEG"
        return image.size


async def test_an_exif_rotated_jpeg_gets_an_upright_rendition(client, owner):
    file_id = await upload(client, owner[1], rotated_jpeg(), "sideways.jpg")
    got = await client.get(f"/files/{file_id}/preview-image")
    assert got.status_code == 200, got.text
    assert got.headers.get("content-type") == "image/jpeg"
    assert jpeg_size(got.content) == (400, 800)  # stored 800x400 with orientation 6
    assert "sandbox" in got.headers.get("content-security-policy")
    etag = got.headers.get("etag")
    again = await client.get(f"/files/{file_id}/preview-image", headers={"if-none-match": etag})
    assert again.status_code == 304


def view_files(config: Config, file_id: str) -> set[str]:
    """The preview's derived files of `file_id`: "view.jpg", "view.same", "view.none"."""
    folder = config.uploads_dir / ".thumbs" / file_id[:2]
    return {p.name.removeprefix(f"{file_id}.") for p in folder.glob(f"{file_id}.view.*")}


async def wait_for(path: Path, seconds: float = 20.0) -> None:
    deadline = time.monotonic() + seconds
    while not path.exists():
        assert time.monotonic() < deadline, f"{path.name} was not made"
        await asyncio.sleep(0.05)


async def test_a_rotated_jpegs_rendition_is_made_ahead_and_goes_with_the_file(
    config: Config, client, owner
):
    file_id = await upload(client, owner[1], rotated_jpeg(), "sideways.jpg")
    rendition = config.uploads_dir / ".thumbs" / file_id[:2] / f"{file_id}.view.jpg"
    # No preview was asked for: the rendition is made right after the upload.
    await wait_for(rendition)
    assert jpeg_size(rendition.read_bytes()) == (400, 800)
    plain = await upload(client, owner[1], image_bytes("PNG", (300, 200)), "plain.png")
    await wait_for(config.uploads_dir / ".thumbs" / plain[:2] / f"{plain}.view.same")
    assert view_files(config, plain) == {"view.same"}
    got = await client.get(f"/files/{file_id}/preview-image")
    assert got.status_code == 200 and got.content == rendition.read_bytes()
    assert (await client.delete(f"/files/{file_id}")).status_code == 204
    assert view_files(config, file_id) == set()


async def test_a_burst_of_uploads_gets_renditions_ahead_only_up_to_the_cap(
    config: Config, client, owner, monkeypatch
):
    monkeypatch.setattr(renditions, "MAX_AHEAD", 2)
    answer = await client.post(
        "/uploads", files=[("f", (f"{n}.jpg", rotated_jpeg())) for n in range(6)]
    )
    assert answer.status_code == 201, answer.text
    ids = [f["id"] for f in answer.json()["files"]]
    thumbs = config.uploads_dir / ".thumbs"
    # Thumbnails first; then the two made ahead (they wait behind every thumbnail).
    for file_id in ids:
        await wait_for(thumbs / file_id[:2] / f"{file_id}.webp")
    made = [i for i in ids if (thumbs / i[:2] / f"{i}.view.jpg").exists()]
    deadline = time.monotonic() + 20
    while len(made) < 2 and time.monotonic() < deadline:
        await asyncio.sleep(0.05)
        made = [i for i in ids if (thumbs / i[:2] / f"{i}.view.jpg").exists()]
    await asyncio.sleep(0.5)
    assert [i for i in ids if view_files(config, i)] == made and len(made) == 2
    # The others are made when first previewed.
    later = next(i for i in ids if i not in made)
    got = await client.get(f"/files/{later}/preview-image")
    assert got.status_code == 200 and jpeg_size(got.content) == (400, 800)
    assert view_files(config, later) == {"view.jpg"}


async def test_a_heic_is_converted_and_a_plain_png_is_served_as_it_is(client, owner):
    heic = await upload(client, owner[1], heic_bytes(), "phone.heic")
    got = await client.get(f"/files/{heic}/preview-image")
    assert got.status_code == 200, got.text
    assert jpeg_size(got.content) == (640, 480)
    png = image_bytes("PNG", (300, 200))
    plain = await upload(client, owner[1], png, "plain.png")
    same = await client.get(f"/files/{plain}/preview-image")
    assert same.status_code == 200 and same.content == png
    assert same.headers.get("content-type") == "image/png"
    # No rendition is kept for it: the marker says the original serves.
    assert (await client.head(f"/files/{plain}/preview-image")).status_code == 200


async def test_a_big_image_gets_a_smaller_rendition(client, owner):
    big = image_bytes("JPEG", (6000, 4200), quality=30)  # 25.2 MP: past what is shown as is
    file_id = await upload(client, owner[1], big, "scan.jpg")
    got = await client.get(f"/files/{file_id}/preview-image")
    assert got.status_code == 200
    assert jpeg_size(got.content) == (4096, 2867)


async def test_previews_are_the_owners_alone(config: Config, client, owner, anonymous):
    file_id = await upload(client, owner[1], image_bytes("PNG"), "mine.png")
    _, other = await add_account(config, "other")
    for path in (f"/files/{file_id}/preview-image", f"/files/{file_id}/preview"):
        assert (await anonymous.get(path)).status_code == 401
        assert (await anonymous.get(path, headers=bearer(other))).status_code == 404
    assert (await client.get(f"/files/{'A' * 26}/preview-image")).status_code == 404
    page = await client.get("/", params={"preview": file_id}, headers=bearer(other))
    assert page.status_code == 404 and 'id="preview-dialog"' not in page.text
    # A text file has no image preview.
    text = await upload(client, owner[1], b"hello\n", "note.txt")
    assert (await client.get(f"/files/{text}/preview-image")).status_code == 404


async def test_text_is_escaped_source_with_line_numbers(client, owner):
    hostile = b'<script>alert("x")</script>\n<svg onload="alert(1)"></svg>\nthird line\n'
    file_id = await upload(client, owner[1], hostile, "page.html")
    patch = await client.get(f"/files/{file_id}/preview", headers=DATASTAR)
    assert patch.status_code == 200
    assert "selector #preview" in patch.text and "mode inner" in patch.text
    assert "<script>" not in patch.text and "&lt;script&gt;" in patch.text
    assert patch.text.count('class="line"') == 3
    assert "<svg onload" not in patch.text
    page = await client.get("/", params={"preview": file_id})
    assert page.status_code == 200
    assert 'id="preview-dialog"' in page.text and "&lt;svg onload" in page.text
    assert "<script>alert" not in page.text


async def test_a_long_text_is_cut_at_one_mib(client, owner):
    line = b"0123456789abcdef" * 4 + b"\n"  # 65 bytes
    body = line * (TEXT_PREVIEW_BYTES // len(line) + 100)
    file_id = await upload(client, owner[1], body, "big.log")
    patch = await client.get(f"/files/{file_id}/preview", headers=DATASTAR)
    assert "Showing the first 1 MiB" in patch.text
    assert patch.text.count('class="line"') == TEXT_PREVIEW_BYTES // len(line) + 1


def test_decoding_a_cut_keeps_no_half_character_and_spots_binary():
    euro = "€".encode()  # 3 bytes
    head = decode_text(b"a\n" + euro[:2], cut=True)
    assert head.lines == ["a"] and head.cut
    assert decode_text(b"\xff\xfeab\n", cut=False).lines == ["\ufffd\ufffdab"]
    assert decode_text(b"PK\x03\x04\x00\x00", cut=False).binary


async def test_the_preview_knows_its_neighbours_in_the_lists_order(client, owner):
    ids = [await upload(client, owner[1], f"{n}\n".encode(), f"{n}.txt") for n in "abc"]
    # Newest first: c, b, a.
    patch = await client.get(f"/files/{ids[1]}/preview", headers=DATASTAR)
    assert "2 of 3" in patch.text
    assert f"preview={ids[2]}" in patch.text and f"preview={ids[0]}" in patch.text
    by_name = await client.get(
        f"/files/{ids[0]}/preview", params={"sort": "name-asc"}, headers=DATASTAR
    )
    assert "1 of 3" in by_name.text and "sort=name" in by_name.text
    assert re.search(r'aria-disabled="true"[^>]*>‹ Previous', by_name.text)
    # Without Datastar: the Files screen with the preview open.
    plain = await client.get(f"/files/{ids[0]}/preview", follow_redirects=False)
    assert plain.status_code == 303 and plain.headers.get("location") == f"/?preview={ids[0]}"


async def test_the_file_names_link_to_their_previews(client, owner):
    file_id = await upload(client, owner[1], b"x\n", "one.txt")
    page = await client.get("/")
    assert f'class="file-name opens-preview" href="/?preview={file_id}"' in page.text
    assert 'id="preview"' in page.text


async def test_a_share_preview_never_counts_as_a_download(config: Config, client, owner):
    token = owner[1]
    video = b"\x00\x00\x00\x18ftypmp42" + bytes(4096)
    file_id = await upload(client, token, video, "clip.mp4")
    made = await client.post(f"/api/files/{file_id}/shares", json={}, headers=bearer(token))
    url = made.json()["share"]["url"]
    share_id = made.json()["share"]["id"]
    page = await client.get(url)
    assert "<video" in page.text and f'src="{url}/file?preview=1"' in page.text
    for _ in range(3):
        got = await client.get(url + "/file?preview=1")
        assert got.status_code == 200 and got.content == video
    ranged = await client.get(url + "/file?preview=1", headers={"range": "bytes=0-99"})
    assert ranged.status_code == 206
    listed = await client.get("/api/shares", headers=bearer(token))
    counted = {s["id"]: s for s in listed.json()["shares"]}[share_id]
    assert counted["downloads"] == 0


async def test_a_collection_previews_its_files_with_next_and_previous(client, owner):
    token = owner[1]
    ids = [await upload(client, token, f"{n}\n".encode(), f"{n}.txt") for n in "abc"]
    made = await client.post("/api/shares", json={"ids": ids}, headers=bearer(token))
    assert made.status_code == 201, made.text
    url = made.json()["share"]["url"]
    page = await client.get(url)
    assert f"?preview={ids[0]}" in page.text
    opened = await client.get(url, params={"preview": ids[1]})
    assert 'id="preview-dialog"' in opened.text and "2 of 3" in opened.text
    assert f"preview={ids[0]}" in opened.text and f"preview={ids[2]}" in opened.text
    # Share pages run no expressions: the dialog is plain links.
    assert "data-on" not in opened.text.split('id="preview"', 1)[1]
    stranger = await client.get(url, params={"preview": "A" * 26})
    assert 'id="preview-dialog"' not in stranger.text


async def test_real_videos_are_sniffed_shown_in_a_player_and_served_by_ranges(
    client, owner, videos: Videos
):
    """An H.264 MP4 and a VP9 WebM made by ffmpeg (tests/support/media.py): stored as
    videos, previewed in a <video> whose source answers a range from the middle (a
    seek) with exactly those bytes."""
    token = owner[1]
    for path, mime in ((videos.mp4, "video/mp4"), (videos.webm, "video/webm")):
        body = path.read_bytes()
        made = await client.put(f"/uploads/{path.name}", content=body, headers=bearer(token))
        assert made.status_code == 201, made.text
        stored = made.json()["files"][0]
        assert stored["mime"] == mime
        file_id = stored["id"]
        page = await client.get("/", params={"preview": file_id})
        player = re.search(r"<video[^>]*>", page.text)
        assert player is not None, page.text
        assert f'src="/files/{file_id}"' in player.group(0)
        start = len(body) * 2 // 3
        seek = await client.get(f"/files/{file_id}", headers={"range": f"bytes={start}-"})
        assert seek.status_code == 206
        assert seek.headers.get("content-range") == f"bytes {start}-{len(body) - 1}/{len(body)}"
        assert seek.headers.get("content-type") == mime
        assert seek.content == body[start:]
