"""Downloads against the real `stowage serve` process: curl for ranges, resuming, 304
and a slow reader (server memory must stay flat), and headless Chromium for what a
browser does with inline and attachment files under our CSP."""

import hashlib
import io
import os
import struct
import subprocess
import time
import zlib
from pathlib import Path
from typing import Any

import pytest
from tests.support.curl import CURL, curl, head_of, open_blobs_when, upload
from tests.support.fixtures import (
    CHROMIUM,
    CHROMIUM_ARGS,
    PASSWORD,
    RunningServer,
    require_chromium,
)

pytestmark = pytest.mark.slow

MiB = 1024 * 1024


def rss_kib(pid: int) -> int:
    status = Path(f"/proc/{pid}/status").read_text()
    return int(next(line for line in status.splitlines() if line.startswith("VmRSS:")).split()[1])


def test_curl_ranges_resume_304_and_no_compression(server: RunningServer, tmp_path: Path) -> None:
    source = tmp_path / "random.bin"
    body = os.urandom(3 * MiB + 12345)
    source.write_bytes(body)
    file = upload(server, source)
    url = server.base_url + file["url"]
    etag = f'"{hashlib.sha256(body).hexdigest()}"'
    out = tmp_path / "out"

    # Full, with every encoding offered: identity, fixed length.
    got = curl(server, "-D", "-", "-o", str(out), "--compressed", url)
    status, headers = head_of(got.stdout)
    assert status == 200 and out.read_bytes() == body
    assert headers["content-length"] == [str(len(body))]
    assert "content-encoding" not in headers and "transfer-encoding" not in headers
    assert headers["etag"] == [etag] and headers["accept-ranges"] == ["bytes"]

    # HEAD: same headers, no body.
    got = curl(server, "-I", url)
    status, head_headers = head_of(got.stdout)
    assert status == 200
    assert {k: v for k, v in head_headers.items() if k != "date"} == {
        k: v for k, v in headers.items() if k != "date"
    }

    # Ranges.
    for spec, start, end in (
        ("0-99", 0, 99),
        ("1000000-", 1000000, len(body) - 1),
        ("-4096", len(body) - 4096, len(body) - 1),
    ):
        got = curl(server, "-D", "-", "-o", str(out), "-r", spec, url)
        status, headers = head_of(got.stdout)
        assert status == 206, spec
        assert headers["content-range"] == [f"bytes {start}-{end}/{len(body)}"]
        assert out.read_bytes() == body[start : end + 1]

    # Resume a cut-off download with `curl -C -`.
    out.write_bytes(body[: len(body) // 3])
    curl(server, "-C", "-", "-o", str(out), url)
    assert out.read_bytes() == body

    # 416: no body, the current length.
    out.unlink()
    got = curl(
        server, "-D", "-", "-o", str(out), "-w", "%{size_download}", "-r", f"{len(body)}-", url
    )
    assert b"416" in got.stdout.split(b"\r\n", 1)[0]
    assert got.stdout.endswith(b"\r\n\r\n0")
    assert not out.exists() or out.read_bytes() == b""

    # Repeated fields are one list: two Range fields = several ranges = the whole file;
    # If-None-Match spread over two fields still matches.
    got = curl(server, "-o", str(out), "-w", "%{http_code}", "-H", "Range: bytes=0-1", "-H",
               "Range: bytes=5-6", url)  # fmt: skip
    assert got.stdout == b"200" and out.read_bytes() == body
    out.unlink()
    got = curl(server, "-o", str(out), "-w", "%{http_code} %{size_download}", "-H",
               'If-None-Match: "other"', "-H", f"If-None-Match: {etag}", url)  # fmt: skip
    assert got.stdout == b"304 0" and not out.exists()

    # curl's own conditional GET: -z sends If-Modified-Since from the file's mtime.
    out.write_bytes(b"old")
    os.utime(out, (time.time() + 60, time.time() + 60))
    got = curl(server, "-o", str(out), "-w", "%{http_code}", "-z", str(out), url)
    assert got.stdout == b"304"


def test_a_reader_that_hangs_up_releases_the_file(server: RunningServer, tmp_path: Path) -> None:
    source = tmp_path / "random.bin"
    source.write_bytes(os.urandom(32 * MiB))  # more than the socket buffers hold
    file = upload(server, source)
    pid = server.process.pid
    reader = subprocess.Popen(
        [CURL, "--silent", *server.curl_auth, "--limit-rate", "200K", "-o", os.devnull,
         server.base_url + file["url"]]
    )  # fmt: skip
    assert open_blobs_when(pid, file["id"], 1) == 1  # mid-download (80 s at 200K/s)
    reader.terminate()
    reader.wait(5)
    assert open_blobs_when(pid, file["id"], 0, seconds=5) == 0
    # and the server is fine
    got = curl(server, "-o", os.devnull, "-w", "%{http_code}", server.base_url + file["url"])
    assert got.stdout == b"200"


def test_slow_reader_keeps_server_memory_flat(server: RunningServer, tmp_path: Path) -> None:
    size = 32 * MiB
    source = tmp_path / "big.bin"
    with source.open("wb") as f:
        block = os.urandom(MiB)
        for i in range(size // MiB):
            f.write(block[i:] + block[:i])
    file = upload(server, source)
    url = server.base_url + file["url"]
    pid = server.process.pid
    curl(server, "-o", os.devnull, url)  # warm every code path once
    before_peak, before = server.peak_rss_kib(), rss_kib(pid)

    started = time.monotonic()
    reader = subprocess.Popen(
        [CURL, "--silent", *server.curl_auth, "--limit-rate", "2M",
         "-o", str(tmp_path / "slow.bin"), url]
    )  # fmt: skip
    samples = []
    while reader.poll() is None and time.monotonic() - started < 60:
        samples.append(rss_kib(pid))
        time.sleep(0.25)
    reader.wait(5)
    elapsed = time.monotonic() - started
    assert reader.returncode == 0
    assert (tmp_path / "slow.bin").stat().st_size == size
    assert elapsed > 10, f"the 2 MB/s reader took only {elapsed:.1f}s"
    peak = server.peak_rss_kib()
    print(
        f"\nslow reader: {size // MiB} MiB in {elapsed:.1f}s; server RSS {before // 1024} MiB "
        f"before, max {max(samples) // 1024} MiB during; VmHWM {before_peak // 1024} -> "
        f"{peak // 1024} MiB"
    )
    # Without drain() this measured +23 MiB (the rest of the 32 sat in socket buffers);
    # with it the server holds a couple of 1 MiB chunks.
    assert max(samples) - before < 8 * 1024
    assert peak - before_peak < 8 * 1024
    assert peak < 100 * 1024


# --- a real browser ------------------------------------------------------------------


def _png(width: int, height: int) -> bytes:
    def chunk(kind: bytes, data: bytes) -> bytes:
        return (
            struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
        )

    rows = b"".join(b"\x00" + b"\xff\x00\x00" * width for _ in range(height))
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(rows))
        + chunk(b"IEND", b"")
    )


def _wav(seconds: float, rate: int = 8000) -> bytes:
    samples = bytes(128 + int(100 * ((i // 9) % 2)) for i in range(int(seconds * rate)))
    out = io.BytesIO()
    out.write(b"RIFF" + struct.pack("<I", 36 + len(samples)) + b"WAVE")
    out.write(b"fmt " + struct.pack("<IHHIIHH", 16, 1, 1, rate, rate, 1, 8))
    out.write(b"data" + struct.pack("<I", len(samples)) + samples)
    return out.getvalue()


async def sign_in(page: Any, server: RunningServer, name: str = "owner") -> None:
    """Through the real form: `/` sends the browser to /login, which sets the cookie."""
    await page.goto(server.base_url + "/")
    assert page.url == server.base_url + "/login?next=/"
    await page.get_by_label("Name").fill(name)
    await page.get_by_label("Password").fill(PASSWORD)
    await page.get_by_role("button", name="Sign in").click()
    await page.wait_for_url(server.base_url + "/")


@pytest.mark.browser
async def test_browser_shows_safe_files_and_downloads_the_rest(
    server: RunningServer, tmp_path: Path
) -> None:
    require_chromium()
    from playwright import async_api as playwright_api

    files = {
        "dot.png": _png(40, 30),
        "beep.wav": _wav(1.0),
        "page.html": b"<!doctype html><title>ran</title><script>document.title='pwned'</script>",
        "logo.svg": b'<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>',
    }
    urls = {}
    for name, body in files.items():
        (tmp_path / name).write_bytes(body)
        urls[name] = server.base_url + upload(server, tmp_path / name)["url"]

    async with playwright_api.async_playwright() as p:
        browser = await p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            context = await browser.new_context(accept_downloads=True)
            page = await context.new_page()
            await sign_in(page, server)
            # A raster image is shown inline, even under the sandbox CSP.
            await page.goto(urls["dot.png"])
            assert await page.evaluate("document.querySelector('img').naturalWidth") == 40
            # Audio plays: the media document's CORS re-fetch needs allow-same-origin.
            await page.goto(urls["beep.wav"])
            await page.wait_for_function(
                "() => { const m = document.querySelector('video, audio');"
                " return m && (m.readyState >= 1 || m.error) }",
                timeout=10_000,
            )
            media = await page.evaluate(
                "() => { const m = document.querySelector('video, audio');"
                " return {error: m.error && m.error.message, duration: m.duration} }"
            )
            assert media["error"] is None and 0.9 < media["duration"] < 1.1
            # Markup never renders on our origin: the browser downloads it.
            for name in ("page.html", "logo.svg"):
                async with page.expect_download() as download_info:
                    with pytest.raises(playwright_api.Error, match="Download is starting"):
                        await page.goto(urls[name])
                download = await download_info.value
                assert download.suggested_filename == name
            async with page.expect_download() as download_info:
                with pytest.raises(playwright_api.Error, match="Download is starting"):
                    await page.goto(urls["dot.png"] + "?download=1")
            assert (await download_info.value).suggested_filename == "dot.png"
        finally:
            await browser.close()
