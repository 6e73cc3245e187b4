"""What the pages tell their upload queue about direct uploads (assets/resumable.js):
nothing on local storage (the queue sends by tus and through the node, as before,
and the page's CSP connects to its own origin only). The S3 side, where the panel
carries `data-direct-uploads` and the CSP names the bucket, is run in real Chromium
(tests/browser/test_direct_uploads_browser.py)."""

import re
from dataclasses import dataclass

from stario.testing import TestClient
from tests.support.fixtures import SETUP_TOKEN, add_account, bearer, request_policy

from app.common.shell import content_security_policy
from app.config import Config
from app.features.home.urls import HOME
from app.features.uploads.panel import bucket_origin
from app.main import make_bootstrap
from app.storage.direct import PROXIED, Direct


def connect_src(csp: str) -> str:
    directives = dict(d.strip().split(" ", 1) for d in csp.split(";"))
    return directives["connect-src"]


async def test_on_local_storage_no_page_offers_direct_uploads(config: Config, client) -> None:
    page = await client.get(HOME.href())
    assert page.status_code == 200
    assert 'id="resumable"' in page.text
    assert "data-direct-uploads" not in page.text
    assert connect_src(page.headers.get("content-security-policy") or "") == "'self'"


async def test_a_file_requests_page_neither(config: Config) -> None:
    _, token = await add_account(config, "owner")
    async with TestClient(
        make_bootstrap(config, setup_token=SETUP_TOKEN),
        requests=request_policy(config),
        base_url=config.public_url,
    ) as app:
        made = await app.post("/api/requests", json={"label": "Scans"}, headers=bearer(token))
        link = made.json()["request"]["url"]
        page = await app.get(link)
    assert page.status_code == 200
    assert 'id="resumable"' in page.text and "data-direct-uploads" not in page.text
    assert connect_src(page.headers.get("content-security-policy") or "") == "'self'"


@dataclass
class SigningBucket:
    """Signs as a bucket at another origin would (no request is made)."""

    url: str

    async def part_url(self, blob_id: str, multipart_id: str, number: int, length: int) -> str:
        return f"{self.url}/stowage/{blob_id}?partNumber={number}&uploadId={multipart_id}"


async def test_the_origin_a_page_may_send_parts_to() -> None:
    on = Direct(SigningBucket("https://s3.example.net:9000"), uploads=True, downloads=True)  # type: ignore[arg-type]
    assert await bucket_origin(on) == "https://s3.example.net:9000"
    downloads_only = Direct(SigningBucket("https://s3.example.net"), uploads=False, downloads=True)  # type: ignore[arg-type]
    assert await bucket_origin(downloads_only) == ""
    assert await bucket_origin(PROXIED) == ""
    csp = content_security_policy("n0nce", connect="https://s3.example.net:9000")
    assert connect_src(csp) == "'self' https://s3.example.net:9000"
    assert re.search(r"connect-src 'self';", content_security_policy("n0nce"))
