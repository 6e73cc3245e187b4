"""Uppy (`@uppy/core` + `@uppy/tus`, from npm) on a page of another site, in real
Chromium, against a real `stowage serve --cors-origins`.

The app is http://127.0.0.1:APP; the listed page is http://127.0.0.1:PAGE (another
origin on the same site, so the browser does send the session cookie along when a
page asks it to: the strongest case for "cookies are never honoured cross-origin");
the unlisted page is http://127.0.0.2:OTHER. Each page is the same small HTML served
by a static server of this module; the file bytes are made in the page from a seed,
with a fixed `lastModified`, so Uppy gives the same file the same id (its tus
fingerprint) after a reload.
"""

import hashlib
import http.server
import threading
import time
from collections.abc import Iterator
from functools import partial
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Browser, Page
from tests.support.browser import Console, browser, sign_in
from tests.support.clients import ClientSetupError
from tests.support.fixtures import RunningServer, free_port, start_server
from tests.support.uppy import ensure_uppy_bundle

pytestmark = [pytest.mark.browser]
__all__ = ["browser"]  # the module-scoped Chromium fixture

KiB = 1024
CHUNK = 256 * KiB
BIG = 24 * CHUNK + 12_345  # 25 PATCHes
PATCHES_BEFORE_CUT = 9

PAGE = """<!doctype html>
<html><head><meta charset="utf-8"><title>Uppy on another site</title>
<link rel="icon" href="data:,">
<script src="uppy.js"></script>
<script>
window.log = [];
window.result = null;
function bytesFor(size, seed) {
  const out = new Uint8Array(size);
  let x = seed >>> 0 || 1;
  for (let i = 0; i < size; i++) {
    x ^= x << 13; x >>>= 0; x ^= x >>> 17; x ^= x << 5; x >>>= 0;
    out[i] = x & 255;
  }
  return out;
}
async function sha256hex(bytes) {
  const digest = await crypto.subtle.digest('SHA-256', bytes);
  return [...new Uint8Array(digest)].map(b => b.toString(16).padStart(2, '0')).join('');
}
// Starts an upload; `window.result` is set when it ends. With `hangAfterPatches`, the
// PATCH after that many never leaves the page (the test then reloads it: a cut).
window.startUpload = function (o) {
  const bytes = bytesFor(o.size, o.seed);
  const file = new File([bytes], o.name,
                        {type: 'application/octet-stream', lastModified: 1700000000000});
  const uppy = new Uppy({autoProceed: false});
  let patches = 0;
  uppy.use(UppyTus, {
    endpoint: o.endpoint,
    headers: {Authorization: 'Bearer ' + o.token},
    chunkSize: o.chunkSize,
    retryDelays: null,
    onBeforeRequest: (req) => {
      if (req.getMethod() === 'PATCH' && o.hangAfterPatches != null
          && patches >= o.hangAfterPatches) {
        return new Promise(() => {});
      }
    },
    onAfterResponse: (req, res) => {
      const method = req.getMethod();
      if (method === 'PATCH') patches++;
      window.log.push({method, status: res.getStatus(),
                       sentOffset: req.getHeader('Upload-Offset'),
                       offset: res.getHeader('Upload-Offset'),
                       location: res.getHeader('Location')});
    },
  });
  uppy.addFile({name: o.name, type: file.type, data: file, source: 'test'});
  window.result = null;
  uppy.upload().then(async (r) => {
    window.result = {sha256: await sha256hex(bytes),
                     successful: r.successful.map(f => f.response.uploadURL),
                     failed: r.failed.map(f => String(f.error))};
  }, (e) => { window.result = {error: String(e), successful: [], failed: [String(e)]}; });
};
</script></head><body><p>another site</p></body></html>
"""


class StaticSite:
    """The test page and the Uppy bundle, served from `host`:a free port."""

    def __init__(self, root: Path, host: str) -> None:
        handler = partial(_QuietFiles, directory=str(root))
        self.httpd = http.server.ThreadingHTTPServer((host, free_port()), handler)
        self.origin = f"http://{host}:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


class _QuietFiles(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture(scope="module")
def site_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    try:
        bundle = ensure_uppy_bundle()
    except ClientSetupError as exc:
        pytest.fail(str(exc))
    root = tmp_path_factory.mktemp("site")
    (root / "uppy.js").write_bytes(bundle.read_bytes())
    (root / "index.html").write_text(PAGE)
    return root


@pytest.fixture
def sites(site_root: Path) -> Iterator[tuple[StaticSite, StaticSite]]:
    listed, unlisted = StaticSite(site_root, "127.0.0.1"), StaticSite(site_root, "127.0.0.2")
    try:
        yield listed, unlisted
    finally:
        listed.close()
        unlisted.close()


@pytest.fixture
def app(tmp_path: Path, sites) -> Iterator[RunningServer]:
    listed, _ = sites
    yield from start_server(tmp_path, "--cors-origins", listed.origin)


def _start(page: Page, server: RunningServer, name: str, size: int, seed: int, **more) -> None:
    page.evaluate(
        "o => window.startUpload(o)",
        {"endpoint": server.base_url + "/tus/", "token": server.token, "name": name,
         "size": size, "seed": seed, "chunkSize": CHUNK, **more},
    )  # fmt: skip


def _result(page: Page, timeout: float = 60_000) -> dict:
    page.wait_for_function("() => window.result !== null", timeout=timeout)
    return page.evaluate("() => window.result")


def _stored(server: RunningServer) -> dict[str, str]:
    """name -> sha256 of every stored file, read back through the API."""
    found = {}
    with server.http() as client:
        for row in client.get("/api/files").json()["files"]:
            body = client.get(row["url"]).content
            found[row["name"]] = hashlib.sha256(body).hexdigest()
    return found


def test_uppy_uploads_with_a_token_and_resumes_after_a_reload(
    browser: Browser, app: RunningServer, sites
):
    listed, _ = sites
    context = browser.new_context()
    page = context.new_page()
    console = Console(page)
    page.goto(listed.origin + "/index.html")

    # A small file, in one go.
    _start(page, app, "small.bin", 100_000, seed=7)
    small = _result(page)
    assert small["failed"] == [] and len(small["successful"]) == 1, (small, console.errors)
    assert _stored(app)["small.bin"] == small["sha256"]

    # A larger one, cut after PATCHES_BEFORE_CUT appends by reloading the page.
    page.evaluate("() => { window.log = []; }")
    _start(page, app, "big.bin", BIG, seed=11, hangAfterPatches=PATCHES_BEFORE_CUT)
    page.wait_for_function(
        f"() => window.log.filter(e => e.method === 'PATCH').length >= {PATCHES_BEFORE_CUT}"
    )
    before = page.evaluate("() => window.log")
    created = next(e for e in before if e["method"] == "POST")
    assert created["status"] == 201 and created["location"], before  # Location is exposed
    upload_url = httpx.URL(app.base_url).join(created["location"])
    page.reload()
    held = PATCHES_BEFORE_CUT * CHUNK
    with app.http() as client:
        answer = client.head(str(upload_url), headers={"tus-resumable": "1.0.0"})
        assert int(answer.headers["upload-offset"]) == held  # what the server holds
    assert "big.bin" not in _stored(app)

    # The same file again after the reload: Uppy finds its fingerprint and resumes.
    _start(page, app, "big.bin", BIG, seed=11)
    big = _result(page)
    assert big["failed"] == [] and len(big["successful"]) == 1, big
    after = page.evaluate("() => window.log")
    methods = [e["method"] for e in after]
    assert methods[0] == "HEAD" and "POST" not in methods, methods
    assert int(after[0]["offset"]) == held  # Upload-Offset is exposed to the page
    first_patch = next(e for e in after if e["method"] == "PATCH")
    assert int(first_patch["sentOffset"]) == held  # resumed, not restarted from 0
    assert methods.count("PATCH") == -(-(BIG - held) // CHUNK)
    assert _stored(app)["big.bin"] == big["sha256"]
    assert console.errors == []
    context.close()


def test_an_unlisted_site_and_a_cookie_are_refused(
    browser: Browser, app: RunningServer, sites, tmp_path: Path
):
    listed, unlisted = sites
    context = browser.new_context()
    # The browser holds a session on the app (signed in there, as a person would be).
    page = context.new_page()
    sign_in(page, app)

    # Uppy on a site not listed: the preflight is refused, the browser blocks the upload.
    other = context.new_page()
    Console(other, expected=("CORS", "Failed to load resource", "net::ERR_FAILED"))
    other.goto(unlisted.origin + "/index.html")
    _start(other, app, "blocked.bin", 50_000, seed=3)
    blocked = _result(other)
    assert blocked["successful"] == [] and blocked["failed"], blocked

    # From the listed site, with the session cookie but no token: refused by the server
    # (a text/plain POST is a "simple" request: no preflight, the cookie goes along).
    mine = context.new_page()
    Console(mine, expected=("CORS", "Failed to load resource", "net::ERR_FAILED"))
    mine.goto(listed.origin + "/index.html")
    outcome = mine.evaluate(
        """async (app) => {
          const tries = {};
          for (const [what, init] of [
            ['post', {method: 'POST', body: 'cookie words', credentials: 'include'}],
            ['list', {credentials: 'include'}],
          ]) {
            const url = what === 'post' ? app + '/uploads?name=cookie.txt' : app + '/api/files';
            try { tries[what] = (await fetch(url, init)).status; }
            catch (e) { tries[what] = 'blocked'; }
          }
          return tries;
        }""",
        app.base_url,
    )
    assert outcome == {"post": "blocked", "list": "blocked"}, outcome
    time.sleep(0.2)
    assert _stored(app) == {}  # nothing from either page was kept
    context.close()
