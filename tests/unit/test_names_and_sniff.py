import pytest

from app.ingest.names import display_name, filename_from_disposition
from app.ingest.sniff import sniff


@pytest.mark.parametrize(
    ("raw", "shown"),
    [
        ("résumé.pdf", "résumé.pdf"),
        ("日本語.png", "日本語.png"),
        ("a\r\nSet-Cookie: x=1", "a Set-Cookie: x=1"),
        # Separators become "_", so the leading dots that stay lead nowhere.
        ("..\\..\\x", ".._.._x"),
        ("../../etc/passwd", ".._.._etc_passwd"),
        ("", "unnamed"),
        ("  ..  ", "unnamed"),
        (".", "unnamed"),
        (". . .", "unnamed"),
        (".bashrc", ".bashrc"),
        (" .gitignore ", ".gitignore"),
        ("._photo.jpg", "._photo.jpg"),
        ("notes.txt. . ", "notes.txt"),
        ("invoice\u202egpj.exe", "invoicegpj.exe"),
        ("tab\there", "tab here"),
        ("nul\x00byte", "nulbyte"),
    ],
)
def test_display_names_are_safe(raw, shown):
    assert display_name(raw) == shown


def test_long_names_keep_their_extension():
    shown = display_name("x" * 300 + ".tar.gz")
    assert len(shown) == 255
    assert shown.endswith("x.gz")


@pytest.mark.parametrize(
    ("header", "name"),
    [
        (
            "attachment; filename*=UTF-8''r%C3%A9sum%C3%A9.pdf; filename=\"resume.pdf\"",
            "résumé.pdf",
        ),
        (
            "attachment; filename=\"resume.pdf\"; filename*=UTF-8''r%C3%A9sum%C3%A9.pdf",
            "résumé.pdf",
        ),
        ('attachment; filename="a b.txt"', "a b.txt"),
        ("attachment; filename*=UTF-8''%E6%97%A5%E6%9C%AC.png", "日本.png"),
        ("attachment", None),
        ("", None),
        (None, None),
    ],
)
def test_content_disposition_filenames(header, name):
    assert filename_from_disposition(header) == name


@pytest.mark.parametrize(
    ("head", "media_type"),
    [
        (b"\x89PNG\r\n\x1a\n" + bytes(20), "image/png"),
        (b"\xff\xd8\xff\xe0" + bytes(20), "image/jpeg"),
        (b"GIF89a" + bytes(10), "image/gif"),
        (b"RIFF\x00\x00\x00\x00WEBPVP8 ", "image/webp"),
        (b"%PDF-1.7\n", "application/pdf"),
        (b"PK\x03\x04" + bytes(30), "application/zip"),
        (b"\x00\x00\x00\x18ftypmp42" + bytes(8), "video/mp4"),
        (b"\x1a\x45\xdf\xa3" + bytes(8), "video/webm"),
        (b"ID3\x04" + bytes(8), "audio/mpeg"),
        (b"  <!DOCTYPE html><html>", "text/html"),
        (b"\xef\xbb\xbf<script>alert(1)</script>", "text/html"),
        (b'<?xml version="1.0"?><svg xmlns="http://www.w3.org/2000/svg">', "image/svg+xml"),
        (b"<svg onload=alert(1)>", "image/svg+xml"),
        (b'<?xml version="1.0"?><note/>', "application/xml"),
        (b"hello, world\n", "text/plain"),
        ("héllo wörld".encode(), "text/plain"),
        (b"\xff\xfeh\x00i\x00", "application/octet-stream"),
        (bytes(range(256)), "application/octet-stream"),
        (b"", "application/octet-stream"),
    ],
)
def test_sniffing_trusts_bytes_not_names(head, media_type):
    assert sniff(head) == media_type
