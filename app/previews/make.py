"""Making one thumbnail: runs inside a worker process (app/previews/pool.py), never
in the server's own process, so a hostile image can at worst cost that process.

Every way an image can fail (malformed, truncated, too many pixels or frames, an
unknown format) ends in `False` ("no preview"); only the pool's time limit and the
worker's memory limit are outside this function.
"""

from __future__ import annotations

import os
import resource
import warnings
from pathlib import Path

# At most this many pixels on the long side of a thumbnail.
THUMBNAIL_EDGE = 320
# Decompression bombs: Pillow refuses images above its limit; the warning it gives
# between 1x and 2x the limit is made an error too. 64 megapixels holds every
# phone and most camera photos (a 12 MP photo is 12,000,000).
MAX_PIXELS = 64_000_000
# An animated image is thumbnailed from its first frame; one that claims more frames
# than this is refused outright (a GIF of 100,000 tiny frames is a CPU bomb for any
# code that walks them).
MAX_FRAMES = 10_000
# The worker's address space: decoding a 64 MP RGBA image needs ~256 MB; anything
# past this is a bomb that got by the pixel count (or a leak), and fails as MemoryError.
WORKER_MEMORY_BYTES = 1536 * 1024 * 1024
WEBP_QUALITY = 80
WORKER_NICENESS = 10


def prepare_worker() -> None:
    """Run once at the start of a worker process: its priority and memory limit, then
    Pillow's settings."""
    # Thumbnails are background work: when every core is busy, the scheduler should
    # wake the server's event loop first (weight 1024 against 110 at nice 10).
    os.nice(WORKER_NICENESS)
    _, hard = resource.getrlimit(resource.RLIMIT_AS)
    if hard == resource.RLIM_INFINITY or hard > WORKER_MEMORY_BYTES:
        resource.setrlimit(resource.RLIMIT_AS, (WORKER_MEMORY_BYTES, hard))
    configure_pillow()


def configure_pillow() -> None:
    """Pixel limit (its warning an error too) and the HEIF/HEIC decoder; and every
    module a job needs, imported now (a worker starts before any job needs it, see
    app/previews/pool.py), so no one's first image pays for them."""
    from PIL import Image, ImageOps  # noqa: F401  (imported for the jobs' sake)
    from pillow_heif import register_heif_opener

    Image.MAX_IMAGE_PIXELS = MAX_PIXELS
    warnings.simplefilter("error", Image.DecompressionBombWarning)
    register_heif_opener()
    # Every format's plugin (JPEG, PNG, WebP, TIFF...), as the first open would.
    Image.init()


def temp_path_for(target: str, pid: int) -> str:
    """Where worker `pid` writes `target` before its rename (the pool removes it when it
    had to kill that worker)."""
    return f"{target}.{pid}.tmp"


def make_thumbnail(source: str, target: str) -> bool:
    """Write a WebP thumbnail of the image at `source` to `target` (through a temp
    file and a rename, so a reader never sees half of one); True if one was made."""
    from PIL import Image, ImageOps

    temp = temp_path_for(target, os.getpid())
    try:
        with Image.open(source) as image:
            if image.format not in ("JPEG", "PNG", "GIF", "WEBP", "HEIF", "AVIF", "MPO"):
                return False
            if getattr(image, "n_frames", 1) > MAX_FRAMES:
                return False
            width, height = image.size
            if width < 1 or height < 1 or width * height > MAX_PIXELS:
                return False
            # JPEG can decode at 1/2, 1/4 or 1/8 scale directly: a 12 MP photo then
            # costs a fraction of a full decode.
            image.draft("RGB", (THUMBNAIL_EDGE * 2, THUMBNAIL_EDGE * 2))
            image.seek(0)
            upright = ImageOps.exif_transpose(image)
            upright.thumbnail((THUMBNAIL_EDGE, THUMBNAIL_EDGE), Image.Resampling.LANCZOS)
            mode = "RGBA" if "A" in upright.getbands() or "transparency" in upright.info else "RGB"
            small = upright.convert(mode)
            Path(target).parent.mkdir(parents=True, exist_ok=True)
            small.save(temp, "WEBP", quality=WEBP_QUALITY, method=4)
        os.rename(temp, target)
        return True
    # Any exception here is the image's doing (this process does nothing else), and
    # every one of them means the same: no preview. Pillow's decoders raise OSError,
    # ValueError, SyntaxError, EOFError, struct.error, DecompressionBombError...;
    # pillow-heif raises RuntimeError and ValueError.
    except (Exception, Image.DecompressionBombWarning):
        return False
    finally:
        try:
            os.unlink(temp)
        except FileNotFoundError:
            pass


# A poster is the frame at this many seconds in (past a fade-in), or the first frame
# of a shorter video.
POSTER_AT_SECONDS = 1.0
# ffmpeg's own limit per attempt; the pool's time limit still covers the whole job.
FFMPEG_SECONDS = 20.0
# Largest decoded frame ffmpeg hands over (PNG on a pipe), before Pillow's resize.
MAX_POSTER_FRAME_BYTES = 64 * 1024 * 1024


def _ffmpeg_dies_with_us() -> None:
    """In ffmpeg, before exec: killed when its worker is (the pool's time limit)."""
    import ctypes
    import ctypes.util
    import signal

    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)
        libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError, TypeError):
        pass


def make_poster(source: str, target: str) -> bool:
    """A thumbnail of a video's frame, decoded by ffmpeg (found at start; see
    `ffmpeg_path`), then made like an image's; False if there is none."""
    import io
    import shutil
    import subprocess

    ffmpeg = shutil.which("ffmpeg")
    if ffmpeg is None:
        return False
    for at in (POSTER_AT_SECONDS, 0.0):
        try:
            done = subprocess.run(
                [ffmpeg, "-nostdin", "-v", "error", "-ss", str(at), "-i", source,
                 "-frames:v", "1", "-an", "-sn", "-dn",
                 "-vf", f"scale={THUMBNAIL_EDGE * 2}:{THUMBNAIL_EDGE * 2}"
                 ":force_original_aspect_ratio=decrease",
                 "-f", "image2pipe", "-vcodec", "png", "-"],
                stdin=subprocess.DEVNULL,
                capture_output=True,
                timeout=FFMPEG_SECONDS,
                preexec_fn=_ffmpeg_dies_with_us,
                check=False,
            )  # fmt: skip
        except (OSError, subprocess.SubprocessError):
            return False
        frame = done.stdout
        if done.returncode == 0 and frame and len(frame) <= MAX_POSTER_FRAME_BYTES:
            return _thumbnail_of_frame(io.BytesIO(frame), target)
    return False


def _thumbnail_of_frame(frame: object, target: str) -> bool:
    from PIL import Image

    temp = temp_path_for(target, os.getpid())
    try:
        with Image.open(frame) as image:  # type: ignore[arg-type]
            image.thumbnail((THUMBNAIL_EDGE, THUMBNAIL_EDGE), Image.Resampling.LANCZOS)
            Path(target).parent.mkdir(parents=True, exist_ok=True)
            image.convert("RGB").save(temp, "WEBP", quality=WEBP_QUALITY, method=4)
        os.rename(temp, target)
        return True
    except Exception:
        return False
    finally:
        try:
            os.unlink(temp)
        except FileNotFoundError:
            pass


# A full-size preview's long side (app/previews/renditions.py says when one is made).
RENDITION_EDGE = 4096
RENDITION_QUALITY = 85
# The most pixels an original is shown with as it is (a 12-megapixel phone photo is
# shown as stored; a 50-megapixel scan gets a rendition).
MAX_ORIGINAL_PIXELS = 24_000_000
# Formats browsers show as they are (Pillow's names); any other gets a rendition.
SHOWN_AS_STORED = frozenset({"JPEG", "MPO", "PNG", "GIF", "WEBP", "BMP", "ICO"})
EXIF_ORIENTATION = 0x0112


def needs_rendition_of(image: object) -> bool:
    """Whether an opened Pillow image (of a format browsers show) needs a rendition
    anyway: an EXIF orientation other than upright, or more pixels than a page should
    decode. Reads what `Image.open` read already: the header, no pixels."""
    from PIL import Image

    assert isinstance(image, Image.Image)
    width, height = image.size
    if width * height > MAX_ORIGINAL_PIXELS:
        return True
    return image.getexif().get(EXIF_ORIENTATION, 1) not in (0, 1)


def same_marker_for(target: str) -> Path:
    """`<id>.view.same` beside a rendition's `<id>.view.jpg`: the original serves."""
    return Path(target).with_suffix(".same")


def make_view(source: str, target: str) -> bool:
    """Ahead of any request (app/previews/renditions.py): a rendition of the image at
    `source` when it needs one (`make_rendition`), or else the marker
    `same_marker_for(target)` saying the original serves; True if either was made."""
    from PIL import Image

    try:
        with Image.open(source) as image:
            if image.format in SHOWN_AS_STORED and not needs_rendition_of(image):
                marker = same_marker_for(target)
                marker.parent.mkdir(parents=True, exist_ok=True)
                marker.touch()
                return True
    except (Exception, Image.DecompressionBombWarning):
        return False
    return make_rendition(source, target)


def make_rendition(source: str, target: str) -> bool:
    """In a worker process (the limits above): an upright JPEG of
    the image at `source`, at most `RENDITION_EDGE` on its long side, written to
    `target` through a temp file and a rename; True if one was made."""
    from PIL import Image, ImageOps

    temp = temp_path_for(target, os.getpid())
    try:
        with Image.open(source) as image:
            if image.format not in (
                "JPEG", "PNG", "GIF", "WEBP", "HEIF", "AVIF", "MPO", "TIFF", "BMP"
            ):  # fmt: skip
                return False
            width, height = image.size
            if width < 1 or height < 1 or width * height > MAX_PIXELS:
                return False
            # JPEG decodes at 1/2, 1/4, 1/8 scale directly when that still covers the
            # edge: a 50 MP scan costs a quarter of a full decode.
            image.draft("RGB", (RENDITION_EDGE, RENDITION_EDGE))
            image.seek(0)
            upright = ImageOps.exif_transpose(image)
            upright.thumbnail(
                (RENDITION_EDGE, RENDITION_EDGE), Image.Resampling.BICUBIC, reducing_gap=2.0
            )
            if "A" in upright.getbands() or "transparency" in upright.info:
                rgba = upright.convert("RGBA")
                flat = Image.new("RGB", rgba.size, (255, 255, 255))
                flat.paste(rgba, mask=rgba.getchannel("A"))
            else:
                flat = upright.convert("RGB")
            Path(target).parent.mkdir(parents=True, exist_ok=True)
            flat.save(temp, "JPEG", quality=RENDITION_QUALITY, optimize=False)
        os.rename(temp, target)
        return True
    except (Exception, Image.DecompressionBombWarning):
        return False
    finally:
        try:
            os.unlink(temp)
        except FileNotFoundError:
            pass
