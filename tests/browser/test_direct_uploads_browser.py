"""The page's direct uploads (assets/resumable.js `DirectUpload`) in real Chromium, on a
real `stowage serve` with SeaweedFS storage: the node opens the session, the parts go
cross-origin straight to the S3 port, the node completes and checks.

"No file bytes went through the node" is read from the browser's own request list:
every request to the node carries a body of at most a few KiB (the session's JSON),
and the PUTs to the S3 origin carry the whole file, part by part.
"""

import base64
import hashlib
import re
import secrets
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
from playwright.sync_api import Page, Request, Route, expect
from tests.support.browser import Console, browser, sign_in, wait_until_live
from tests.support.fixtures import RunningServer, seaweed, start_server, write_random_file
from tests.support.seaweed import Seaweed

pytestmark = [pytest.mark.browser, pytest.mark.slow]
__all__ = ["browser", "seaweed"]  # the module's Chromium and the run's SeaweedFS

MiB = 1024 * 1024
PART = 8 * MiB
# The node's largest request body a direct upload may send it: a session's JSON.
JSON_BYTES = 4096


@pytest.fixture
def served(tmp_path: Path, seaweed: Seaweed) -> Iterator[RunningServer]:
    storage = f"s3://{seaweed.bucket}/t-{secrets.token_hex(6)}"
    yield from start_server(
        tmp_path,
        "--storage", storage, "--s3-endpoint-url", seaweed.endpoint_url,
        env=seaweed.env,
    )  # fmt: skip


class Traffic:
    """Every request `page` finished: to the node (method, path, body bytes) and the
    PUTs to the bucket (part number, body bytes, headers, status). Body sizes are the
    browser's own count (`Request.sizes()`): Playwright shows no Blob bodies."""

    def __init__(self, page: Page, node: str, bucket: str) -> None:
        self.node = node
        self.bucket = bucket
        self.to_node: list[tuple[str, str, int]] = []
        self.parts: list[dict] = []
        # Every request to the node as it starts (`to_node` has those finished).
        self.asked: list[tuple[str, str]] = []
        page.on("request", self._started)
        page.on("requestfinished", self._finished)

    def _started(self, request: Request) -> None:
        if request.url.startswith(self.node):
            self.asked.append((request.method, urlsplit(request.url).path))

    def _finished(self, request: Request) -> None:
        size = int(request.all_headers().get("content-length", "0"))
        if request.url.startswith(self.node):
            self.to_node.append((request.method, urlsplit(request.url).path, size))
        elif request.url.startswith(self.bucket) and request.method == "PUT":
            response = request.response()
            query = parse_qs(urlsplit(request.url).query)
            self.parts.append(
                {
                    "number": int(query["partNumber"][0]),
                    "size": size,
                    "headers": request.headers,
                    "status": response.status if response is not None else 0,
                }
            )

    def landed(self) -> list[int]:
        return sorted(p["number"] for p in self.parts if p["status"] == 200)

    def assert_no_file_bytes_to_node(self) -> None:
        heavy = [r for r in self.to_node if r[2] > JSON_BYTES]
        assert heavy == [], heavy
        # Nor any request of the node's own upload paths (tus, the IETF draft, forms).
        through_node = [
            (method, path)
            for method, path in self.asked
            if method == "PATCH" or (method == "POST" and path.startswith(("/tus", "/uploads")))
        ]
        assert through_node == [], through_node


def node_io(server: RunningServer) -> tuple[int, int]:
    """(bytes read, bytes written) by the node's process so far, sockets and files
    alike (/proc/PID/io): a proxied upload writes every byte on to the bucket."""
    fields = dict(
        line.split(": ") for line in Path(f"/proc/{server.process.pid}/io").read_text().splitlines()
    )
    return int(fields["rchar"]), int(fields["wchar"])


def open_page(browser, server: RunningServer, seaweed: Seaweed, context=None):
    context = context or browser.new_context(viewport={"width": 1100, "height": 900})
    page = context.new_page()
    console = Console(page)
    traffic = Traffic(page, server.base_url, seaweed.endpoint_url)
    return page, console, traffic


def upload_row(page: Page, name: str):
    return page.locator("#resumable .transfer", has_text=name)


def stored(server: RunningServer, name: str) -> dict:
    with server.http() as http:
        files = http.get("/api/files").json()["files"]
    return next(f for f in files if f["name"] == name)


def write_mib(path: Path, mebibytes: int) -> str:
    data = secrets.token_bytes(mebibytes * MiB)
    path.write_bytes(data)
    return hashlib.sha256(data).hexdigest()


def test_the_page_sends_a_large_file_straight_to_the_bucket(browser, served, seaweed, tmp_path):
    server = served
    page, console, traffic = open_page(browser, server, seaweed)
    sign_in(page, server)
    wait_until_live(page)
    panel = page.locator("#resumable")
    expect(panel).to_have_attribute("data-direct-uploads", "/api/uploads/direct")

    path = tmp_path / "film.mov"
    digest = write_mib(path, 20)
    read_before, written_before = node_io(server)
    page.set_input_files("#picker", str(path))
    row = upload_row(page, path.name)
    expect(row).to_have_attribute("data-state", "done", timeout=60000)
    expect(row).to_contain_text("Stored")
    expect(page.locator("#files li.file", has_text=path.name)).to_be_visible()

    read_after, written_after = node_io(server)
    read, written = read_after - read_before, written_after - written_before
    found = stored(server, path.name)
    assert (found["size"], found["sha256"]) == (20 * MiB, digest)
    # The node wrote no file bytes anywhere (it read the object back once, for its
    # sha256: a file of more than one part has no SHA-256 the store verified).
    print(f"node during a 20 MiB direct upload: read {read:,} bytes, wrote {written:,}")
    assert written < 2 * MiB, written
    # Three parts (8 + 8 + 4 MiB), each once, cross-origin to the S3 port.
    assert traffic.landed() == [1, 2, 3]
    assert sorted(p["size"] for p in traffic.parts) == [4 * MiB, PART, PART]
    traffic.assert_no_file_bytes_to_node()
    sessions = [r for r in traffic.asked if r[1].startswith("/api/uploads/direct")]
    assert sessions[0] == ("POST", "/api/uploads/direct")
    assert sessions[-1][0] == "POST" and sessions[-1][1].endswith("/complete")
    assert page.evaluate("Object.keys(localStorage)") == [], "a finished upload is forgotten"

    # A file of one part: its SHA-256 is signed into the part's URL (the bucket checks it).
    small = tmp_path / "scan.pdf"
    small_digest = write_mib(small, 3)
    page.set_input_files("#picker", str(small))
    expect(upload_row(page, small.name)).to_have_attribute("data-state", "done", timeout=30000)
    one = [p for p in traffic.parts if p["size"] == 3 * MiB]
    assert len(one) == 1
    assert one[0]["headers"].get("x-amz-checksum-sha256") == base64.b64encode(
        bytes.fromhex(small_digest)
    ).decode("ascii")
    assert stored(server, small.name)["sha256"] == small_digest
    traffic.assert_no_file_bytes_to_node()
    assert console.errors == [], console.errors


def test_a_closed_page_then_the_same_file_sends_only_the_missing_parts(
    browser, served, seaweed, tmp_path
):
    """40 MiB: five parts. The first page lets parts 1 and 2 reach the bucket and holds
    the others back; it is closed. A new page (same browser) offers to continue; the
    same file, picked again, sends parts 3-5 only and is stored whole."""
    server = served
    context = browser.new_context(viewport={"width": 1100, "height": 900})
    page, _, traffic = open_page(browser, server, seaweed, context)
    sign_in(page, server)
    wait_until_live(page)
    path = tmp_path / "backup.tar"
    digest = write_mib(path, 40)

    def hold_late_parts(route: Route) -> None:
        query = parse_qs(urlsplit(route.request.url).query)
        if route.request.method == "PUT" and int(query.get("partNumber", ["0"])[0]) > 2:
            return  # never answered: the page is closed with it in flight
        route.continue_()

    page.route(re.compile(re.escape(seaweed.endpoint_url) + ".*"), hold_late_parts)
    page.set_input_files("#picker", str(path))
    waited = 0
    while traffic.landed() != [1, 2]:
        assert waited < 30000, traffic.parts
        page.wait_for_timeout(100)
        waited += 100
    page.close()

    again, console, fresh = open_page(browser, server, seaweed, context)
    again.goto(server.base_url + "/")
    wait_until_live(again)
    row = upload_row(again, path.name)
    expect(row).to_have_attribute("data-state", "unfinished")
    expect(row).to_contain_text(re.compile(r"Unfinished: the bucket has 16 MiB of 40 MiB"))
    again.set_input_files("#picker", str(path))
    expect(row).to_have_attribute("data-state", "done", timeout=60000)
    assert fresh.landed() == [3, 4, 5]
    found = stored(server, path.name)
    assert (found["size"], found["sha256"]) == (40 * MiB, digest)
    fresh.assert_no_file_bytes_to_node()
    assert again.evaluate("Object.keys(localStorage)") == []
    assert console.errors == [], console.errors


def test_a_file_request_page_uploads_straight_to_the_bucket(browser, served, seaweed, tmp_path):
    server = served
    with server.http() as http:
        made = http.post("/api/requests", json={"label": "Raw footage"})
        assert made.status_code == 201, made.text
    link = made.json()["request"]["url"]
    path = tmp_path / "footage.mov"
    digest = write_random_file(path, 12)

    # A fresh browser, no account: only the link.
    guest, console, traffic = open_page(browser, server, seaweed)
    guest.goto(server.base_url + link)
    token = link.rstrip("/").rsplit("/", 1)[1]
    expect(guest.locator("#resumable")).to_have_attribute(
        "data-direct-uploads", f"/r/{token}/uploads/direct"
    )
    guest.set_input_files("#picker", str(path))
    row = upload_row(guest, path.name)
    expect(row).to_have_attribute("data-state", "done", timeout=60000)
    assert row.locator("a").count() == 0  # the uploader may not open what it sent
    assert traffic.landed() == [1, 2]
    traffic.assert_no_file_bytes_to_node()
    found = stored(server, path.name)
    assert (found["size"], found["sha256"]) == (12_000_000, digest)
    assert console.errors == [], console.errors


def test_cancel_abandons_the_session_and_a_409_falls_back_to_tus(
    browser, served, seaweed, tmp_path
):
    """Cancel mid-way DELETEs the session (its parts go with it); a node that answers
    409 with `use` (direct uploads went off since the page loaded) gets the file by
    tus instead, through the node, and the queue goes on that way."""
    server = served
    page, console, traffic = open_page(browser, server, seaweed)
    console.expected = ("status of 409",)
    sign_in(page, server)
    wait_until_live(page)
    path = tmp_path / "draft.mov"
    write_mib(path, 20)
    page.route(
        re.compile(re.escape(seaweed.endpoint_url) + ".*"),
        lambda route: None if route.request.method == "PUT" else route.continue_(),
    )
    page.set_input_files("#picker", str(path))
    row = upload_row(page, path.name)
    expect(row).to_have_attribute("data-state", "sending")
    page.wait_for_function("() => localStorage.length === 1")
    with page.expect_response(lambda r: r.request.method == "DELETE") as abandoned:
        row.get_by_role("button", name=f"Cancel {path.name}").click()
    assert abandoned.value.status == 204
    assert abandoned.value.url.startswith(server.base_url + "/api/uploads/direct/")
    expect(row).to_have_count(0)
    assert page.evaluate("Object.keys(localStorage)") == []
    page.unroute(re.compile(re.escape(seaweed.endpoint_url) + ".*"))

    page.route(
        server.base_url + "/api/uploads/direct",
        lambda route: route.fulfill(
            status=409,
            content_type="application/json",
            body='{"error": "direct uploads are off", "use": "/tus/"}',
        ),
    )
    other = tmp_path / "final.mov"
    digest = write_mib(other, 12)
    page.set_input_files("#picker", str(other))
    expect(upload_row(page, other.name)).to_have_attribute("data-state", "done", timeout=60000)
    assert (stored(server, other.name)["sha256"]) == digest
    assert any(method == "PATCH" for method, _ in traffic.asked), traffic.asked
    assert page.evaluate("document.getElementById('resumable').dataset.directUploads") == (
        "/api/uploads/direct"
    )
    assert console.errors == [], console.errors


def test_a_lost_answer_to_the_completion_still_ends_stored(browser, served, seaweed, tmp_path):
    """The node completed the upload but its answer never reached the page (the
    connection dropped): the page asks the session again, learns it is complete, and
    gets the file's answer; the file is stored once."""
    server = served
    page, console, _ = open_page(browser, server, seaweed)
    console.expected = ("ERR_CONNECTION_RESET", "status of 409")
    sign_in(page, server)
    wait_until_live(page)
    completions: list[int] = []

    def lose_the_first_answer(route: Route) -> None:
        answer = route.fetch()
        completions.append(answer.status)
        if len(completions) == 1:
            route.abort("connectionreset")
        else:
            route.fulfill(response=answer)

    page.route(re.compile(r".*/api/uploads/direct/[^/]+/complete$"), lose_the_first_answer)
    path = tmp_path / "report.mov"
    digest = write_mib(path, 12)
    page.set_input_files("#picker", str(path))
    row = upload_row(page, path.name)
    expect(row).to_have_attribute("data-state", "done", timeout=60000)
    expect(row.locator("a")).to_have_attribute("href", re.compile(r"^/files/"))
    assert completions == [201, 201]
    with server.http() as http:
        files = http.get("/api/files").json()["files"]
    assert [(f["name"], f["sha256"]) for f in files] == [(path.name, digest)]
    assert console.errors == [], console.errors


def test_files_of_one_part_go_several_at_once_each_checked_by_the_bucket(
    browser, served, seaweed, tmp_path
):
    """Eight 1 MiB files: each its own session and one PUT carrying its SHA-256, up to
    four at a time; files of 256 KiB or less still go together through the node."""
    server = served
    page, console, traffic = open_page(browser, server, seaweed)
    sign_in(page, server)
    wait_until_live(page)
    digests = {}
    paths = []
    for n in range(8):
        path = tmp_path / f"page-{n}.png.bin"
        digests[path.name] = write_mib(path, 1)
        paths.append(str(path))
    tiny = tmp_path / "note.txt"
    tiny.write_bytes(b"small files travel together\n")
    paths.append(str(tiny))
    page.set_input_files("#picker", paths)
    expect(page.locator("#resumable .transfer[data-state=done]")).to_have_count(9, timeout=60000)
    with server.http() as http:
        files = {f["name"]: f["sha256"] for f in http.get("/api/files").json()["files"]}
    assert {name: files[name] for name in digests} == digests
    assert tiny.name in files
    assert len(traffic.parts) == 8
    assert all("x-amz-checksum-sha256" in part["headers"] for part in traffic.parts)
    sessions = [r for r in traffic.asked if r == ("POST", "/api/uploads/direct")]
    assert len(sessions) == 8
    assert ("POST", "/uploads") in traffic.asked, traffic.asked
    assert console.errors == [], console.errors


# Failed loads Chromium logs while the network is cut.
CUT = ("ERR_INTERNET_DISCONNECTED", "ERR_CONNECTION", "ERR_NETWORK_CHANGED")


def part_number(request: Request) -> int:
    return int(parse_qs(urlsplit(request.url).query).get("partNumber", ["0"])[0])


def test_a_network_loss_midway_ends_stored_sending_only_what_the_bucket_lacks(
    browser, served, seaweed, tmp_path
):
    """40 MiB: five parts. Parts 1 and 2 land; the others are in flight when the
    network goes (the browser offline: node and bucket alike) for several seconds. The
    same page, back online, asks the session what the bucket holds and sends parts 3-5
    only; the file is stored whole, with its sha256."""
    server = served
    page, console, traffic = open_page(browser, server, seaweed)
    console.expected = CUT
    sign_in(page, server)
    wait_until_live(page)
    path = tmp_path / "archive.tar"
    digest = write_mib(path, 40)
    failed: list[tuple[str, int, str]] = []
    page.on(
        "requestfailed",
        lambda r: (
            failed.append((r.method, part_number(r), r.failure or ""))
            if r.url.startswith(seaweed.endpoint_url)
            else None
        ),
    )
    held: list[Route] = []

    def hold_late_parts(route: Route) -> None:
        if route.request.method == "PUT" and part_number(route.request) > 2:
            held.append(route)  # answered when the network goes
            return
        route.continue_()

    bucket = re.compile(re.escape(seaweed.endpoint_url) + ".*")
    page.route(bucket, hold_late_parts)
    page.set_input_files("#picker", str(path))
    row = upload_row(page, path.name)
    waited = 0
    while traffic.landed() != [1, 2] or not held:
        assert waited < 30000, traffic.parts
        page.wait_for_timeout(100)
        waited += 100

    page.context.set_offline(True)
    for route in held:
        route.abort("internetdisconnected")
    page.unroute(bucket)
    # Each part in flight is tried again a few times, then the upload backs off as a
    # whole; asking the session fails too while offline.
    expect(row).to_have_attribute("data-state", "retrying", timeout=15000)
    expect(row).to_contain_text("Connection lost at")
    page.wait_for_timeout(3000)
    asked_offline = len(traffic.asked)
    page.context.set_offline(False)
    # Back online, it goes on at once, not when its wait is over.
    expect(row).to_have_attribute("data-state", "sending", timeout=5000)

    expect(row).to_have_attribute("data-state", "done", timeout=60000)
    expect(row).to_contain_text("Stored")
    found = stored(server, path.name)
    assert (found["size"], found["sha256"]) == (40 * MiB, digest)
    # Every part landed once: 1 and 2 before the cut, 3-5 after it, none sent twice.
    assert traffic.landed() == [1, 2, 3, 4, 5], traffic.parts
    assert sorted(p["number"] for p in traffic.parts) == [1, 2, 3, 4, 5], traffic.parts
    assert {number for _, number, _ in failed} >= {3}, failed
    assert all(number > 2 for _, number, _ in failed), failed
    # Back online, the page asked the session before it sent the rest.
    after = [r for r in traffic.asked[asked_offline:] if r[1].startswith("/api/uploads/direct")]
    assert after[0][0] == "GET" and after[-1][1].endswith("/complete"), after
    traffic.assert_no_file_bytes_to_node()
    assert page.evaluate("Object.keys(localStorage)") == []
    assert console.errors == [], console.errors


# SeaweedFS 4.48's answer to a part URL past its expiry (measured): the XML error, with
# the bucket's CORS headers (its ETag exposed) as on any answer to an allowed origin.
EXPIRED = (
    '<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>AccessDenied</Code>'
    "<Message>Request has expired</Message><Resource>/stowage/part</Resource></Error>"
)


def test_an_expired_part_url_gets_fresh_urls_from_the_session_and_goes_on(
    browser, served, seaweed, tmp_path
):
    """The bucket answers part 2's first PUT 403 "Request has expired" (as it does for
    a URL past its 15 minutes): the page asks the session for fresh URLs from part 2 on
    and sends it again; the file is stored whole."""
    server = served
    page, console, traffic = open_page(browser, server, seaweed)
    console.expected = ("status of 403",)
    sign_in(page, server)
    wait_until_live(page)
    listed: list[str] = []
    page.on(
        "request",
        lambda r: (
            listed.append(urlsplit(r.url).query)
            if r.method == "GET" and urlsplit(r.url).path.startswith("/api/uploads/direct/")
            else None
        ),
    )
    expired: list[str] = []

    def expire_part_two_once(route: Route) -> None:
        request = route.request
        if request.method == "PUT" and part_number(request) == 2 and not expired:
            expired.append(request.url)
            route.fulfill(
                status=403,
                content_type="application/xml",
                headers={
                    "Access-Control-Allow-Origin": server.base_url,
                    "Access-Control-Expose-Headers": "ETag",
                    "Vary": "Origin",
                },
                body=EXPIRED,
            )
            return
        route.continue_()

    page.route(re.compile(re.escape(seaweed.endpoint_url) + ".*"), expire_part_two_once)
    path = tmp_path / "interview.mov"
    digest = write_mib(path, 20)
    page.set_input_files("#picker", str(path))
    row = upload_row(page, path.name)
    expect(row).to_have_attribute("data-state", "done", timeout=60000)
    assert len(expired) == 1
    assert "from=2" in listed, listed
    assert traffic.landed() == [1, 2, 3], traffic.parts
    two = [p for p in traffic.parts if p["number"] == 2]
    assert [p["status"] for p in two] == [403, 200], two
    found = stored(server, path.name)
    assert (found["size"], found["sha256"]) == (20 * MiB, digest)
    traffic.assert_no_file_bytes_to_node()
    assert console.errors == [], console.errors
