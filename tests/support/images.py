"""Small images made with Pillow, and the size of a WebP read from its header."""

import io

from PIL import Image


def image_bytes(fmt: str, size=(800, 600), color=(200, 30, 30), **save) -> bytes:
    out = io.BytesIO()
    mode = "RGBA" if fmt in ("PNG", "WEBP") else "RGB"
    Image.new(mode, size, color).save(out, fmt, **save)
    return out.getvalue()


def rotated_jpeg() -> bytes:
    """Stored 800x400 (landscape), with EXIF orientation 6: seen upright, 400x800."""
    image = Image.new("RGB", (800, 400), (0, 0, 255))
    exif = Image.Exif()
    exif[0x0112] = 6
    out = io.BytesIO()
    image.save(out, "JPEG", exif=exif)
    return out.getvalue()


def webp_size(data: bytes) -> tuple[int, int]:
    with Image.open(io.BytesIO(data)) as thumb:
        assert thumb.format == "WEBP"
        return thumb.size
