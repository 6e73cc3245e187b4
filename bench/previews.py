"""Preview suite: how soon a preview can show its first image or frame, on 127.0.0.1.

- A 12-megapixel JPEG: `GET /files/{id}/preview-image`, which serves the original
  (upright, not too large) after a one-time look at its header; and the same photo
  with EXIF orientation 6, which needs a rendition (made once in a worker process,
  then served from its cache). Both are answered ahead, right after the upload
  (app/previews/renditions.py). Figures: milliseconds to the whole answer (the
  browser's first paint needs all of it), its bytes; the first (cold) answer apart:
  a moment after the upload (as a person opens it), and right as another upload of
  the same photo ends (the answer made ahead is still on its way: the request waits
  for it).
- A 1 GiB MP4-like file (a real `ftyp`/`moov` head, the rest sparse: ffmpeg is not
  needed): the requests a player makes before its first frame, `Range: bytes=0-`
  (time to first byte) and the `moov`/first-frames range (the first MiB, whole).

The peer is `stario.Files` serving the same blob from the same data dir (the framework's
own static file server), in the same run: "Stowage / peer" is a ratio of medians in ms,
so lower is better. Goal: every warm figure < 300 ms.
"""

from __future__ import annotations

import io
import json
import statistics
import struct
import subprocess
from pathlib import Path

from bench.harness import (
    CURL_TIMEOUT,
    WORK,
    GiB,
    MiB,
    Server,
    Settings,
    curl,
    fresh_dir,
    human_size,
    log,
    settle,
    stario_peer,
    start_all,
    stop_all,
    stowage,
)

GOAL_MS = 300.0


def _photo(rotated: bool) -> bytes:
    """A 4000x3000 JPEG with enough detail to weigh what a phone's does (~3-5 MB)."""
    from PIL import Image, ImageFilter

    noise = Image.effect_noise((1000, 750), 60).resize((4000, 3000)).filter(ImageFilter.DETAIL)
    gradient = Image.linear_gradient("L").resize((4000, 3000))
    image = Image.merge("RGB", (noise, gradient, noise.transpose(Image.Transpose.FLIP_LEFT_RIGHT)))
    out = io.BytesIO()
    exif = Image.Exif()
    if rotated:
        exif[0x0112] = 6
    image.save(out, "JPEG", quality=92, exif=exif)
    return out.getvalue()


def _mp4_like(path: Path, size: int) -> Path:
    """`ftyp` + a `moov` of 512 KiB (as a long video's index) + a sparse `mdat`."""
    moov = 512 * 1024
    with open(path, "wb") as f:
        f.write(struct.pack(">I4s4sI8s", 24, b"ftyp", b"isom", 512, b"isomavc1"))
        f.write(struct.pack(">I4s", moov, b"moov") + bytes(moov - 8))
        f.write(struct.pack(">I4s", size - 24 - moov, b"mdat"))
        f.truncate(size)
    return path


def _store(server: Server, name: str, source: Path) -> str:
    t = curl(server.base + f"/uploads/{name}", *server.curl_auth, "-T", str(source))
    if t.status != 201:
        raise RuntimeError(f"could not store {name}: {t.status} {t.body[:200]!r}")
    return str(json.loads(t.body)["files"][0]["id"])


def _timed(url: str, *args: str) -> tuple[int, float, float, int]:
    """status, ms to the first byte, ms to the whole answer, bytes."""
    command = ["curl", "-sS", "-o", "/dev/null", "-w",
               "%{http_code} %{time_starttransfer} %{time_total} %{size_download}",
               *args, url]  # fmt: skip
    done = subprocess.run(command, capture_output=True, text=True, timeout=CURL_TIMEOUT)
    status, first, total, size = done.stdout.split()
    return int(status), float(first) * 1000, float(total) * 1000, int(size)


def _first_right_after_upload(server: Server, name: str, source: Path) -> None:
    """Store `source` once more and ask for its preview as soon as the upload answers."""
    file_id = _store(server, name, source)
    url = f"{server.base}/files/{file_id}/preview-image"
    status, _, ms, _ = _timed(url, *server.curl_auth)
    if status != 200:
        raise RuntimeError(f"{url} answered {status}")
    log(f"   {'Stowage preview-image, first (right after)':44} {ms:7.1f} ms")
    settle()


def _median(values: list[float]) -> str:
    return f"{statistics.median(values):7.1f} ms (min {min(values):.1f}, max {max(values):.1f})"


def _series(label: str, url: str, runs: int, *args: str, first_byte: bool = False) -> float:
    figures: list[float] = []
    sent = 0
    for _ in range(runs):
        status, first, total, sent = _timed(url, *args)
        if status not in (200, 206):
            raise RuntimeError(f"{label}: {url} answered {status}")
        figures.append(first if first_byte else total)
        settle()
    what = "first byte" if first_byte else "whole answer"
    log(f"   {label:44} {_median(figures)}  {what}, {human_size(sent)}")
    return statistics.median(figures)


def _verdict(ms: float) -> str:
    return "met" if ms < GOAL_MS else "MISSED"


def run_previews(settings: Settings) -> None:
    runs = max(3, settings.runs)
    video_size = 64 * MiB if settings.quick else 1 * GiB
    work = fresh_dir(WORK / "previews")
    data = work / "stowage-data"
    shipped = stowage("Stowage", data)
    files = stario_peer("stario.Files", fresh_dir(work / "empty"), data / "uploads")
    servers = [shipped, files]
    start_all([shipped])
    try:
        upright = work / "photo-12mp.jpg"
        upright.write_bytes(_photo(rotated=False))
        rotated = work / "photo-12mp-rotated.jpg"
        rotated.write_bytes(_photo(rotated=True))
        video = _mp4_like(work / "video.mp4", video_size)
        ids = {
            "upright": _store(shipped, "photo.jpg", upright),
            "rotated": _store(shipped, "rotated.jpg", rotated),
            "video": _store(shipped, "video.mp4", video),
        }
        start_all([files])
        auth = shipped.curl_auth
        log(f"previews: {runs} runs each, medians; goal < {GOAL_MS:.0f} ms on localhost")
        log(f"== a 12-megapixel JPEG ({human_size(upright.stat().st_size)}), upright")
        _first_right_after_upload(shipped, "again.jpg", upright)
        url = f"{shipped.base}/files/{ids['upright']}/preview-image"
        _, _, cold, _ = _timed(url, *auth)
        log(f"   {'Stowage preview-image, first (a moment after)':44} {cold:7.1f} ms")
        ours = _series("Stowage preview-image (the original)", url, runs, *auth)
        blob = f"{ids['upright'][:2]}/{ids['upright']}"
        peer = _series("stario.Files, the same bytes", f"{files.base}/files/{blob}", runs)
        log(f"   Stowage / stario.Files: {ours / peer:.2f}x  ({_verdict(ours)})")

        log(f"== the same photo with EXIF orientation 6 ({human_size(rotated.stat().st_size)})")
        _first_right_after_upload(shipped, "rotated-again.jpg", rotated)
        url = f"{shipped.base}/files/{ids['rotated']}/preview-image"
        _, _, cold, size = _timed(url, *auth)
        log(
            f"   {'Stowage preview-image, first (a moment after)':44} {cold:7.1f} ms,"
            f" rendition {human_size(size)}"
        )
        ours = _series("Stowage preview-image (the rendition)", url, runs, *auth)
        blob = f"{ids['rotated'][:2]}/{ids['rotated']}"
        peer = _series("stario.Files, the original's bytes", f"{files.base}/files/{blob}", runs)
        log(f"   Stowage / stario.Files: {ours / peer:.2f}x  ({_verdict(ours)})")

        log(f"== a {human_size(video_size)} MP4-like video: a player's first requests")
        url = f"{shipped.base}/files/{ids['video']}"
        blob = f"{ids['video'][:2]}/{ids['video']}"
        peer_url = f"{files.base}/files/{blob}"
        ours = _series("Stowage Range: bytes=0-", url, runs, *auth, "-r", "0-",
                       "--max-filesize", "1", first_byte=True)  # fmt: skip
        peer = _series("stario.Files Range: bytes=0-", peer_url, runs, "-r", "0-",
                       "--max-filesize", "1", first_byte=True)  # fmt: skip
        log(f"   first byte, Stowage / stario.Files: {ours / peer:.2f}x")
        head = f"0-{MiB - 1}"
        ours = _series("Stowage Range: bytes=0-1MiB (moov)", url, runs, *auth, "-r", head)
        peer = _series("stario.Files Range: bytes=0-1MiB (moov)", peer_url, runs, "-r", head)
        log(f"   moov, Stowage / stario.Files: {ours / peer:.2f}x  ({_verdict(ours)})")
    finally:
        stop_all(servers)
