"""The real type of a file, from its first bytes; what the client claims is only a claim."""

SNIFF_BYTES = 4096
OCTET_STREAM = "application/octet-stream"

# (offset, magic, type); the first match wins, so longer and more specific come first.
_MAGIC: tuple[tuple[int, bytes, str], ...] = (
    (0, b"\x89PNG\r\n\x1a\n", "image/png"),
    (0, b"\xff\xd8\xff", "image/jpeg"),
    (0, b"GIF87a", "image/gif"),
    (0, b"GIF89a", "image/gif"),
    (0, b"BM", "image/bmp"),
    (0, b"\x00\x00\x01\x00", "image/x-icon"),
    (0, b"II*\x00", "image/tiff"),
    (0, b"MM\x00*", "image/tiff"),
    (0, b"%PDF-", "application/pdf"),
    (0, b"PK\x03\x04", "application/zip"),
    (0, b"PK\x05\x06", "application/zip"),
    (0, b"\x1f\x8b", "application/gzip"),
    (0, b"BZh", "application/x-bzip2"),
    (0, b"\xfd7zXZ\x00", "application/x-xz"),
    (0, b"\x28\xb5\x2f\xfd", "application/zstd"),
    (0, b"7z\xbc\xaf\x27\x1c", "application/x-7z-compressed"),
    (0, b"Rar!\x1a\x07", "application/vnd.rar"),
    (257, b"ustar", "application/x-tar"),
    (0, b"\x1a\x45\xdf\xa3", "video/webm"),
    (0, b"OggS", "audio/ogg"),
    (0, b"fLaC", "audio/flac"),
    (0, b"ID3", "audio/mpeg"),
    (0, b"MThd", "audio/midi"),
    (0, b"\x00asm", "application/wasm"),
    (0, b"\x7fELF", "application/x-executable"),
    (0, b"MZ", "application/vnd.microsoft.portable-executable"),
    (0, b"SQLite format 3\x00", "application/vnd.sqlite3"),
    (0, b"%!PS", "application/postscript"),
    (0, b"{\\rtf", "application/rtf"),
    (0, b"wOFF", "font/woff"),
    (0, b"wOF2", "font/woff2"),
)

_RIFF = {b"WEBP": "image/webp", b"WAVE": "audio/wav", b"AVI ": "video/x-msvideo"}
_FTYP = {
    b"avif": "image/avif",
    b"avis": "image/avif",
    b"heic": "image/heic",
    b"heix": "image/heic",
    b"mif1": "image/heif",
    b"qt  ": "video/quicktime",
    b"M4A ": "audio/mp4",
    b"M4B ": "audio/mp4",
    b"3gp4": "video/3gpp",
    b"3gp5": "video/3gpp",
}
# Markup a browser would render, and so run script from: these must be recognised
# even when the client calls them something else.
_HTML_OPENERS = (
    b"<!doctype html",
    b"<html",
    b"<head",
    b"<body",
    b"<script",
    b"<iframe",
    b"<title",
    b"<style",
    b"<div",
    b"<a ",
    b"<p>",
    b"<img",
    b"<table",
    b"<h1",
    b"<br",
    b"<font",
    b"<b>",
    b"<!--",
)


def _markup_type(head: bytes) -> str | None:
    text = head.removeprefix(b"\xef\xbb\xbf").lstrip().lower()
    if text.startswith(b"<?xml"):
        return "image/svg+xml" if b"<svg" in text else "application/xml"
    if text.startswith(b"<svg") or (text.startswith(b"<!doctype svg")):
        return "image/svg+xml"
    if any(text.startswith(opener) for opener in _HTML_OPENERS):
        return "text/html"
    return None


_CONTROLS = bytes(b for b in range(0x20) if b not in b"\t\n\r\f\x1b")


def _is_text(head: bytes) -> bool:
    if b"\x00" in head:
        return False
    try:
        head.decode("utf-8")
    except UnicodeDecodeError as exc:
        # A multi-byte character cut off by the sniff window is still text.
        if exc.start < len(head) - 3:
            return False
    controls = len(head) - len(head.translate(None, _CONTROLS))
    return controls * 100 <= len(head)


def sniff(head: bytes) -> str:
    """The media type the first bytes prove, else text/plain or octet-stream."""
    for offset, magic, media_type in _MAGIC:
        if head[offset : offset + len(magic)] == magic:
            return media_type
    if head[:4] == b"RIFF" and head[8:12] in _RIFF:
        return _RIFF[head[8:12]]
    if head[4:8] == b"ftyp":
        brand = head[8:12]
        if brand in _FTYP:
            return _FTYP[brand]
        return "video/mp4"
    # MPEG audio frame sync; FF FE and FF FF are UTF-16 byte-order marks, not audio.
    if len(head) >= 2 and head[0] == 0xFF and 0xE2 <= head[1] <= 0xFD and head[1] & 0x06:
        return "audio/mpeg"
    markup = _markup_type(head)
    if markup is not None:
        return markup
    if head and _is_text(head):
        return "text/plain"
    return OCTET_STREAM
