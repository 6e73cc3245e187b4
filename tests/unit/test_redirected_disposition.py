"""A download the store sends (a 302 to a pre-signed GET) goes without our sandboxing
CSP and nosniff: inline only for what is safe with no header of ours."""

import pytest

from app.downloads.policy import disposition, redirected_disposition


@pytest.mark.parametrize(
    ("mime", "name", "expected"),
    [
        ("image/png", "a.png", "inline"),
        ("image/jpeg", "a.jpg", "inline"),
        ("video/mp4", "a.mp4", "inline"),
        ("audio/mpeg", "a.mp3", "inline"),
        # Inline on the node only under its CSP sandbox / nosniff.
        ("application/pdf", "a.pdf", "attachment"),
        ("text/plain", "a.txt", "attachment"),
        # Attachments on either path.
        ("text/html", "a.html", "attachment"),
        ("image/svg+xml", "a.svg", "attachment"),
        ("application/octet-stream", "a.bin", "attachment"),
        ("not a type", "a", "attachment"),
    ],
)
def test_only_images_audio_and_video_stay_inline(mime: str, name: str, expected: str) -> None:
    assert redirected_disposition(mime, disposition(mime, name=name)) == expected


def test_a_forced_download_stays_an_attachment() -> None:
    kind = disposition("image/png", name="a.png", force_download=True)
    assert redirected_disposition("image/png", kind) == "attachment"
