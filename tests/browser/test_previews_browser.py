"""Previews in real Chromium: a click or Enter on a file's name opens its preview in the
page (focus in it), Next/Previous step through the list, Escape and Close give the
focus back to the file's row, Back closes and Forward reopens; audio seeks by range
requests (206); hostile HTML, SVG and a PDF with JavaScript run nothing; axe-core
finds nothing with a preview open at 1280 and 375 px; and without JavaScript the
name is a link to the page with the preview open."""

import io
import math
import struct
import time
import wave
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Page, expect
from tests.support.axe import axe_violations
from tests.support.browser import Console, browser, row, sign_in, wait_until_live  # noqa: F401
from tests.support.fixtures import RunningServer
from tests.support.images import rotated_jpeg
from tests.support.media import Videos

pytestmark = [pytest.mark.browser, pytest.mark.slow]

SCREENS = {"desktop": (1280, 800), "phone": (375, 667)}

HOSTILE_HTML = (
    b"<!doctype html><title>hostile</title>"
    b"<script>alert('html ran'); parent.document.title = 'pwned'</script>"
    b"<img src=x onerror=\"alert('img ran')\">\n"
)
HOSTILE_SVG = (
    b'<svg xmlns="http://www.w3.org/2000/svg" onload="alert(\'svg onload ran\')">'
    b"<script>alert('svg script ran')</script><circle r=\"10\"/></svg>\n"
)


def hostile_pdf() -> bytes:
    """A one-page PDF whose OpenAction is JavaScript (app.alert)."""
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R /OpenAction 4 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 200 200] >>",
        b"<< /S /JavaScript /JS (app.alert('pdf ran'); this.submitForm('/pwned');) >>",
    ]
    out = io.BytesIO()
    out.write(b"%PDF-1.4\n")
    offsets = []
    for number, body in enumerate(objects, 1):
        offsets.append(out.tell())
        out.write(b"%d 0 obj\n" % number + body + b"\nendobj\n")
    xref = out.tell()
    out.write(b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1))
    for offset in offsets:
        out.write(b"%010d 00000 n \n" % offset)
    out.write(
        b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(objects) + 1, xref)
    )
    return out.getvalue()


def tone_wav(seconds: int = 60, rate: int = 22050) -> bytes:
    """A quiet sine tone: big enough (2.6 MB) that a seek near its end is a new range."""
    frames = b"".join(
        struct.pack("<h", int(800 * math.sin(2 * math.pi * 440 * n / rate))) for n in range(rate)
    )
    out = io.BytesIO()
    with wave.open(out, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(frames * seconds)
    return out.getvalue()


def put(server: RunningServer, name: str, body: bytes) -> str:
    with server.http() as http:
        made = http.put(f"/uploads/{name}", content=body)
        assert made.status_code == 201, made.text
        return str(made.json()["files"][0]["id"])


def signed_in(browser, server: RunningServer, width=1280, height=800, **context):  # noqa: F811
    ctx = browser.new_context(viewport={"width": width, "height": height}, **context)
    page = ctx.new_page()
    console = Console(page)
    dialogs: list[str] = []
    page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
    sign_in(page, server)
    if context.get("java_script_enabled", True):
        wait_until_live(page)
    return ctx, page, console, dialogs


def focused_id(page: Page) -> str:
    return str(page.evaluate("document.activeElement && document.activeElement.id"))


def focused_text(page: Page) -> str:
    return str(page.evaluate("document.activeElement && document.activeElement.textContent"))


def test_a_preview_opens_steps_closes_and_follows_the_history(browser, server):  # noqa: F811
    ids = {name: put(server, name, f"contents of {name}\n".encode()) for name in "abc"}
    ctx, page, console, dialogs = signed_in(browser, server)
    dialog = page.locator("#preview-dialog")

    # Newest first: c, b, a. A click on b's name opens its preview, focus inside.
    row(page, "b").locator(".file-name").click()
    expect(dialog).to_be_visible()
    expect(dialog.locator("#preview-title")).to_have_text("b")
    expect(dialog).to_contain_text("contents of b")
    expect(dialog).to_contain_text("2 of 3")
    assert focused_id(page) == "preview-dialog"
    assert page.url == f"{server.base_url}/?preview={ids['b']}"

    dialog.get_by_role("link", name="Next file").click()
    expect(dialog.locator("#preview-title")).to_have_text("a")
    expect(dialog.get_by_text("Next ›")).to_have_attribute("aria-disabled", "true")
    dialog.get_by_role("link", name="Previous file").click()
    expect(dialog.locator("#preview-title")).to_have_text("b")

    # Back: the previous preview (a); back again, a's... then the list itself.
    page.go_back()
    expect(dialog.locator("#preview-title")).to_have_text("a")
    page.go_back()
    expect(dialog.locator("#preview-title")).to_have_text("b")
    page.go_back()
    expect(dialog).to_have_count(0)
    assert page.url == f"{server.base_url}/"
    page.go_forward()
    expect(dialog.locator("#preview-title")).to_have_text("b")

    # Escape closes it and gives the focus back to the file's name.
    page.keyboard.press("Escape")
    expect(dialog).to_have_count(0)
    assert focused_text(page) == "b"
    assert page.url == f"{server.base_url}/"

    # Keyboard only: Enter on a name opens; Close (a link) closes.
    row(page, "c").locator(".file-name").focus()
    page.keyboard.press("Enter")
    expect(dialog.locator("#preview-title")).to_have_text("c")
    assert focused_id(page) == "preview-dialog"
    page.keyboard.press("Tab")  # into the dialog's links
    dialog.get_by_role("link", name="Close the preview of c").focus()
    page.keyboard.press("Enter")
    expect(dialog).to_have_count(0)
    assert focused_text(page) == "c"

    # A reload with the preview's URL shows it at once.
    page.goto(f"{server.base_url}/?preview={ids['a']}")
    expect(dialog.locator("#preview-title")).to_have_text("a")
    assert dialogs == [] and console.errors == []
    ctx.close()


def test_audio_seeks_with_range_requests_and_images_are_upright(browser, server):  # noqa: F811
    put(server, "tone.wav", tone_wav())
    photo = put(server, "sideways.jpg", rotated_jpeg())
    ctx, page, console, dialogs = signed_in(browser, server)
    answers: list[tuple[str, int, str]] = []
    page.on(
        "response",
        lambda r: (
            answers.append((r.url, r.status, r.request.headers.get("range", "")))
            if "/files/" in r.url
            else None
        ),
    )
    row(page, "tone.wav").locator(".file-name").click()
    audio = page.locator("#preview-dialog audio")
    expect(audio).to_be_visible()
    page.wait_for_function("() => document.querySelector('#preview-dialog audio').readyState >= 1")
    page.evaluate("document.querySelector('#preview-dialog audio').currentTime = 55")
    page.wait_for_function(
        "() => { const a = document.querySelector('#preview-dialog audio');"
        " return !a.seeking && a.currentTime >= 54 }"
    )
    ranged = [a for a in answers if a[2].startswith("bytes=") and a[2] != "bytes=0-"]
    assert any(status == 206 for _, status, _ in ranged), answers
    page.keyboard.press("Escape")

    row(page, "sideways.jpg").locator(".file-name").click()
    image = page.locator("#preview-dialog img.preview-image")
    expect(image).to_have_attribute("src", f"/files/{photo}/preview-image")
    page.wait_for_function("() => document.querySelector('#preview-dialog img').naturalWidth > 0")
    size = page.evaluate(
        "(() => { const i = document.querySelector('#preview-dialog img');"
        " return [i.naturalWidth, i.naturalHeight] })()"
    )
    assert size == [400, 800]  # stored 800x400 with EXIF orientation 6
    # Click: 100%; again: fit.
    image.click()
    expect(page.locator("#preview-dialog .preview-body")).to_have_class(
        "preview-body preview-image actual-size"
    )
    assert dialogs == [] and console.errors == []
    ctx.close()


def test_hostile_html_svg_and_pdf_run_nothing(browser, server):  # noqa: F811
    put(server, "hostile.html", HOSTILE_HTML)
    put(server, "hostile.svg", HOSTILE_SVG)
    put(server, "hostile.pdf", hostile_pdf())
    ctx, page, console, dialogs = signed_in(browser, server)
    title = page.title()
    dialog = page.locator("#preview-dialog")
    for name in ("hostile.html", "hostile.svg"):
        row(page, name).locator(".file-name").click()
        expect(dialog.locator("#preview-title")).to_have_text(name)
        # The source, as text.
        expect(dialog.locator(".text-lines")).to_contain_text("alert(")
        page.keyboard.press("Escape")
    assert dialogs == []
    asked: list[str] = []
    page.on("request", lambda r: asked.append(r.url))
    row(page, "hostile.pdf").locator(".file-name").click()
    frame = dialog.locator("iframe.preview-pdf")
    expect(frame).to_be_attached()
    page.wait_for_timeout(1500)  # whatever the viewer would run, it has had time to
    # The PDF's own JavaScript runs inside Chromium's PDF viewer (PDFium's engine, in
    # the viewer's extension origin), as it does when the PDF is opened in a tab:
    # its app.alert shows. Nothing of it reaches our origin: the framed answer is
    # sandboxed by its CSP (an opaque origin), the page is untouched and its form
    # submission never arrives.
    assert set(dialogs) <= {"pdf ran"}
    assert page.title() == title
    assert not any("/pwned" in url for url in asked)
    assert page.evaluate("() => window.origin") == server.base_url
    assert console.errors == []
    ctx.close()


@pytest.mark.parametrize("screen", SCREENS)
def test_an_open_preview_passes_axe(browser, server, screen: str):  # noqa: F811
    width, height = SCREENS[screen]
    put(server, "notes.txt", b"".join(b"line %d of the notes\n" % n for n in range(200)))
    put(server, "photo.jpg", rotated_jpeg())
    ctx, page, console, _ = signed_in(browser, server, width, height, bypass_csp=True)
    found: dict[str, list[str]] = {}
    for name in ("notes.txt", "photo.jpg"):
        row(page, name).locator(".file-name").click()
        expect(page.locator("#preview-title")).to_have_text(name)
        no_sideways = page.evaluate(
            "document.documentElement.scrollWidth <= document.documentElement.clientWidth"
        )
        assert no_sideways, f"{name} at {width} px scrolls sideways"
        found[name] = axe_violations(page)
        page.keyboard.press("Escape")
    problems = {view: v for view, v in found.items() if v}
    assert problems == {}, "\n".join(f"{k}: {v}" for k, v in problems.items())
    assert console.errors == []
    ctx.close()


def test_without_javascript_the_name_opens_the_preview_page(browser, server):  # noqa: F811
    for name in "xy":
        put(server, f"{name}.txt", f"plain {name}\n".encode())
    ctx, page, _, _ = signed_in(browser, server, java_script_enabled=False)
    page.goto(server.base_url + "/")
    row(page, "x.txt").locator(".file-name").click()
    expect(page.locator("#preview-title")).to_have_text("x.txt")
    expect(page.locator("#preview-dialog")).to_contain_text("plain x")
    assert "?preview=" in page.url
    page.get_by_role("link", name="Previous file").click()
    expect(page.locator("#preview-title")).to_have_text("y.txt")
    page.get_by_role("link", name="Close the preview of y.txt").click()
    expect(page.locator("#preview-dialog")).to_have_count(0)
    assert page.url == server.base_url + "/"
    ctx.close()


def test_a_collection_page_previews_with_next_and_previous(browser, server, tmp_path: Path):  # noqa: F811
    ids = [put(server, f"{n}.txt", f"member {n}\n".encode()) for n in "pq"]
    with server.http() as http:
        made = http.post("/api/shares", json={"ids": ids})
        assert made.status_code == 201, made.text
        url = made.json()["share"]["url"]
    ctx = browser.new_context(viewport={"width": 375, "height": 667}, bypass_csp=True)
    page = ctx.new_page()
    console = Console(page)
    page.goto(server.base_url + url)
    page.get_by_role("link", name="p.txt", exact=True).click()
    expect(page.locator("#preview-title")).to_have_text("p.txt")
    expect(page.locator("#preview-dialog")).to_contain_text("member p")
    assert axe_violations(page) == []
    page.get_by_role("link", name="Next file").click()
    expect(page.locator("#preview-title")).to_have_text("q.txt")
    page.go_back()
    expect(page.locator("#preview-title")).to_have_text("p.txt")
    assert console.errors == []
    ctx.close()


SEEK_TO = 4.0


def ranged_answers(page: Page, part: str) -> list[tuple[str, int, str]]:
    """(url, status, Range asked) of every answer whose URL has `part`, as they come."""
    answers: list[tuple[str, int, str]] = []
    page.on(
        "response",
        lambda r: (
            answers.append((r.url, r.status, r.request.headers.get("range", "")))
            if part in r.url
            else None
        ),
    )
    return answers


def seek_in_the_player(page: Page, selector: str, seconds: float) -> None:
    """The player has read the video's length (its metadata, from the first range);
    a seek to SEEK_TO ends in `seeked` there, and a frame is shown."""
    page.wait_for_function(f"() => document.querySelector({selector!r}).readyState >= 1")
    assert page.evaluate(f"document.querySelector({selector!r}).error") is None
    duration = page.evaluate(f"document.querySelector({selector!r}).duration")
    assert abs(duration - seconds) < 0.25, duration
    landed = page.evaluate(
        """([selector, to]) => new Promise((done, failed) => {
            const v = document.querySelector(selector);
            v.addEventListener('seeked', () => done(v.currentTime), {once: true});
            v.addEventListener('error', () => failed(new Error('media error')), {once: true});
            v.currentTime = to;
        })""",
        [selector, SEEK_TO],
    )
    assert abs(landed - SEEK_TO) < 0.5, landed
    page.wait_for_function(
        f"() => document.querySelector({selector!r}).readyState >= 2"  # HAVE_CURRENT_DATA
    )
    assert page.evaluate(f"document.querySelector({selector!r}).videoWidth") == 320


def assert_a_seek_was_answered_206(answers: list[tuple[str, int, str]]) -> None:
    """A range past the start (a seek, not the first read) answered 206."""
    later = [a for a in answers if a[2].startswith("bytes=") and a[2] != "bytes=0-"]
    assert any(status == 206 for _, status, _ in later), answers
    assert all(status in (200, 206) for _, status, _ in answers), answers


@pytest.mark.parametrize("container", ["mp4", "webm"])
def test_a_video_plays_and_seeks_by_range_in_its_preview(
    browser,  # noqa: F811
    server,
    videos: Videos,
    container: str,
):
    name = f"clip.{container}"
    file_id = put(server, name, getattr(videos, container).read_bytes())
    ctx, page, console, dialogs = signed_in(browser, server)
    answers = ranged_answers(page, f"/files/{file_id}")
    row(page, name).locator(".file-name").click()
    player = page.locator("#preview-dialog video")
    expect(player).to_be_visible()
    expect(player).to_have_attribute("aria-label", name)
    seek_in_the_player(page, "#preview-dialog video", videos.seconds)
    assert_a_seek_was_answered_206(answers)
    assert dialogs == [] and console.errors == []
    ctx.close()


def test_a_shared_video_plays_and_seeks_and_is_no_download(
    browser,  # noqa: F811
    server,
    videos: Videos,
):
    file_id = put(server, "clip.mp4", videos.mp4.read_bytes())
    with server.http() as http:
        made = http.post(f"/api/files/{file_id}/shares", json={})
        assert made.status_code == 201, made.text
        share_id, url = made.json()["share"]["id"], made.json()["share"]["url"]

    def downloads() -> tuple[int, int]:
        """The link's count, and the rows of its download log."""
        with server.http() as http:
            listed = {s["id"]: s for s in http.get("/api/shares").json()["shares"]}
            log = http.get(f"/api/shares/{share_id}/downloads").json()["downloads"]
            return listed[share_id]["downloads"], len(log)

    assert downloads() == (0, 0)
    # A visitor: no session, the link only.
    ctx = browser.new_context(viewport={"width": 375, "height": 667})
    page = ctx.new_page()
    console = Console(page)
    answers = ranged_answers(page, url + "/file")
    page.goto(server.base_url + url)
    player = page.locator("video")
    expect(player).to_be_visible()
    seek_in_the_player(page, "video", videos.seconds)
    assert_a_seek_was_answered_206(answers)
    assert all("preview=1" in answer[0] for answer in answers), answers
    assert console.errors == []
    ctx.close()
    # Watching counted nothing; a download does (so the count above could have moved).
    assert downloads() == (0, 0)
    with httpx.Client(base_url=server.base_url) as visitor:
        got = visitor.get(url + "/file", params={"download": "1"})
        assert got.status_code == 200 and got.content == videos.mp4.read_bytes()
    deadline = time.monotonic() + 10
    while downloads() != (1, 1) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert downloads() == (1, 1)
